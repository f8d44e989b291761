package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
)

const (
	alicePrincipal = "user:alice@example.com"
	devAgent       = "spiffe://tollgate.sandbox/agent/agent"
	auditStream    = "tg:{user:alice@example.com}:audit" // alice's audit chain
)

var okLine = regexp.MustCompile(`^ok: (\d+) entries, head [0-9a-f]{64}\n$`)

// cli runs the binary with the Redis URL in its env twin and fails the
// test unless the exit status is want.
func cli(t *testing.T, redisURL string, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runBin(t, []string{"TOLLGATE_REDIS_URL=" + redisURL}, args...)
	if code != want {
		t.Fatalf("tollgate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// exported parses audit export's JSON lines.
func exported(t *testing.T, out string) []sessions.Entry {
	t.Helper()
	var es []sessions.Entry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var e sessions.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit export line is not an entry: %v\n%s", err, sc.Text())
		}
		es = append(es, e)
	}
	return es
}

func events(es []sessions.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Event)
	}
	return out
}

// redisClient opens a go-redis client on a redis:// URL for tampering.
func redisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestSpendAndAuditCLIAfterARegistration registers a domain through a
// sandbox server, then reads the money and the trail back with the CLI,
// and finally tampers with the trail.
func TestSpendAndAuditCLIAfterARegistration(t *testing.T) {
	url := testkit.RedisURL(t)
	srv := testkit.Serve(t, testkit.Binary(t), []string{"TOLLGATE_REDIS_URL=" + url})
	testkit.LinkAccount(t, srv.URL, "alice@example.com")
	tok := testkit.TaskToken(t, srv.URL, testkit.Grant{Scope: "domain:read domain:register spend:read",
		Details: `[{"type":"tollgate:resources","domains":["cli-demo.com"]},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"},{"type":"tollgate:spend","provider":"stripe","max_amount":"100.00","currency":"usd"}]`})
	c := testkit.HTTP(t, srv.URL+"/mcp", testkit.ClientOptions{Headers: testkit.Bearer(tok)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := func(name string, args map[string]any, into any) {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = name, args
		res, err := c.CallTool(ctx, req)
		if err != nil || res.IsError {
			t.Fatalf("%s: %v %+v", name, err, res)
		}
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s result: %v\n%s", name, err, b)
		}
	}
	var who struct {
		SessionID string `json:"session_id"`
	}
	call("whoami", map[string]any{}, &who)
	var reg struct {
		Status  string      `json:"status"`
		Charged money.Money `json:"charged"`
	}
	call("domain_register", map[string]any{"domain": "cli-demo.com"}, &reg)
	if reg.Status != "registered" || reg.Charged.Minor <= 0 || reg.Charged.Currency != "usd" {
		t.Fatalf("registration: %+v", reg)
	}
	sid := who.SessionID

	t.Run("spend show", func(t *testing.T) {
		out, _ := cli(t, url, exitOK, "spend", "show", "--principal", alicePrincipal, "--json")
		var got spendShow
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("spend show --json: %v\n%s", err, out)
		}
		want := map[string]money.Money{"cloudflare": reg.Charged, "stripe": money.USD(0)}
		if got.Principal != alicePrincipal || len(got.Providers) != len(want) {
			t.Fatalf("spend show: %+v", got)
		}
		for _, s := range got.Providers {
			cp := money.USD(spend.DefaultCapMinor)
			if s.Spent != want[s.Provider] || s.Held != money.USD(0) || s.Cap != cp ||
				s.Remaining != money.USD(cp.Minor-want[s.Provider].Minor) || s.Month != time.Now().UTC().Format("2006-01") {
				t.Errorf("%s: %+v; want spent %s, held 0, cap %s", s.Provider, s, want[s.Provider], cp)
			}
		}
		if !strings.Contains(out, `"display": "`+reg.Charged.String()+`"`) {
			t.Errorf("money is not printed as {amount_minor, currency, display}:\n%s", out)
		}
		table, _ := cli(t, url, exitOK, "spend", "show", "--principal", alicePrincipal)
		if !regexp.MustCompile(`cloudflare\s+\d{4}-\d{2}\s+` + regexp.QuoteMeta(reg.Charged.String()) + `\s+0\.00 USD\s+100\.00 USD`).MatchString(table) {
			t.Errorf("spend show table:\n%s", table)
		}
		// A --cap like the server's changes the cap shown, not what is spent.
		capped, _ := cli(t, url, exitOK, "spend", "show", "--principal", alicePrincipal, "--cap", "cloudflare=50.00", "--json")
		if !strings.Contains(capped, `"display": "50.00 USD"`) {
			t.Errorf("--cap cloudflare=50.00 not shown:\n%s", capped)
		}
	})

	t.Run("spend holds", func(t *testing.T) {
		for _, args := range [][]string{{"--stale"}, {}, {"--principal", alicePrincipal}} {
			out, _ := cli(t, url, exitOK, append([]string{"spend", "holds", "--json"}, args...)...)
			if strings.TrimSpace(out) != "[]" {
				t.Errorf("spend holds %v --json after a committed registration: %q, want []", args, out)
			}
		}
	})

	t.Run("audit export", func(t *testing.T) {
		out, stderr := cli(t, url, exitOK, "audit", "export", "--session", sid)
		es := exported(t, out)
		for _, want := range []string{"tool_call", "hold", "commit"} {
			if !slices.Contains(events(es), want) {
				t.Errorf("export of session %s has events %v, no %q", sid, events(es), want)
			}
		}
		for _, e := range es {
			if e.Session != sid || e.Principal != alicePrincipal || len(e.Hash) != 64 || e.ID == "" {
				t.Errorf("exported entry %+v", e)
			}
			if e.Event == "commit" && (e.Amount == nil || *e.Amount != reg.Charged) {
				t.Errorf("commit entry amount %v, want %s", e.Amount, reg.Charged)
			}
		}
		if !strings.Contains(stderr, fmt.Sprintf("exported %d entries", len(es))) {
			t.Errorf("stderr %q does not count the entries", stderr)
		}
		byPrincipal, _ := cli(t, url, exitOK, "audit", "export", "--principal", alicePrincipal)
		if n := len(exported(t, byPrincipal)); n < len(es) {
			t.Errorf("export --principal has %d entries, fewer than the session's %d", n, len(es))
		}
		for _, args := range [][]string{{"--session", "nosuchsession"}, {"--principal", "user:bob@example.com"}} {
			if out, _ := cli(t, url, exitOK, append([]string{"audit", "export"}, args...)...); out != "" {
				t.Errorf("export %v printed %q", args, out)
			}
		}
		future, _ := cli(t, url, exitOK, "audit", "export", "--since", time.Now().Add(time.Hour).Format(time.RFC3339))
		if future != "" {
			t.Errorf("export --since an hour ahead printed %q", future)
		}
	})

	t.Run("audit show", func(t *testing.T) {
		out, _ := cli(t, url, exitOK, "audit", "show", "--session", sid)
		for _, want := range []string{"principal " + alicePrincipal, "agent " + devAgent, "domain_register", sid + " ·", "◀", reg.Charged.String()} {
			if !strings.Contains(out, want) {
				t.Errorf("audit show does not say %q:\n%s", want, out)
			}
		}
	})

	t.Run("audit show --json", func(t *testing.T) {
		out, _ := cli(t, url, exitOK, "audit", "show", "--session", sid, "--json")
		var tree auditTree
		if err := json.Unmarshal([]byte(out), &tree); err != nil || tree.Session != sid || tree.Tree == nil {
			t.Fatalf("audit show --json: %v\n%s", err, out)
		}
		var node *auditNode
		var find func(*auditNode)
		find = func(n *auditNode) {
			if n.ID == sid {
				node = n
			}
			for _, c := range n.Children {
				find(c)
			}
		}
		find(tree.Tree)
		if node == nil || tree.Tree.Principal != alicePrincipal {
			t.Fatalf("session %s is not in the tree: %s", sid, out)
		}
		charged := false
		for _, e := range node.Entries {
			charged = charged || e.Event == "commit" && e.Tool == "domain_register" && e.Amount != nil && e.Amount.String() == reg.Charged.String()
		}
		if !charged {
			t.Fatalf("the tree's entries do not hold the registration's commit of %s: %s", reg.Charged, out)
		}
	})

	t.Run("audit verify then tamper", func(t *testing.T) {
		out, _ := cli(t, url, exitOK, "audit", "verify")
		if !okLine.MatchString(out) {
			t.Fatalf("audit verify: %q", out)
		}
		rdb := redisClient(t, url)
		msgs, err := rdb.XRangeN(ctx, auditStream, "-", "+", 3).Result()
		if err != nil || len(msgs) < 3 {
			t.Fatalf("audit stream: %d entries, %v", len(msgs), err)
		}
		if err := rdb.XDel(ctx, auditStream, msgs[1].ID).Err(); err != nil {
			t.Fatal(err)
		}
		stdout, stderr := cli(t, url, exitRefused, "audit", "verify")
		if stdout != "" || !strings.Contains(stderr, "broken at "+msgs[2].ID+": "+sessions.BrokenPrev+" (") {
			t.Fatalf("after removing entry %s: stdout %q stderr %q; want broken at %s: %s",
				msgs[1].ID, stdout, stderr, msgs[2].ID, sessions.BrokenPrev)
		}
	})
}

// appendEntries writes n entries to the audit trail at url.
func appendEntries(t *testing.T, url string, n int) {
	t.Helper()
	trail, err := sessions.NewAudit(redisClient(t, url), sessions.AuditConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := trail.Append(context.Background(), sessions.Entry{Event: "tool_call", Principal: alicePrincipal,
			Session: "s1", Tool: "whoami", Decision: sessions.DecisionAllow, Detail: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditVerifyNamesTheFirstBrokenLink tampers with a fresh trail in each
// way and checks verify exits 1 naming the entry and the reason.
func TestAuditVerifyNamesTheFirstBrokenLink(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(ctx context.Context, rdb *redis.Client, ids []string) (brokenAt string)
		reason string
	}{
		{"entry removed from the middle", func(ctx context.Context, rdb *redis.Client, ids []string) string {
			rdb.XDel(ctx, auditStream, ids[2])
			return ids[3]
		}, sessions.BrokenPrev},
		{"first entry removed", func(ctx context.Context, rdb *redis.Client, ids []string) string {
			rdb.XDel(ctx, auditStream, ids[0])
			return ids[1]
		}, sessions.BrokenPrev},
		{"last entry removed", func(ctx context.Context, rdb *redis.Client, ids []string) string {
			rdb.XDel(ctx, auditStream, ids[len(ids)-1])
			return ids[len(ids)-1]
		}, sessions.BrokenHead},
		{"forged entry appended", func(ctx context.Context, rdb *redis.Client, ids []string) string {
			id := rdb.XAdd(ctx, &redis.XAddArgs{Stream: auditStream, Values: []string{
				"entry", `{"v":1,"seq":6,"time":"2030-01-01T00:00:00Z","event":"commit","nonce":"forgedforged","prev":"x"}`,
				"hash", strings.Repeat("0", 64)}}).Val()
			return id
		}, sessions.BrokenHash},
		{"head record changed", func(ctx context.Context, rdb *redis.Client, ids []string) string {
			rdb.HSet(ctx, auditStream+":head", "hash", strings.Repeat("a", 64))
			return ids[len(ids)-1]
		}, sessions.BrokenHead},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := testkit.RedisURL(t)
			appendEntries(t, url, 5)
			out, _ := cli(t, url, exitOK, "audit", "verify")
			if out2 := okLine.FindStringSubmatch(out); out2 == nil || out2[1] != "5" {
				t.Fatalf("untouched trail: %q", out)
			}
			rdb := redisClient(t, url)
			ctx := context.Background()
			msgs, err := rdb.XRange(ctx, auditStream, "-", "+").Result()
			if err != nil || len(msgs) != 5 {
				t.Fatalf("stream: %d entries, %v", len(msgs), err)
			}
			var ids []string
			for _, m := range msgs {
				ids = append(ids, m.ID)
			}
			at := tc.tamper(ctx, rdb, ids)
			stdout, stderr := cli(t, url, exitRefused, "audit", "verify")
			if stdout != "" || !strings.Contains(stderr, "broken at "+at+": "+tc.reason+" (") {
				t.Fatalf("stdout %q stderr %q; want broken at %s: %s", stdout, stderr, at, tc.reason)
			}
			js, _ := cli(t, url, exitRefused, "audit", "verify", "--json")
			var res sessions.VerifyResult
			if err := json.Unmarshal([]byte(js), &res); err != nil || res.OK || res.BrokenAt != at || res.Reason != tc.reason {
				t.Fatalf("verify --json: %+v %v\n%s", res, err, js)
			}
		})
	}
}

func TestAuditVerifyEmptyTrailAndProgress(t *testing.T) {
	url := testkit.RedisURL(t)
	out, _ := cli(t, url, exitOK, "audit", "verify")
	if !okLine.MatchString(out) || !strings.HasPrefix(out, "ok: 0 entries") {
		t.Fatalf("empty trail: %q", out)
	}
	if testing.Short() {
		t.Skip("appending 10,001 entries")
	}
	appendEntries(t, url, progressEvery+1)
	out, stderr := cli(t, url, exitOK, "audit", "verify")
	if !strings.HasPrefix(out, fmt.Sprintf("ok: %d entries", progressEvery+1)) {
		t.Fatalf("verify: %q", out)
	}
	if strings.Count(stderr, "verified ") != 1 || !strings.Contains(stderr, fmt.Sprintf("verified %d entries", progressEvery)) {
		t.Fatalf("progress on stderr: %q", stderr)
	}
}

// TestSpendReconcileSettlesExpiredHolds makes holds that expired (a crashed
// call) and settles them with the CLI.
func TestSpendReconcileSettlesExpiredHolds(t *testing.T) {
	url := testkit.RedisURL(t)
	rdb := redisClient(t, url)
	ctx := context.Background()
	hourAgo := func() time.Time { return time.Now().Add(-time.Hour) }
	crashed, err := spend.New(rdb, spend.Config{Now: hourAgo})
	if err != nil {
		t.Fatal(err)
	}
	live, err := spend.New(rdb, spend.Config{})
	if err != nil {
		t.Fatal(err)
	}
	hold := func(l *spend.Ledger, id string, cents int64) {
		t.Helper()
		if _, err := l.Hold(ctx, spend.HoldRequest{HoldID: id, Principal: alicePrincipal, Provider: spend.Cloudflare,
			Amount: money.USD(cents), Tool: "domain_register", Description: "cli-demo.com"}); err != nil {
			t.Fatal(err)
		}
	}
	hold(crashed, "charged-hold", 1044)
	hold(crashed, "free-hold", 900)
	hold(live, "open-hold", 500)
	// A hold made before midnight on the 1st counts in its own month; keep
	// the test off that edge.
	if hourAgo().Month() != time.Now().Month() {
		t.Skip("the holds were made last month")
	}

	out, stderr := cli(t, url, exitOK, "spend", "holds", "--stale", "--json")
	var stale []spend.Hold
	if err := json.Unmarshal([]byte(out), &stale); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range stale {
		ids = append(ids, h.ID)
		if h.State != spend.StateExpired || h.Principal != alicePrincipal || h.Tool != "domain_register" {
			t.Errorf("stale hold %+v", h)
		}
	}
	if !slices.Equal(sorted(ids...), []string{"charged-hold", "free-hold"}) {
		t.Fatalf("stale holds %v, want charged-hold and free-hold", ids)
	}
	table, stderr := cli(t, url, exitOK, "spend", "holds", "--stale")
	if !strings.Contains(table, "charged-hold") || !strings.Contains(table, "expired") || !strings.Contains(stderr, "spend reconcile") {
		t.Errorf("spend holds --stale table:\n%s\nstderr: %s", table, stderr)
	}
	all, _ := cli(t, url, exitOK, "spend", "holds", "--principal", alicePrincipal, "--json")
	if !strings.Contains(all, `"open-hold"`) || !strings.Contains(all, `"charged-hold"`) {
		t.Errorf("spend holds lists no open hold:\n%s", all)
	}

	reconcile := func(want int, args ...string) (string, string) {
		t.Helper()
		return cli(t, url, want, append([]string{"spend", "reconcile"}, args...)...)
	}
	reconcile(exitRefused, "charged-hold", "--principal", alicePrincipal, "--charged", "10.45") // more than held
	out, _ = reconcile(exitOK, "charged-hold", "--principal", alicePrincipal, "--charged", "10.44", "--note", "CF invoice 8812")
	if !strings.Contains(out, "10.44 USD charged by cloudflare") {
		t.Errorf("reconcile --charged: %q", out)
	}
	reconcile(exitOK, "charged-hold", "--principal", alicePrincipal, "--charged", "10.44")     // the same again
	reconcile(exitRefused, "charged-hold", "--principal", alicePrincipal, "--not-charged")     // contradicts
	reconcile(exitRefused, "charged-hold", "--principal", alicePrincipal, "--charged", "3.00") // another amount
	out, _ = reconcile(exitOK, "free-hold", "--principal", alicePrincipal, "--not-charged", "--json")
	var freed spend.Hold
	if err := json.Unmarshal([]byte(out), &freed); err != nil || freed.State != spend.StateReleased || freed.Reconciled.IsZero() {
		t.Errorf("reconcile --not-charged --json: %+v %v", freed, err)
	}
	_, stderr = reconcile(exitRefused, "open-hold", "--principal", alicePrincipal, "--not-charged")
	if !strings.Contains(stderr, "still open") || !strings.Contains(stderr, "Nothing was changed") {
		t.Errorf("reconcile of an open hold: %q", stderr)
	}
	_, stderr = reconcile(exitRefused, "no-such-hold", "--principal", alicePrincipal, "--not-charged")
	if !strings.Contains(stderr, string(spend.HoldNotFound)) {
		t.Errorf("reconcile of an unknown hold: %q", stderr)
	}

	out, _ = cli(t, url, exitOK, "spend", "holds", "--stale", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("stale holds after reconciliation: %s", out)
	}
	st, err := live.Status(ctx, alicePrincipal, spend.Cloudflare)
	if err != nil || st.Spent != money.USD(1044) || st.Held != money.USD(500) {
		t.Errorf("ledger after reconciliation: %+v %v; want 10.44 spent, 5.00 held", st, err)
	}
	exp, _ := cli(t, url, exitOK, "audit", "export", "--principal", alicePrincipal)
	es := exported(t, exp)
	if got := events(es); !slices.Equal(got, []string{"reconcile", "reconcile", "release"}) {
		t.Fatalf("audit events %v, want one per successful reconcile run", got)
	}
	if e := es[0]; e.Amount == nil || *e.Amount != money.USD(1044) || e.Detail["hold"] != "charged-hold" ||
		e.Detail["operator"] == "" || e.Reason != "CF invoice 8812" || e.Provider != spend.Cloudflare {
		t.Errorf("reconcile audit entry %+v", e)
	}
}

// TestSpendAuditBadUsage: every malformed request exits 2 (or 1 for a
// refusal) with a message naming what to fix, before anything changes.
func TestSpendAuditBadUsage(t *testing.T) {
	url := testkit.RedisURL(t)
	rec := func(extra ...string) []string {
		return append([]string{"spend", "reconcile", "h1", "--principal", alicePrincipal}, extra...)
	}
	tests := []struct {
		name string
		env  []string
		args []string
		code int
		want string // on stderr
	}{
		{"negative amount", nil, rec("--charged", "-1"), exitUsage, "nothing was changed"},
		{"zero charged", nil, rec("--charged", "0"), exitUsage, "--not-charged"},
		{"zero with decimals", nil, rec("--charged", "0.00"), exitUsage, "--not-charged"},
		{"fractional minor units", nil, rec("--charged", "1.234"), exitUsage, "decimal places"},
		{"overflow", nil, rec("--charged", "92233720368547758.08"), exitUsage, "too large"},
		{"above the ledger maximum", nil, rec("--charged", "10000000000000.01"), exitUsage, "maximum"},
		{"not a number", nil, rec("--charged", "ten"), exitUsage, "nothing was changed"},
		{"exponent", nil, rec("--charged", "1e3"), exitUsage, "plain decimal"},
		{"float-ish", nil, rec("--charged", ".5"), exitUsage, "plain decimal"},
		{"both outcomes", nil, rec("--charged", "1.00", "--not-charged"), exitUsage, "not both"},
		{"no outcome", nil, rec(), exitUsage, "--charged AMOUNT"},
		{"no hold id", nil, []string{"spend", "reconcile", "--principal", alicePrincipal, "--not-charged"}, exitUsage, "one hold id"},
		{"no principal", nil, []string{"spend", "reconcile", "h1", "--not-charged"}, exitUsage, "--principal"},
		{"show without principal", nil, []string{"spend", "show"}, exitUsage, "--principal"},
		{"principal without kind", nil, []string{"spend", "show", "--principal", "alice@example.com"}, exitUsage, "user:alice@example.com"},
		{"bad cap", nil, []string{"spend", "show", "--principal", alicePrincipal, "--cap", "aws=5"}, exitUsage, "--cap"},
		{"bad cap env twin", []string{"TOLLGATE_CAP=stripe"}, []string{"spend", "show", "--principal", alicePrincipal}, exitUsage, "TOLLGATE_CAP"},
		{"holds bad limit", nil, []string{"spend", "holds", "--limit", "0"}, exitUsage, "--limit"},
		{"spend without subcommand", nil, []string{"spend"}, exitUsage, "needs a subcommand"},
		{"audit without subcommand", nil, []string{"audit"}, exitUsage, "needs a subcommand"},
		{"spend show without redis", []string{"TOLLGATE_REDIS_URL="}, []string{"spend", "show", "--principal", alicePrincipal}, exitUsage, "give --redis-url: the address `tollgate serve` printed at start-up"},
		{"audit verify without redis", []string{"TOLLGATE_REDIS_URL="}, []string{"audit", "verify"}, exitUsage, "give --redis-url"},
		{"audit show without session", nil, []string{"audit", "show"}, exitUsage, "--session"},
		{"audit show unknown session", nil, []string{"audit", "show", "--session", "nosuchsession"}, exitRefused, "no session nosuchsession"},
		{"export bad since", nil, []string{"audit", "export", "--since", "yesterday"}, exitUsage, "--since"},
		{"audit verify redis unreachable", []string{"TOLLGATE_REDIS_URL=redis://127.0.0.1:1"}, []string{"audit", "verify"}, exitRefused, "unreachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := append([]string{"TOLLGATE_REDIS_URL=" + url}, tc.env...)
			stdout, stderr, code := runBin(t, env, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", stderr, tc.want)
			}
			if stdout != "" {
				t.Errorf("a failing command wrote to stdout: %q", stdout)
			}
		})
	}
	// Nothing above reached the ledger or the trail.
	if n := redisClient(t, url).DBSize(context.Background()).Val(); n != 0 {
		t.Errorf("bad usage left %d keys in Redis", n)
	}
}
