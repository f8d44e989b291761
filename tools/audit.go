package tools

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/observe"
	"github.com/tollgate-dev/tollgate/sessions"
)

// Trail is where tool calls are recorded (the hash-chained audit trail).
type Trail interface {
	Append(ctx context.Context, e sessions.Entry) (sessions.Entry, error)
}

// callRecord collects, while the guard runs a call, what the call's audit
// entry and log line will say.
type callRecord struct {
	Claims            *auth.Claims
	ArgsDigest        string
	Amount            *money.Money
	Provider          string
	ProviderRequestID string
	// Target is the domain, zone or Worker argument as given (escaped);
	// Account the Cloudflare account the call acted in.
	Target  string
	Account string
	// TraceID is the call's trace id, for its audit entries and log line.
	TraceID string

	// audited: the first phase appended the call's entry; outcomeAudited:
	// the third phase appended its outcome; replayed: a stored result was
	// answered.
	audited, outcomeAudited, replayed bool
}

// call is one tool call through the guard. Every tool call, allowed or
// refused, is in the audit trail with the caller, the outcome code and any
// amount, and logged. The guard's first phase appends an admitted call's
// entry in the same round trip as its session check, and the third phase a
// paid or creating call's outcome; call appends what they did not: a
// refusal before the first phase, a refusal or question after it, an
// unpaid call's error, a replay.
func (g *guard) call(ctx context.Context, t Tool, req mcp.CallToolRequest) *mcp.CallToolResult {
	start := time.Now()
	// The call's span: a child of the client's traceparent, the parent of
	// a span per guard step and provider request.
	ctx, span := g.deps.Observe.StartCall(ctx, t.def.Name)
	rec := &callRecord{ArgsDigest: argsDigest(req), TraceID: observe.TraceID(ctx)}
	res := g.steps(ctx, t, req, rec)
	e := sessions.Entry{Event: "tool_call", Tool: t.def.Name, ArgsDigest: rec.ArgsDigest, Decision: sessions.DecisionAllow,
		Amount: rec.Amount, Provider: rec.Provider, ProviderRequestID: rec.ProviderRequestID, TraceID: rec.TraceID}
	if rec.Target != "" || rec.Account != "" {
		e.Detail = map[string]string{}
		if rec.Target != "" {
			e.Detail["target"] = rec.Target
		}
		if rec.Account != "" {
			e.Detail["account"] = rec.Account
		}
	}
	switch {
	case res.IsError:
		e.Decision, e.Code = sessions.DecisionDeny, string(resultCode(res))
	case res.NeedsInput():
		e.Code = "input_required"
	}
	if c := rec.Claims; c != nil {
		e.Principal, e.Actors, e.ClientID, e.Session, e.ParentSession, e.JTI =
			c.Subject, c.Act.Chain(), c.ClientID, c.SessionID, c.ParentSessionID, c.ID
		span.Identify(observe.CallAttrs{Principal: c.Subject, Session: c.SessionID, Actors: e.Actors, ClientID: c.ClientID})
	}
	outcome, code := observe.OutcomeOK, ""
	switch {
	case e.Decision == sessions.DecisionDeny:
		outcome, code = observe.OutcomeRefused, e.Code
	case e.Code == "input_required":
		outcome = observe.OutcomeInputRequired
	}
	if rec.replayed {
		e.Code = "replayed"
		outcome = observe.OutcomeReplayed
	}
	defer span.End(outcome, code)
	// An admitted call's first entry is written before its account is
	// resolved: a call that acted in a Cloudflare account gets an outcome
	// entry naming it.
	named := rec.audited && !rec.outcomeAudited && rec.Account != ""
	if named && e.Decision == sessions.DecisionAllow && e.Code == "" {
		// The call's first entry said tool_call/allow; this one says how
		// it ended, as a paid or creating call's third phase does.
		e.Event, e.Decision = "tool_result", sessions.DecisionOK
	}
	if !rec.audited || named || !rec.outcomeAudited && (e.Decision == sessions.DecisionDeny || e.Code != "") {
		if _, aerr := g.deps.Trail.Append(context.WithoutCancel(ctx), e); aerr != nil {
			g.auditLog.Error("audit append failed", "tool", t.def.Name, "err", aerr)
		}
	}
	g.auditLog.InfoContext(ctx, "tool call", "tool", t.def.Name, "decision", e.Decision, "code", e.Code,
		"principal", e.Principal, "session", e.Session, "ms", time.Since(start).Milliseconds())
	return res
}

// argsDigest digests the call's arguments (Go's JSON encoding sorts map
// keys, so equal arguments give equal digests). Arguments never reach the
// trail, only this digest.
func argsDigest(req mcp.CallToolRequest) string {
	b, err := json.Marshal(req.GetRawArguments())
	if err != nil {
		return ""
	}
	return sessions.DigestArgs(b)
}

// resultCode reads the code of a refusal made by Refuse (also when it was
// replayed from its JSON form).
func resultCode(res *mcp.CallToolResult) fault.Code {
	b, ok := errorBody(res)
	if !ok {
		return fault.Internal
	}
	return b.Code
}

// errorBody reads a refusal's structured error, typed or decoded.
func errorBody(res *mcp.CallToolResult) (ErrorBody, bool) {
	m, ok := res.StructuredContent.(map[string]any)
	if !ok {
		return ErrorBody{}, false
	}
	switch e := m["error"].(type) {
	case ErrorBody:
		return e, true
	case map[string]any:
		code, _ := e["code"].(string)
		called, _ := e["provider_called"].(bool)
		msg, _ := e["message"].(string)
		return ErrorBody{Code: fault.Code(code), Message: msg, ProviderCalled: called}, code != ""
	}
	return ErrorBody{}, false
}
