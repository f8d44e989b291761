package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/sts"
)

func newToken() *cobra.Command {
	return group(&cobra.Command{
		Use:   "token",
		Short: "Exchange tokens (RFC 8693) and inspect them",
		Long: `token runs the RFC 8693 token exchange against a running tollgate server, and
decodes tokens to show who they speak for and the delegation chain behind them.

  tollgate token exchange --subject-token "$USER_TOKEN" --actor-token "$AGENT_TOKEN"
  tollgate token inspect "$TASK_TOKEN"`,
	}, newTokenExchange(), newTokenInspect())
}

func newTokenExchange() *cobra.Command {
	var (
		subject, subjectType, actor, scope, details, description, issuer string
		resources                                                        []string
		impersonate, tokenOnly                                           bool
	)
	cmd := &cobra.Command{
		Use:   "exchange --subject-token T [--actor-token A] [--scope S] [--resource R]...",
		Short: "Exchange a subject token (and an agent's attestation) for a task token",
		Long: `exchange runs the OAuth 2.0 Token Exchange (RFC 8693) at <issuer>/oauth/token and
prints the server's JSON response on stdout: access_token (the task token),
issued_token_type, token_type, expires_in, scope (what was actually granted,
which may be narrower than asked), authorization_details and session_id. With
--token-only it prints the access token alone, followed by a newline.

The subject is the party the new token speaks for: a user token (from your IdP,
or tollgate dev login) or the task token of an upstream agent (a sub-agent then
gets a session below the upstream one). The actor is the agent that will use
the new token, proven by its workload attestation (tollgate dev agent-token in
the sandbox). Without --actor-token, an agent exchanges its own attestation.

The subject token type is found by looking at the token: a tollgate task token
(JWT header typ at+jwt) is sent as access_token, anything else as id_token;
--subject-token-type overrides it.

Token values may be given as @path (read the file) or - (read stdin), so they
need not appear in the process list or shell history.

A refusal prints "error: error_description" on stderr (e.g. invalid_scope when
asking for more than the subject holds) and exits 1.

Examples:
  TASK=$(tollgate token exchange --subject-token @user.jwt \
           --actor-token "$(tollgate dev agent-token --agent planner)" \
           --scope "dns:read dns:write" --token-only)
  tollgate dev login --user alice@example.com |
    tollgate token exchange --subject-token - --actor-token @agent.jwt \
      --authorization-details '[{"type":"tollgate:spend","provider":"cloudflare","max_amount":"20.00","currency":"usd"}]'`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&subject, "subject-token", "", "the token the new one speaks for: a user token or an upstream task token; @path or - (stdin) read it (required)")
	fs.StringVar(&subjectType, "subject-token-type", "", "id_token, access_token or jwt (default: access_token for a tollgate task token, id_token otherwise)")
	fs.StringVar(&actor, "actor-token", "", "the acting agent's workload attestation; @path or - (stdin) read it")
	fs.StringVar(&scope, "scope", "", "space-separated scopes asked for (default: all the subject token and policy allow)")
	fs.StringArrayVar(&resources, "resource", nil, "resource URL the token is for (RFC 8707; repeatable; default: the server's MCP URL)")
	fs.StringVar(&details, "authorization-details", "", "RFC 9396 authorization_details JSON array (tollgate:resources, tollgate:spend); @path reads it")
	fs.BoolVar(&impersonate, "impersonate", false, "act as the subject agent instead of for it (only where policy names the pair)")
	fs.StringVar(&description, "description", "", "one line describing the task, kept with its session")
	fs.BoolVar(&tokenOnly, "token-only", false, "print only the access token, for scripts")
	issuerFlag(fs, &issuer)
	cmd.Long += "\n" + envHelp(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		if subject == "" {
			return usage("give --subject-token T: the user token or upstream task token the new token speaks for (@path or - read it)")
		}
		if subject == "-" && actor == "-" {
			return usage("--subject-token and --actor-token cannot both read stdin (-); give one of them as @path")
		}
		base, err := parseIssuer(issuer)
		if err != nil {
			return err
		}
		in := &valueReader{stdin: cmd.InOrStdin()}
		form := url.Values{"grant_type": {sts.GrantTokenExchange}}
		st, err := in.token("--subject-token", subject)
		if err != nil {
			return err
		}
		form.Set("subject_token", st)
		typ, err := subjectTokenType(subjectType, st)
		if err != nil {
			return err
		}
		form.Set("subject_token_type", typ)
		if actor != "" {
			at, err := in.token("--actor-token", actor)
			if err != nil {
				return err
			}
			form.Set("actor_token", at)
			form.Set("actor_token_type", sts.TokenTypeJWT)
		}
		if s := strings.Join(strings.Fields(scope), " "); s != "" {
			form.Set("scope", s)
		}
		for _, r := range resources {
			form.Add("resource", r)
		}
		if details != "" {
			d, err := in.json("--authorization-details", details)
			if err != nil {
				return err
			}
			form.Set("authorization_details", d)
		}
		if impersonate {
			form.Set("impersonate", "true")
		}
		if description != "" {
			form.Set("description", description)
		}

		ctx, stop := signalContext()
		defer stop()
		status, body, err := postForm(ctx, base, "/oauth/token", form)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return serverRefusal(base, "/oauth/token", status, body)
		}
		var resp struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(body, &resp); err != nil || resp.AccessToken == "" {
			return fmt.Errorf("the server at %s answered the exchange without an access_token; is --issuer a tollgate server?", base)
		}
		out := cmd.OutOrStdout()
		if tokenOnly {
			_, err = fmt.Fprintln(out, resp.AccessToken)
			return err
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, bytes.TrimSpace(body), "", "  "); err != nil {
			return fmt.Errorf("the server at %s answered with malformed JSON: %v", base, err)
		}
		pretty.WriteByte('\n')
		_, err = out.Write(pretty.Bytes())
		return err
	}
	return cmd
}

// subjectTokenType resolves --subject-token-type: a short name, a full URN,
// or (empty) a guess from the token's header.
func subjectTokenType(flag, token string) (string, error) {
	if flag == "" {
		// Decoded without verifying: the server verifies; this only picks
		// the type parameter a tollgate task token must be sent with.
		if h, err := decodeHeader(token); err == nil && isAccessTokenTyp(h.Typ) {
			return sts.TokenTypeAccessToken, nil
		}
		return sts.TokenTypeIDToken, nil
	}
	switch flag {
	case "id_token", sts.TokenTypeIDToken:
		return sts.TokenTypeIDToken, nil
	case "access_token", sts.TokenTypeAccessToken:
		return sts.TokenTypeAccessToken, nil
	case "jwt", sts.TokenTypeJWT:
		return sts.TokenTypeJWT, nil
	}
	return "", usage("--subject-token-type %q: use id_token, access_token or jwt", flag)
}

// isAccessTokenTyp reports an RFC 9068 §2.1 access token typ; typ is a
// media type, compared case-insensitively, with or without "application/".
func isAccessTokenTyp(typ string) bool {
	t := strings.ToLower(typ)
	return t == "at+jwt" || t == "application/at+jwt"
}

// maxValue bounds a token or JSON value read from a file or stdin.
const maxValue = 64 << 10

// valueReader reads flag values given as @path or - (stdin, at most once).
type valueReader struct {
	stdin     io.Reader
	stdinUsed string // the flag that read stdin
}

// read returns v, or the contents of @path or stdin, trimmed.
func (r *valueReader) read(flag, v string) (string, error) {
	var (
		b   []byte
		err error
	)
	switch {
	case v == "-":
		if r.stdinUsed != "" {
			return "", usage("%s and %s both read stdin (-); give one of them as @path", r.stdinUsed, flag)
		}
		r.stdinUsed = flag
		b, err = io.ReadAll(io.LimitReader(r.stdin, maxValue+1))
		if err != nil {
			return "", fmt.Errorf("%s: reading stdin: %v", flag, err)
		}
	case strings.HasPrefix(v, "@"):
		f, err := os.Open(v[1:])
		if err != nil {
			return "", fmt.Errorf("%s: %v", flag, err)
		}
		defer f.Close()
		b, err = io.ReadAll(io.LimitReader(f, maxValue+1))
		if err != nil {
			return "", fmt.Errorf("%s: reading %s: %v", flag, v[1:], err)
		}
	default:
		return strings.TrimSpace(v), nil
	}
	if len(b) > maxValue {
		return "", fmt.Errorf("%s: the value read is larger than %d bytes", flag, maxValue)
	}
	return strings.TrimSpace(string(b)), nil
}

// token reads a token value; it must be one line.
func (r *valueReader) token(flag, v string) (string, error) {
	t, err := r.read(flag, v)
	if err != nil {
		return "", err
	}
	if t == "" {
		return "", usage("%s is empty", flag)
	}
	if strings.ContainsAny(t, " \t\r\n") {
		return "", usage("%s holds whitespace inside the token; give one token", flag)
	}
	return t, nil
}

// json reads a JSON value and checks it parses, so a typo is caught here
// rather than as the server's invalid_request.
func (r *valueReader) json(flag, v string) (string, error) {
	s, err := r.read(flag, v)
	if err != nil {
		return "", err
	}
	if !json.Valid([]byte(s)) {
		return "", usage("%s is not valid JSON; give a JSON array such as [{\"type\":\"tollgate:resources\",\"domains\":[\"shop.example\"]}]", flag)
	}
	var c bytes.Buffer
	_ = json.Compact(&c, []byte(s))
	return c.String(), nil
}

func newTokenInspect() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect T",
		Short: "Decode a token (without verifying it) and draw its delegation chain",
		Long: `inspect decodes a JWT without verifying its signature (it says so on stderr)
and prints its header and claims: who it speaks for (the principal), its task
session and parent session, scope, expiry, and the delegation chain drawn as a
tree from the principal down to the agent acting now. Claims it does not know
are listed as they are.

With --json it prints {"header":…,"claims":…,"chain":[…],"verified":false}, the
chain listing the principal first and the agent acting now last.

T may be @path (read the file) or - (read stdin). To know whether a token is
still valid, ask the server: its introspection endpoint checks the signature
and the session.

Examples:
  tollgate token inspect "$TASK"
  tollgate token exchange … --token-only | tollgate token inspect - --json`,
		Args: exactArgs(1, "one token (or @path, or - for stdin)"),
	}
	fs := cmd.Flags()
	fs.BoolVar(&asJSON, "json", false, `print {"header","claims","chain","verified"} as JSON`)
	cmd.Long += "\n" + envHelp(fs)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		in := &valueReader{stdin: cmd.InOrStdin()}
		raw, err := in.read("the token", args[0])
		if err != nil {
			return err
		}
		tok, err := decodeJWT(raw)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.ErrOrStderr(), "tollgate: decoded only, signature not verified; ask the issuer (/oauth/introspect) whether it is valid")
		if asJSON {
			return writeJSON(cmd.OutOrStdout(), struct {
				Header   json.RawMessage `json:"header"`
				Claims   json.RawMessage `json:"claims"`
				Chain    []string        `json:"chain"`
				Verified bool            `json:"verified"`
			}{tok.rawHeader, tok.rawClaims, tok.chain(), false})
		}
		return tok.print(cmd.OutOrStdout(), time.Now())
	}
	return cmd
}

// jwtHeader is the part of a JOSE header inspect shows.
type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// jwtClaims are the claims inspect knows how to show; the rest are listed raw.
type jwtClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	Expiry    *jwt.NumericDate `json:"exp"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ID        string           `json:"jti"`
	Scope     string           `json:"scope"`
	ClientID  string           `json:"client_id"`
	Session   string           `json:"sid"`
	Parent    string           `json:"parent_sid"`
	Act       *auth.Actor      `json:"act"`
	Details   json.RawMessage  `json:"authorization_details"`
}

type decodedJWT struct {
	header               jwtHeader
	claims               jwtClaims
	rawHeader, rawClaims json.RawMessage
	others               map[string]json.RawMessage
}

// maxInspectDepth bounds the act chains inspect draws; tollgate itself
// issues at most auth.MaxDelegationDepth, so anything deeper is forged.
const maxInspectDepth = 32

// decodeHeader decodes a compact JWS's header without verifying anything.
func decodeHeader(token string) (jwtHeader, error) {
	var h jwtHeader
	first, _, ok := strings.Cut(token, ".")
	if !ok {
		return h, fmt.Errorf("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(first)
	if err != nil {
		return h, err
	}
	return h, json.Unmarshal(b, &h)
}

// decodeJWT splits and decodes a compact JWS. It verifies nothing.
func decodeJWT(token string) (*decodedJWT, error) {
	if len(token) > maxValue {
		return nil, fmt.Errorf("malformed token: it is larger than %d bytes", maxValue)
	}
	parts := strings.Split(token, ".")
	switch {
	case len(parts) == 5:
		return nil, fmt.Errorf("malformed token: this is an encrypted JWT (JWE, five parts); it cannot be decoded without its key")
	case len(parts) != 3:
		return nil, fmt.Errorf("malformed token: a JWT has three dot-separated base64url parts (header.claims.signature), this has %d", len(parts))
	}
	t := &decodedJWT{}
	var err error
	if t.rawHeader, err = decodePart("header", parts[0]); err != nil {
		return nil, err
	}
	if t.rawClaims, err = decodePart("claims", parts[1]); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(t.rawHeader, &t.header); err != nil {
		return nil, fmt.Errorf("malformed token: header: %v", err)
	}
	if err := json.Unmarshal(t.rawClaims, &t.claims); err != nil {
		return nil, fmt.Errorf("malformed token: claims: %v", err)
	}
	if err := json.Unmarshal(t.rawClaims, &t.others); err != nil {
		return nil, fmt.Errorf("malformed token: claims: %v", err)
	}
	// Claims print shows on their own lines; the rest are listed raw.
	if d := t.claims.Act.Depth(); d > maxInspectDepth {
		return nil, fmt.Errorf("malformed token: the act claim nests %d actors; tollgate issues at most %d", d, auth.MaxDelegationDepth)
	}
	for _, k := range []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "client_id", "sid", "parent_sid", "act", "authorization_details"} {
		delete(t.others, k)
	}
	return t, nil
}

// decodePart base64url-decodes one part and checks it is a JSON object.
func decodePart(name, part string) (json.RawMessage, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
	if err != nil {
		return nil, fmt.Errorf("malformed token: the %s is not base64url: %v", name, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return nil, fmt.Errorf("malformed token: the %s is not a JSON object", name)
	}
	return b, nil
}

// chain is the delegation chain, principal (sub) first, the agent acting
// now last. RFC 8693 §4.1: the outermost act is the current actor, and
// each nested act the one before it.
func (t *decodedJWT) chain() []string {
	c := []string{t.claims.Subject}
	actors := t.claims.Act.Chain()
	slices.Reverse(actors)
	return append(c, actors...)
}

func (t *decodedJWT) print(w io.Writer, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", clean(k), clean(v))
		}
	}
	c := t.claims
	var head []string
	for _, v := range []string{t.header.Typ, t.header.Alg} {
		if v != "" {
			head = append(head, v)
		}
	}
	if t.header.Kid != "" {
		head = append(head, "kid "+t.header.Kid)
	}
	line("token", strings.Join(head, ", "))
	line("issuer", c.Issuer)
	line("audience", strings.Join(c.Audience, " "))
	who := "subject"
	if isAccessTokenTyp(t.header.Typ) {
		who = "principal" // RFC 9068 access tokens carry the principal in sub
	}
	line(who, c.Subject)
	session := c.Session
	if c.Parent != "" {
		session += " (parent " + c.Parent + ")"
	}
	line("session", session)
	line("scope", c.Scope)
	if len(c.Details) > 0 && string(c.Details) != "null" {
		var b bytes.Buffer
		if json.Compact(&b, c.Details) == nil {
			line("details", b.String())
		}
	}
	line("issued", stamp(c.IssuedAt, now, ""))
	line("not before", stamp(c.NotBefore, now, ""))
	line("expires", stamp(c.Expiry, now, "expired "))
	line("token id", c.ID)
	keys := make([]string, 0, len(t.others))
	for k := range t.others {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var str string
		if json.Unmarshal(t.others[k], &str) == nil {
			line(k, str)
			continue
		}
		var b bytes.Buffer
		if json.Compact(&b, t.others[k]) == nil {
			line(k, b.String())
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "chain")
	chain := t.chain()
	for i, party := range chain {
		var b strings.Builder
		b.WriteString("  ")
		if i > 0 {
			b.WriteString(strings.Repeat("   ", i-1) + "└─ ")
		}
		b.WriteString(clean(party))
		if i == len(chain)-1 {
			switch {
			case party == c.ClientID:
				b.WriteString("   (client_id, acting now)")
			case i > 0:
				b.WriteString("   (acting now)")
			}
		}
		if _, err := fmt.Fprintln(w, b.String()); err != nil {
			return err
		}
	}
	if c.ClientID != "" && c.ClientID != chain[len(chain)-1] {
		_, err := fmt.Fprintf(w, "client_id  %s (not the actor acting now: the token's act claim and client_id disagree)\n", clean(c.ClientID))
		return err
	}
	return nil
}

// stamp renders a NumericDate with how far it is from now (see when).
func stamp(d *jwt.NumericDate, now time.Time, past string) string {
	if d == nil {
		return ""
	}
	return when(d.Time(), now, past)
}

// when renders t in UTC with how far it is from now; past prefixes a time
// already gone ("expired ").
func when(t, now time.Time, past string) string {
	t = t.UTC()
	rel := t.Sub(now).Round(time.Second)
	switch {
	case rel > 0:
		return fmt.Sprintf("%s (in %s)", t.Format(time.RFC3339), rel)
	case rel < 0:
		return fmt.Sprintf("%s (%s%s ago)", t.Format(time.RFC3339), past, -rel)
	}
	return t.Format(time.RFC3339) + " (now)"
}

// clean makes untrusted text safe to print on a terminal: text holding
// control characters (an escape sequence, a newline forging another line)
// is printed Go-quoted instead.
func clean(s string) string {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return strconv.Quote(s)
		}
	}
	return s
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
