package sts

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/policy"
)

// TestNarrowDetails: RFC 9396 narrowing on its own. A root subject (user
// token, own attestation) bounds only what it names; an upstream task token
// bounds everything, and what it lacks its children lack.
func TestNarrowDetails(t *testing.T) {
	parse := func(s string) auth.AuthorizationDetails {
		t.Helper()
		if s == "" {
			return nil
		}
		d, err := auth.ParseAuthorizationDetails([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return d
	}
	const (
		shopBlog = `{"type":"tollgate:resources","domains":["shop.example","blog.example"]}`
		shop     = `{"type":"tollgate:resources","domains":["shop.example"]}`
		cf20     = `{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.00","currency":"usd"}`
		cf5      = `{"type":"tollgate:spend","provider":"cloudflare","max_amount":"5.00","currency":"usd"}`
		cf21     = `{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.01","currency":"usd"}`
		cfEUR    = `{"type":"tollgate:spend","provider":"cloudflare","max_amount":"1.00","currency":"eur"}`
		st10     = `{"type":"tollgate:spend","provider":"stripe","max_amount":"10.00","currency":"usd"}`
		st1      = `{"type":"tollgate:spend","provider":"stripe","max_amount":"1.00","currency":"usd"}`
	)
	arr := func(entries ...string) string { return "[" + strings.Join(entries, ",") + "]" }
	tests := []struct {
		name     string
		have     string
		upstream bool
		want     string
		asked    bool
		out      string // the issued details, or the error code
	}{
		{"nothing asked inherits everything", arr(shopBlog, cf20), true, "", false, arr(shopBlog, cf20)},
		{"nothing asked under a bare parent stays bare", "", true, "", false, "null"},
		{"empty array asked inherits everything", arr(shopBlog, cf20, st10), true, "[]", true, arr(shopBlog, cf20, st10)},

		{"root: user names any domains", "", false, arr(shop), true, arr(shop)},
		{"root: user asks any budget (policy bounds it)", "", false, arr(cf21, st1), true, arr(cf21, st1)},
		{"root that names domains still narrows", arr(shop), false, arr(shopBlog), true, ErrInvalidRequest},
		{"root that has a budget still narrows", arr(cf5), false, arr(cf20), true, ErrInvalidRequest},

		{"parent has domains: child names a subset", arr(shopBlog), true, arr(shop), true, arr(shop)},
		{"parent has domains: child names one more", arr(shop), true, arr(shopBlog), true, ErrInvalidRequest},
		{"parent lacks domains: child names one", arr(cf20), true, arr(shop), true, ErrInvalidRequest},
		{"parent lacks domains: child names none", arr(cf20), true, arr(cf5), true, arr(cf5)},

		{"parent has cloudflare: child carves less", arr(cf20, st10), true, arr(cf5), true, arr(cf5, st10)},
		{"parent has cloudflare: child takes all", arr(cf20), true, arr(cf20), true, arr(cf20)},
		{"parent holds less cloudflare: child asks a cent more", arr(cf20), true, arr(cf21), true, ErrInvalidRequest},
		{"parent has cloudflare in usd: child asks in eur", arr(cf20), true, arr(cfEUR), true, ErrInvalidRequest},
		{"parent lacks cloudflare: child asks for it", arr(st10), true, arr(cf5), true, ErrInvalidRequest},

		{"parent has stripe: child carves less", arr(st10), true, arr(st1), true, arr(st1)},
		{"parent lacks stripe (has cloudflare): child asks for it", arr(shop, cf20), true, arr(st1), true, ErrInvalidRequest},
		{"parent lacks stripe: child stays silent and gets none", arr(shop, cf20), true, arr(shop), true, arr(shop, cf20)},
		{"parent has nothing: child asks stripe", "", true, arr(st1), true, ErrInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := narrowDetails(parse(tc.have), tc.upstream, parse(tc.want), tc.asked)
			var oe *Error
			switch {
			case errors.As(err, &oe):
				if oe.Code != tc.out {
					t.Fatalf("refused %s (%s), want %s", oe.Code, oe.Description, tc.out)
				}
			case err != nil:
				t.Fatalf("non-OAuth error %v", err)
			default:
				if s := describe(t, got); s != describe(t, parse(tc.out)) {
					t.Fatalf("issued %s, want %s", s, tc.out)
				}
			}
		})
	}
}

// TestNarrowDetailsRefusesAnUnknownProvider: a spend entry the narrowing
// loop would skip is refused, never silently dropped (fail closed).
func TestNarrowDetailsRefusesAnUnknownProvider(t *testing.T) {
	want := auth.AuthorizationDetails{{Type: auth.DetailSpend, Provider: "paypal", MaxAmount: "1.00", Currency: "usd"}}
	_, err := narrowDetails(nil, false, want, true)
	var oe *Error
	if !errors.As(err, &oe) || oe.Code != ErrInvalidRequest {
		t.Fatalf("got %v, want invalid_request", err)
	}
}

// TestGrantCeilingsHoldAtTheEdges: cases the exchange cannot reach today but
// that must fail closed if a token ever carries them.
func TestGrantCeilingsHoldAtTheEdges(t *testing.T) {
	pol, err := policy.Sandbox()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s := &STS{cfg: Config{TokenTTL: 10 * time.Minute, Sandbox: true}, deps: Deps{Policy: pol}}
	planner := auth.Agent{ID: auth.DevAgentID("planner"), Kind: "dev", Detail: map[string]string{"trust_domain": auth.DevTrustDomain, "path": "/agent/planner"}}

	t.Run("an upstream task token without scope gives its children none", func(t *testing.T) {
		g := grant{req: &Request{}, now: now, sub: subject{principal: "user:alice@example.com", kind: "task", expiry: now.Add(time.Hour)},
			policyAs: policyAgent(planner), policyFor: policy.Subject{ID: "user:alice@example.com", Kind: policy.KindUser}}
		var oe *Error
		if err := s.narrow(&g); !errors.As(err, &oe) || oe.Code != ErrInvalidScope {
			t.Fatalf("got %v (scopes %v), want invalid_scope", err, g.scopes)
		}
	})
	t.Run("a user token without scope is bounded by policy alone", func(t *testing.T) {
		g := grant{req: &Request{Scopes: []string{"dns:write"}}, now: now, sub: subject{principal: "user:alice@example.com", kind: "user", expiry: now.Add(time.Hour)},
			policyAs: policyAgent(planner), policyFor: policy.Subject{ID: "user:alice@example.com", Kind: policy.KindUser}}
		if err := s.narrow(&g); err != nil || strings.Join(g.scopes, " ") != "dns:write" {
			t.Fatalf("got %v, scopes %v", err, g.scopes)
		}
	})

	builder := auth.DevAgentID("builder")
	for _, tc := range []struct {
		name   string
		mayAct *auth.Actor
		code   string
	}{
		{"impersonating a token whose may_act names another agent", &auth.Actor{Sub: auth.DevAgentID("other")}, ErrInvalidGrant},
		{"impersonating a token whose may_act allows nobody further", &auth.Actor{Sub: noFurtherActor}, ErrInvalidGrant},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := grant{req: &Request{Impersonate: true}, now: now,
				sub: subject{principal: builder, kind: "task", mayAct: tc.mayAct, expiry: now.Add(time.Hour)}}
			var oe *Error
			if err := s.impersonationGrant(&g, planner); !errors.As(err, &oe) || oe.Code != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("an agent whose id is the no-further marker cannot join", func(t *testing.T) {
		g := grant{sub: subject{mayAct: &auth.Actor{Sub: noFurtherActor}}}
		var oe *Error
		if err := checkMayAct(&g, auth.Agent{ID: noFurtherActor}); !errors.As(err, &oe) || oe.Code != ErrInvalidGrant {
			t.Fatalf("got %v, want invalid_grant", err)
		}
	})
	t.Run("checkMayAct carries the nested may_act down", func(t *testing.T) {
		g := grant{sub: subject{mayAct: &auth.Actor{Sub: planner.ID, Act: &auth.Actor{Sub: builder}}}}
		if err := checkMayAct(&g, planner); err != nil || g.mayAct == nil || g.mayAct.Sub != builder {
			t.Fatalf("got %v, may_act %+v", err, g.mayAct)
		}
	})
}

func describe(t *testing.T, d auth.AuthorizationDetails) string {
	t.Helper()
	var parts []string
	for _, x := range d {
		parts = append(parts, fmt.Sprintf("%s:%s:%s:%s:%s", x.Type, strings.Join(x.Domains, ","), x.Provider, x.MaxAmount, x.Currency))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
