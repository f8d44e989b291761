package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
)

// terminal is the human at the gates: it shows what tollgate asks and
// reads the answers from the terminal, as a CLI would; with -yes it
// accepts every form gate the way a consenting human would (sandbox only).
type terminal struct {
	mu  sync.Mutex
	in  *bufio.Reader
	out io.Writer
	yes bool
}

var answerAccept, answerDecline, answerCancel = mcp.ElicitationResponseActionAccept, mcp.ElicitationResponseActionDecline, mcp.ElicitationResponseActionCancel

func result(a mcp.ElicitationResponseAction, content map[string]any) *mcp.ElicitationResult {
	r := &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: a}}
	if content != nil {
		r.Content = content
	}
	return r
}

// Elicit answers one gate.
func (h *terminal) Elicit(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := r.Params
	mode := p.Mode
	if mode == "" {
		mode = mcp.ElicitationModeForm
	}
	fmt.Fprintf(h.out, "   ┌ tollgate asks the human (%s):\n", mode)
	for _, l := range strings.Split(strings.TrimSpace(p.Message), "\n") {
		fmt.Fprintf(h.out, "   │ %s\n", l)
	}
	if mode == mcp.ElicitationModeURL {
		fmt.Fprintf(h.out, "   │ open: %s\n", p.URL)
		if h.yes {
			fmt.Fprintf(h.out, "   └ -yes cannot complete a page in a browser: cancelled (run without -yes and open the link)\n")
			return result(answerCancel, nil), nil
		}
		line, ok := h.ask("   └ finish on that page, then press Enter (or type cancel): ")
		if !ok || strings.EqualFold(line, "cancel") {
			return result(answerCancel, nil), nil
		}
		return result(answerAccept, nil), nil
	}
	fields := formFields(p.RequestedSchema)
	if h.yes {
		content := consent(fields)
		b, _ := json.Marshal(content)
		fmt.Fprintf(h.out, "   └ -yes: accept %s\n", b)
		return result(answerAccept, content), nil
	}
	content := map[string]any{}
	for _, f := range fields {
		for {
			line, ok := h.ask(fmt.Sprintf("   │ %s: ", f.prompt()))
			switch {
			case !ok:
				fmt.Fprintf(h.out, "   └ no answer on the terminal: cancelled (in the sandbox, -yes answers for you)\n")
				return result(answerCancel, nil), nil
			case strings.EqualFold(line, "decline"), strings.EqualFold(line, "cancel"):
				fmt.Fprintf(h.out, "   └ %s\n", strings.ToLower(line))
				return result(mcp.ElicitationResponseAction(strings.ToLower(line)), nil), nil
			case line == "" && f.def != nil:
				content[f.name] = f.def
			case line == "" && !f.required:
			default:
				v, err := f.parse(line)
				if err != nil {
					fmt.Fprintf(h.out, "   │ %v; try again (or type decline)\n", err)
					continue
				}
				content[f.name] = v
			}
			break
		}
	}
	fmt.Fprintf(h.out, "   └ accept\n")
	return result(answerAccept, content), nil
}

// ask prints prompt and reads one line; false at end of input.
func (h *terminal) ask(prompt string) (string, bool) {
	fmt.Fprint(h.out, prompt)
	line, err := h.in.ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(h.out)
		return "", false
	}
	return strings.TrimSpace(line), true
}

// field is one property of a form gate's requested schema.
type field struct {
	name, typ, title string
	required         bool
	enum             []any
	def              any
}

func (f field) prompt() string {
	s := f.name
	if f.title != "" && f.title != f.name {
		s += " — " + f.title
	}
	switch {
	case len(f.enum) > 0:
		s += fmt.Sprintf(" (one of %v)", f.enum)
	case f.typ == "boolean":
		s += " (y/n)"
	case f.typ != "":
		s += " (" + f.typ + ")"
	}
	if f.def != nil {
		s += fmt.Sprintf(" [%v]", f.def)
	}
	return s
}

func (f field) parse(s string) (any, error) {
	var v any
	switch f.typ {
	case "boolean":
		switch strings.ToLower(s) {
		case "y", "yes", "true":
			v = true
		case "n", "no", "false":
			v = false
		default:
			return nil, fmt.Errorf("answer y or n")
		}
	case "integer":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		v = n
	case "number":
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		v = n
	default:
		v = s
	}
	if len(f.enum) > 0 && !slices.ContainsFunc(f.enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		return nil, fmt.Errorf("%q is not one of %v", s, f.enum)
	}
	return v, nil
}

// formFields reads a form's requested schema: required fields first, then
// by name.
func formFields(schema any) []field {
	b, _ := json.Marshal(schema)
	var sc struct {
		Properties map[string]struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Enum    []any  `json:"enum"`
			Const   any    `json:"const"`
			Default any    `json:"default"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	_ = json.Unmarshal(b, &sc)
	var out []field
	for name, p := range sc.Properties {
		f := field{name: name, typ: p.Type, title: p.Title, required: slices.Contains(sc.Required, name), enum: p.Enum, def: p.Default}
		if p.Const != nil {
			f.enum = []any{p.Const}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b field) int {
		if a.required != b.required {
			if a.required {
				return -1
			}
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return out
}

// consent fills a form as a consenting human: yes to every boolean, the
// default or first choice elsewhere.
func consent(fields []field) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		switch {
		case len(f.enum) > 0:
			out[f.name] = f.enum[0]
		case f.typ == "boolean":
			out[f.name] = true
		case f.def != nil:
			out[f.name] = f.def
		}
	}
	return out
}
