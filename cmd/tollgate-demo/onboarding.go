package main

import "fmt"

// billing is billing_setup, first: account_connect starts from the e-mail
// Stripe verifies when the card is saved.
func (s *story) billing() {
	step("billing_setup: a payment method through Stripe Checkout (no card ever reaches the agent)")
	before := s.human.asked.Load()
	out := s.must("billing_setup", map[string]any{})
	if s.human.asked.Load() == before && !*noElicit {
		say("(a payment method was already on file: no gate was asked)")
	}
	say("result: payment method %v at %v; Stripe verified %s's e-mail, which account_connect starts from", out["status"], out["provider"], s.human.email)
}

// accountConnect links the human's own Cloudflare account (consent on
// Cloudflare's page) or creates one (terms gate): every later Cloudflare
// call acts in that account.
func (s *story) accountConnect() {
	step("account_connect: the human's own Cloudflare account, from the e-mail Stripe verified")
	out := s.must("account_connect", map[string]any{})
	s.account, _ = out["account_id"].(string)
	if s.account == "" {
		fail("account_connect", fmt.Errorf("no account_id in %s", compact(out)))
	}
	switch out["status"] {
	case "created":
		say("created: Cloudflare account %s for %v, after the human accepted Cloudflare's terms", s.account, out["email"])
	default:
		say("%v: %v's existing Cloudflare account %s, by the human's consent on Cloudflare's page; %v zone(s) known", out["status"], out["email"], s.account, out["zones"])
	}
	say("every Cloudflare call below acts in account %s, with its own credential (sealed server-side)", s.account)
}
