package tools

import (
	"context"
	"log/slog"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// Logging logs each tool call with its outcome and duration, and turns a Go
// error escaping a handler (a bug) into an internal tool error.
func Logging(log *slog.Logger) Middleware {
	return func(t Tool, next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			start := time.Now()
			res, err := next(WithTool(ctx, t), req)
			outcome := "ok"
			switch {
			case err != nil:
				log.Error("tool handler returned an error", "tool", t.Def.Name, "err", err)
				res, err = Refuse(fault.Wrap(err, fault.Internal, "internal error in tollgate (the operator's log has the details); check spend_status before retrying"), false), nil
				outcome = "internal"
			case res != nil && res.IsError:
				outcome = "refused"
			case res != nil && res.NeedsInput():
				outcome = "input_required"
			}
			log.Info("tool call", "tool", t.Def.Name, "outcome", outcome, "ms", time.Since(start).Milliseconds())
			return res, err
		}
	}
}
