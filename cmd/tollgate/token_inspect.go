package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/auth"
)

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
