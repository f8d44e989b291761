// Package redisconn builds tollgate's one Redis client: a
// redis.UniversalClient from a URL (single node, Sentinel or Cluster), or, in
// sandbox mode without a URL, an embedded miniredis listening on a loopback
// port so the CLI of another process can reach it.
package redisconn

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Conn is an open Redis client and what it needs to close.
type Conn struct {
	Client   redis.UniversalClient
	Embedded bool   // true when the sandbox's embedded Redis is used
	URL      string // URL other processes can use (the embedded one's loopback URL)
	stop     func() // stops an embedded server
}

// Open connects to rawURL and pings it. With rawURL empty it starts an
// embedded miniredis on 127.0.0.1 (sandbox only; the caller decides).
func Open(ctx context.Context, rawURL string) (*Conn, error) {
	if rawURL == "" {
		// embedded.go; a production build (-tags nosandbox) has none.
		addr, stop, err := startEmbedded()
		if err != nil {
			return nil, err
		}
		c := &Conn{Embedded: true, URL: "redis://" + addr, stop: stop}
		c.Client = redis.NewClient(&redis.Options{Addr: addr})
		return c, nil
	}
	opts, err := parseUniversal(rawURL)
	if err != nil {
		return nil, err
	}
	client := redis.NewUniversalClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisconn: Redis at %s is unreachable (%v); start it or fix --redis-url", redactURL(rawURL), err)
	}
	return &Conn{Client: client, URL: rawURL}, nil
}

// Close closes the client and stops an embedded server.
func (c *Conn) Close() error {
	err := c.Client.Close()
	if c.stop != nil {
		c.stop()
	}
	return err
}

// parseUniversal understands redis://, rediss://, unix:// (single node),
// redis+sentinel://host1,host2/mastername and redis+cluster://host1,host2.
func parseUniversal(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("redisconn: --redis-url %q: %v", redactURL(raw), err)
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
		o, err := redis.ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("redisconn: --redis-url %q: %v", redactURL(raw), err)
		}
		return &redis.UniversalOptions{
			Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password,
			TLSConfig: o.TLSConfig, Protocol: o.Protocol,
		}, nil
	case "redis+sentinel", "redis+cluster":
		addrs := strings.Split(u.Host, ",")
		o := &redis.UniversalOptions{Addrs: addrs}
		if u.User != nil {
			o.Username = u.User.Username()
			o.Password, _ = u.User.Password()
		}
		if u.Scheme == "redis+sentinel" {
			o.MasterName = strings.Trim(u.Path, "/")
			if o.MasterName == "" {
				return nil, fmt.Errorf("redisconn: --redis-url: a sentinel URL needs the master name as its path, e.g. redis+sentinel://h1:26379,h2:26379/mymaster")
			}
		} else {
			o.IsClusterMode = true
		}
		return o, nil
	}
	return nil, fmt.Errorf("redisconn: --redis-url scheme %q not supported; use redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://", u.Scheme)
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
