package edge

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

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/httpx"
	"github.com/tollgate-dev/tollgate/internal/limits"
	"github.com/tollgate-dev/tollgate/internal/mcpsession"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/tools"
)

// ResourceMetadataURL is where RFC 9728 metadata for /mcp lives.
func (e *Edge) ResourceMetadataURL() string {
	return e.cfg.PublicURL + MetadataPath
}

// MetadataPath is the path of /mcp's RFC 9728 protected-resource metadata.
const MetadataPath = "/.well-known/oauth-protected-resource/mcp"

// Wrap stands in front of /mcp: no valid task token, no MCP
// (RFC 6750 §3 challenges, RFC 9728 §5.1 resource_metadata). A tools/call
// for a tool whose scopes the token lacks gets 403 insufficient_scope naming
// all the scopes the tool needs. Verified claims travel to the tool guard in
// the request context; the guard re-checks the session on every tool call.
func (e *Edge) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The token first, from the headers alone: nothing of an
		// anonymous request's body is read or kept.
		tok, ok := sts.BearerToken(r)
		if !ok {
			e.unauthenticated(r, "no bearer token")
			e.challenge(w, http.StatusUnauthorized, "", "catalog:read", "send a task token as Authorization: Bearer <token>; get one by token exchange at "+e.cfg.PublicURL+"/oauth/token")
			return
		}
		c, err := e.cfg.Verifier.Verify(r.Context(), tok)
		if err != nil {
			e.unauthenticated(r, fault.PublicOf(err))
			e.challenge(w, http.StatusUnauthorized, "invalid_token", "catalog:read", fault.PublicOf(err))
			return
		}
		// Requests in flight on this replica, per principal and per task
		// session: one agent cannot hold every worker of a replica, nor
		// more than that many buffered bodies.
		release, err := e.cfg.InFlight.Acquire(c.Subject, c.SessionID)
		if err != nil {
			// The refusal of a tool call is audited with its tool, read
			// from the start of the body only.
			tool := ""
			if call := peekPrefix(w, r, e.cfg.BodyTimeout); call.Method == "tools/call" {
				tool = UnknownTool
				if t, ok := e.toolByName(call.Params.Name); ok {
					tool = t.Name()
				}
			}
			e.refuseLimit(w, r, c, tool, err)
			return
		}
		defer release()
		if !httpx.ReadBody(w, r, e.cfg.MaxBodyBytes, e.cfg.BodyTimeout) {
			return
		}
		call := peekCall(r)
		tool, known := e.toolByName(call.Params.Name)
		need := "catalog:read"
		if call.Method == "tools/call" && known && len(tool.Scopes) > 0 {
			need = strings.Join(tool.Scopes, " ")
		}
		// The name of a tool the edge refuses a call of, for its audit
		// entry: a known tool's; every name that is no tool's is audited
		// as one, so that made-up names cannot multiply entries.
		auditName := ""
		if call.Method == "tools/call" {
			auditName = UnknownTool
			if known {
				auditName = tool.Name()
			}
		}
		if call.Method != "tools/call" {
			// Tool calls are checked by the guard; everything else here, so a
			// revoked session cannot even list tools.
			if err := e.cfg.Sessions.Check(r.Context(), c.Subject, c.SessionID, c.ID); err != nil {
				if fault.CodeOf(err) == fault.Unavailable {
					e.cfg.Log.Warn("session check failed: the session store is unavailable", "principal", c.Subject, "method", call.Method, "err", err)
					httpx.Fail(w, http.StatusServiceUnavailable, "temporarily_unavailable", fault.PublicOf(err))
					return
				}
				e.challenge(w, http.StatusUnauthorized, "invalid_token", need, fault.PublicOf(err))
				return
			}
		}
		checked := ""
		if call.Method == "tools/call" && !known {
			// A call of a tool that does not exist is a probe too: it is
			// audited (the MCP server answers it with its own error).
			e.auditRefusal(r, c, auditName, fault.NotFound, map[string]string{"requested": sessions.Line(call.Params.Name, 64)})
		}
		if call.Method == "tools/call" && known {
			// Step 3, once: the guard does not check this tool's scopes again.
			if err := tools.ScopeError(tool, c.Scopes()); err != nil {
				// Every tool call is audited, refused ones too: an agent must
				// not probe for capabilities without a trace.
				e.auditRefusal(r, c, auditName, fault.InsufficientScope, nil)
				e.cfg.Observe.Refused(string(fault.InsufficientScope))
				e.challenge(w, http.StatusForbidden, "insufficient_scope", strings.Join(tool.Scopes, " "), fault.PublicOf(err))
				return
			}
			checked = tool.Name()
		}
		// An initialize always opens a new session: the id of an old one
		// it carries is dropped, so that it is counted and bounded as new.
		if call.Method == "initialize" {
			r.Header.Del("Mcp-Session-Id")
		}
		// A legacy (2025-11-25) MCP session belongs to the principal that
		// opened it: its id alone must not let another token read its
		// stream or answer its elicitations. A session closed (DELETE) or
		// idle past --mcp-session-idle is gone, on every replica.
		sid := r.Header.Get("Mcp-Session-Id")
		if sid != "" {
			owner, open, err := e.cfg.Owners.Used(r.Context(), sid, c.Subject, e.cfg.SessionIdle)
			switch {
			case err != nil:
				httpx.Fail(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable; retry shortly")
				return
			case owner != c.Subject || (e.cfg.SessionsPerPrincipal > 0 && !open):
				if auditName != "" {
					e.auditRefusal(r, c, auditName, fault.NotFound, nil)
				}
				e.cfg.Observe.Refused(string(fault.NotFound))
				httpx.Fail(w, http.StatusNotFound, "session_not_found", "no such MCP session for this token (closed, idle too long, or never opened with it); initialize a new one")
				return
			}
			if r.Method == http.MethodDelete {
				defer func() {
					if err := e.cfg.Owners.Closed(context.WithoutCancel(r.Context()), c.Subject, sid); err != nil {
						e.cfg.Log.Warn("forgetting a closed MCP session failed; it counts until idle", "err", err)
					}
				}()
			}
		}
		ow := &sessionOwner{ResponseWriter: w, e: e, r: r, principal: c.Subject}
		if call.Method == "initialize" {
			if e.cfg.SessionsPerPrincipal > 0 {
				// A new legacy session: at most --mcp-sessions-per-principal
				// of one principal.
				res, ok, err := e.cfg.Owners.Reserve(r.Context(), c.Subject, e.cfg.SessionsPerPrincipal, e.cfg.SessionIdle)
				switch {
				case err != nil:
					httpx.Fail(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the session store is unavailable; retry shortly")
					return
				case !ok:
					e.cfg.Log.Warn("MCP session limit reached", "principal", c.Subject, "limit", e.cfg.SessionsPerPrincipal)
					e.cfg.Observe.Refused(string(limits.TooMany))
					e.auditEdge(r, c, "mcp_session", "", limits.TooMany, map[string]string{"limit": "mcp-sessions-per-principal"})
					tooMany(w, time.Minute, fmt.Sprintf("this human's agents already have %d MCP sessions open (--mcp-sessions-per-principal); close one (HTTP DELETE with its Mcp-Session-Id), or retry later: a session idle for %s is closed. Nothing was opened", e.cfg.SessionsPerPrincipal, e.cfg.SessionIdle))
					return
				}
				ow.reserved = &res
			}
			// Each session keeps only a bounded record of its client.
			boundInitialize(r)
		}
		next.ServeHTTP(ow, r.WithContext(tools.WithClaims(r.Context(), c, checked)))
		ow.record()
	})
}

// UnknownTool is the name the audit trail gives a call of a tool that
// does not exist (the name asked for goes in the entry's detail).
const UnknownTool = "(unknown tool)"

// refuseLimit answers a request refused by a limit: 429 with Retry-After,
// and an audit entry when it was a tool call.
func (e *Edge) refuseLimit(w http.ResponseWriter, r *http.Request, c *auth.Claims, tool string, err error) {
	var lim *limits.Refusal
	if !errors.As(err, &lim) {
		httpx.Fail(w, http.StatusInternalServerError, "internal", "internal error in tollgate")
		return
	}
	e.cfg.Observe.Refused(string(lim.Code))
	if tool != "" {
		e.auditRefusal(r, c, tool, lim.Code, nil)
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

// maxProtocolVersion bounds the protocol version string a session keeps.
const maxProtocolVersion = 32

// boundInitialize rewrites an initialize request's params so that the
// session keeps at most a bounded record of its client, whatever the body
// limit allows: the protocol version, the capabilities MCP defines (an
// experimental or extensions map is dropped) and three short strings of
// clientInfo. Anything else in params is dropped. A body that is not a
// JSON object is left for the MCP server to refuse.
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
	var params struct {
		ProtocolVersion string                 `json:"protocolVersion"`
		Capabilities    mcp.ClientCapabilities `json:"capabilities"`
		ClientInfo      map[string]any         `json:"clientInfo"`
	}
	_ = json.Unmarshal(msg["params"], &params)
	kept := map[string]string{}
	for _, k := range []string{"name", "version", "title"} {
		if v, ok := params.ClientInfo[k].(string); ok {
			kept[k] = sessions.Line(v, maxClientInfo)
		}
	}
	if kept["name"] == "" {
		kept["name"] = "unknown"
	}
	if kept["version"] == "" {
		kept["version"] = "0"
	}
	caps := params.Capabilities
	caps.Experimental, caps.Extensions = nil, nil
	pv := params.ProtocolVersion
	if len(pv) > maxProtocolVersion {
		pv = pv[:maxProtocolVersion]
	}
	msg["params"], _ = json.Marshal(map[string]any{"protocolVersion": pv, "capabilities": caps, "clientInfo": kept})
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
	e         *Edge
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
		if err := s.e.cfg.Owners.Release(ctx, *s.reserved); err != nil {
			s.e.cfg.Log.Warn("releasing an unused MCP session reservation failed; it counts until idle", "err", err)
		}
	case id == "" || s.r.Header.Get("Mcp-Session-Id") != "":
	case s.reserved != nil:
		if err := s.e.cfg.Owners.Opened(ctx, *s.reserved, id, s.e.cfg.SessionIdle); err != nil {
			s.e.cfg.Log.Error("recording an MCP session's owner failed; the session will be refused", "err", err)
		}
	default:
		if err := s.e.cfg.Owners.Record(ctx, id, s.principal); err != nil {
			s.e.cfg.Log.Error("recording an MCP session's owner failed; the session will be refused", "err", err)
		}
	}
}

// auditRefusal records a tool call the HTTP edge refused, as the guard
// records the calls it refuses: the caller, its chain, the tool, the code.
func (e *Edge) auditRefusal(r *http.Request, c *auth.Claims, tool string, code fault.Code, detail map[string]string) {
	e.auditEdge(r, c, "tool_call", tool, code, detail)
}

// auditEdge appends a refusal of the HTTP edge as event (tool_call, or
// mcp_session for an initialize past the session limit), coalesced.
func (e *Edge) auditEdge(r *http.Request, c *auth.Claims, event, tool string, code fault.Code, detail map[string]string) {
	d := map[string]string{"at": "http edge"}
	for k, v := range detail {
		d[k] = v
	}
	ent := sessions.Entry{Event: event, Tool: tool, Decision: sessions.DecisionDeny, Code: string(code),
		Principal: c.Subject, Actors: c.Act.Chain(), ClientID: c.ClientID, Session: c.SessionID, ParentSession: c.ParentSessionID, JTI: c.ID,
		Detail: d}
	// Repeats within a window are counted into one entry (limits.Coalescer).
	if _, err := e.cfg.Refusals.Append(context.WithoutCancel(r.Context()), ent); err != nil {
		e.cfg.Log.Error("audit append failed", "tool", tool, "err", err)
	}
}

// challenge writes an RFC 6750 §3 WWW-Authenticate challenge and a JSON body.
func (e *Edge) challenge(w http.ResponseWriter, status int, code, scope, desc string) {
	v := fmt.Sprintf(`Bearer resource_metadata=%q, scope=%q`, e.ResourceMetadataURL(), scope)
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

// peekPrefixBytes is how much of a refused request's body the edge reads
// to name the tool it refused.
const peekPrefixBytes = 8 << 10

// peekPrefix reads the JSON-RPC method and tool name from at most the
// first peekPrefixBytes of a POST's body, within the body deadline, so
// that a request refused before its body is read can still be audited
// with its tool. A name past that prefix is not found.
func peekPrefix(w http.ResponseWriter, r *http.Request, within time.Duration) mcpCall {
	if r.Method != http.MethodPost || r.Body == nil {
		return mcpCall{}
	}
	if within > 0 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(within))
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, peekPrefixBytes))
	return scanCall(b)
}

// scanCall finds "method" and "params"."name" in a JSON-RPC object that
// may be cut short, reading tokens until the first error.
func scanCall(b []byte) mcpCall {
	type frame struct {
		obj, wantKey bool
		key          string
	}
	var c mcpCall
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return c
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].wantKey {
			if k, ok := tok.(string); ok {
				stack[n-1].key, stack[n-1].wantKey = k, false
				continue
			}
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				stack = append(stack, frame{obj: d == '{', wantKey: d == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		} else if v, ok := tok.(string); ok {
			switch n := len(stack); {
			case n == 1 && stack[0].key == "method":
				c.Method = v
			case n == 2 && stack[0].key == "params" && stack[1].obj && stack[1].key == "name":
				c.Params.Name = v
			}
		}
		// A value ended: its object waits for the next key.
		if n := len(stack); n > 0 && stack[n-1].obj {
			stack[n-1].wantKey = true
		}
	}
}

func (e *Edge) toolByName(name string) (tools.Tool, bool) {
	for _, t := range e.cfg.Tools {
		if t.Name() == name {
			return t, true
		}
	}
	return tools.Tool{}, false
}
