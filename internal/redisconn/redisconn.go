// Package redisconn builds tollgate's one Redis client: a
// redis.UniversalClient from a URL (single node, Sentinel or Cluster, each
// with or without TLS), or, in sandbox mode without a URL, an embedded
// miniredis listening on a loopback port so the CLI of another process can
// reach it.
//
// URLs are parsed by go-redis itself (ParseURL, ParseFailoverURL,
// ParseClusterURL), so TLS, the ACL user and password, the database and
// go-redis's query options (dial_timeout=…, pool_size=…) all survive:
//
//	redis://[user:password@]host:port[/db][?options]
//	rediss://…                                  the same over TLS
//	unix://[user:password@]/path/redis.sock[?db=N]
//	redis+sentinel://[user:password@]h1:26379,h2:26379/master[/db][?options]
//	redis+cluster://[user:password@]h1:6379,h2:6379[?options]
//	rediss+sentinel://…, rediss+cluster://…     the same over TLS
//
// The user and password of a Sentinel URL are the master's (ACL); the
// sentinels themselves are reached without them.
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
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

// Options are what a URL cannot say.
type Options struct {
	// CAFile is a PEM file of the CA(s) that sign the servers'
	// certificates (--redis-ca); empty trusts the system roots. Only
	// with a TLS URL (rediss…).
	CAFile string
}

// Open connects to rawURL and pings it. With rawURL empty it starts an
// embedded miniredis on 127.0.0.1 (sandbox only; the caller decides).
func Open(ctx context.Context, rawURL string) (*Conn, error) {
	return OpenWith(ctx, rawURL, Options{})
}

// OpenWith is Open with options (--redis-ca).
func OpenWith(ctx context.Context, rawURL string, o Options) (*Conn, error) {
	if rawURL == "" {
		if o.CAFile != "" {
			return nil, fmt.Errorf("redisconn: --redis-ca needs a TLS --redis-url (rediss://…); the embedded Redis has no TLS")
		}
		// embedded.go; a production build (-tags nosandbox) has none.
		addr, stop, err := startEmbedded()
		if err != nil {
			return nil, err
		}
		c := &Conn{Embedded: true, URL: "redis://" + addr, stop: stop}
		c.Client = redis.NewClient(&redis.Options{Addr: addr})
		return c, nil
	}
	opts, err := Parse(rawURL, o)
	if err != nil {
		return nil, err
	}
	client := newClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redisconn: Redis at %s is unreachable (%v); start it or fix --redis-url (and --redis-ca for TLS)", redactURL(rawURL), err)
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

// Parse turns a URL (see the package comment) into the options of
// redis.NewUniversalClient, which builds a single-node, failover or cluster
// client from them.
func Parse(raw string, o Options) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole URL, password included.
		return nil, fmt.Errorf("redisconn: --redis-url is not a URL; use e.g. rediss://user:password@redis.internal:6380/0")
	}
	bad := func(err error) (*redis.UniversalOptions, error) {
		return nil, fmt.Errorf("redisconn: --redis-url %q: %v", redactURL(raw), strings.TrimPrefix(err.Error(), "redis: "))
	}
	var uo *redis.UniversalOptions
	switch u.Scheme {
	case "redis", "rediss", "unix":
		so, err := redis.ParseURL(raw)
		if err != nil {
			return bad(err)
		}
		uo = universalFromSingle(so)
	case "redis+sentinel", "rediss+sentinel":
		native, err := sentinelURL(u)
		if err != nil {
			return bad(err)
		}
		fo, err := redis.ParseFailoverURL(native)
		if err != nil {
			return bad(err)
		}
		uo = universalFromFailover(fo)
	case "redis+cluster", "rediss+cluster":
		native, err := clusterURL(u)
		if err != nil {
			return bad(err)
		}
		co, err := redis.ParseClusterURL(native)
		if err != nil {
			return bad(err)
		}
		uo = universalFromCluster(co)
		if uo.TLSConfig != nil {
			// Each node is verified by its own name: crypto/tls takes
			// it from the address dialled when ServerName is empty.
			uo.TLSConfig.ServerName = ""
		}
	default:
		return nil, fmt.Errorf("redisconn: --redis-url scheme %q not supported; use redis://, rediss://, unix://, redis(s)+sentinel:// or redis(s)+cluster://", u.Scheme)
	}
	if o.CAFile != "" {
		if uo.TLSConfig == nil {
			return nil, fmt.Errorf("redisconn: --redis-ca needs a TLS --redis-url (rediss://, rediss+sentinel:// or rediss+cluster://), not %q", redactURL(raw))
		}
		pool, err := loadCA(o.CAFile)
		if err != nil {
			return nil, err
		}
		uo.TLSConfig.RootCAs = pool
	}
	if uo.TLSConfig != nil && uo.TLSConfig.MinVersion < tls.VersionTLS12 {
		uo.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return uo, nil
}

// sentinelURL rewrites redis+sentinel://user:pw@h1,h2/master[/db]?q into
// go-redis's form, redis://h1/db?addr=h2&master_name=master&username=user&password=pw&q.
func sentinelURL(u *url.URL) (string, error) {
	hosts, err := splitHosts(u.Host)
	if err != nil {
		return "", err
	}
	parts := strings.FieldsFunc(u.Path, func(r rune) bool { return r == '/' })
	if len(parts) == 0 || len(parts) > 2 {
		return "", fmt.Errorf("a Sentinel URL names the master as its path, and optionally the database: redis+sentinel://h1:26379,h2:26379/mymaster[/0]")
	}
	q := u.Query()
	if q.Has("master_name") || q.Has("addr") {
		return "", fmt.Errorf("give the master as the path and the sentinels as the host list, not as master_name= or addr=")
	}
	q.Set("master_name", parts[0])
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	if u.User != nil {
		// The master's ACL credentials; go-redis reads the URL's own
		// user info as the sentinels'.
		q.Set("username", u.User.Username())
		if pw, ok := u.User.Password(); ok {
			q.Set("password", pw)
		}
	}
	out := url.URL{Scheme: strings.TrimSuffix(u.Scheme, "+sentinel"), Host: hosts[0], RawQuery: q.Encode()}
	if len(parts) == 2 {
		out.Path = "/" + parts[1]
	}
	return out.String(), nil
}

// clusterURL rewrites redis+cluster://user:pw@h1,h2?q into go-redis's form,
// redis://user:pw@h1?addr=h2&q.
func clusterURL(u *url.URL) (string, error) {
	hosts, err := splitHosts(u.Host)
	if err != nil {
		return "", err
	}
	if strings.Trim(u.Path, "/") != "" {
		return "", fmt.Errorf("a Cluster has only database 0: drop the path %q", u.Path)
	}
	q := u.Query()
	if q.Has("addr") {
		return "", fmt.Errorf("list the nodes as the host list (redis+cluster://h1:6379,h2:6379), not as addr=")
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	out := url.URL{Scheme: strings.TrimSuffix(u.Scheme, "+cluster"), User: u.User, Host: hosts[0], RawQuery: q.Encode()}
	return out.String(), nil
}

func splitHosts(h string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(h, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no host: list at least one, e.g. h1:6379,h2:6379")
	}
	return out, nil
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("redisconn: --redis-ca: cannot read %s: %v", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("redisconn: --redis-ca: %s holds no PEM certificate", path)
	}
	return pool, nil
}

func universalFromSingle(o *redis.Options) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password,
		TLSConfig: o.TLSConfig, Protocol: o.Protocol, ClientName: o.ClientName,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout, MinIdleConns: o.MinIdleConns,
		MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
	}
}

func universalFromFailover(o *redis.FailoverOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.SentinelAddrs, MasterName: o.MasterName, DB: o.DB,
		Username: o.Username, Password: o.Password,
		SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
		TLSConfig: o.TLSConfig, Protocol: o.Protocol, ClientName: o.ClientName,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout, MinIdleConns: o.MinIdleConns,
		MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		RouteByLatency: o.RouteByLatency, RouteRandomly: o.RouteRandomly,
	}
}

func universalFromCluster(o *redis.ClusterOptions) *redis.UniversalOptions {
	return &redis.UniversalOptions{
		Addrs: o.Addrs, IsClusterMode: true,
		Username: o.Username, Password: o.Password,
		TLSConfig: o.TLSConfig, Protocol: o.Protocol, ClientName: o.ClientName,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolSize: o.PoolSize, PoolTimeout: o.PoolTimeout, MinIdleConns: o.MinIdleConns,
		MaxIdleConns: o.MaxIdleConns, MaxActiveConns: o.MaxActiveConns,
		ConnMaxIdleTime: o.ConnMaxIdleTime, ConnMaxLifetime: o.ConnMaxLifetime,
		MaxRetries: o.MaxRetries, MinRetryBackoff: o.MinRetryBackoff, MaxRetryBackoff: o.MaxRetryBackoff,
		MaxRedirects: o.MaxRedirects, ReadOnly: o.ReadOnly, RouteByLatency: o.RouteByLatency, RouteRandomly: o.RouteRandomly,
	}
}

// redactURL hides the password of a URL, in its user info or its query,
// for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(not a URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	for _, k := range []string{"password", "sentinel_password"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}
