package tools

import (
	"context"
	"sync/atomic"
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
	entered, unblock := make(chan struct{}), make(chan struct{})
	var runs atomic.Int32
	slow := Tool{def: mcp.NewTool("slow", mcp.WithDescription("waits"), mcp.WithInputSchema[struct{}](), mcp.WithOutputSchema[struct{}](), annotate(true, false, true, false)), Scopes: []string{"catalog:read"},
		run: handler[struct{}, struct{}]{do: func(ctx context.Context, c Call[struct{}]) (struct{}, error) {
			if runs.Add(1) == 1 {
				close(entered)
				<-unblock
			}
			return struct{}{}, nil
		}}}
	h := newHarness(t, func(*harness) []Tool { return []Tool{slow} })
	deps := h.deps
	deps.Guard.InFlight = limits.NewInFlight(4, 1, 2*time.Second)
	g := newGuard(deps)
	req := mcp.CallToolRequest{}
	req.Params.Name = "slow"
	first := make(chan *mcp.CallToolResult)
	go func() { first <- g.call(context.Background(), slow, req) }()
	<-entered
	res := g.call(context.Background(), slow, req)
	if !res.IsError || resultCode(res) != limits.TooMany || runs.Load() != 1 {
		t.Fatalf("second call while the first runs: %+v (handler ran %d times); want too_many_requests", res, runs.Load())
	}
	close(unblock)
	if r := <-first; r.IsError {
		t.Fatalf("first call: %+v", r)
	}
	if res := g.call(context.Background(), slow, req); res.IsError || runs.Load() != 2 {
		t.Fatalf("after the first call ended: %+v", res)
	}
	// Claims verified at the HTTP edge: the edge bounded the request.
	ctx := WithClaims(context.Background(), aliceClaims(t, []string{"catalog:read"}), "")
	deps.Guard.InFlight = limits.NewInFlight(1, 1, time.Second)
	release, _ := deps.Guard.InFlight.Acquire("user:alice@example.com", "sid-1")
	defer release()
	if res := newGuard(deps).call(ctx, slow, req); res.IsError {
		t.Fatalf("an edge-identified call was bounded again by the guard: %+v", res)
	}
}
