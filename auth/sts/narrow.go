package sts

import (
	"slices"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
)

// minLifetime is the shortest token worth issuing.
const minLifetime = 5 * time.Second

// KnownScopes are the scopes tollgate's tools need (SPEC §6).
func KnownScopes() []string {
	return []string{
		"catalog:read", "spend:read", "account:link", "billing:setup",
		"domain:read", "domain:register", "dns:read", "dns:write", "ssl:write",
		"token:create", "deploy:preview", "deploy:production", "subscription:create",
	}
}

// narrow decides the issued scope and authorization_details. Issued scope =
// requested ∩ subject ∩ policy; asking for anything outside is refused,
// never silently dropped (SPEC §4). authorization_details only narrow.
func (s *STS) narrow(g *grant) error {
	known := KnownScopes()
	if unknown := minus(g.req.Scopes, known); len(unknown) > 0 {
		return oauthErr(ErrInvalidScope, "unknown scope %s; known scopes: %s", strings.Join(unknown, " "), strings.Join(known, " "))
	}
	ceiling := known
	if g.sub.scopes != nil || g.sub.upstream() {
		// An upstream task token's scope is a ceiling even when empty: a
		// parent without a scope gives its children none.
		ceiling = intersect(known, g.sub.scopes)
	}
	allowed, _ := s.deps.Policy.AllowedScopes(g.policyAs, g.policyFor, ceiling)
	if g.req.Scopes != nil {
		if beyond := minus(g.req.Scopes, allowed); len(beyond) > 0 {
			return oauthErr(ErrInvalidScope, "scope %s is beyond what the subject token and policy allow (%s); ask for less",
				strings.Join(beyond, " "), strings.Join(allowed, " "))
		}
		allowed = intersect(allowed, g.req.Scopes)
	}
	if len(allowed) == 0 {
		return oauthErr(ErrInvalidScope, "no scope is left after narrowing by the subject token and policy; nothing was issued")
	}
	g.scopes = allowed

	details, err := narrowDetails(g.sub.details, g.sub.upstream(), g.req.Details, g.req.HasDetails)
	if err != nil {
		return err
	}
	for _, d := range details {
		if d.Type != auth.DetailSpend {
			continue
		}
		m, err := d.Budget()
		if err != nil {
			return oauthErr(ErrInvalidRequest, "authorization_details: %v", err)
		}
		dec := s.deps.Policy.MaxSpend(g.policyAs, g.policyFor, d.Provider, m.Minor, m.Currency)
		g.policyIDs = append(g.policyIDs, dec.PolicyIDs...)
		if !dec.Allow {
			return &Error{Code: ErrInvalidRequest, Status: 400, Cause: dec.Err(),
				Description: "policy does not allow agent " + g.clientID + " a " + m.String() + " budget at " + d.Provider + "; ask for a smaller tollgate:spend"}
		}
	}
	g.details = details

	ttl := s.cfg.TokenTTL
	g.expiry = minTime(g.now.Add(ttl), g.expiry)
	if !g.expiry.After(g.now.Add(minLifetime)) {
		return oauthErr(ErrInvalidGrant, "the subject or actor token expires too soon to issue a task token; get fresh ones and retry")
	}
	return nil
}

// spendProviders are the providers a tollgate:spend entry may name.
var spendProviders = []string{"cloudflare", "stripe"}

// narrowDetails applies RFC 9396 narrowing: the new token may name the same
// or fewer domains and the same or a smaller budget per provider. What the
// request leaves out, it inherits from the subject.
//
// upstream says have are an upstream task token's: then what have lacks is a
// ceiling of nothing (SPEC §4.2: a parent with no budget for a provider gives
// its children none; a token naming no domains may write nowhere, so its
// children may not name any). A root subject (a user token, an agent's own
// attestation) bounds only what it names; policy bounds the rest.
func narrowDetails(have auth.AuthorizationDetails, upstream bool, want auth.AuthorizationDetails, asked bool) (auth.AuthorizationDetails, error) {
	if !asked {
		return have, nil
	}
	haveDomains, limited := have.Domains()
	var out auth.AuthorizationDetails
	wantDomains, names := want.Domains()
	switch {
	case names && limited:
		if extra := minus(wantDomains, haveDomains); len(extra) > 0 {
			return nil, oauthErr(ErrInvalidRequest, "authorization_details: domain %s is not in the subject token's tollgate:resources (%s); a token can only narrow; nothing was issued", strings.Join(extra, " "), strings.Join(haveDomains, " "))
		}
	case names && upstream:
		return nil, oauthErr(ErrInvalidRequest, "authorization_details: the parent task token names no domains in tollgate:resources (it may only read its own account), so a sub-agent cannot name %s; ask without tollgate:resources; nothing was issued", strings.Join(wantDomains, " "))
	case !names && limited:
		wantDomains, names = haveDomains, true
	}
	if names {
		r, err := auth.ResourcesDetail(wantDomains...)
		if err != nil {
			return nil, oauthErr(ErrInvalidRequest, "authorization_details: %s", err)
		}
		out = append(out, r)
	}
	for _, d := range want {
		// Fail closed: an entry the loop below would not look at is refused,
		// never silently dropped.
		if d.Type == auth.DetailSpend && !slices.Contains(spendProviders, d.Provider) {
			return nil, oauthErr(ErrInvalidRequest, "authorization_details: provider %q is not %s; nothing was issued", trunc(d.Provider), strings.Join(spendProviders, " or "))
		}
	}
	for _, p := range spendProviders {
		hb, hasLimit := have.Budget(p)
		wb, asks := want.Budget(p)
		switch {
		case asks && hasLimit:
			if wb.Currency != hb.Currency {
				return nil, oauthErr(ErrInvalidRequest, "authorization_details: a %s budget in %s cannot be carved from the subject's %s; ask in %s; nothing was issued", p, strings.ToUpper(wb.Currency), hb, strings.ToUpper(hb.Currency))
			}
			if wb.Minor > hb.Minor {
				return nil, oauthErr(ErrInvalidRequest, "authorization_details: a %s budget of %s is more than the subject's %s; a token can only narrow; nothing was issued", p, wb, hb)
			}
		case asks && upstream:
			return nil, oauthErr(ErrInvalidRequest, "authorization_details: the parent task token has no %s budget (no tollgate:spend for %s), so a sub-agent cannot have one; ask without it; nothing was issued", p, p)
		case !asks && hasLimit:
			wb, asks = hb, true
		}
		if asks {
			d, err := auth.SpendDetail(p, wb)
			if err != nil {
				return nil, oauthErr(ErrInvalidRequest, "authorization_details: %s", err)
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// intersect keeps a's order.
func intersect(a, b []string) []string {
	out := []string{}
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// minus returns the elements of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
