package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/gates/human"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/sessions"
)

// Gate refusal codes.
const (
	GateDeclined     fault.Code = "gate_declined"
	GateCancelled    fault.Code = "gate_cancelled"
	AnswerInvalid    fault.Code = "answer_invalid"
	ApprovalRequired fault.Code = "approval_required"
	GateChanged      fault.Code = "gate_changed"
)

// Sealer seals and opens the requestState of a multi-round-trip gate.
type Sealer interface {
	Seal(ctx context.Context, st human.State) (string, error)
	Open(ctx context.Context, token string, want human.Binding) (human.State, error)
}

// ApprovalStore holds approvals for clients that cannot elicit, and for
// URL-mode flows completed on tollgate's own pages.
type ApprovalStore interface {
	Create(ctx context.Context, a human.Approval) (human.Approval, error)
	Consume(ctx context.Context, id string, want human.Binding) (human.Approval, error)
}

// ConsentStore remembers terms acceptance and billing setup.
type ConsentStore interface {
	Remember(ctx context.Context, principal, provider string, kind human.Kind, version string) error
	Has(ctx context.Context, principal, provider string, kind human.Kind, version string) (bool, error)
}

// GateConfig configures step 7.
type GateConfig struct {
	Sealer    Sealer
	Approvals ApprovalStore
	Consents  ConsentStore
	// ApprovalURL renders the page where a human decides an approval.
	ApprovalURL func(id string) string
	// FormsByApproval: form-mode gates are never elicited; they park as
	// approvals the human decides on the approvals page (or an operator
	// with the CLI). A form answer proves only that the MCP client
	// answered, and an agent may run its own client.
	FormsByApproval bool
}

// Ask is one human gate a call needs.
type Ask struct {
	Kind    human.Kind
	Message string            // what the human is asked, with every fact they decide on
	Fields  map[string]string // the same facts, structured (item, price, provider, month_to_date, …)
	// Remember, when set, records the consent on accept so it is not asked
	// again (terms with their version, billing setup).
	Remember *Consent
	// raise, on a cap_raise gate, is the raise accepting it makes.
	raise *capRaise
}

// Consent is a remembered agreement of a principal with a provider.
type Consent struct {
	Provider string
	Version  string
}

// gated is embedded in the arguments of every gated tool: the approval a
// client without elicitation retries with.
type gated struct {
	ApprovalID string `json:"approval_id,omitempty" jsonschema:"only after an approval_required refusal: the approval id, once a human approved it"`
}

// approveSchema is the form every form gate shows: one explicit yes.
var approveSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"approve": map[string]any{"type": "boolean", "title": "Approve", "description": "true to go ahead; anything else does nothing"},
	},
	"required": []string{"approve"},
}

// gate is step 7: ask the human, or check their answer. It returns a
// result to send instead of running the call (input_required or a
// refusal), or nil to go on.
func (p *pipelineCall) gate(ctx context.Context, req mcp.CallToolRequest, args map[string]any, q *Quote) (*mcp.CallToolResult, error) {
	var asks []Ask
	if p.t.run.asks() {
		var err error
		if asks, err = p.t.run.ask(ctx, p.f, p.args, q); err != nil {
			return nil, err
		}
	}
	if p.t.Paid {
		raise, err := p.capRaiseAsk(ctx, q)
		if err != nil {
			return nil, err
		}
		if raise != nil {
			// First: an approval of several asks is shown as the first's kind.
			asks = append([]Ask{*raise}, asks...)
		}
	}
	if len(asks) == 0 {
		return nil, nil
	}
	g := p.cfg.Gates
	b := human.Binding{Principal: p.c.Subject, Session: p.c.SessionID, Tool: p.t.def.Name, ArgsDigest: p.gateDigest}

	// A client without elicitation comes back with an approved approval.
	if id, _ := args["approval_id"].(string); id != "" {
		ap, err := g.Approvals.Consume(ctx, id, b)
		if err != nil {
			p.auditGate(ctx, asks, sessions.DecisionDeny, string(fault.CodeOf(err)))
			return nil, capNotRaised(asks, err)
		}
		// The human approved what they were shown: if the call would now do
		// something else (another price, another script), that approval
		// does not cover it.
		if msg, _ := mergeAsks(asks); ap.Summary != msg || ap.Kind != asks[0].Kind {
			p.auditGate(ctx, asks, sessions.DecisionDeny, string(GateChanged))
			return nil, fault.Newf(GateChanged, "what this call would do changed since the human approved it; call again without approval_id to ask again. Nothing was done or charged.")
		}
		if err := p.auditGate(ctx, asks, sessions.DecisionAllow, "approved:"+ap.DecidedBy); err != nil {
			return nil, fault.Wrap(err, fault.Unavailable, "the approval could not be recorded in the audit trail, so nothing was done; retry shortly")
		}
		return nil, p.remember(ctx, asks, "approval:"+ap.DecidedBy)
	}

	// The retry of a multi-round-trip call: only state this server sealed
	// for exactly this principal, session, tool and arguments, used once,
	// proves that a human answered (an agent can put inputResponses into
	// its first call).
	if req.Params.RequestState != "" {
		st, err := g.Sealer.Open(ctx, req.Params.RequestState, b)
		if err != nil {
			p.auditGate(ctx, asks, sessions.DecisionDeny, string(fault.CodeOf(err)))
			return nil, err
		}
		if g.FormsByApproval && !urlOnly(st.Gates) {
			// Sealed before form answers were turned off: not accepted.
			p.auditGate(ctx, asks, sessions.DecisionDeny, string(human.StateInvalid))
			return nil, fault.New(human.StateInvalid, "this server takes answers to purchase, production, terms and cap-raise questions only on its approvals page; call again without the answer to get an approval. Nothing was done.")
		}
		if !sameAsks(st.Gates, asks) {
			p.auditGate(ctx, asks, sessions.DecisionDeny, string(GateChanged))
			return nil, fault.Newf(GateChanged, "what this call would do changed since the human was asked; call again to ask again. Nothing was done or charged.")
		}
		for _, sg := range st.Gates {
			err := p.checkAnswer(ctx, req, sg, st, b)
			if fault.CodeOf(err) == human.ApprovalPending && sg.Kind.URLMode() {
				// The client said done before the human finished on the
				// page: ask again, with fresh state for the same approval.
				return p.reask(ctx, st)
			}
			if err != nil {
				p.auditGate(ctx, asks, sessions.DecisionDeny, string(fault.CodeOf(err)))
				return nil, capNotRaised(asks, err)
			}
		}
		if err := p.auditGate(ctx, asks, sessions.DecisionAllow, "accepted"); err != nil {
			return nil, fault.Wrap(err, fault.Unavailable, "the human's answer could not be recorded in the audit trail, so nothing was done; ask again shortly")
		}
		return nil, p.remember(ctx, asks, "elicitation")
	}
	if len(req.Params.InputResponses) > 0 {
		p.auditGate(ctx, asks, sessions.DecisionDeny, "answer_without_state")
		return nil, fault.New(human.StateInvalid, "an answer arrived without the request state this server issued; a human has to answer the question this server asks. Nothing was done.")
	}

	// First call: ask.
	if !canElicit(ctx, asks) || (g.FormsByApproval && asksForm(asks)) {
		return nil, p.approvalRequired(ctx, asks, b)
	}
	st := human.State{Binding: b}
	builder := server.NewInputRequestBuilder("")
	for i, a := range asks {
		id := askID(a, i)
		hg := human.Gate{ID: id, Kind: a.Kind, Summary: a.Message}
		params := mcp.ElicitationParams{Mode: mcp.ElicitationModeForm, Message: a.Message, RequestedSchema: approveSchema}
		if a.Kind.URLMode() {
			if st.Approval != "" {
				return nil, fault.New(fault.Internal, "a call can ask at most one URL-mode gate; nothing was done")
			}
			ap, err := g.Approvals.Create(ctx, human.Approval{Binding: b, Kind: a.Kind, Summary: a.Message, Fields: p.facts(a.Fields)})
			if err != nil {
				return nil, err
			}
			st.Approval = ap.ID
			// The URL carries only an opaque id; the page checks who the
			// human is.
			params = mcp.ElicitationParams{Mode: mcp.ElicitationModeURL, Message: a.Message, ElicitationID: ap.ID, URL: g.ApprovalURL(ap.ID)}
		}
		st.Gates = append(st.Gates, hg)
		builder.Elicit(id, params)
	}
	state, err := g.Sealer.Seal(ctx, st)
	if err != nil {
		return nil, err
	}
	p.auditGate(ctx, asks, "", "asked")
	return builder.RequestState(state).ToolResult(), nil
}

// urlOnly reports whether every sealed gate is URL mode.
func urlOnly(gs []human.Gate) bool {
	for _, g := range gs {
		if !g.Kind.URLMode() {
			return false
		}
	}
	return true
}

// asksForm reports whether any gate is form mode.
func asksForm(asks []Ask) bool {
	for _, a := range asks {
		if !a.Kind.URLMode() {
			return true
		}
	}
	return false
}

func askID(a Ask, i int) string { return fmt.Sprintf("%s_%d", a.Kind, i) }

// sameAsks reports whether the questions sealed in a state are exactly the
// ones this call would ask now (same kinds, same text shown).
func sameAsks(sealed []human.Gate, asks []Ask) bool {
	if len(sealed) != len(asks) {
		return false
	}
	for i, a := range asks {
		if sealed[i].ID != askID(a, i) || sealed[i].Kind != a.Kind || sealed[i].Summary != a.Message {
			return false
		}
	}
	return true
}

// mergeAsks is what one approval shows for all the asks of a call.
func mergeAsks(asks []Ask) (string, map[string]string) {
	msg, fields := asks[0].Message, map[string]string{}
	for _, x := range asks {
		for k, v := range x.Fields {
			fields[k] = v
		}
	}
	for _, x := range asks[1:] {
		msg += "\n\n" + x.Message
	}
	return msg, fields
}

// reask repeats the questions of a used state under new state (the
// approval a URL-mode gate waits on stays the same).
func (p *pipelineCall) reask(ctx context.Context, st human.State) (*mcp.CallToolResult, error) {
	builder := server.NewInputRequestBuilder("")
	for _, g := range st.Gates {
		params := mcp.ElicitationParams{Mode: mcp.ElicitationModeForm, Message: g.Summary, RequestedSchema: approveSchema}
		if g.Kind.URLMode() {
			params = mcp.ElicitationParams{Mode: mcp.ElicitationModeURL, Message: g.Summary, ElicitationID: st.Approval, URL: p.cfg.Gates.ApprovalURL(st.Approval)}
		}
		builder.Elicit(g.ID, params)
	}
	next, err := p.cfg.Gates.Sealer.Seal(ctx, human.State{Binding: st.Binding, Gates: st.Gates, Approval: st.Approval})
	if err != nil {
		return nil, err
	}
	return builder.RequestState(next).ToolResult(), nil
}

// checkAnswer reads the human's answer to one sealed gate.
func (p *pipelineCall) checkAnswer(ctx context.Context, req mcp.CallToolRequest, sg human.Gate, st human.State, b human.Binding) error {
	ans := server.ElicitationResponse(req.Params.InputResponses, sg.ID)
	if ans == nil {
		return fault.Newf(AnswerInvalid, "no answer to the %s question; nothing was done", sg.Kind)
	}
	switch ans.Action {
	case mcp.ElicitationResponseActionDecline:
		return fault.Newf(GateDeclined, "the human declined (%s); nothing was done or charged", sg.Kind)
	case mcp.ElicitationResponseActionCancel:
		return fault.Newf(GateCancelled, "the human cancelled (%s); nothing was done or charged", sg.Kind)
	case mcp.ElicitationResponseActionAccept:
	default:
		return fault.Newf(AnswerInvalid, "the answer to the %s question is neither accept, decline nor cancel; nothing was done", sg.Kind)
	}
	if sg.Kind.URLMode() {
		// URL mode: the page recorded the decision; accept only says the
		// human is done there.
		if _, err := p.cfg.Gates.Approvals.Consume(ctx, st.Approval, b); err != nil {
			return err
		}
		return nil
	}
	m, ok := ans.Content.(map[string]any)
	if !ok || len(m) != 1 {
		return fault.Newf(AnswerInvalid, "the answer to the %s question does not match its form (one field, approve); nothing was done", sg.Kind)
	}
	if v, ok := m["approve"].(bool); !ok || !v {
		return fault.Newf(GateDeclined, "the human did not approve (%s); nothing was done or charged", sg.Kind)
	}
	return nil
}

// approvalRequired parks the call as an approval a human decides on
// tollgate's page or with the CLI; the agent retries with approval_id.
func (p *pipelineCall) approvalRequired(ctx context.Context, asks []Ask, b human.Binding) error {
	a := asks[0]
	msg, fields := mergeAsks(asks)
	ap, err := p.cfg.Gates.Approvals.Create(ctx, human.Approval{Binding: b, Kind: a.Kind, Summary: msg, Fields: p.facts(fields)})
	if err != nil {
		return err
	}
	p.auditGate(ctx, asks, "", "asked: approval "+ap.ID)
	url := p.cfg.Gates.ApprovalURL(ap.ID)
	if a.Kind.URLMode() {
		// Completed at the provider, through the page: no operator can
		// approve it in the human's place.
		return &fault.Error{Code: ApprovalRequired, Public: fmt.Sprintf(
			"the human must do this on the provider's page: open %s (it leads there), then call %s again with the same arguments plus approval_id %q. Nothing was done or charged.",
			url, p.t.def.Name, ap.ID), Cause: approvalDetails{ID: ap.ID, URL: url}}
	}
	return &fault.Error{Code: ApprovalRequired, Public: fmt.Sprintf(
		"a human must approve this first: open %s (or run `tollgate approvals approve %s`), then call %s again with the same arguments plus approval_id %q. Nothing was done or charged.",
		url, ap.ID, p.t.def.Name, ap.ID), Cause: approvalDetails{ID: ap.ID, URL: url, CLI: true}}
}

type approvalDetails struct {
	ID, URL string
	CLI     bool // an operator may decide it with tollgate approvals
}

func (d approvalDetails) Error() string { return "approval " + d.ID }
func (d approvalDetails) Details() any {
	m := map[string]string{"approval_id": d.ID, "approval_url": d.URL}
	if d.CLI {
		m["cli"] = "tollgate approvals approve " + d.ID
	}
	return m
}

func (p *pipelineCall) remember(ctx context.Context, asks []Ask, by string) error {
	for _, a := range asks {
		if a.raise != nil {
			if err := p.raiseCap(ctx, a.raise, by); err != nil {
				return err
			}
		}
		if a.Remember == nil {
			continue
		}
		if err := p.cfg.Gates.Consents.Remember(ctx, p.c.Subject, a.Remember.Provider, a.Kind, a.Remember.Version); err != nil {
			return err
		}
	}
	return nil
}

func (p *pipelineCall) auditGate(ctx context.Context, asks []Ask, decision, reason string) error {
	var first error
	for _, a := range asks {
		e := sessions.Entry{Event: "gate", Tool: p.t.def.Name, Principal: p.c.Subject, Actors: p.c.Act.Chain(),
			ClientID: p.c.ClientID, Session: p.c.SessionID, ParentSession: p.c.ParentSessionID, JTI: p.c.ID,
			ArgsDigest: p.rec.ArgsDigest, Decision: decision, Code: string(a.Kind), Reason: reason, Detail: shown(a)}
		// The gate names what it is about, as the call's own entries do.
		if p.rec != nil && p.rec.Target != "" {
			e.Detail["target"] = p.rec.Target
		}
		if p.rec != nil && p.rec.Account != "" {
			e.Detail["account"] = p.rec.Account
		}
		if _, err := p.cfg.Trail.Append(context.WithoutCancel(ctx), e); err != nil {
			p.cfg.Log.Error("audit append failed", "event", "gate", "err", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// shown is what the human was shown, for the audit trail: the first line
// and a digest of the whole message (which may quote a script), and the
// structured facts.
func shown(a Ask) map[string]string {
	first, _, _ := strings.Cut(a.Message, "\n")
	sum := sha256.Sum256([]byte(a.Message))
	d := map[string]string{"message": trunc(oneLine(first), 400), "message_sha256": hex.EncodeToString(sum[:])}
	for k, v := range a.Fields {
		d[k] = trunc(oneLine(v), 200)
	}
	return d
}

// oneLine flattens text for the audit trail, which stores single lines.
func oneLine(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " / ")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
			return ' '
		}
		return r
	}, s)
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// canElicit reports whether the client declared the elicitation modes the
// asks need, on this request (2026-07-28) or its session (2025-11-25).
func canElicit(ctx context.Context, asks []Ask) bool {
	var caps *mcp.ClientCapabilities
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.ClientCapabilities != nil {
		caps = info.ClientCapabilities
	} else if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		c := s.GetClientCapabilities()
		caps = &c
	}
	if caps == nil || caps.Elicitation == nil {
		return false
	}
	e := caps.Elicitation
	for _, a := range asks {
		// A bare elicitation capability means form mode (MCP 2025-11-25).
		if a.Kind.URLMode() && e.URL == nil {
			return false
		}
	}
	return true
}

// facts are what an approval shows besides the gate's own facts: who asks
// (the human, the delegation chain with each agent's attested identity,
// the OAuth client, the task session) and what the call is about (the
// domain or Worker and the Cloudflare account). The gate's own fields win.
func (p *pipelineCall) facts(own map[string]string) map[string]string {
	out := make(map[string]string, len(own)+8)
	add := func(k, v string) {
		if v != "" {
			out[k] = fieldText(v)
		}
	}
	add("human", p.c.Subject)
	add("agent_chain", AgentChain(p.c.Act.Chain()))
	add("client", p.c.ClientID)
	add("task_session", p.c.SessionID)
	add("parent_session", p.c.ParentSessionID)
	if p.rec != nil && p.rec.Target != "" {
		if p.t.WorkerTarget {
			add("worker", p.rec.Target)
		} else {
			add("domain", p.rec.Target)
		}
	}
	if p.rec != nil {
		add("account", p.rec.Account)
	}
	for k, v := range own {
		out[k] = v
	}
	return out
}

// AgentChain renders an actor chain (current actor first, as
// auth.Actor.Chain returns it) in delegation order, from the agent the
// human delegated to down to the one asking: each agent as its short name
// and its attested identity, "planner (spiffe://tollgate.sandbox/agent/planner)".
func AgentChain(chain []string) string {
	parts := make([]string, 0, len(chain))
	for i := len(chain) - 1; i >= 0; i-- {
		id := chain[i]
		name := id
		if j := strings.LastIndexAny(strings.TrimRight(id, "/"), "/:"); j >= 0 && j+1 < len(strings.TrimRight(id, "/")) {
			name = strings.TrimRight(id, "/")[j+1:]
		}
		if name == id {
			parts = append(parts, id)
		} else {
			parts = append(parts, name+" ("+id+")")
		}
	}
	return strings.Join(parts, " → ")
}

// fieldText makes v a valid approval field value: one printable line of at
// most 1000 bytes, cut on a rune boundary.
func fieldText(v string) string {
	v = oneLine(strings.ToValidUTF8(v, "?"))
	if len(v) > 1000 {
		v = strings.ToValidUTF8(v[:1000], "") + "…"
	}
	return v
}
