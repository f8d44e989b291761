package main

import (
	"bufio"
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestTerminalAnswersGates: what the terminal human answers, for each
// kind of gate and input.
func TestTerminalAnswersGates(t *testing.T) {
	form := map[string]any{
		"type": "object",
		"properties": map[string]any{
			"approve": map[string]any{"type": "boolean", "title": "Approve"},
			"years":   map[string]any{"type": "integer", "default": 1},
			"mode":    map[string]any{"type": "string", "enum": []any{"strict", "full"}},
		},
		"required": []any{"approve", "mode"},
	}
	formReq := mcp.ElicitationRequest{Params: mcp.ElicitationParams{Message: "Buy shop.example for 11.17 USD?", RequestedSchema: form}}
	urlReq := mcp.ElicitationRequest{Params: mcp.ElicitationParams{Mode: mcp.ElicitationModeURL, Message: "Add a card", URL: "http://127.0.0.1:7420/approvals/x/billing", ElicitationID: "x"}}
	rows := []struct {
		name    string
		req     mcp.ElicitationRequest
		yes     bool
		input   string
		action  mcp.ElicitationResponseAction
		content map[string]any
		shows   string
	}{
		{name: "form: typed answers, a default taken, a bad choice asked again", req: formReq, input: "y\nloose\nfull\n\n",
			action: answerAccept, content: map[string]any{"approve": true, "mode": "full", "years": float64(1)}, shows: "not one of"},
		{name: "form: a whole number is parsed", req: formReq, input: "n\nstrict\n3\n",
			action: answerAccept, content: map[string]any{"approve": false, "mode": "strict", "years": int64(3)}, shows: "(integer)"},
		{name: "form: decline at any field", req: formReq, input: "decline\n", action: answerDecline, shows: "Buy shop.example"},
		{name: "form: end of input cancels", req: formReq, input: "", action: answerCancel, shows: "no answer on the terminal"},
		{name: "form with -yes: yes and first choices", req: formReq, yes: true,
			action: answerAccept, content: map[string]any{"approve": true, "mode": "strict", "years": float64(1)}, shows: "-yes: accept"},
		{name: "url: Enter once the page is done", req: urlReq, input: "\n", action: answerAccept, shows: "open: http://127.0.0.1:7420/approvals/x/billing"},
		{name: "url: cancel", req: urlReq, input: "cancel\n", action: answerCancel},
		{name: "url with -yes cannot open a browser", req: urlReq, yes: true, action: answerCancel, shows: "cannot complete a page"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			h := &terminal{in: bufio.NewReader(strings.NewReader(tc.input)), out: &out, yes: tc.yes}
			res, err := h.Elicit(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Action != tc.action {
				t.Fatalf("action %s, want %s\n%s", res.Action, tc.action, out.String())
			}
			if tc.content != nil {
				got, _ := res.Content.(map[string]any)
				if !reflect.DeepEqual(got, tc.content) {
					t.Fatalf("content %#v, want %#v", got, tc.content)
				}
			}
			if !strings.Contains(out.String(), tc.shows) {
				t.Fatalf("the terminal does not show %q:\n%s", tc.shows, out.String())
			}
		})
	}
}
