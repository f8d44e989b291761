//go:build nosandbox

package redisconn

import "errors"

// startEmbedded: a production build links no embedded Redis.
func startEmbedded() (string, func(), error) {
	return "", nil, errors.New("redisconn: this binary was built without the sandbox (-tags nosandbox), so it has no embedded Redis; give --redis-url")
}
