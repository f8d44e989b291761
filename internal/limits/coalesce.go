package limits

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/sessions"
)

// Appender is the audit trail a Coalescer writes to.
type Appender interface {
	Append(ctx context.Context, e sessions.Entry) (sessions.Entry, error)
}

// Coalescer bounds the audit volume one caller can cause with refusals.
// Every refusal is audited, but repeated identical ones are not each their
// own entry: the first of a kind is appended at once, and the ones that
// follow within the window are counted and appended as one entry with
// detail.repeated = the count (detail.since: when the window opened)
// when the window closes. Entries that are not
// refusals pass straight through.
//
// Identical means the same principal, task session, tool, code, argument
// digest and place of refusal. Refusals that differ are bounded too: past
// PerPrincipal first entries of one principal in a window, the rest of that
// principal's refusals are counted into one entry (detail.coalesced =
// "principal"), whatever they vary. A crash loses the counts of open
// windows, never a window's first entry. It is safe for concurrent use; it
// holds at most max open windows, and beyond that appends refusals one by
// one.
type Coalescer struct {
	trail  Appender
	window time.Duration
	max    int
	now    func() time.Time
	onErr  func(error)
	// PerPrincipal is how many distinct refusals of one principal are
	// appended in a window before the rest are counted together (100).
	PerPrincipal int

	mu     sync.Mutex
	open   map[refusalKey]*window
	firsts map[string]*window // per principal: first entries in its window
	stop   chan struct{}
	done   chan struct{}
}

type refusalKey struct {
	principal, session, tool, code, args, at string
}

type window struct {
	start time.Time
	entry sessions.Entry
	n     int // refusals after the first
}

// NewCoalescer coalesces refusals appended to trail within a window of
// within (at least a second), keeping at most maxOpen windows open. onErr, if set, hears of failed appends of counted
// entries (the caller's own appends return their errors). Close it to
// write the open counts.
func NewCoalescer(trail Appender, within time.Duration, maxOpen int, onErr func(error)) *Coalescer {
	c := &Coalescer{trail: trail, window: max(within, time.Second), max: maxOpen, now: time.Now, onErr: onErr, PerPrincipal: 100,
		open: map[refusalKey]*window{}, firsts: map[string]*window{}, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// Append appends e, or counts it when it repeats a refusal appended within
// the window, or when its principal is past PerPrincipal distinct
// refusals in the window. A counted refusal returns e unchanged (no hash:
// it is not an entry of its own yet).
func (c *Coalescer) Append(ctx context.Context, e sessions.Entry) (sessions.Entry, error) {
	if e.Decision != sessions.DecisionDeny {
		return c.trail.Append(ctx, e)
	}
	k := refusalKey{e.Principal, e.Session, e.Tool, e.Code, e.ArgsDigest, e.Detail["at"]}
	now := c.now()
	// Counts of windows that closed go out after the lock is released,
	// before this refusal's own entry.
	var closed []*window
	flushClosed := func() {
		for _, w := range closed {
			c.flush(ctx, w)
		}
	}
	c.mu.Lock()
	if w, ok := c.open[k]; ok {
		if now.Sub(w.start) < c.window {
			w.n++
			c.mu.Unlock()
			return e, nil
		}
		delete(c.open, k)
		closed = append(closed, w)
	}
	f := c.firsts[e.Principal]
	if f == nil || now.Sub(f.start) >= c.window {
		f = &window{start: now}
		if len(c.firsts) < c.max {
			c.firsts[e.Principal] = f
		}
	}
	if f.n >= c.PerPrincipal {
		// Past the principal's distinct refusals: one count for the rest.
		ok := refusalKey{principal: e.Principal, at: overflow}
		if w, found := c.open[ok]; found {
			if now.Sub(w.start) < c.window {
				w.n++
				c.mu.Unlock()
				flushClosed()
				return e, nil
			}
			delete(c.open, ok)
			closed = append(closed, w)
		}
		if len(c.open) < c.max {
			oe := e
			oe.Detail = map[string]string{"coalesced": "principal"}
			for k, v := range e.Detail {
				oe.Detail[k] = v
			}
			c.open[ok] = &window{start: now, entry: oe, n: 1}
			c.mu.Unlock()
			flushClosed()
			return e, nil
		}
		c.mu.Unlock()
		flushClosed()
		return c.trail.Append(ctx, e)
	}
	f.n++
	if len(c.open) < c.max {
		c.open[k] = &window{start: now, entry: e}
	}
	c.mu.Unlock()
	flushClosed()
	return c.trail.Append(ctx, e)
}

// overflow marks the key of a principal's window of refusals past
// PerPrincipal.
const overflow = "\x00overflow"

// flush appends a closed window's count, if anything repeated in it.
func (c *Coalescer) flush(ctx context.Context, w *window) {
	if w.n == 0 {
		return
	}
	e := w.entry
	d := make(map[string]string, len(e.Detail)+2)
	for k, v := range e.Detail {
		d[k] = v
	}
	d["repeated"] = strconv.Itoa(w.n)
	d["within"] = c.window.String()
	d["since"] = w.start.UTC().Format(time.RFC3339Nano)
	e.Detail, e.Hash, e.Prev = d, "", ""
	if _, err := c.trail.Append(context.WithoutCancel(ctx), e); err != nil && c.onErr != nil {
		c.onErr(err)
	}
}

// run closes windows as they end.
func (c *Coalescer) run() {
	defer close(c.done)
	t := time.NewTicker(c.window / 2)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			c.closeWindows(true)
			return
		case <-t.C:
			c.closeWindows(false)
		}
	}
}

func (c *Coalescer) closeWindows(all bool) {
	now := c.now()
	var due []*window
	c.mu.Lock()
	for k, w := range c.open {
		if all || now.Sub(w.start) >= c.window {
			delete(c.open, k)
			due = append(due, w)
		}
	}
	for p, f := range c.firsts {
		if all || now.Sub(f.start) >= c.window {
			delete(c.firsts, p)
		}
	}
	c.mu.Unlock()
	for _, w := range due {
		c.flush(context.Background(), w)
	}
}

// Close writes the counts of every open window and stops the coalescer.
func (c *Coalescer) Close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}
