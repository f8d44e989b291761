package redisconn

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestIsNetError(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{errors.New("NOSCRIPT No matching script"), false},
		{refused, true},
		{fmt.Errorf("sessions: check: %w", refused), true},
		{io.EOF, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
	} {
		if got := isNetError(tc.err); got != tc.want {
			t.Errorf("isNetError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestClusterClientReloadsItsSlotMapOften(t *testing.T) {
	c, ok := newClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, IsClusterMode: true}).(*redis.ClusterClient)
	if !ok {
		t.Fatal("a cluster URL did not give a *redis.ClusterClient")
	}
	defer c.Close()
	if got := c.Options().ClusterStateReloadInterval; got != ClusterStateReload {
		t.Fatalf("ClusterStateReloadInterval = %s, want %s", got, ClusterStateReload)
	}
	single := newClient(&redis.UniversalOptions{Addrs: []string{"127.0.0.1:1"}})
	defer single.Close()
	if _, ok := single.(*redis.Client); !ok {
		t.Fatalf("a single URL gave %T", single)
	}
}
