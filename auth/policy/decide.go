package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Decision is the outcome of one policy question, fit for the audit trail.
type Decision struct {
	Allow bool `json:"allow"`
	// PolicyIDs are the policies that decided, sorted: the matching forbids
	// when any matched; else the policies that failed to evaluate, when any
	// did; else the matching permits. Empty for a default deny.
	PolicyIDs []string `json:"policy_ids,omitempty"`
	// Errors explain a fail-closed deny: bad input, or a policy that could
	// not be evaluated. Any error denies, whatever else matched.
	Errors []string `json:"errors,omitempty"`
}

// Err returns nil when d allows, else a *fault.Error with code PolicyDenied
// whose cause names the deciding policies and errors.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	cause := fmt.Errorf("policies %v, errors %v", d.PolicyIDs, d.Errors)
	return fault.Wrap(cause, PolicyDenied,
		"the exchange policy does not allow this; nothing was issued or charged. Ask the operator to grant it in the policy file.")
}

// MayActFor reports whether agent may act on behalf of subject (delegation):
// action act_for, principal the agent, resource the user or upstream agent.
func (e *Engine) MayActFor(agent Agent, subject Subject) Decision {
	return e.decide(agent, actActFor, subject)
}

// MayImpersonate reports whether actor may act as target (action
// impersonate). Cedar denies by default, so only a policy that names the
// pair allows it.
func (e *Engine) MayImpersonate(actor, target Agent) Decision {
	return e.decide(actor, actImpersonate, target.AsSubject())
}

// AllowedScopes returns, in request order and without duplicates, the
// requested scopes that agent may use on behalf of subject (action
// use_scope, resource Tollgate::Scope, context.on_behalf_of the subject),
// and the decision for each requested scope. It does not check act_for:
// the exchange asks MayActFor as well.
func (e *Engine) AllowedScopes(agent Agent, subject Subject, requested []string) (allowed []string, d map[string]Decision) {
	d = make(map[string]Decision, len(requested))
	who := memoKey(agent, subject) // once for every scope asked about
	for _, scope := range requested {
		if _, seen := d[scope]; seen {
			continue
		}
		dec := e.rememberKey(who+memoRequest(actUseScope, "scope:"+scope, nil), func() Decision { return e.useScopeNow(agent, subject, scope) })
		d[scope] = dec
		if dec.Allow {
			allowed = append(allowed, scope)
		}
	}
	return allowed, d
}

func (e *Engine) useScopeNow(agent Agent, subject Subject, scope string) Decision {
	if err := checkScope(scope); err != nil {
		return denied(err)
	}
	res := types.Entity{UID: types.NewEntityUID(typeScope, types.String(scope))}
	return e.decideOnNow(agent, actUseScope, res, subject, types.RecordMap{})
}

// MaxSpend reports whether agent may spend amountMinor (integer minor units
// of the ISO 4217 currency, e.g. 2000 "usd" = USD 20.00) with provider on
// behalf of subject in one task (action spend, resource Tollgate::Provider,
// context {amount_minor, currency, on_behalf_of}). The currency reaches the
// policy in lower case; a negative amount is refused.
func (e *Engine) MaxSpend(agent Agent, subject Subject, provider string, amountMinor int64, currency string) Decision {
	if err := checkProvider(provider); err != nil {
		return denied(err)
	}
	if amountMinor < 0 {
		return denied(fmt.Errorf("spend amount %d is negative", amountMinor))
	}
	cur := strings.ToLower(currency)
	if len(cur) != 3 || strings.Trim(cur, "abcdefghijklmnopqrstuvwxyz") != "" {
		return denied(fmt.Errorf("currency %q is not an ISO 4217 code", currency))
	}
	res := types.Entity{UID: types.NewEntityUID(typeProvider, types.String(provider))}
	return e.decideOn(agent, actSpend, res, subject, types.RecordMap{
		"amount_minor": types.Long(amountMinor),
		"currency":     types.String(cur),
	})
}

// decide asks about an action whose resource is the subject itself.
func (e *Engine) decide(agent Agent, action types.String, subject Subject) Decision {
	return e.remember(agent, action, "", subject, nil, func() Decision { return e.decideNow(agent, action, subject) })
}

func (e *Engine) decideNow(agent Agent, action types.String, subject Subject) Decision {
	pe, err := agentEntity(agent)
	if err != nil {
		return denied(err)
	}
	se, err := subjectEntity(subject)
	if err != nil {
		return denied(err)
	}
	entities, err := entityMap(pe, se)
	if err != nil {
		return denied(err)
	}
	return e.authorize(entities, cedar.Request{
		Principal: pe.UID,
		Action:    types.NewEntityUID(typeAction, action),
		Resource:  se.UID,
		Context:   types.NewRecord(nil),
	})
}

// decideOn asks about an action on res done on behalf of subject, which the
// policy sees as context.on_behalf_of.
func (e *Engine) decideOn(agent Agent, action types.String, res types.Entity, subject Subject, ctx types.RecordMap) Decision {
	return e.remember(agent, action, res.UID.String(), subject, ctx, func() Decision { return e.decideOnNow(agent, action, res, subject, ctx) })
}

func (e *Engine) decideOnNow(agent Agent, action types.String, res types.Entity, subject Subject, ctx types.RecordMap) Decision {
	pe, err := agentEntity(agent)
	if err != nil {
		return denied(err)
	}
	se, err := subjectEntity(subject)
	if err != nil {
		return denied(err)
	}
	entities, err := entityMap(pe, se, res)
	if err != nil {
		return denied(err)
	}
	ctx["on_behalf_of"] = se.UID
	return e.authorize(entities, cedar.Request{
		Principal: pe.UID,
		Action:    types.NewEntityUID(typeAction, action),
		Resource:  res.UID,
		Context:   types.NewRecord(ctx),
	})
}

// entityMap collects the request's entities. One UID described two ways
// (an agent that is also its own subject, with another kind) is refused
// rather than letting one description silently win.
func entityMap(es ...types.Entity) (types.EntityMap, error) {
	m := make(types.EntityMap, len(es))
	for _, e := range es {
		if prev, ok := m[e.UID]; ok && !prev.Equal(e) {
			return nil, fmt.Errorf("entity %s is described twice, differently", e.UID)
		}
		m[e.UID] = e
	}
	return m, nil
}

func (e *Engine) authorize(entities types.EntityMap, req cedar.Request) Decision {
	if e == nil || e.set == nil {
		return denied(fmt.Errorf("no policy loaded"))
	}
	decision, diag := cedar.Authorize(e.set, entities, req)
	if len(diag.Errors) > 0 {
		// Fail closed. Cedar skips a policy that errors, so a forbid whose
		// condition errors (a missing attribute, an overflow) would let a
		// permit through; here any error denies.
		d := Decision{}
		for _, de := range diag.Errors {
			d.Errors = append(d.Errors, fmt.Sprintf("policy %q at %s: %s", de.PolicyID, position(de.Position), de.Message))
			d.PolicyIDs = append(d.PolicyIDs, string(de.PolicyID))
		}
		if decision == cedar.Deny && len(diag.Reasons) > 0 {
			// A forbid matched as well: it is what decided.
			d.PolicyIDs = reasonIDs(diag.Reasons)
		}
		slices.Sort(d.PolicyIDs)
		slices.Sort(d.Errors)
		return d
	}
	return Decision{Allow: decision == cedar.Allow, PolicyIDs: reasonIDs(diag.Reasons)}
}

func reasonIDs(rs []cedar.DiagnosticReason) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, string(r.PolicyID))
	}
	slices.Sort(ids)
	return ids
}

func denied(err error) Decision {
	return Decision{Errors: []string{"policy: " + err.Error()}}
}

// checkScope accepts an RFC 6749 §3.3 scope-token: one or more of
// %x21 / %x23-5B / %x5D-7E (printable ASCII except space, '"' and '\').
func checkScope(s string) error {
	if s == "" {
		return fmt.Errorf("scope is empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("scope %q is not an RFC 6749 scope-token", s)
		}
	}
	return nil
}

func checkProvider(p string) error {
	if p == "" || strings.Trim(p, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		return fmt.Errorf("provider %q must be lower-case letters, digits, '_' or '-'", p)
	}
	return nil
}
