package testkit

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// CountHook counts what reaches Redis over the network: each single
// command and each pipeline is one round trip. Add it with AddHook.
type CountHook struct{ N atomic.Int64 }

func (h *CountHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *CountHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.N.Add(1)
		return next(ctx, cmd)
	}
}

func (h *CountHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.N.Add(1)
		return next(ctx, cmds)
	}
}

// WantCode fails the test unless err carries code ("" for success).
func WantCode(t testing.TB, err error, code fault.Code) {
	t.Helper()
	switch {
	case code == "" && err != nil:
		t.Fatalf("got %v, want success", err)
	case code != "" && err == nil:
		t.Fatalf("got success, want %s", code)
	case code != "" && fault.CodeOf(err) != code:
		t.Fatalf("got %v (code %s), want %s", err, fault.CodeOf(err), code)
	}
}
