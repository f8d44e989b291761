//go:build !nosandbox

package redisconn

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
)

// startEmbedded starts the sandbox's embedded Redis (miniredis) on a
// loopback port.
func startEmbedded() (addr string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("redisconn: start embedded redis: %w", err)
	}
	return m.Addr(), m.Close, nil
}
