package fuse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Wait asks that a fused script be followed by Redis's WAIT: the master
// that ran it answers once Replicas replicas have acknowledged every write
// the connection made, or when Timeout has passed, with how many did.
// Replicas 0 waits for nothing (Run sends no extra command).
//
// WAIT is not consensus: a replica that acknowledged is not necessarily
// the one promoted when the master fails. It narrows the window in which
// an acknowledged write can be lost; it does not close it.
type Wait struct {
	Replicas int
	Timeout  time.Duration
}

// Acks is what the WAIT after a fused script answered: Got of the Asked
// replicas acknowledged its writes in time. A run that failed leaves it
// untouched (zero).
type Acks struct {
	Asked, Got int
}

// Short reports that fewer replicas than asked acknowledged the script.
func (a *Acks) Short() bool { return a != nil && a.Got < a.Asked }

type waitKey struct{}

type waitReq struct {
	w    Wait
	acks *Acks
}

// WithWait marks ctx so that every Run under it sends its script and a
// WAIT for w in one pipeline to the node that runs the script (one round
// trip), and records the acknowledgements in the returned Acks (the last
// Run's). With w.Replicas 0 ctx is returned unchanged and Run waits for
// nothing.
func WithWait(ctx context.Context, w Wait) (context.Context, *Acks) {
	acks := &Acks{}
	if w.Replicas <= 0 {
		return ctx, acks
	}
	return context.WithValue(ctx, waitKey{}, waitReq{w, acks}), acks
}

func waitOf(ctx context.Context) (Wait, *Acks) {
	if r, ok := ctx.Value(waitKey{}).(waitReq); ok {
		return r.w, r.acks
	}
	return Wait{}, nil
}

// RunWait runs steps as one script followed by WAIT (see WithWait) and
// answers how many replicas acknowledged it.
func RunWait(ctx context.Context, rdb redis.Scripter, w Wait, steps ...Step) (Result, int, error) {
	wctx, acks := WithWait(ctx, w)
	res, err := Run(wctx, rdb, steps...)
	return res, acks.Got, err
}

// pipeliner is a client that pipelines to one node (a single Redis or the
// master a Sentinel client follows).
type pipeliner interface {
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// runWaited sends the script and WAIT in one pipeline. On a Cluster the
// pipeline goes to the master of the first key's slot: WAIT has no key,
// and a Cluster client would send it to another node (or refuse it, its
// request policy being all shards). EVALSHA is sent once this process
// has sent the script's text; NOSCRIPT (a new master, a flushed cache) is
// answered by sending the text again, with WAIT again.
func runWaited(ctx context.Context, rdb redis.Scripter, sc *script, w Wait, keys []string, args []any) (any, int, error) {
	cc, cluster := rdb.(*redis.ClusterClient)
	for try := 0; ; try++ {
		var node pipeliner
		if cluster {
			if len(keys) == 0 {
				return nil, 0, errors.New("fuse: waiting for replicas on a Cluster needs a script with keys")
			}
			c, err := cc.MasterForKey(ctx, keys[0])
			if err != nil {
				return nil, 0, err
			}
			node = c
		} else if p, ok := rdb.(pipeliner); ok {
			node = p
		} else {
			return nil, 0, fmt.Errorf("fuse: %T cannot pipeline a script with WAIT", rdb)
		}
		eval := !sc.loaded.Load()
		var run *redis.Cmd
		var wait *redis.Cmd
		_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
			if eval {
				run = p.Eval(ctx, sc.src, keys, args...)
			} else {
				run = p.EvalSha(ctx, sc.s.Hash(), keys, args...)
			}
			wait = p.Do(ctx, "WAIT", w.Replicas, w.Timeout.Milliseconds())
			return nil
		})
		err := run.Err()
		switch {
		case err == nil:
		case !eval && redis.HasErrorPrefix(err, "NOSCRIPT") && try < 2:
			sc.loaded.Store(false)
			continue
		case cluster && try < 2 && redis.HasErrorPrefix(err, "MOVED"):
			// The slot moved (a failover): the script did not run. Re-read
			// the slot map and send to the new master. (A network error is
			// not retried here: the script may have run.)
			cc.ReloadState(ctx)
			continue
		default:
			return nil, 0, err
		}
		sc.loaded.Store(true)
		n, werr := wait.Int()
		if werr != nil {
			// The script ran; only its confirmation failed: none counted.
			return run.Val(), 0, nil
		}
		return run.Val(), n, nil
	}
}
