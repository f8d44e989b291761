package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/term"
)

// terminal answers a tool's human gates (MCP elicitations) for tollgate
// call: from --answer, or by asking on the terminal. mcp-go's client runs
// the multi-round-trip loop and calls Elicit once per input request.
type terminal struct {
	in      io.Reader
	out     io.Writer // prompts and gate messages: stderr
	answers map[string]string
	decline bool
	// noInput, when set, says why nothing may be read from in.
	noInput string
	tty     bool

	mu        sync.Mutex // one gate on the terminal at a time
	used      map[string]bool
	lines     chan string
	startOnce sync.Once
}

func newTerminal(in io.Reader, out io.Writer, answers map[string]string, decline bool) *terminal {
	t := &terminal{in: in, out: out, answers: answers, decline: decline, used: map[string]bool{}}
	if f, ok := in.(*os.File); ok {
		t.tty = term.IsTerminal(int(f.Fd()))
	}
	return t
}

// parseAnswers reads --answer field=value pairs.
func parseAnswers(raw []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range raw {
		k, v, ok := strings.Cut(a, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usage("--answer %q: give field=value, e.g. --answer approve=true", a)
		}
		m[strings.TrimSpace(k)] = v
	}
	return m, nil
}

// readLine returns the next line typed, or false at the end of input.
// One goroutine reads for every prompt, so no line is lost between them.
func (t *terminal) readLine(ctx context.Context) (string, bool) {
	t.startOnce.Do(func() {
		t.lines = make(chan string)
		go func() {
			defer close(t.lines)
			sc := bufio.NewScanner(t.in)
			for sc.Scan() {
				t.lines <- sc.Text()
			}
		}()
	})
	select {
	case l, ok := <-t.lines:
		return strings.TrimSpace(l), ok
	case <-ctx.Done():
		return "", false
	}
}

func (t *terminal) Elicit(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := r.Params
	fmt.Fprintf(t.out, "\n┌ the server asks (%s):\n%s\n", orDefault(p.Mode, "form"), prefixLines(p.Message, "│ "))
	if t.decline {
		fmt.Fprintln(t.out, "└ declined (--decline)")
		return elicitResult(mcp.ElicitationResponseActionDecline, nil), nil
	}
	if p.Mode == mcp.ElicitationModeURL {
		return t.url(ctx, p)
	}
	return t.form(ctx, p)
}

// url prints the link and waits for the human to say they finished.
func (t *terminal) url(ctx context.Context, p mcp.ElicitationParams) (*mcp.ElicitationResult, error) {
	fmt.Fprintf(t.out, "│ open: %s\n", p.URL)
	if t.noInput != "" {
		fmt.Fprintf(t.out, "└ cancelled: this gate needs a human at the page, and %s\n", t.noInput)
		return elicitResult(mcp.ElicitationResponseActionCancel, nil), nil
	}
	fmt.Fprint(t.out, "└ finish on that page, then press Enter (Ctrl-D cancels): ")
	if _, ok := t.readLine(ctx); !ok {
		fmt.Fprintln(t.out, "\n  cancelled")
		return elicitResult(mcp.ElicitationResponseActionCancel, nil), nil
	}
	return elicitResult(mcp.ElicitationResponseActionAccept, nil), nil
}

// formSchema is the part of an elicitation's requestedSchema a terminal
// needs: flat properties of primitive types (the MCP form subset).
type formSchema struct {
	Properties map[string]fieldSchema `json:"properties"`
	Required   []string               `json:"required"`
}

type fieldSchema struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Enum        []any  `json:"enum"`
	OneOf       []struct {
		Const any    `json:"const"`
		Title string `json:"title"`
	} `json:"oneOf"`
	Const   any  `json:"const"`
	Default any  `json:"default"`
	Minimum *int `json:"minimum"`
	Maximum *int `json:"maximum"`
}

// choices are the values an enum field takes.
func (f fieldSchema) choices() []string {
	var out []string
	for _, v := range f.Enum {
		out = append(out, fmt.Sprint(v))
	}
	for _, o := range f.OneOf {
		out = append(out, fmt.Sprint(o.Const))
	}
	return out
}

// describe is how a field is shown: its type, choices and default.
func (f fieldSchema) describe(required bool) string {
	var b strings.Builder
	b.WriteString(orDefault(f.Type, "string"))
	if c := f.choices(); len(c) > 0 {
		fmt.Fprintf(&b, ", one of: %s", strings.Join(c, ", "))
	}
	if f.Type == "boolean" {
		b.WriteString(", yes or no")
	}
	if f.Minimum != nil || f.Maximum != nil {
		fmt.Fprintf(&b, ", %s..%s", intOr(f.Minimum, ""), intOr(f.Maximum, ""))
	}
	if f.Default != nil {
		fmt.Fprintf(&b, ", default %v", f.Default)
	}
	if required {
		b.WriteString(", required")
	}
	return b.String()
}

func (t *terminal) form(ctx context.Context, p mcp.ElicitationParams) (*mcp.ElicitationResult, error) {
	b, _ := json.Marshal(p.RequestedSchema)
	var s formSchema
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("the gate's form is not a flat JSON Schema object: %v", err)
	}
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	// Required fields first, then by name: the same order every time.
	slices.SortFunc(names, func(a, b string) int {
		ra, rb := slices.Contains(s.Required, a), slices.Contains(s.Required, b)
		if ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	content := map[string]any{}
	for _, n := range names {
		f, required := s.Properties[n], slices.Contains(s.Required, n)
		label := orDefault(f.Title, n)
		if f.Description != "" {
			label += " — " + f.Description
		}
		if raw, ok := t.answers[n]; ok {
			t.used[n] = true
			v, err := fieldValue(f, raw)
			if err != nil {
				return nil, usage("--answer %s=%s: %v", n, raw, err)
			}
			fmt.Fprintf(t.out, "│ %s (%s): %v  [--answer]\n", label, f.describe(required), v)
			content[n] = v
			continue
		}
		if f.Const != nil {
			content[n] = f.Const
			continue
		}
		if !t.tty || t.noInput != "" {
			why := "stdin is not a terminal"
			if t.noInput != "" {
				why = t.noInput
			}
			if !required {
				continue
			}
			return nil, usage("the gate asks for %s (%s) and %s; answer it with --answer %s=VALUE, or --decline", n, f.describe(required), why, n)
		}
		v, ok, err := t.ask(ctx, label, n, f, required)
		if err != nil {
			return nil, err
		}
		if !ok {
			fmt.Fprintln(t.out, "\n└ cancelled")
			return elicitResult(mcp.ElicitationResponseActionCancel, nil), nil
		}
		if v != nil {
			content[n] = v
		}
	}
	enc, _ := json.Marshal(content)
	fmt.Fprintf(t.out, "└ accept %s\n", enc)
	return elicitResult(mcp.ElicitationResponseActionAccept, content), nil
}

// ask prompts for one field until it gets a valid value; false at the end
// of input (cancel).
func (t *terminal) ask(ctx context.Context, label, name string, f fieldSchema, required bool) (any, bool, error) {
	for range 5 {
		fmt.Fprintf(t.out, "│ %s (%s): ", label, f.describe(required))
		line, ok := t.readLine(ctx)
		if !ok {
			return nil, false, nil
		}
		if line == "" {
			if f.Default != nil {
				return f.Default, true, nil
			}
			if !required {
				return nil, true, nil
			}
			fmt.Fprintln(t.out, "│   an answer is needed (Ctrl-D cancels)")
			continue
		}
		v, err := fieldValue(f, line)
		if err == nil {
			return v, true, nil
		}
		fmt.Fprintf(t.out, "│   %v\n", err)
	}
	return nil, false, usage("no valid answer for %s after 5 tries", name)
}

// fieldValue converts a typed answer to the field's JSON type.
func fieldValue(f fieldSchema, raw string) (any, error) {
	raw = strings.TrimSpace(raw)
	if c := f.choices(); len(c) > 0 && !slices.Contains(c, raw) {
		return nil, fmt.Errorf("%q is not one of: %s", raw, strings.Join(c, ", "))
	}
	switch f.Type {
	case "boolean":
		switch strings.ToLower(raw) {
		case "true", "yes", "y":
			return true, nil
		case "false", "no", "n":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not yes or no (true or false)", raw)
	case "integer":
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", raw)
		}
		if (f.Minimum != nil && n < int64(*f.Minimum)) || (f.Maximum != nil && n > int64(*f.Maximum)) {
			return nil, fmt.Errorf("%d is outside %s..%s", n, intOr(f.Minimum, ""), intOr(f.Maximum, ""))
		}
		return n, nil
	case "number":
		n, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", raw)
		}
		return n, nil
	}
	return raw, nil
}

// unused lists --answer fields no gate asked for.
func (t *terminal) unused() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for k := range t.answers {
		if !t.used[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func elicitResult(a mcp.ElicitationResponseAction, content map[string]any) *mcp.ElicitationResult {
	r := &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: a}}
	if content != nil {
		r.Content = content
	}
	return r
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func intOr(p *int, d string) string {
	if p == nil {
		return d
	}
	return strconv.Itoa(*p)
}

func prefixLines(s, prefix string) string {
	var b bytes.Buffer
	for l := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + l + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
