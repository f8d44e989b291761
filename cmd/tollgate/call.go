package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/spf13/cobra"

	"github.com/tollgate-dev/tollgate/compose"
)

const defaultMCPURL = defaultIssuer + "/mcp"

// callOptions are the flags of tollgate call.
type callOptions struct {
	url, token   string
	stdio        bool
	answers      []string
	decline      bool
	noElicit     bool
	asJSON, list bool
	timeout      time.Duration
}

func newCall() *cobra.Command {
	var o callOptions
	cmd := &cobra.Command{
		Use:   "call TOOL ['{json arguments}'] | call --list",
		Short: "Call a tool as an MCP client, answering the human gates in the terminal",
		Long: `call connects to tollgate as an MCP client (mcp-go's, as an agent would), calls
one tool and prints its result: for people trying tollgate, and for scripts.

  tollgate call whoami --token "$TOKEN"
  tollgate call domain_check '{"domain":"shop.example"}'
  tollgate call --list

The arguments are one JSON object ('{}' when left out); @path reads them from a
file and - from stdin.

Connection:
  --url URL --token T   Streamable HTTP (default: TOLLGATE_ISSUER's /mcp, else
                        ` + defaultMCPURL + `; a base URL gets /mcp appended). The task token comes from --token
                        (@path reads a file) or TOLLGATE_TOKEN; get one with
                        tollgate token exchange ... --token-only.
  --stdio               runs this same binary as "tollgate stdio" and talks to it
                        over pipes. TOLLGATE_TOKEN (or --token), TOLLGATE_REDIS_URL
                        and the other environment twins of stdio pass through; with
                        no token, the sandbox mints a local session for you (read-
                        only unless it names domains). Flags after -- go to stdio:
                          tollgate call --stdio domain_check '{"domain":"a.com"}' -- --domains a.com
                        Without TOLLGATE_REDIS_URL each call starts a fresh sandbox.

Human gates: a gate the tool asks (MCP elicitation) is answered here.
  form mode   every field is prompted on the terminal with its type, its choices
              and its default; --answer field=value answers it without asking
              (repeatable), --decline declines every gate. Without a terminal, a
              field with no --answer stops the call (exit 2) and names the flag.
  URL mode    the link is printed; open it, finish there, then press Enter.
              Ctrl-D (end of input) cancels the gate.
  --no-elicitation declares no elicitation capability, as an agent that cannot
  ask would: gates come back as approval_required with an approval id and page;
  after a human approves, call again with "approval_id" in the arguments.

Output: the result's text on stdout, or with --json its structured content
(the refusal {"error":{...}} included). Diagnostics and prompts go to stderr.

Exit status: 0 the tool succeeded; 1 the tool refused (its code and message on
stderr) or the server could not be reached; 2 bad usage: an unknown tool, bad
JSON, no token, a gate field without an answer.`,
		Args: cobra.ArbitraryArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&o.url, "url", defaultMCPURL, "the server's MCP endpoint (Streamable HTTP)")
	fs.StringVar(&o.token, "token", "", "the task token (@path reads it from a file); default TOLLGATE_TOKEN")
	fs.BoolVar(&o.stdio, "stdio", false, `run "tollgate stdio" (this binary) and call it over stdin/stdout instead of HTTP`)
	fs.StringArrayVar(&o.answers, "answer", nil, "answer a gate's form field without asking, e.g. --answer approve=true (repeatable)")
	fs.BoolVar(&o.decline, "decline", false, "decline every gate the call asks")
	fs.BoolVar(&o.noElicit, "no-elicitation", false, "do not declare the elicitation capability: gates come back as approval_required")
	fs.BoolVar(&o.asJSON, "json", false, "print the structured result (or the tool list) as JSON")
	fs.BoolVar(&o.list, "list", false, "list the tools with the scopes and gates each needs, instead of calling one")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up on the call after this long (gates included)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := applyEnv(cmd.Flags()); err != nil {
			return err
		}
		// Neither --url nor TOLLGATE_CALL_URL: the server every other command
		// talks to (TOLLGATE_ISSUER), so one export moves the whole CLI.
		if !cmd.Flags().Changed("url") {
			if iss := os.Getenv("TOLLGATE_ISSUER"); iss != "" {
				o.url = iss
			}
		}
		var childArgs []string
		if dash := cmd.ArgsLenAtDash(); dash >= 0 {
			args, childArgs = args[:dash], args[dash:]
			if !o.stdio {
				return usage("arguments after -- go to tollgate stdio, so they need --stdio")
			}
		}
		return runCall(cmd, o, args, childArgs)
	}
	return cmd
}

func runCall(cmd *cobra.Command, o callOptions, args, childArgs []string) error {
	switch {
	case o.list && len(args) > 0:
		return usage("--list takes no tool name; run tollgate call --list, then tollgate call TOOL")
	case !o.list && len(args) == 0:
		return usage("name the tool to call, e.g. tollgate call whoami (tollgate call --list lists them)")
	case len(args) > 2:
		return usage("tollgate call takes TOOL and one JSON object of arguments; quote the JSON, e.g. '{\"domain\":\"shop.example\"}'")
	case o.noElicit && (len(o.answers) > 0 || o.decline):
		return usage("--no-elicitation asks no gate here, so --answer and --decline have nothing to answer")
	}
	in := &valueReader{stdin: cmd.InOrStdin()}
	var arguments map[string]any
	if !o.list {
		var err error
		if arguments, err = callArguments(in, args[1:]); err != nil {
			return err
		}
	}
	answers, err := parseAnswers(o.answers)
	if err != nil {
		return err
	}
	tty := newTerminal(cmd.InOrStdin(), cmd.ErrOrStderr(), answers, o.decline)
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	c, closeFn, err := connectCall(ctx, o, in, tty, childArgs)
	if err != nil {
		return err
	}
	defer closeFn()
	out := cmd.OutOrStdout()
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		return connectionError(err, o)
	}
	if o.list {
		return printTools(out, tools.Tools, o.asJSON)
	}
	name := args[0]
	i := slices.IndexFunc(tools.Tools, func(t mcp.Tool) bool { return t.Name == name })
	if i < 0 {
		return usage("unknown tool %q; tollgate call --list lists the %d tools this server offers", name, len(tools.Tools))
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, arguments
	res, err := c.CallTool(ctx, req)
	if err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return ue
		}
		if strings.Contains(err.Error(), "insufficient_scope") {
			// 403 at the HTTP edge: the token lacks a scope of this tool.
			scopes := []string{}
			if m := tools.Tools[i].Meta; m != nil {
				scopes = metaStrings(m.AdditionalFields[metaScopes])
			}
			return fmt.Errorf("the token lacks a scope %s needs (403 insufficient_scope): it needs %q; exchange a token with --scope %q. Nothing was done", name, strings.Join(scopes, " "), strings.Join(scopes, " "))
		}
		return connectionError(err, o)
	}
	if u := tty.unused(); len(u) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "tollgate: note: no gate asked for --answer %s\n", strings.Join(u, ", "))
	}
	return printResult(out, cmd.ErrOrStderr(), name, res, o.asJSON)
}

// callArguments parses the optional JSON object of arguments (@path and -
// read it).
func callArguments(in *valueReader, rest []string) (map[string]any, error) {
	if len(rest) == 0 {
		return map[string]any{}, nil
	}
	raw, err := in.read("the arguments", rest[0])
	if err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, usage("the arguments must be one JSON object, e.g. '{\"domain\":\"shop.example\"}' (quote it for the shell); got %q", raw)
	}
	return m, nil
}

// connectCall starts an MCP client over HTTP or a stdio child and
// initializes it, so the first call needs no session of its own.
func connectCall(ctx context.Context, o callOptions, in *valueReader, tty *terminal, childArgs []string) (*client.Client, func(), error) {
	token := o.token // or TOLLGATE_TOKEN, by applyEnv
	if token != "" {
		t, err := in.token("--token", token)
		if err != nil {
			return nil, nil, err
		}
		token = t
	}
	if in.stdinUsed != "" {
		tty.noInput = "stdin held " + in.stdinUsed
	}
	var opts []client.ClientOption
	if !o.noElicit {
		opts = append(opts,
			client.WithElicitationHandler(tty),
			client.WithClientCapabilities(mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapability{Form: &struct{}{}, URL: &struct{}{}}}),
			// A URL gate comes back while the human is still on the page,
			// once per Enter; bound the rounds, not the human.
			client.WithMaxInputRoundTrips(50))
	}
	var (
		tr     transport.Interface
		stderr = &lockedBuffer{b: &bytes.Buffer{}}
	)
	if o.stdio {
		self, err := os.Executable()
		if err != nil {
			return nil, nil, fmt.Errorf("cannot find this binary to run tollgate stdio: %v", err)
		}
		env := os.Environ()
		if token != "" {
			env = append(env, "TOLLGATE_TOKEN="+token)
		}
		tr = transport.NewStdioWithOptions(self, env, append([]string{"stdio"}, childArgs...), transport.WithCommandStderrWriter(stderr))
	} else {
		u, err := mcpURL(o.url)
		if err != nil {
			return nil, nil, err
		}
		if token == "" {
			return nil, nil, usage("no task token: pass --token T (or @path) or set TOLLGATE_TOKEN; get one with tollgate token exchange ... --token-only, or try --stdio against the sandbox")
		}
		h, err := transport.NewStreamableHTTP(u,
			transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}),
			transport.WithHTTPTimeout(o.timeout))
		if err != nil {
			return nil, nil, usage("--url %q: %v", o.url, err)
		}
		tr = h
	}
	c := client.NewClient(tr, opts...)
	fail := func(err error) (*client.Client, func(), error) {
		_ = c.Close()
		if s := strings.TrimSpace(stderr.String()); o.stdio && s != "" {
			err = fmt.Errorf("%w\ntollgate stdio said:\n%s", err, s)
		}
		return nil, nil, err
	}
	// Start's context lives as long as the client: it ties the stdio child
	// to it.
	if err := c.Start(context.WithoutCancel(ctx)); err != nil {
		return fail(connectionError(err, o))
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "tollgate-call", Version: compose.Version}
	if _, err := c.Initialize(ctx, req); err != nil {
		return fail(connectionError(err, o))
	}
	return c, func() { _ = c.Close() }, nil
}

// mcpURL checks --url; a base URL without a path gets /mcp.
func mcpURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usage("--url %q is not an MCP endpoint; give one like %s", raw, defaultMCPURL)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", usage("--url must carry no credentials and no query; the token goes in --token")
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/mcp"
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		fmt.Fprintf(os.Stderr, "tollgate: warning: sending the task token over plain http to %s; use https beyond loopback\n", u.Host)
	}
	return u.String(), nil
}

// connectionError says what to do about a transport failure.
func connectionError(err error, o callOptions) error {
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		return ue
	case errors.Is(err, transport.ErrUnauthorized), errors.Is(err, transport.ErrAuthorizationRequired):
		return fmt.Errorf("the server refused the token (401): it is expired, revoked or not for %s; get a fresh one with tollgate token exchange", o.url)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer within --timeout %s: %v", o.timeout, err)
	case o.stdio:
		return fmt.Errorf("tollgate stdio: %v", err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return fmt.Errorf("%s: %v (is the server running? tollgate serve, or make run)", o.url, err)
	}
	return fmt.Errorf("%s: %v", o.url, err)
}

// printResult prints a tool's result; a refusal is exit 1 with its code
// and message on stderr.
func printResult(out, errOut io.Writer, name string, res *mcp.CallToolResult, asJSON bool) error {
	if asJSON {
		v := res.StructuredContent
		if v == nil {
			v = map[string]any{"content": res.Content}
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n", b)
	} else if !res.IsError {
		for _, c := range res.Content {
			if t, ok := c.(mcp.TextContent); ok {
				fmt.Fprintln(out, prettyJSON(t.Text))
			}
		}
	}
	if !res.IsError {
		return nil
	}
	return &toolRefusal{name: name, res: res}
}

// toolRefusal is a tool's isError result: exit 1.
type toolRefusal struct {
	name string
	res  *mcp.CallToolResult
}

func (e *toolRefusal) Error() string {
	b, _ := json.Marshal(e.res.StructuredContent)
	var r struct {
		Error struct {
			Code           string         `json:"code"`
			Message        string         `json:"message"`
			ProviderCalled bool           `json:"provider_called"`
			Details        map[string]any `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &r) == nil && r.Error.Code != "" {
		return fmt.Sprintf("%s refused: %s: %s", e.name, r.Error.Code, r.Error.Message)
	}
	var txt []string
	for _, c := range e.res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			txt = append(txt, t.Text)
		}
	}
	return fmt.Sprintf("%s refused: %s", e.name, strings.Join(txt, " "))
}

// lockedBuffer collects the stdio child's stderr, written from the
// transport's goroutine, for the error message if the call fails.
type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func prettyJSON(s string) string {
	var b bytes.Buffer
	if json.Valid([]byte(s)) && json.Indent(&b, []byte(s), "", "  ") == nil {
		return b.String()
	}
	return s
}

// Tool _meta keys the server sets on every tool (tools.MetaScopes,
// tools.MetaGates): what a token needs, and which human gates it may ask.
const (
	metaScopes = "tollgate.dev/scopes"
	metaGates  = "tollgate.dev/gates"
)

type listedTool struct {
	Name        string   `json:"name"`
	Scopes      []string `json:"scopes"`
	Gates       []string `json:"gates"`
	ReadOnly    bool     `json:"read_only"`
	Description string   `json:"description"`
}

// printTools prints tools/list: name, scopes, gates and the first sentence
// of each description.
func printTools(out io.Writer, ts []mcp.Tool, asJSON bool) error {
	list := make([]listedTool, 0, len(ts))
	for _, t := range ts {
		lt := listedTool{Name: t.Name, Scopes: []string{}, Gates: []string{}, Description: t.Description}
		if t.Meta != nil {
			lt.Scopes = metaStrings(t.Meta.AdditionalFields[metaScopes])
			lt.Gates = metaStrings(t.Meta.AdditionalFields[metaGates])
		}
		lt.ReadOnly = t.Annotations.ReadOnlyHint != nil && *t.Annotations.ReadOnlyHint
		list = append(list, lt)
	}
	slices.SortFunc(list, func(a, b listedTool) int { return strings.Compare(a.Name, b.Name) })
	if asJSON {
		b, err := json.MarshalIndent(list, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s\n", b)
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOOL\tSCOPES\tGATES\tWHAT IT DOES")
	for _, t := range list {
		scopes := strings.Join(t.Scopes, " ")
		if scopes == "" {
			scopes = "(any valid token)"
		}
		gates := strings.Join(t.Gates, " ")
		if gates == "" {
			gates = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, scopes, gates, firstSentence(t.Description))
	}
	return tw.Flush()
}

func metaStrings(v any) []string {
	out := []string{}
	if xs, ok := v.([]any); ok {
		for _, x := range xs {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}
