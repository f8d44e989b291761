package redisconn

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterStateReload is how often a Cluster client re-reads the slot map
// when nothing else makes it. go-redis's default (60 s) is too long: a
// master killed and replaced by its replica answers no MOVED, so every key
// of its slots fails with "connection refused" until the map is re-read.
// The chaos suite (e2e/chaos) measured a minute of temporarily_unavailable
// for the principals whose keys lived there.
const ClusterStateReload = 2 * time.Second

// newClient is redis.NewUniversalClient, except that a Cluster client
// re-reads its slot map every ClusterStateReload and at once after a
// network error, so that a failover is followed within about a second of
// the cluster promoting a replica.
func newClient(opts *redis.UniversalOptions) redis.UniversalClient {
	if !opts.IsClusterMode {
		return redis.NewUniversalClient(opts)
	}
	co := opts.Cluster()
	co.ClusterStateReloadInterval = ClusterStateReload
	c := redis.NewClusterClient(co)
	c.AddHook(reloadOnNetError{c})
	return c
}

// reloadOnNetError asks the cluster client to re-read its slot map
// (asynchronously, at most every 200 ms) when a command or pipeline fails
// below Redis: a node gone or unreachable.
type reloadOnNetError struct{ c *redis.ClusterClient }

func (h reloadOnNetError) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h reloadOnNetError) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(ctx, err)
		return err
	}
}

func (h reloadOnNetError) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.after(ctx, err)
		return err
	}
}

func (h reloadOnNetError) after(ctx context.Context, err error) {
	if isNetError(err) {
		h.c.ReloadState(ctx)
	}
}

func isNetError(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
