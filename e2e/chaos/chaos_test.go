package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/internal/testkit"
)

// profile is one size of the chaos run: TOLLGATE_CHAOS=full (make chaos)
// or short (make chaos-short, CI).
type profile struct {
	Name       string
	Principals int
	Calls      int           // paid calls in all, spread evenly over the principals
	Spread     time.Duration // the second half of the calls starts over this
}

func chaosProfile(t *testing.T) profile {
	switch os.Getenv("TOLLGATE_CHAOS") {
	case "full":
		return profile{Name: "full", Principals: 4, Calls: 200, Spread: 20 * time.Second}
	case "short":
		return profile{Name: "short", Principals: 3, Calls: 120, Spread: 10 * time.Second}
	default:
		t.Skip("the chaos suite runs with TOLLGATE_CHAOS=full (make chaos) or short (make chaos-short)")
		return profile{}
	}
}

// capMinor is the monthly Cloudflare cap of every principal of the run
// (--cap cloudflare=400.00); their task tokens may spend more, so the cap
// is what stops them.
const (
	tokensPer = 6
	capFlag   = "cloudflare=400.00"
	capMinor  = 40000
)

// TestChaos: see the package comment. It logs one table of invariants and
// fails when any does not hold.
func TestChaos(t *testing.T) {
	prof := chaosProfile(t)
	began := time.Now()
	bin := testkit.Binary(t)
	t.Logf("tollgate built in %s", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	cl := startCluster(t, 3)
	t.Logf("cluster of %d redis-server nodes up in %s", len(cl.Nodes), time.Since(began).Round(time.Millisecond))

	providers, reps, people, calls := setup(t, bin, cl.URL(), 2, prof.Principals, prof.Calls/prof.Principals)
	a, b := reps[0], reps[1]
	f := newFleet(a, b)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Faults, while the load runs.
	var faultLog []string
	var faultMu sync.Mutex
	note := func(format string, args ...any) {
		faultMu.Lock()
		defer faultMu.Unlock()
		line := fmt.Sprintf("%6.1fs  ", time.Since(began).Seconds()) + fmt.Sprintf(format, args...)
		faultLog = append(faultLog, line)
		t.Log(line)
	}
	loadDone := make(chan struct{})
	faultsDone := make(chan struct{})
	var killedMaster *redisNode
	loadStart := time.Now()
	go func() {
		defer close(faultsDone)
		at := func(d time.Duration) { sleep(ctx, time.Until(loadStart.Add(d))) }

		at(time.Second)
		if ms := cl.masters(); len(ms) > 0 {
			m := ms[0]
			note("SIGSTOP master %s for 2s", m.Addr)
			if err := m.signal(syscall.SIGSTOP); err == nil {
				sleep(ctx, 2*time.Second)
				_ = m.signal(syscall.SIGCONT)
				note("SIGCONT master %s", m.Addr)
			}
		}

		at(4 * time.Second)
		// kill -9 the tollgate replica with the most paid calls in flight.
		victim, most := 0, int64(-1)
		for wait := time.Now().Add(3 * time.Second); time.Now().Before(wait); {
			for i := range f.replicas {
				if n := f.inflight[i].Load(); n > most {
					victim, most = i, n
				}
			}
			if most >= 3 {
				break
			}
			sleep(ctx, 20*time.Millisecond)
		}
		r := f.replicas[victim]
		note("kill -9 %s with %d calls in flight", r.Name, most)
		r.kill9()
		sleep(ctx, 500*time.Millisecond)
		if err := r.start(); err != nil {
			note("%s did not restart: %v", r.Name, err)
		} else {
			note("%s restarted", r.Name)
		}

		at(7 * time.Second)
		if ms := cl.masters(); len(ms) > 0 {
			killedMaster = ms[len(ms)-1]
			note("kill -9 master %s", killedMaster.Addr)
			killedMaster.kill9()
			if when, err := cl.waitFailover(killedMaster, 60*time.Second); err != nil {
				note("no failover: %v", err)
			} else {
				note("its replica was promoted; cluster healthy after %s", when.Sub(loadStart.Add(7*time.Second)).Round(time.Millisecond))
			}
		}
		<-loadDone
	}()
	f.runLoad(ctx, calls, prof.Spread, 40)
	close(loadDone)
	<-faultsDone
	note("load done: %d paid calls in %s", len(calls), time.Since(loadStart).Round(time.Millisecond))

	// Restart everything: every redis-server (SIGTERM, then again from its
	// append-only file and nodes.conf, the killed master rejoining as a
	// replica), then both tollgate replicas. The replicas keep running
	// through the Redis restart: they must serve again within 2 s of the
	// cluster being healthy.
	note("restarting every redis-server")
	for _, n := range cl.Nodes {
		if n.running() {
			_ = n.signal(syscall.SIGTERM)
			n.mu.Lock()
			done := n.done
			n.cmd = nil
			n.mu.Unlock()
			<-done
		}
	}
	for _, n := range cl.Nodes {
		if err := cl.restart(n); err != nil {
			t.Fatal(err)
		}
	}
	healthyAt, err := cl.waitHealthy(60 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var serveAgain [2]time.Duration
	var wg sync.WaitGroup
	for i, r := range []*replica{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.waitHealthy(30 * time.Second); err != nil {
				serveAgain[i] = -1
				return
			}
			serveAgain[i] = max(0, time.Since(healthyAt))
		}()
	}
	wg.Wait()
	note("cluster healthy; replicas serve again after %s and %s", serveAgain[0].Round(time.Millisecond), serveAgain[1].Round(time.Millisecond))
	for _, r := range []*replica{a, b} {
		r.kill9()
		if err := r.start(); err != nil {
			t.Fatalf("%s after the restart: %v\n%s", r.Name, err, r.stderr())
		}
	}
	note("both tollgate replicas restarted")

	// Retry every call that ended in success with its idempotency key,
	// across the failover and the restarts: each must replay its result,
	// and the provider must charge nothing more.
	var succeeded []*paidCall
	for _, c := range calls {
		if c.Code == "" {
			succeeded = append(succeeded, c)
		}
	}
	replays := make([]*paidCall, len(succeeded))
	for i, c := range succeeded {
		replays[i] = &paidCall{P: c.P, Token: c.Token, Domain: c.Domain, Key: c.Key}
	}
	f.runLoad(ctx, replays, 0, 10)
	replayDiffers := 0
	var replayBad []string
	for i, r := range replays {
		if r.Code != "" || r.RegID != succeeded[i].RegID {
			replayDiffers++
			if len(replayBad) < 5 {
				replayBad = append(replayBad, fmt.Sprintf("%s: first %s, replay %q %s", r.Domain, succeeded[i].RegID, r.Code, r.RegID))
			}
		}
	}

	rep := check(t, bin, cl.URL(), providers.URL, people, calls)
	rep.replayed, rep.replayDiffers, rep.replayBad = len(replays), replayDiffers, replayBad
	rep.serveAgain = serveAgain
	f.mu.Lock()
	for msg, n := range f.transport {
		t.Logf("transport failure ×%d: %s", n, msg)
	}
	f.mu.Unlock()
	if !rep.print(t, prof, faultLog, time.Since(began)) {
		for _, r := range []*replica{providers, a, b} {
			log := r.stderr()
			if len(log) > 6000 {
				log = "…" + log[len(log)-6000:]
			}
			t.Logf("%s stderr:\n%s", r.Name, log)
		}
	}
}

// report is what the table is made of.
type report struct {
	calls, ok, capped, other     int
	pending                      int // in_progress: the call's replica crashed
	pendingCharged               int // of those, charged at the provider
	otherCodes                   map[string]int
	attempts, transport, unavail int
	perPrincipal                 []principalFigures
	doubleCharged                []string
	ackNotCharged                []string
	ackNotAudited                []string
	auditOK                      bool
	auditLine                    string
	replayed, replayDiffers      int
	replayBad                    []string
	serveAgain                   [2]time.Duration
	noServe                      bool // no cluster restart: no serve-again row
	staleHolds, openHolds        int
}

type principalFigures struct {
	Email                 string
	Acked                 int   // successes the agent was told of
	AckedMinor            int64 // what they were told they were charged
	Charges               int   // registrations the provider charged
	ChargedMinor          int64
	SpentMinor, HeldMinor int64 // the ledger's month: committed, open holds
	StaleMinor            int64 // expired holds waiting for reconciliation
	Unaccounted           int64 // charged at the provider, in no commit and no hold
}

func check(t *testing.T, bin, redisURL, providersURL string, people []*principal, calls []*paidCall) *report {
	t.Helper()
	rep := &report{calls: len(calls), otherCodes: map[string]int{}}
	for _, c := range calls {
		rep.attempts += c.Attempts
		rep.transport += c.Transport
		rep.unavail += c.Unavailable
		switch c.Code {
		case "":
			rep.ok++
		case "cap_exceeded", "budget_exceeded", "approval_required":
			rep.capped++
		case "in_progress":
			// The replica that ran it was killed: its key stays locked
			// (--idempotency-lock) and its hold open until it expires
			// (--hold-ttl) and an operator reconciles it.
			rep.pending++
		default:
			rep.other++
			code := c.Code
			if strings.HasPrefix(code, "transport: ") {
				code = "transport"
			}
			rep.otherCodes[code]++
		}
	}

	charges := providerCharges(t, providersURL)
	byDomain := map[string]int{}
	for _, ch := range charges {
		byDomain[ch.Domain]++
	}
	for d, n := range byDomain {
		if n > 1 {
			rep.doubleCharged = append(rep.doubleCharged, fmt.Sprintf("%s charged %d times", d, n))
		}
	}

	var holds []struct {
		Principal string `json:"principal"`
		Provider  string `json:"provider"`
		State     string `json:"state"`
		Expires   time.Time
		Amount    struct {
			Minor int64 `json:"amount_minor"`
		} `json:"amount"`
	}
	cliJSON(t, bin, redisURL, &holds, "spend", "holds", "--limit", "1000", "--json")
	stale := holds[:0:0]
	cliJSON(t, bin, redisURL, &stale, "spend", "holds", "--stale", "--limit", "1000", "--json")
	rep.staleHolds = len(stale)
	rep.openHolds = len(holds) - len(stale)

	for _, p := range people {
		pf := principalFigures{Email: p.Email}
		principal := "user:" + p.Email
		for _, c := range calls {
			if c.P == p && c.Code == "" {
				pf.Acked++
				pf.AckedMinor += c.Charged
			}
		}
		for _, ch := range charges {
			if ch.Account == p.Account {
				pf.Charges++
				pf.ChargedMinor += ch.Price.Minor
			}
		}
		var show struct {
			Providers []struct {
				Provider string `json:"provider"`
				Spent    struct {
					Minor int64 `json:"amount_minor"`
				} `json:"spent"`
				Held struct {
					Minor int64 `json:"amount_minor"`
				} `json:"held"`
			} `json:"providers"`
		}
		cliJSON(t, bin, redisURL, &show, "spend", "show", "--principal", principal, "--cap", capFlag, "--json")
		for _, s := range show.Providers {
			if s.Provider == "cloudflare" {
				pf.SpentMinor, pf.HeldMinor = s.Spent.Minor, s.Held.Minor
			}
		}
		for _, h := range stale {
			if h.Principal == principal && h.Provider == "cloudflare" {
				pf.StaleMinor += h.Amount.Minor
			}
		}
		pf.Unaccounted = max(0, pf.ChargedMinor-pf.SpentMinor-pf.HeldMinor-pf.StaleMinor)
		rep.perPrincipal = append(rep.perPrincipal, pf)

		// Every acknowledged success is charged once and audited.
		charged := map[string]bool{}
		for _, ch := range charges {
			if ch.Account == p.Account {
				charged[ch.Domain] = true
			}
		}
		audited := auditedTargets(t, bin, redisURL, principal)
		for _, c := range calls {
			if c.P == p && c.Code == "in_progress" && charged[c.Domain] {
				rep.pendingCharged++
			}
			if c.P != p || c.Code != "" {
				continue
			}
			if !charged[c.Domain] {
				rep.ackNotCharged = append(rep.ackNotCharged, c.Domain)
			}
			if !audited[c.Domain] {
				rep.ackNotAudited = append(rep.ackNotAudited, c.Domain)
			}
		}
	}

	out, err := exec.Command(bin, "audit", "verify", "--redis-url", redisURL).CombinedOutput()
	rep.auditOK, rep.auditLine = err == nil, strings.TrimSpace(string(out))
	return rep
}

type providerCharge struct {
	Account string `json:"account_id"`
	Domain  string `json:"domain"`
	Price   struct {
		Minor int64 `json:"amount_minor"`
	} `json:"price"`
}

func providerCharges(t *testing.T, base string) []providerCharge {
	t.Helper()
	resp, err := httpClient.Get(base + "/dev/cloudflare/charges")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Charges []providerCharge `json:"charges"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("the fake Cloudflare's charges: %v", err)
	}
	return body.Charges
}

// auditedTargets is the set of domains with an allowed domain_register
// entry in principal's audit trail.
func auditedTargets(t *testing.T, bin, redisURL, principal string) map[string]bool {
	t.Helper()
	out, err := exec.Command(bin, "audit", "export", "--principal", principal, "--redis-url", redisURL).Output()
	if err != nil {
		t.Fatalf("tollgate audit export --principal %s: %v", principal, err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e struct {
			Tool     string            `json:"tool"`
			Decision string            `json:"decision"`
			Detail   map[string]string `json:"detail"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Tool == "domain_register" && e.Decision == "allow" {
			seen[e.Detail["target"]] = true
		}
	}
	return seen
}

// cliJSON runs `tollgate args... --redis-url U` and decodes its stdout.
func cliJSON(t *testing.T, bin, redisURL string, into any, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--redis-url", redisURL)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tollgate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(out, into); err != nil {
		t.Fatalf("tollgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// print logs the table and fails the test for each invariant that does
// not hold.
func (r *report) print(t *testing.T, prof profile, faults []string, took time.Duration) bool {
	var b strings.Builder
	fmt.Fprintf(&b, "\nchaos (%s profile, %s): %d paid calls, %d attempts (%d transport failures, %d refused while Redis was unavailable, all retried with the same key)\n",
		prof.Name, took.Round(time.Second), r.calls, r.attempts, r.transport, r.unavail)
	fmt.Fprintf(&b, "ended: %d registered, %d stopped by the cap or a budget, %d in_progress (their replica was killed), %d other %v\n", r.ok, r.capped, r.pending, r.other, r.otherCodes)
	b.WriteString("faults:\n")
	for _, f := range faults {
		b.WriteString("  " + f + "\n")
	}
	fmt.Fprintf(&b, "per principal (cloudflare, minor units; cap %d):\n", capMinor)
	fmt.Fprintf(&b, "  %-22s %6s %9s %7s %9s %9s %7s %7s %11s\n", "PRINCIPAL", "ACKED", "ACKED_AMT", "CHARGES", "CHARGED", "SPENT", "HELD", "STALE", "UNACCOUNTED")
	var overCap, unaccounted, ledgerOverCap []string
	for _, p := range r.perPrincipal {
		fmt.Fprintf(&b, "  %-22s %6d %9d %7d %9d %9d %7d %7d %11d\n", p.Email, p.Acked, p.AckedMinor, p.Charges, p.ChargedMinor, p.SpentMinor, p.HeldMinor, p.StaleMinor, p.Unaccounted)
		if p.ChargedMinor > capMinor {
			overCap = append(overCap, fmt.Sprintf("%s charged %d", p.Email, p.ChargedMinor))
		}
		if p.SpentMinor+p.HeldMinor > capMinor {
			ledgerOverCap = append(ledgerOverCap, fmt.Sprintf("%s spent+held %d", p.Email, p.SpentMinor+p.HeldMinor))
		}
		if p.Unaccounted > 0 {
			unaccounted = append(unaccounted, fmt.Sprintf("%s %d", p.Email, p.Unaccounted))
		}
	}
	type row struct {
		name   string
		holds  bool
		figure string
	}
	serve := fmt.Sprintf("%s, %s", r.serveAgain[0].Round(time.Millisecond), r.serveAgain[1].Round(time.Millisecond))
	rows := []row{
		{"no month over the cap at the provider", len(overCap) == 0, orNone(overCap)},
		{"no month over the cap in the ledger", len(ledgerOverCap) == 0, orNone(ledgerOverCap)},
		{"every provider charge has a commit or a hold (open or stale)", len(unaccounted) == 0, "unaccounted: " + orNone(unaccounted)},
		{"every acknowledged success was charged", len(r.ackNotCharged) == 0, fmt.Sprintf("%d of %d missing %s", len(r.ackNotCharged), r.ok, firstFew(r.ackNotCharged))},
		{"every acknowledged success is audited", len(r.ackNotAudited) == 0, fmt.Sprintf("%d of %d missing %s", len(r.ackNotAudited), r.ok, firstFew(r.ackNotAudited))},
		{"no domain charged twice", len(r.doubleCharged) == 0, orNone(r.doubleCharged)},
		{"every success replays with its key after the restarts", r.replayDiffers == 0, fmt.Sprintf("%d of %d differ %s", r.replayDiffers, r.replayed, firstFew(r.replayBad))},
		{"every call ended (success, refusal, or in_progress after a crash)", r.other == 0, fmt.Sprintf("%d in_progress, others %v", r.pending, r.otherCodes)},
		{"every charged in_progress call is covered by an open or stale hold", r.pendingCharged <= r.openHolds+r.staleHolds, fmt.Sprintf("%d of %d in_progress charged, %d holds", r.pendingCharged, r.pending, r.openHolds+r.staleHolds)},
		{"tollgate audit verify passes", r.auditOK, r.auditLine},
		{"holds left (open / stale, for spend reconcile)", true, fmt.Sprintf("%d / %d", r.openHolds, r.staleHolds)},
	}
	if !r.noServe {
		rows = append(rows, row{"both replicas serve within 2s of the cluster being healthy", r.serveAgain[0] >= 0 && r.serveAgain[1] >= 0 && r.serveAgain[0] <= 2*time.Second && r.serveAgain[1] <= 2*time.Second, serve})
	}
	b.WriteString("invariants:\n")
	failed := 0
	for _, rw := range rows {
		mark := "ok  "
		if !rw.holds {
			mark, failed = "FAIL", failed+1
		}
		fmt.Fprintf(&b, "  %s  %-66s %s\n", mark, rw.name, rw.figure)
	}
	fmt.Fprintf(&b, "%d of %d invariants hold\n", len(rows)-failed, len(rows))
	// The table goes to stdout as well, so that make chaos shows it
	// without -v.
	fmt.Print(b.String())
	if failed > 0 {
		t.Errorf("%d invariants do not hold (table above)", failed)
	}
	return failed == 0
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return firstFew(s)
}

func firstFew(s []string) string {
	if len(s) == 0 {
		return ""
	}
	if len(s) > 5 {
		return fmt.Sprintf("%v…", s[:5])
	}
	return fmt.Sprint(s)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// setup starts the fake providers' process and replicas tollgate replicas
// on redisURL, and gives principals principals per paid calls each (one
// domain each, interleaved so that every fault meets all of them).
func setup(t *testing.T, bin, redisURL string, replicas, principals, per int, extraEnv ...string) (providers *replica, reps []*replica, people []*principal, calls []*paidCall) {
	t.Helper()
	common := []string{
		"TOLLGATE_REDIS_URL=" + redisURL,
		"TOLLGATE_PUBLIC_URL=http://127.0.0.1:7997",
		"TOLLGATE_CAP=" + capFlag,
		"TOLLGATE_CAP_MAX=0",
		"TOLLGATE_RATE_SESSION=10000",
		"TOLLGATE_RATE_USER=100000",
		"TOLLGATE_INFLIGHT_PER_PRINCIPAL=1000",
		"TOLLGATE_INFLIGHT_PER_SESSION=1000",
		"TOLLGATE_MCP_SESSIONS_PER_PRINCIPAL=10000",
		"TOLLGATE_LOG_LEVEL=warn",
	}
	common = append(common, extraEnv...)
	// The fake providers live in a process of their own that no fault touches:
	// they stand for Cloudflare, whose record of charges is the truth the
	// ledger is checked against. The replicas under load use them.
	providers = newReplica(t, "providers", bin, common)
	withProviders := append(append([]string{}, common...), "TOLLGATE_SANDBOX_PROVIDERS_FROM="+providers.URL)

	for i := range replicas {
		reps = append(reps, newReplica(t, fmt.Sprintf("tollgate-%c", 'a'+i), bin, withProviders))
	}
	a := reps[0]

	began := time.Now()
	for i := range principals {
		email := fmt.Sprintf("chaos%d@example.com", i)
		p := &principal{Email: email, Account: testkit.LinkAccount(t, providers.URL, email)}
		for j := range per {
			p.Domains = append(p.Domains, fmt.Sprintf("chaos%d-%03d.com", i, j))
		}
		// Six task tokens (agents) per principal, each with a 100.00 budget
		// and a sixth of the domains: together they could spend 600.00, so
		// the principal's 400.00 cap is what stops them.
		tokens := make([]string, tokensPer)
		for k := range tokensPer {
			var mine []string
			for j := k; j < len(p.Domains); j += tokensPer {
				mine = append(mine, p.Domains[j])
			}
			doms, _ := json.Marshal(mine)
			tokens[k] = testkit.TaskToken(t, a.URL, testkit.Grant{Email: email, Agent: fmt.Sprintf("loader%d-%d", i, k),
				Scope: "domain:read domain:register spend:read",
				Details: `[{"type":"tollgate:resources","domains":` + string(doms) +
					`},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"}]`})
		}
		p.Tokens = tokens
		people = append(people, p)
		for j, d := range p.Domains {
			calls = append(calls, &paidCall{P: p, Token: p.Tokens[j%tokensPer], Domain: d, Key: fmt.Sprintf("chaos-%d-%d-%d", began.UnixNano(), i, j)})
		}
	}
	// Interleave principals so that every fault meets all of them.
	interleaved := make([]*paidCall, 0, len(calls))
	for j := range per {
		for i := range principals {
			interleaved = append(interleaved, calls[i*per+j])
		}
	}

	return providers, reps, people, interleaved
}
