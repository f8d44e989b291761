package chaos

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// TestSoak (make soak): SOAK_DURATION (default 10m) of mixed traffic at a
// fixed rate, SOAK_RATE calls per second (default 20): whoami and
// spend_status, and every 50th call a paid domain_register, each on a fresh
// MCP session, against one tollgate replica on an AOF-backed redis-server.
// It prints RSS, goroutines, Redis memory and p99 latency over the first
// and the last tenth of the run, and fails when the replica's RSS or
// goroutines grew by more than half, or a call ended in a transport error.
// Not in make test or CI.
func TestSoak(t *testing.T) {
	raw := os.Getenv("TOLLGATE_SOAK")
	if raw == "" {
		t.Skip("make soak runs this (TOLLGATE_SOAK=1, SOAK_DURATION, SOAK_RATE)")
	}
	dur := 10 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("SOAK_DURATION=%q: give a duration of at least 20s, e.g. 10m", v)
		}
		dur = d
	}
	rate := 20
	if v := os.Getenv("SOAK_RATE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			t.Fatalf("SOAK_RATE=%q: give calls per second, 1..500", v)
		}
		rate = n
	}
	const paidEvery, paidPer = 50, 8
	total := int(dur.Seconds()) * rate
	paidCalls := total/paidEvery + 1

	bin := testkit.Binary(t)
	port := freePort(t)
	dir, err := os.MkdirTemp("", "tollgate-soak-")
	if err != nil {
		t.Fatal(err)
	}
	rs := &redisNode{Port: port, Addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	if err := rs.start("--appendfsync", "everysec"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.kill9(); _ = os.RemoveAll(dir) })
	// Task tokens live --token-ttl (default 10m); the run's are minted
	// first and must outlive it.
	if dur > 50*time.Minute {
		t.Fatalf("SOAK_DURATION=%s: at most 50m (task tokens live at most an hour)", dur)
	}
	_, reps, people, paid := setup(t, bin, "redis://"+rs.Addr, 1, (paidCalls+paidPer-1)/paidPer, paidPer, "TOLLGATE_TOKEN_TTL=1h")
	r := reps[0]
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()

	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	type sample struct {
		at      time.Duration
		latency time.Duration
		failed  bool
	}
	var (
		mu      sync.Mutex
		samples []sample
		wg      sync.WaitGroup
		codes   = map[string]int{}
	)
	start := time.Now()
	first := snapshot(t, r, rdb)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	nPaid := 0
	for i := 0; time.Since(start) < dur; i++ {
		<-tick.C
		var tool string
		var args map[string]any
		var token string
		switch {
		case i%paidEvery == 0 && nPaid < len(paid):
			c := paid[nPaid]
			nPaid++
			tool, token, args = "domain_register", c.Token, map[string]any{"domain": c.Domain, "idempotency_key": c.Key}
		case i%2 == 0:
			tool, token = "whoami", people[i%len(people)].Tokens[0]
		default:
			tool, token, args = "spend_status", people[i%len(people)].Tokens[0], map[string]any{"provider": "cloudflare"}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			res, err := callTool(ctx, r.URL, token, tool, args)
			s := sample{at: t0.Sub(start), latency: time.Since(t0), failed: err != nil}
			code := "ok"
			if err != nil {
				code = "transport"
			} else if res.IsError {
				code, _ = decode(res)
			}
			mu.Lock()
			samples = append(samples, s)
			codes[tool+":"+code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	last := snapshot(t, r, rdb)

	p99 := func(from, to time.Duration) time.Duration {
		var ls []time.Duration
		for _, s := range samples {
			if s.at >= from && s.at < to {
				ls = append(ls, s.latency)
			}
		}
		if len(ls) == 0 {
			return 0
		}
		slices.Sort(ls)
		return ls[int(math.Ceil(0.99*float64(len(ls))))-1]
	}
	tenth := dur / 10
	first.p99, last.p99 = p99(0, tenth), p99(dur-tenth, dur+time.Minute)
	failed := 0
	for _, s := range samples {
		if s.failed {
			failed++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nsoak: %s at %d calls/s, %d calls (%d paid), %d transport failures; outcomes %v\n", dur, rate, len(samples), nPaid, failed, codes)
	fmt.Fprintf(&b, "  %-28s %12s %12s\n", "", "start", "end")
	fmt.Fprintf(&b, "  %-28s %12s %12s\n", "tollgate RSS", mib(first.rss), mib(last.rss))
	fmt.Fprintf(&b, "  %-28s %12d %12d\n", "tollgate goroutines", first.goroutines, last.goroutines)
	fmt.Fprintf(&b, "  %-28s %12s %12s\n", "redis used_memory", mib(first.redisMem), mib(last.redisMem))
	fmt.Fprintf(&b, "  %-28s %12d %12d\n", "redis keys", first.redisKeys, last.redisKeys)
	fmt.Fprintf(&b, "  %-28s %12s %12s\n", "p99 (first / last tenth)", first.p99.Round(100*time.Microsecond), last.p99.Round(100*time.Microsecond))
	fmt.Print(b.String())
	if failed > 0 {
		t.Errorf("%d calls failed below MCP", failed)
	}
	if last.rss > first.rss*3/2 || last.goroutines > first.goroutines*3/2+20 {
		t.Errorf("the replica grew: RSS %s -> %s, goroutines %d -> %d", mib(first.rss), mib(last.rss), first.goroutines, last.goroutines)
	}
}

type soakFigures struct {
	rss, redisMem         int64
	goroutines, redisKeys int64
	p99                   time.Duration
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// snapshot reads the replica's RSS and goroutines from its /metrics
// (process_resident_memory_bytes, go_goroutines) and Redis's used_memory
// and key count.
func snapshot(t *testing.T, r *replica, rdb *redis.Client) soakFigures {
	t.Helper()
	var f soakFigures
	resp, err := httpClient.Get(r.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(val, 64)
		switch name {
		case "process_resident_memory_bytes":
			f.rss = int64(v)
		case "go_goroutines":
			f.goroutines = int64(v)
		}
	}
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			f.redisMem, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	f.redisKeys, _ = rdb.DBSize(context.Background()).Result()
	return f
}
