package tools

import (
	"context"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/limits"
)

// TestGuardBoundsCallsInFlight: a caller the guard identifies itself
// (stdio) has at most --inflight-per-session calls running; one more is a
// too_many_requests tool error that ran nothing, and the slot comes back
// when the running call ends. Callers identified at the HTTP edge are
// bounded there (429), not here.
func TestGuardBoundsCallsInFlight(t *testing.T) {
	log := &stepLog{}
	v := &fakeVerifier{log: log, token: harnessToken}
	v.set(aliceClaims(t, []string{"catalog:read"}))
	cfg := GuardConfig{Verifier: v, InFlight: limits.NewInFlight(4, 1, 2*time.Second),
		Credentials: func(context.Context) (string, error) { return harnessToken, nil }}
	tool := Tool{def: mcp.NewTool("slow"), Scopes: []string{"catalog:read"}}
	entered, unblock := make(chan struct{}), make(chan struct{})
	runs := 0
	h := withGuard(cfg)(tool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		runs++
		if runs == 1 {
			close(entered)
			<-unblock
		}
		return mcp.NewToolResultText("done"), nil
	})
	first := make(chan *mcp.CallToolResult)
	go func() {
		res, _ := h(context.Background(), mcp.CallToolRequest{})
		first <- res
	}()
	<-entered
	res, _ := h(context.Background(), mcp.CallToolRequest{})
	if !res.IsError || resultCode(res) != limits.TooMany || runs != 1 {
		t.Fatalf("second call while the first runs: %+v (handler ran %d times); want too_many_requests", res, runs)
	}
	close(unblock)
	if r := <-first; r.IsError {
		t.Fatalf("first call: %+v", r)
	}
	if res, _ := h(context.Background(), mcp.CallToolRequest{}); res.IsError || runs != 2 {
		t.Fatalf("after the first call ended: %+v", res)
	}
	// Claims verified at the HTTP edge: the edge bounded the request.
	ctx := WithClaims(context.Background(), aliceClaims(t, []string{"catalog:read"}), "")
	cfg.InFlight = limits.NewInFlight(1, 1, time.Second)
	release, _ := cfg.InFlight.Acquire("user:alice@example.com", "sid-1")
	defer release()
	h2 := withGuard(cfg)(tool, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("done"), nil
	})
	if res, _ := h2(ctx, mcp.CallToolRequest{}); res.IsError {
		t.Fatalf("an edge-identified call was bounded again by the guard: %+v", res)
	}
}
