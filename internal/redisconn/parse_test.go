package redisconn

import (
	"strings"
	"testing"
)

func TestParseKeepsTLSUserAndDB(t *testing.T) {
	o, err := Parse("rediss://app:pw@redis.internal:6380/3", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.TLSConfig == nil || o.Username != "app" || o.Password != "pw" || o.DB != 3 || o.Addrs[0] != "redis.internal:6380" {
		t.Fatalf("single: %+v", o)
	}
	o, err = Parse("rediss+cluster://app:pw@a:7000,b:7001,c:7002?dial_timeout=2s", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !o.IsClusterMode || len(o.Addrs) != 3 || o.Addrs[2] != "c:7002" || o.TLSConfig == nil || o.TLSConfig.ServerName != "" || o.Username != "app" || o.Password != "pw" || o.DialTimeout.Seconds() != 2 {
		t.Fatalf("cluster: %+v", o)
	}
	o, err = Parse("redis+sentinel://app:pw@s1:26379,s2:26379/mymaster/2", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.MasterName != "mymaster" || o.DB != 2 || len(o.Addrs) != 2 || o.Username != "app" || o.Password != "pw" || o.SentinelPassword != "" || o.TLSConfig != nil {
		t.Fatalf("sentinel: %+v", o)
	}
	for _, bad := range []struct{ url, want string }{
		{"redis+sentinel://s1:26379", "master"},
		{"redis+cluster://a:7000/1", "database 0"},
		{"memcache://a:1", "not supported"},
	} {
		if _, err := Parse(bad.url, Options{}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: %v, want %q", bad.url, err, bad.want)
		}
	}
	if _, err := Parse("redis://a:6379", Options{CAFile: "ca.pem"}); err == nil || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("a CA with a plain URL: %v", err)
	}
	if _, err := Parse("redis://u:secret@a:6379?bogus=1", Options{}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("error must not show the password: %v", err)
	}
}
