// Package limits bounds what one principal can hold on a replica at once:
// requests in flight, per principal and per task session. A refusal names
// the limit and when to retry.
package limits

import (
	"fmt"
	"sync"
	"time"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// TooMany is the code of a request refused by a limit (HTTP 429).
const TooMany fault.Code = "too_many_requests"

// InFlight counts the requests each principal and each session has in
// flight on this replica. It is safe for concurrent use; its memory is one
// map entry per principal or session with requests in flight right now.
type InFlight struct {
	perPrincipal, perSession int
	retry                    time.Duration

	mu      sync.Mutex
	byPrinc map[string]int
	bySess  map[string]int
}

// NewInFlight allows perPrincipal requests of one principal and perSession
// of one task session at once (0: no limit); a refusal says to retry after
// retry.
func NewInFlight(perPrincipal, perSession int, retry time.Duration) *InFlight {
	return &InFlight{perPrincipal: perPrincipal, perSession: perSession, retry: retry,
		byPrinc: map[string]int{}, bySess: map[string]int{}}
}

// Acquire takes one slot for principal and session, or refuses with
// TooMany (nothing taken). release gives the slot back; call it once.
func (l *InFlight) Acquire(principal, session string) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perPrincipal > 0 && l.byPrinc[principal] >= l.perPrincipal {
		return nil, l.refuse(fmt.Sprintf("this human's agents already have %d requests in flight on this server (--inflight-per-principal)", l.perPrincipal))
	}
	sk := principal + "|" + session
	if l.perSession > 0 && session != "" && l.bySess[sk] >= l.perSession {
		return nil, l.refuse(fmt.Sprintf("this task session already has %d requests in flight (--inflight-per-session)", l.perSession))
	}
	l.byPrinc[principal]++
	if session != "" {
		l.bySess[sk]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.byPrinc[principal]--; l.byPrinc[principal] <= 0 {
				delete(l.byPrinc, principal)
			}
			if session != "" {
				if l.bySess[sk]--; l.bySess[sk] <= 0 {
					delete(l.bySess, sk)
				}
			}
		})
	}, nil
}

// RetryAfter is how long a refused caller should wait.
func (l *InFlight) RetryAfter() time.Duration { return l.retry }

func (l *InFlight) refuse(what string) error {
	return &Refusal{Code: TooMany, Msg: what + "; nothing was done. Retry after " + l.retry.String() + ", or make fewer calls at once.", After: l.retry}
}

// Refusal is a refusal by a limit: its code, message and retry delay.
type Refusal struct {
	Code  fault.Code
	Msg   string
	After time.Duration
}

func (r *Refusal) Error() string { return r.Msg }

// Fault is the refusal as a tool error.
func (r *Refusal) Fault() error { return fault.New(r.Code, r.Msg) }
