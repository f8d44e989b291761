package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/httpx"
	"github.com/tollgate-dev/tollgate/internal/limits"
	"github.com/tollgate-dev/tollgate/internal/mcpsession"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools"
)

// resourceMetadataURL is where RFC 9728 metadata for /mcp lives.
func (a *App) resourceMetadataURL() string {
	return a.Cfg.PublicURL + "/.well-known/oauth-protected-resource/mcp"
}

// requireToken stands in front of /mcp: no valid task token, no MCP
// (RFC 6750 §3 challenges, RFC 9728 §5.1 resource_metadata). A tools/call
// for a tool whose scopes the token lacks gets 403 insufficient_scope naming
// all the scopes the tool needs. Verified claims travel to the tool guard in
// the request context; the guard re-checks the session on every tool call.
func (a *App) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call := peekCall(r)
		tool, known := a.toolByName(call.Params.Name)
		need := "catalog:read"
		if call.Method == "tools/call" && known && len(tool.Scopes) > 0 {
			need = strings.Join(tool.Scopes, " ")
		}
		tok, ok := sts.BearerToken(r)
		if !ok {
			a.edge.unauthenticated(r, "no bearer token")
			a.challenge(w, http.StatusUnauthorized, "", need, "send a task token as Authorization: Bearer <token>; get one by token exchange at "+a.Cfg.PublicURL+"/oauth/token")
			return
		}
		c, err := a.id.verifier.Verify(r.Context(), tok)
		if err != nil {
			a.edge.unauthenticated(r, fault.PublicOf(err))
			a.challenge(w, http.StatusUnauthorized, "invalid_token", need, fault.PublicOf(err))
			return
		}
		// The name of a tool the edge refuses a call of, for its audit
		// entry: a known tool's, else the name given, bounded.
		auditName := ""
		if call.Method == "tools/call" {
			auditName = auditText(call.Params.Name, 64)
		}
		// Requests in flight on this replica, per principal and per task
		// session: one agent cannot hold every worker of a replica.
		release, err := a.edge.inflight.Acquire(c.Subject, c.SessionID)
		if err != nil {
			a.refuseLimit(w, r, c, auditName, err)
			return
		}
		defer release()
		if call.Method != "tools/call" {
			// Tool calls are checked by the guard; everything else here, so a
			// revoked session cannot even list tools.
			if err := a.id.sessions.Check(r.Context(), c.Subject, c.SessionID, c.ID); err != nil {
				if fault.CodeOf(err) == fault.Unavailable {
					httpx.Fail(w, http.StatusServiceUnavailable, "temporarily_unavailable", fault.PublicOf(err))
					return
				}
				a.challenge(w, http.StatusUnauthorized, "invalid_token", need, fault.PublicOf(err))
				return
			}
		}
		checked := ""
		if call.Method == "tools/call" && !known {
			// A call of a tool that does not exist is a probe too: it is
			// audited (the MCP server answers it with its own error).
			a.auditEdgeRefusal(r, c, auditName, fault.NotFound)
		}
		if call.Method == "tools/call" && known {
			// Step 3, once: the guard does not check this tool's scopes again.
			if err := tools.ScopeError(tool, c.Scopes()); err != nil {
				// Every tool call is audited, refused ones too: an agent must
				// not probe for capabilities without a trace.
				a.auditEdgeRefusal(r, c, auditName, fault.InsufficientScope)
				a.challenge(w, http.StatusForbidden, "insufficient_scope", strings.Join(tool.Scopes, " "), fault.PublicOf(err))
				return
			}
			checked = tool.Name()
		}
		// A legacy (2025-11-25) MCP session belongs to the principal that
		// opened it: its id alone must not let another token read its
		// stream or answer its elicitations.
		sid := r.Header.Get("Mcp-Session-Id")
		if sid != "" {
			owner, err := a.mcpOwners.Used(r.Context(), sid, c.Subject)
			switch {
			case err != nil:
				httpx.Fail(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable; retry shortly")
				return
			case owner != c.Subject:
				if auditName != "" {
					a.auditEdgeRefusal(r, c, auditName, fault.NotFound)
				}
				httpx.Fail(w, http.StatusNotFound, "session_not_found", "no such MCP session for this token; initialize a new one")
				return
			}
			if r.Method == http.MethodDelete {
				defer func() {
					if err := a.mcpOwners.Closed(context.WithoutCancel(r.Context()), c.Subject, sid); err != nil {
						a.Log.Warn("forgetting a closed MCP session failed; it counts until idle", "err", err)
					}
				}()
			}
		}
		ow := &sessionOwner{ResponseWriter: w, a: a, r: r, principal: c.Subject}
		if sid == "" && call.Method == "initialize" && a.Cfg.MCPSessionsPerPrincipal > 0 {
			// A new legacy session: at most --mcp-sessions-per-principal
			// of one principal, each holding a bounded clientInfo.
			res, ok, err := a.mcpOwners.Reserve(r.Context(), c.Subject, a.Cfg.MCPSessionsPerPrincipal, a.Cfg.MCPSessionIdle)
			switch {
			case err != nil:
				httpx.Fail(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable; retry shortly")
				return
			case !ok:
				a.Log.Warn("MCP session limit reached", "principal", c.Subject, "limit", a.Cfg.MCPSessionsPerPrincipal)
				tooMany(w, time.Minute, fmt.Sprintf("this human's agents already have %d MCP sessions open (--mcp-sessions-per-principal); close one (HTTP DELETE with its Mcp-Session-Id) or wait until one has been idle for %s. Nothing was opened", a.Cfg.MCPSessionsPerPrincipal, a.Cfg.MCPSessionIdle))
				return
			}
			ow.reserved = &res
			boundInitialize(r)
		}
		next.ServeHTTP(ow, r.WithContext(tools.WithClaims(r.Context(), c, checked)))
		ow.record()
	})
}

// refuseLimit answers a request refused by a limit: 429 with Retry-After,
// and an audit entry when it was a tool call.
func (a *App) refuseLimit(w http.ResponseWriter, r *http.Request, c *auth.Claims, tool string, err error) {
	var lim *limits.Refusal
	if !errors.As(err, &lim) {
		httpx.Fail(w, http.StatusInternalServerError, "internal", "internal error in tollgate")
		return
	}
	if tool != "" {
		a.auditEdgeRefusal(r, c, tool, lim.Code)
	}
	tooMany(w, lim.After, lim.Msg)
}

// tooMany writes 429 too_many_requests with Retry-After in whole seconds.
func tooMany(w http.ResponseWriter, after time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int((after+time.Second-1)/time.Second))))
	httpx.Fail(w, http.StatusTooManyRequests, string(limits.TooMany), msg)
}

// maxClientInfo bounds each field of the clientInfo a legacy session keeps
// for its whole life.
const maxClientInfo = 128

// boundInitialize rewrites an initialize request's clientInfo so that the
// session keeps at most a few short strings of what the client says about
// itself, whatever the body limit allows.
func boundInitialize(r *http.Request) {
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return
	}
	var msg map[string]json.RawMessage
	if json.Unmarshal(b, &msg) != nil {
		return
	}
	var params map[string]json.RawMessage
	if json.Unmarshal(msg["params"], &params) != nil || params == nil {
		return
	}
	var info map[string]any
	_ = json.Unmarshal(params["clientInfo"], &info)
	kept := map[string]string{}
	for _, k := range []string{"name", "version", "title"} {
		if v, ok := info[k].(string); ok {
			kept[k] = auditText(v, maxClientInfo)
		}
	}
	if kept["name"] == "" {
		kept["name"] = "unknown"
	}
	if kept["version"] == "" {
		kept["version"] = "0"
	}
	params["clientInfo"], _ = json.Marshal(kept)
	msg["params"], _ = json.Marshal(params)
	out, err := json.Marshal(msg)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(out))
	r.ContentLength = int64(len(out))
}

// sessionOwner records, before the response goes out, which principal a
// newly issued MCP session id belongs to.
type sessionOwner struct {
	http.ResponseWriter
	a         *App
	r         *http.Request
	principal string
	done      bool
	// reserved is the place taken for a new legacy session: it becomes
	// the issued session id, or is given back when none was issued.
	reserved *mcpsession.Reservation
}

func (s *sessionOwner) WriteHeader(code int) {
	s.record()
	s.ResponseWriter.WriteHeader(code)
}

func (s *sessionOwner) Write(b []byte) (int, error) {
	s.record()
	return s.ResponseWriter.Write(b)
}

func (s *sessionOwner) Flush() {
	s.record()
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *sessionOwner) record() {
	if s.done {
		return
	}
	s.done = true
	id := s.Header().Get("Mcp-Session-Id")
	ctx := context.WithoutCancel(s.r.Context())
	switch {
	case s.reserved != nil && id == "":
		if err := s.a.mcpOwners.Release(ctx, *s.reserved); err != nil {
			s.a.Log.Warn("releasing an unused MCP session reservation failed; it counts until idle", "err", err)
		}
	case id == "" || s.r.Header.Get("Mcp-Session-Id") != "":
	case s.reserved != nil:
		if err := s.a.mcpOwners.Opened(ctx, *s.reserved, id, s.a.Cfg.MCPSessionIdle); err != nil {
			s.a.Log.Error("recording an MCP session's owner failed; the session will be refused", "err", err)
		}
	default:
		if err := s.a.mcpOwners.Record(ctx, id, s.principal); err != nil {
			s.a.Log.Error("recording an MCP session's owner failed; the session will be refused", "err", err)
		}
	}
}

// auditEdgeRefusal records a tool call the HTTP edge refused, as the guard
// records the calls it refuses: the caller, its chain, the tool, the code.
func (a *App) auditEdgeRefusal(r *http.Request, c *auth.Claims, tool string, code fault.Code) {
	e := sessions.Entry{Event: "tool_call", Tool: tool, Decision: sessions.DecisionDeny, Code: string(code),
		Principal: c.Subject, Actors: c.Act.Chain(), ClientID: c.ClientID, Session: c.SessionID, ParentSession: c.ParentSessionID, JTI: c.ID,
		Detail: map[string]string{"at": "http edge"}}
	// Repeats within a window are counted into one entry (limits.Coalescer).
	if _, err := a.edge.refusals.Append(context.WithoutCancel(r.Context()), e); err != nil {
		a.Log.Error("audit append failed", "tool", tool, "err", err)
	}
}

// challenge writes an RFC 6750 §3 WWW-Authenticate challenge and a JSON body.
func (a *App) challenge(w http.ResponseWriter, status int, code, scope, desc string) {
	v := fmt.Sprintf(`Bearer resource_metadata=%q, scope=%q`, a.resourceMetadataURL(), scope)
	if code != "" {
		v += fmt.Sprintf(`, error=%q, error_description=%q`, code, strings.ReplaceAll(desc, `"`, `'`))
	}
	w.Header().Set("WWW-Authenticate", v)
	if code == "" {
		code = "unauthorized"
	}
	httpx.Fail(w, status, code, desc)
}

// mcpCall is the part of a JSON-RPC request the edge needs.
type mcpCall struct {
	Method string `json:"method"`
	Params struct {
		Name string `json:"name"`
	} `json:"params"`
}

// peekCall reads the JSON-RPC method and tool name of a POST without
// consuming the body (LimitBody has already bounded and buffered it).
func peekCall(r *http.Request) mcpCall {
	var c mcpCall
	if r.Method != http.MethodPost || r.Body == nil {
		return c
	}
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return c
	}
	_ = json.Unmarshal(b, &c)
	return c
}

func (a *App) toolByName(name string) (tools.Tool, bool) {
	for _, t := range a.Tools {
		if t.Name() == name {
			return t, true
		}
	}
	return tools.Tool{}, false
}
