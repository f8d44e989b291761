package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
)

// roundTrips counts the Redis round trips of one unpaid call (catalog_get,
// over HTTP and in process), one paid call (domain_register over HTTP,
// against the sandbox's fake Cloudflare) and one token exchange, one at a
// time.
func (r *runner) roundTrips(ctx context.Context) error {
	cs, err := r.setupCalls(ctx)
	if err != nil {
		return err
	}
	for _, transport := range []string{"HTTP", "in-process"} {
		c := cs.find(transport, true, 1).cs[0]
		rep, err := countTrips(ctx, r.trips, r.admin, r.o.TripCalls, func(int) error {
			_, err := callTool(ctx, c, benchTool, callArgs)
			return err
		})
		if err != nil {
			return err
		}
		r.rows = append(r.rows, tripRow("unpaid catalog_get, "+transport, rep))
	}

	// Paid: a token naming the domains it may buy; one registration first
	// to load the scripts, then the counted ones.
	n := r.o.PaidCalls
	domains := make([]string, n+1)
	for i := range domains {
		domains[i] = fmt.Sprintf("tollgate-bench-%d.com", i)
	}
	d, _ := json.Marshal(domains)
	// Cloudflare calls act in the human's own linked account: link the
	// buyer's sandbox account first (not counted).
	var linked struct {
		AccountID string `json:"account_id"`
	}
	if err := r.sys.post(ctx, "/dev/cloudflare/link", url.Values{"email": {"bench-paid@example.com"}}, &linked); err != nil {
		return fmt.Errorf("link the buyer's Cloudflare account: %w", err)
	}
	tok, err := r.sys.taskToken(ctx, "bench-paid@example.com", "domain:read domain:register spend:read",
		`[{"type":"tollgate:resources","domains":`+string(d)+`},{"type":"tollgate:spend","provider":"cloudflare","max_amount":"100.00","currency":"usd"},{"type":"tollgate:spend","provider":"stripe","max_amount":"100.00","currency":"usd"}]`)
	if err != nil {
		return err
	}
	pc, err := httpClients(ctx, r.sys.srv.URL+"/mcp", tok, 1)
	if err != nil {
		return err
	}
	defer pc.close()
	register := func(i int) error {
		_, err := callTool(ctx, pc[0], "domain_register", map[string]any{"domain": domains[i]})
		return err
	}
	if err := register(0); err != nil {
		return err
	}
	rep, err := countTrips(ctx, r.trips, r.admin, n, func(i int) error { return register(i + 1) })
	if err != nil {
		return err
	}
	r.rows = append(r.rows, tripRow("paid domain_register, HTTP", rep))

	// An exchange, for comparison: it creates a session and audits.
	user, actor, err := r.sys.devTokens(ctx, "bench-trips@example.com", "bench")
	if err != nil {
		return err
	}
	form := exchangeForm(user, actor, "catalog:read", "")
	rep, err = countTrips(ctx, r.trips, r.admin, r.o.TripCalls, func(int) error {
		_, err := r.sys.exchange(ctx, form)
		return err
	})
	if err != nil {
		return err
	}
	r.rows = append(r.rows, tripRow("token exchange, HTTP", rep))
	return nil
}

func tripRow(how string, rep tripReport) row {
	return row{what: "Redis round trips", how: how, n: rep.calls, note: fmt.Sprintf(
		"**%s round trips per call**: %s. Server ran %s commands per call (inside scripts included): %s",
		trimFloat(rep.perCall()), rep.describe(), trimFloat(rep.commandsPerCall()), rep.describeCommands())}
}
