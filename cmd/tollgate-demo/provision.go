package main

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// inAccount checks that a result says it acted in the human's linked
// account, and names it.
func (s *story) inAccount(tool string, out map[string]any) string {
	got, _ := out["account_id"].(string)
	if got != s.account {
		fail(tool, fmt.Errorf("acted in Cloudflare account %q, not the human's linked account %q", got, s.account))
	}
	return "account " + got + " (its result's account_id: the human's linked account)"
}

func (s *story) provision() {
	linked := "account " + s.account + " (the human's linked account)"

	step("domain_check " + s.domain)
	chk := s.must("domain_check", map[string]any{"domain": s.domain})
	say("available: %v, price %s (renews at %s), min %v year(s) — asked in %s", chk["available"], money(chk["price"]), money(chk["renewal_price"]), chk["min_years"], linked)
	if av, _ := chk["available"].(bool); !av {
		fail("domain_check", fmt.Errorf("%s is not available: %v", s.domain, chk["reason"]))
	}

	step("domain_register " + s.domain)
	reg := s.must("domain_register", map[string]any{"domain": s.domain})
	say("registered in %s: %v %v for %v year(s), registration %v; zone recorded as the human's: %v",
		s.inAccount("domain_register", reg), reg["domain"], reg["status"], reg["years"], reg["registration_id"], reg["zone_recorded"])
	say("charge: %s committed (the price was held against the cloudflare cap and the task budget before Cloudflare was called; the audit below shows the hold and its commit)", money(reg["charged"]))

	step("dns_upsert: A www → 192.0.2.10, proxied")
	dns := s.must("dns_upsert", map[string]any{"zone": s.domain, "type": "A", "name": "www", "content": "192.0.2.10", "proxied": true})
	rec, _ := dns["record"].(map[string]any)
	say("record %v %v → %v (proxied %v, id %v), created: %v — in %s", rec["type"], rec["name"], rec["content"], rec["proxied"], rec["id"], dns["created"], linked)

	step("ssl_configure: strict, always HTTPS, TLS 1.2 minimum")
	ssl := s.must("ssl_configure", map[string]any{"zone": s.domain, "mode": "strict", "always_https": true, "min_tls": "1.2"})
	say("zone %v: mode %v, always_https %v, min_tls %v — in %s", ssl["zone"], ssl["mode"], ssl["always_https"], ssl["min_tls"], linked)

	step("api_token_create: a Cloudflare token for DNS Write on this zone, 1 day")
	tk := s.must("api_token_create", map[string]any{"zone": s.domain, "permissions": []string{"DNS Write"}, "expires_in": 86400, "name": "demo_dns_" + s.suffix})
	say("token %v on %v, permissions %v, expires %v — minted in %s", tk["token_id"], tk["zone"], tk["permissions"], tk["expires_at"], linked)
	say("its secret was stored server-side as %q — never shown to the agent or logged", tk["secret_stored_as"])

	script := "export default {\n  fetch() { return new Response('hello from " + s.domain + "'); }\n};\n"
	step("deploy_preview: upload the Worker " + s.worker + " (it serves " + s.domain + ") under a preview name")
	pv := s.preview(script)
	say("preview %v (%v bytes, sha256 %.12s…) at %v", pv["preview_name"], pv["size"], pv["sha256"], pv["url"])

	step("deploy_promote: go live — the human is asked first")
	before := s.human.asked.Load()
	pr := s.promote(pv)
	if s.human.asked.Load() == before && !*noElicit {
		say("(no production gate was asked)")
	}
	say("live: %v is now preview %v (sha256 %.12s…, %v bytes)", pr["name"], pr["preview_id"], pr["sha256"], pr["size"])

	step("subscription_start plan.starter (Stripe, the human's own customer; no Cloudflare account involved)")
	sub := s.must("subscription_start", map[string]any{"plan": "plan.starter"})
	say("subscription %v to %v: %v, %s per %v", sub["subscription_id"], sub["plan"], sub["status"], money(sub["amount"]), sub["interval"])
	say("the human passed the purchase gate, and the first period's price was held against the stripe cap and the task budget, then charged")

	step("spend_status: what this month cost and what is left")
	st := s.must("spend_status", map[string]any{})
	say("principal %v", st["principal"])
	for _, p := range list(st["providers"]) {
		line := fmt.Sprintf("%-10s %v: spent %s, held %s, cap %s, remaining %s", p["provider"], p["month"], money(p["spent"]), money(p["held"]), money(p["cap"]), money(p["remaining"]))
		if p["task_budget"] != nil {
			line += fmt.Sprintf("; task budget %s, left %s", money(p["task_budget"]), money(p["task_budget_remaining"]))
		}
		say("%s", line)
	}
}

// preview uploads script as a preview of the domain's Worker and checks
// where it went.
func (s *story) preview(script string) map[string]any {
	pv := s.must("deploy_preview", map[string]any{"name": s.worker, "script": script})
	name, _ := pv["preview_name"].(string)
	if want := fmt.Sprintf("%s---preview-%v", s.worker, pv["preview_id"]); name != want {
		fail("deploy_preview", fmt.Errorf("preview script %q is not named %s", name, want))
	}
	say("Worker %v serves %v, in %s", pv["name"], pv["domain"], s.inAccount("deploy_preview", pv))
	return pv
}

// promote makes a preview live and checks, on the fake Cloudflare itself,
// that the human's account runs it.
func (s *story) promote(pv map[string]any) map[string]any {
	pr := s.must("deploy_promote", map[string]any{"name": s.worker, "preview_id": pv["preview_id"]})
	say("Worker %v serves %v, in %s", pr["name"], pr["domain"], s.inAccount("deploy_promote", pr))
	live, err := liveScripts(s.account)
	if err != nil {
		fail("deploy_promote", err)
	}
	if live[s.worker] != pr["sha256"] {
		fail("deploy_promote", fmt.Errorf("account %s runs %s with sha256 %q, not the promoted %v", s.account, s.worker, live[s.worker], pr["sha256"]))
	}
	say("the sandbox's Cloudflare confirms: account %s runs %s with sha256 %.12s…", s.account, s.worker, live[s.worker])
	return pr
}

// renewal moves the sandbox's Stripe test clock 32 days on: the
// subscription renews, the fake pays the invoice and sends the signed
// invoice.paid to /webhooks/stripe, and the renewal shows as spent in the
// month of its period; then the month reconciles with Stripe.
func (s *story) renewal() {
	step("tollgate dev advance --days 32: the sandbox's Stripe clock moves on and the subscription renews")
	out, err := tollgate("dev", "advance", "--days", "32", "--issuer", *issuer)
	if err != nil {
		fail("tollgate dev advance", err)
	}
	say("%s", strings.TrimSpace(string(out)))

	step("spend_status {\"month\": …}: the renewal, committed by the signed webhook, counts in the month of its period")
	renewed := ""
	now := time.Now().UTC()
	for d := 1; d <= 24 && renewed == ""; d++ {
		mon := time.Date(now.Year(), now.Month()+time.Month(d), 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
		st := s.must("spend_status", map[string]any{"provider": "stripe", "month": mon})
		for _, p := range list(st["providers"]) {
			if sp, _ := p["spent"].(map[string]any); sp != nil && sp["amount_minor"] != float64(0) {
				renewed = mon
				say("stripe %v: spent %s, cap %s, recurring %s", p["month"], money(p["spent"]), money(p["cap"]), money(p["recurring"]))
			}
		}
	}
	if renewed == "" {
		fail("spend_status after the renewal", errors.New("no later month shows the renewal as spent"))
	}

	reconcile("stripe", renewed, "Stripe's invoices")
	// The registration, noted in the commit's script, against the
	// sandbox Cloudflare's own record of what it charged.
	reconcile("cloudflare", now.Format("2006-01"), "Cloudflare's registrations")
}

// reconcile runs tollgate spend reconcile for provider and month as a step
// of the story, and stops it on any mismatch.
func reconcile(provider, month, against string) {
	step("tollgate spend reconcile --provider " + provider + " --month " + month + ": the ledger against " + against)
	args := []string{"spend", "reconcile", "--provider", provider, "--month", month, "--issuer", *issuer}
	if *redisURL != "" {
		args = append(args, "--redis-url", *redisURL)
	}
	out, err := tollgate(args...)
	if err != nil {
		fail("tollgate spend reconcile --provider "+provider, fmt.Errorf("%v\n%s", err, out))
	}
	say("%s", strings.TrimSpace(string(out)))
}
