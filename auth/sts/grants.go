package sts

import (
	"strings"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/policy"
)

// selfGrant: an agent exchanges its own attestation; it acts for itself.
func (s *STS) selfGrant(g *grant) error {
	a := *g.sub.agent
	g.principal, g.clientID, g.chain = a.ID, a.ID, nil
	g.policyAs = policyAgent(a)
	g.policyFor = g.policyAs.AsSubject()
	// Acting as its own principal is still acting: the policy must say so.
	d := s.deps.Policy.MayActFor(g.policyAs, g.policyFor)
	g.policyIDs = d.PolicyIDs
	if !d.Allow {
		return &Error{Code: ErrUnauthorizedClient, Status: 400, Cause: d.Err(),
			Description: "policy does not let agent " + a.ID + " act as its own principal; exchange on behalf of a human instead"}
	}
	g.expiry = minTime(g.sub.expiry)
	return nil
}

// delegationGrant: the actor acts on behalf of the subject (a human, or the
// upstream agent of a task token). The new token keeps the subject as sub
// and puts the actor in front of the act chain (RFC 8693 §4.1).
func (s *STS) delegationGrant(g *grant, actor auth.Agent) error {
	g.principal, g.clientID = g.sub.principal, actor.ID
	if err := s.extendChain(g, actor); err != nil {
		return err
	}
	if err := checkMayAct(g, actor); err != nil {
		return err
	}
	g.policyAs = policyAgent(actor)
	switch g.sub.kind {
	case "user":
		attrs := map[string]string{}
		if g.sub.email != "" && g.sub.emailVerified {
			attrs["email"], attrs["email_verified"] = g.sub.email, "true"
		}
		g.policyFor = policy.Subject{ID: g.sub.principal, Kind: policy.KindUser, Attrs: attrs}
	case "task":
		if len(g.sub.chain) > 0 {
			g.policyFor = s.upstreamAgent(g.sub.chain[0]).AsSubject()
		} else {
			// A self-mode task token: the upstream agent is its subject.
			g.policyFor = s.upstreamAgent(g.sub.principal).AsSubject()
		}
	case "agent":
		g.policyFor = policyAgent(*g.sub.agent).AsSubject()
	}
	d := s.deps.Policy.MayActFor(g.policyAs, g.policyFor)
	g.policyIDs = d.PolicyIDs
	if !d.Allow {
		return &Error{Code: ErrUnauthorizedClient, Status: 400, Cause: d.Err(),
			Description: "policy does not let agent " + actor.ID + " act for " + g.policyFor.ID + "; ask the operator to permit it"}
	}
	g.expiry = minTime(g.sub.expiry, actor.Expiry)
	return nil
}

// checkMayAct enforces RFC 8693 §4.4: may_act in the subject token names
// who may act for it. The restriction travels down the chain: the nested
// may_act names who may act next; without one, nobody may delegate further.
func checkMayAct(g *grant, actor auth.Agent) error {
	m := g.sub.mayAct
	if m == nil {
		return nil
	}
	switch {
	case m.Sub == noFurtherActor:
		return oauthErr(ErrInvalidGrant, "the subject token's may_act allows no further delegation; nothing was issued")
	case m.Sub != actor.ID:
		return oauthErr(ErrInvalidGrant, "the subject token's may_act does not name agent %s; nothing was issued", actor.ID)
	}
	g.mayAct = m.Act
	if g.mayAct == nil {
		g.mayAct = &auth.Actor{Sub: noFurtherActor}
	}
	return nil
}

// noFurtherActor is the may_act of a token whose subject allowed no
// further delegation: no attested agent has this id.
const noFurtherActor = "urn:tollgate:no-further-delegation"

// impersonationGrant: the actor acts as the subject agent. Only a pair the
// policy names explicitly may do this; the real caller stays in act.
func (s *STS) impersonationGrant(g *grant, actor auth.Agent) error {
	target := g.sub.principal
	if g.sub.kind == "user" || strings.HasPrefix(target, "user:") {
		return oauthErr(ErrInvalidRequest, "only an agent can be impersonated; to act for a human, exchange without impersonate")
	}
	if target == actor.ID {
		return oauthErr(ErrInvalidRequest, "an agent cannot impersonate itself; exchange without impersonate")
	}
	g.principal, g.clientID = target, actor.ID
	if err := s.extendChain(g, actor); err != nil {
		return err
	}
	// Acting as the subject is at least acting for it: its may_act binds.
	if err := checkMayAct(g, actor); err != nil {
		return err
	}
	g.policyAs = policyAgent(actor)
	tgt := s.upstreamAgent(target)
	if g.sub.agent != nil {
		tgt = policyAgent(*g.sub.agent)
	}
	g.policyFor = tgt.AsSubject()
	d := s.deps.Policy.MayImpersonate(g.policyAs, tgt)
	g.policyIDs = d.PolicyIDs
	if !d.Allow {
		return &Error{Code: ErrUnauthorizedClient, Status: 400, Cause: d.Err(),
			Description: "policy does not let agent " + actor.ID + " impersonate " + target + " (nobody may impersonate unless policy names the pair)"}
	}
	g.expiry = minTime(g.sub.expiry, actor.Expiry)
	return nil
}

// extendChain puts actor in front of the subject's chain, refusing loops
// and chains deeper than auth.MaxDelegationDepth.
func (s *STS) extendChain(g *grant, actor auth.Agent) error {
	if actor.ID == g.sub.principal {
		return oauthErr(ErrInvalidRequest, "agent %s is the subject itself; exchange its own attestation without an actor_token", actor.ID)
	}
	for _, a := range g.sub.chain {
		if a == actor.ID {
			return oauthErr(ErrInvalidRequest, "agent %s is already in the delegation chain (a loop)", actor.ID)
		}
	}
	chain := append([]string{actor.ID}, g.sub.chain...)
	if len(chain) > auth.MaxDelegationDepth {
		return oauthErr(ErrInvalidRequest, "the delegation chain would have %d actors; at most %d are allowed", len(chain), auth.MaxDelegationDepth)
	}
	g.chain = chain
	return nil
}
