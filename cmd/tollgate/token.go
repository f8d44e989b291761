package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

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
