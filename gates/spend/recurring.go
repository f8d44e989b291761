package spend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
)

// Caps in Redis, recurring commitments and renewals (issue "money over
// time"). Stored caps live in the principal's "caps" hash, so the hold
// script reads them in the same atomic step as the counters: every replica
// sees a change on its next call. Config.Caps and Config.DefaultCap are the
// defaults for principals without a stored cap.

// nextMonth is the UTC calendar month after mon ("2026-12" → "2027-01").
func nextMonth(mon string) string { return addMonths(mon, 1) }

// addMonths moves mon by n calendar months; "" when mon is malformed.
func addMonths(mon string, n int) string {
	t, err := time.Parse("2006-01", mon)
	if err != nil {
		return ""
	}
	return t.AddDate(0, n, 0).Format("2006-01")
}

// ParseMonth checks a "YYYY-MM" month.
func ParseMonth(mon string) (string, error) {
	t, err := time.Parse("2006-01", mon)
	if err != nil || t.Format("2006-01") != mon {
		return "", invalid("month %q is not a UTC calendar month; write it as YYYY-MM, e.g. 2026-11.", mon)
	}
	return mon, nil
}

// MonthOf is the ledger's month of t (UTC).
func MonthOf(t time.Time) string { return month(t) }

// Now is the ledger's clock.
func (l *Ledger) Now() time.Time { return l.cfg.Now() }

// DefaultCapFor is the cap of a principal without a stored cap: --cap or
// the USD 100.00 default.
func (l *Ledger) DefaultCapFor(provider string) money.Money {
	if m, ok := l.cfg.Caps[provider]; ok {
		return m
	}
	return l.cfg.DefaultCap
}

func (k keyspace) caps(principal string) string { return k.base(principal) + "caps" }
func (k keyspace) recurring(principal, provider string) string {
	return k.base(principal) + "recurring:" + provider
}
func (k keyspace) charges(principal, provider, month string) string {
	return k.base(principal) + "charges:" + provider + ":" + month
}
func (k keyspace) subs(principal string) string  { return k.base(principal) + "subs" }
func (k keyspace) capped() string                { return k.prefix + ":spend:capped" }
func (k keyspace) webhookEvent(id string) string { return k.prefix + ":spend:webhook:" + id }

// CapChange is what SetCap or RaiseCap changed, for the audit trail.
type CapChange struct {
	Principal string      `json:"principal"`
	Provider  string      `json:"provider"`
	Month     string      `json:"month,omitempty"` // set for a one-month raise
	From      money.Money `json:"from"`            // the cap in force before
	To        money.Money `json:"to"`
	Stored    bool        `json:"stored_before"` // From was a stored cap (not the default)
}

func (l *Ledger) checkCapArgs(principal, provider string, to *money.Money) error {
	if !validPrincipal(principal) {
		return invalid("the principal is missing or not printable text of at most %d bytes; no cap was changed.", maxPrincipal)
	}
	if !KnownProvider(provider) {
		return invalid("unknown provider %q (use %s); no cap was changed.", provider, strings.Join(Providers(), " or "))
	}
	if err := checkAmount(to, true, "the cap"); err != nil {
		return fault.Newf(fault.CodeOf(err), "%s No cap was changed.", strings.Replace(fault.PublicOf(err), " nothing was charged.", "", 1))
	}
	if d := l.DefaultCapFor(provider); to.Currency != d.Currency {
		return invalidAmount("the cap %s is not in %s, the currency of the %s ledger; no cap was changed.", to, strings.ToUpper(d.Currency), provider)
	}
	return nil
}

// SetCap stores principal's standing monthly cap at provider. A cap below
// what is already spent this month is allowed: it stops new spending. It
// returns what changed, for the audit trail.
func (l *Ledger) SetCap(ctx context.Context, principal, provider string, to money.Money) (CapChange, error) {
	return l.setCap(ctx, principal, provider, "", to, false)
}

// RaiseCap raises principal's cap at provider for one month only (the
// cap_raise gate). It never lowers a cap: when the month's cap is already
// at or above to, nothing changes and raised is false.
func (l *Ledger) RaiseCap(ctx context.Context, principal, provider, mon string, to money.Money) (ch CapChange, raised bool, err error) {
	if _, err := ParseMonth(mon); err != nil {
		return CapChange{}, false, err
	}
	st, err := l.MonthStatus(ctx, principal, provider, mon)
	if err != nil {
		return CapChange{}, false, err
	}
	if st.Cap.Minor >= to.Minor {
		return CapChange{Principal: principal, Provider: provider, Month: mon, From: st.Cap, To: st.Cap}, false, nil
	}
	ch, err = l.setCap(ctx, principal, provider, mon, to, true)
	if err != nil {
		return ch, false, err
	}
	ch.From = st.Cap
	return ch, true, nil
}

func (l *Ledger) setCap(ctx context.Context, principal, provider, mon string, to money.Money, raise bool) (CapChange, error) {
	if err := l.checkCapArgs(principal, provider, &to); err != nil {
		return CapChange{}, err
	}
	field := provider
	if mon != "" {
		field += ":" + mon
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	flag := "0"
	if raise {
		flag = "1"
	}
	var res *redis.Cmd
	var idx *redis.IntCmd
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		idx = p.SAdd(ctx, l.keys.capped(), principal)
		res = l.scripts.capSet.EvalSha(ctx, p, []string{l.keys.caps(principal)}, field, strconv.FormatInt(to.Minor, 10), l.cfg.Retention.Milliseconds(), flag)
		return nil
	})
	if res != nil && isNoScript(res.Err()) {
		if idx.Err() != nil {
			err = idx.Err()
		} else {
			res = l.scripts.capSet.Run(ctx, l.rdb, []string{l.keys.caps(principal)}, field, strconv.FormatInt(to.Minor, 10), l.cfg.Retention.Milliseconds(), flag)
			err = res.Err()
		}
	}
	if err != nil {
		return CapChange{}, unavailable("cap set", err, "the spend ledger could not be reached, so the cap was not changed. Retry shortly.")
	}
	r, err := parseReply(res.Val())
	if err != nil || (r.code != rCapSet && r.code != rCapNotRaised) {
		return CapChange{}, internal("cap set", "reply %v: %v", res.Val(), err)
	}
	ch := CapChange{Principal: principal, Provider: provider, Month: mon, To: to, From: l.DefaultCapFor(provider)}
	if old := r.str(1); old != "" {
		n, err := strconv.ParseInt(old, 10, 64)
		if err != nil {
			return CapChange{}, internal("cap set", "stored cap %q", old)
		}
		ch.From, ch.Stored = money.Money{Minor: n, Currency: to.Currency}, true
	}
	if r.code == rCapNotRaised {
		ch.To = ch.From
	}
	return ch, nil
}

// StoredCap is one stored cap: a standing cap (Month "") or a one-month
// raise.
type StoredCap struct {
	Principal string      `json:"principal"`
	Provider  string      `json:"provider"`
	Month     string      `json:"month,omitempty"`
	Cap       money.Money `json:"cap"`
}

// StoredCaps lists the stored caps of principal, or of every principal
// that ever had one when principal is "".
func (l *Ledger) StoredCaps(ctx context.Context, principal string) ([]StoredCap, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	principals := []string{principal}
	if principal == "" {
		var err error
		if principals, err = l.rdb.SMembers(ctx, l.keys.capped()).Result(); err != nil {
			return nil, unavailable("cap show", err, msgReadDown)
		}
		slices.Sort(principals)
	} else if !validPrincipal(principal) {
		return nil, invalid("the principal is missing or not printable text of at most %d bytes.", maxPrincipal)
	}
	var out []StoredCap
	for _, p := range principals {
		if !validPrincipal(p) {
			continue
		}
		m, err := l.rdb.HGetAll(ctx, l.keys.caps(p)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, unavailable("cap show", err, msgReadDown)
		}
		for f, v := range m {
			prov, mon, _ := strings.Cut(f, ":")
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || !KnownProvider(prov) {
				return nil, internal("cap show", "stored cap %q=%q", f, v)
			}
			out = append(out, StoredCap{Principal: p, Provider: prov, Month: mon, Cap: money.Money{Minor: n, Currency: l.DefaultCapFor(prov).Currency}})
		}
	}
	slices.SortFunc(out, func(a, b StoredCap) int {
		if c := strings.Compare(a.Principal, b.Principal); c != 0 {
			return c
		}
		if c := strings.Compare(a.Provider, b.Provider); c != 0 {
			return c
		}
		return strings.Compare(a.Month, b.Month)
	})
	return out, nil
}

// MonthStatus is Status for any month (YYYY-MM): spent, held, the cap in
// force that month (a raise, the stored cap or the default), and the
// recurring commitments at the provider.
func (l *Ledger) MonthStatus(ctx context.Context, principal, provider, mon string) (Status, error) {
	if !validPrincipal(principal) {
		return Status{}, invalid("the principal is missing or not printable text of at most %d bytes.", maxPrincipal)
	}
	if !KnownProvider(provider) {
		return Status{}, invalid("unknown provider %q (use %s).", provider, strings.Join(Providers(), " or "))
	}
	if _, err := ParseMonth(mon); err != nil {
		return Status{}, err
	}
	cp, err := l.capFor(principal, provider)
	if err != nil {
		return Status{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	keys, args := l.readMonthCall(principal, provider, mon, cp)
	res, err := l.scripts.readMonth.Run(ctx, l.rdb, keys, args...).Result()
	if err != nil {
		return Status{}, unavailable("status", err, msgReadDown)
	}
	return monthStatusReply(res, provider, mon, cp)
}

// MonthStatusStep is Status (this month's) as a fused step, so that the
// guard reads the month in the same round trip as the session check. The
// script always goes on.
func (l *Ledger) MonthStatusStep(principal, provider string) (fuse.Step, func(reply any) (Status, error), error) {
	if !validPrincipal(principal) {
		return fuse.Step{}, nil, invalid("the principal is missing or not printable text of at most %d bytes.", maxPrincipal)
	}
	if !KnownProvider(provider) {
		return fuse.Step{}, nil, invalid("unknown provider %q (use %s).", provider, strings.Join(Providers(), " or "))
	}
	cp, err := l.capFor(principal, provider)
	if err != nil {
		return fuse.Step{}, nil, err
	}
	mon := month(l.cfg.Now())
	keys, args := l.readMonthCall(principal, provider, mon, cp)
	step := fuse.Step{Name: "spend_read_month", Lib: libLua, Body: readMonthLua, Continue: "true", Keys: keys, Args: args}
	return step, func(reply any) (Status, error) { return monthStatusReply(reply, provider, mon, cp) }, nil
}

func (l *Ledger) readMonthCall(principal, provider, mon string, cp money.Money) ([]string, []any) {
	return []string{l.keys.cap(principal, provider, mon), l.keys.open(principal)},
		[]any{l.keys.base(principal), ms(l.cfg.Now()), reapLimit, provider, mon, cp.Minor}
}

// monthStatusReply reads readMonthLua's reply.
func monthStatusReply(res any, provider, mon string, cp money.Money) (Status, error) {
	r, err := parseReply(res)
	if err != nil || r.code != rReadCounters {
		return Status{}, internal("status", "reply %v: %v", res, err)
	}
	spent, held, err := r.pair(1, cp.Currency)
	if err != nil {
		return Status{}, internal("status", "%v", err)
	}
	if cur := r.str(3); cur != "" && cur != cp.Currency {
		return Status{}, errCurrencyDrift(provider, mon, cur, cp.Currency)
	}
	capv, due, err := r.pair(4, cp.Currency)
	if err != nil {
		return Status{}, internal("status", "%v", err)
	}
	total, err := r.int(6)
	if err != nil {
		return Status{}, internal("status", "%v", err)
	}
	st := Status{Provider: provider, Month: mon, Spent: spent, Held: held, Cap: capv,
		Recurring: money.Money{Minor: total, Currency: cp.Currency}, Due: due}
	used := spent.Minor + held.Minor + due.Minor
	st.Remaining = money.Money{Minor: max(0, capv.Minor-used), Currency: cp.Currency}
	if used > capv.Minor {
		st.Note = fmt.Sprintf("the cap %s is below what is already spent, held and due (%s); remaining shows 0 and no new spending is admitted this month",
			capv, money.Money{Minor: used, Currency: cp.Currency})
	}
	return st, nil
}

// Commitment is one recurring commitment.
type Commitment struct {
	ID        string      `json:"id"` // the hold id of its first period
	Amount    money.Money `json:"amount"`
	NextMonth string      `json:"next_month"` // the next month a charge is due
	Ref       string      `json:"ref,omitempty"`
}

// Recurring lists principal's recurring commitments at provider.
func (l *Ledger) Recurring(ctx context.Context, principal, provider string) ([]Commitment, error) {
	if !validPrincipal(principal) || !KnownProvider(provider) {
		return nil, invalid("the principal or provider is malformed.")
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	m, err := l.rdb.HGetAll(ctx, l.keys.recurring(principal, provider)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("recurring", err, msgReadDown)
	}
	cur := l.DefaultCapFor(provider).Currency
	var out []Commitment
	for id, v := range m {
		parts := strings.SplitN(v, "|", 3)
		n, err := strconv.ParseInt(parts[0], 10, 64)
		if err != nil || len(parts) < 2 {
			return nil, internal("recurring", "commitment %q=%q", id, v)
		}
		c := Commitment{ID: id, Amount: money.Money{Minor: n, Currency: cur}, NextMonth: parts[1]}
		if len(parts) == 3 {
			c.Ref = parts[2]
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Commitment) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Subscription links a provider subscription to the commitment it made,
// for the webhooks: who holds it and who started it.
type Subscription struct {
	ID         string `json:"id"`
	Principal  string `json:"principal"`
	Provider   string `json:"provider"`
	Commitment string `json:"commitment"` // the hold id
	Agent      string `json:"agent,omitempty"`
	Human      string `json:"human,omitempty"`
	Customer   string `json:"customer,omitempty"`
}

// BindSubscription records that subscription s.ID is the commitment
// s.Commitment of s.Principal, and records its first period as a charge of
// month mon (the invoice invoiceID, for reconciliation). Idempotent.
func (l *Ledger) BindSubscription(ctx context.Context, s Subscription, mon, invoiceID string, first money.Money) error {
	if !validPrincipal(s.Principal) || !KnownProvider(s.Provider) || !validHoldID(s.Commitment) || s.ID == "" || len(s.ID) > maxID {
		return invalid("the subscription binding is malformed.")
	}
	b, err := jsonMarshal(s)
	if err != nil {
		return internal("bind", "%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	if err := l.rdb.HSet(ctx, l.keys.subs(s.Principal), s.ID, b).Err(); err != nil {
		return unavailable("bind", err, msgReadDown)
	}
	if invoiceID == "" {
		invoiceID = s.ID
	}
	return l.NoteCharge(ctx, s.Principal, s.Provider, mon, invoiceID, s.ID, first)
}

// SubscriptionOf looks a subscription of principal up; ok is false when
// tollgate does not know it (or it is another principal's).
func (l *Ledger) SubscriptionOf(ctx context.Context, principal, id string) (s Subscription, ok bool, err error) {
	if !validPrincipal(principal) || id == "" || len(id) > maxID {
		return Subscription{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	v, err := l.rdb.HGet(ctx, l.keys.subs(principal), id).Result()
	if errors.Is(err, redis.Nil) {
		return Subscription{}, false, nil
	}
	if err != nil {
		return Subscription{}, false, unavailable("subscription", err, msgReadDown)
	}
	if err := jsonUnmarshal([]byte(v), &s); err != nil {
		return Subscription{}, false, internal("subscription", "%v", err)
	}
	return s, true, nil
}

// NoteCharge lists a charge the ledger committed (key: the provider's
// invoice or registration id; ref: what it paid for) in the month's
// charges, which `tollgate spend reconcile` compares with the provider.
// The first note of a key wins.
func (l *Ledger) NoteCharge(ctx context.Context, principal, provider, mon, key, ref string, amount money.Money) error {
	if !validPrincipal(principal) || !KnownProvider(provider) || key == "" || len(key) > 256 {
		return invalid("the charge note is malformed.")
	}
	if _, err := ParseMonth(mon); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	k := l.keys.charges(principal, provider, mon)
	_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, k, key, strconv.FormatInt(amount.Minor, 10)+"|"+ref)
		p.PExpire(ctx, k, l.cfg.Retention)
		return nil
	})
	if err != nil {
		return unavailable("charge", err, msgReadDown)
	}
	return nil
}

// Charge is one charge the ledger committed in a month.
type Charge struct {
	Key    string      `json:"key"` // invoice or registration id
	Ref    string      `json:"ref,omitempty"`
	Amount money.Money `json:"amount"`
}

// Charges lists the charges the ledger committed for principal at
// provider in month mon.
func (l *Ledger) Charges(ctx context.Context, principal, provider, mon string) ([]Charge, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	m, err := l.rdb.HGetAll(ctx, l.keys.charges(principal, provider, mon)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("charges", err, msgReadDown)
	}
	cur := l.DefaultCapFor(provider).Currency
	var out []Charge
	for k, v := range m {
		a, ref, _ := strings.Cut(v, "|")
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return nil, internal("charges", "charge %q=%q", k, v)
		}
		out = append(out, Charge{Key: k, Ref: ref, Amount: money.Money{Minor: n, Currency: cur}})
	}
	slices.SortFunc(out, func(a, b Charge) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Renewal is a renewal charge the provider reported.
type Renewal struct {
	Principal, Provider string
	Commitment          string // the hold id of the first period
	Invoice             string // idempotency: one invoice is recorded once
	Ref                 string // the subscription id
	Amount              money.Money
	Month               string // the month of the invoice's period (UTC)
	EveryMonths         int    // the interval in months (1 monthly, 12 yearly)
}

// Renew records a renewal: the amount is spent in r.Month (it is money the
// provider took, so it is recorded even past the cap) and the commitment's
// next charge month moves on. replay is true when the invoice was recorded
// before (nothing changed); known is false when no commitment r.Commitment
// is kept (the charge is still recorded).
func (l *Ledger) Renew(ctx context.Context, r Renewal) (replay, known bool, err error) {
	if !validPrincipal(r.Principal) || !KnownProvider(r.Provider) || r.Invoice == "" || len(r.Invoice) > 256 {
		return false, false, invalid("the renewal is malformed.")
	}
	if _, err := ParseMonth(r.Month); err != nil {
		return false, false, err
	}
	if err := checkAmount(&r.Amount, true, "the renewal"); err != nil {
		return false, false, err
	}
	if r.EveryMonths < 1 {
		r.EveryMonths = 1
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	res, err := l.scripts.renew.Run(ctx, l.rdb,
		[]string{l.keys.cap(r.Principal, r.Provider, r.Month), l.keys.recurring(r.Principal, r.Provider), l.keys.charges(r.Principal, r.Provider, r.Month)},
		r.Commitment, r.Invoice, strconv.FormatInt(r.Amount.Minor, 10), r.Amount.Currency, addMonths(r.Month, r.EveryMonths),
		l.cfg.Retention.Milliseconds(), r.Ref).Result()
	if err != nil {
		return false, false, unavailable("renew", err, msgCommitDown)
	}
	rep, err := parseReply(res)
	if err != nil {
		return false, false, internal("renew", "%v", err)
	}
	switch rep.code {
	case rRenewed:
		return false, true, nil
	case rRenewReplay:
		return true, true, nil
	case rRenewUnknown:
		return false, false, nil
	}
	return false, false, internal("renew", "script replied %d", rep.code)
}

// EndRecurring ends a commitment (the subscription was cancelled). ended
// is false when it was not kept.
func (l *Ledger) EndRecurring(ctx context.Context, principal, provider, commitment string) (ended bool, err error) {
	if !validPrincipal(principal) || !KnownProvider(provider) {
		return false, invalid("the principal or provider is malformed.")
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	res, err := l.scripts.endRec.Run(ctx, l.rdb, []string{l.keys.recurring(principal, provider)}, commitment).Result()
	if err != nil {
		return false, unavailable("end recurring", err, msgReadDown)
	}
	r, err := parseReply(res)
	if err != nil || r.code != rEnded {
		return false, internal("end recurring", "reply %v: %v", res, err)
	}
	n, _ := r.int(1)
	return n == 1, nil
}

// SeenWebhookEvent records a provider's event id and reports whether it
// was recorded before (a replay). Ids are kept for 30 days.
func (l *Ledger) SeenWebhookEvent(ctx context.Context, id string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	ok, err := l.rdb.SetNX(ctx, l.keys.webhookEvent(id), ms(l.cfg.Now()), 30*24*time.Hour).Result()
	if err != nil {
		return false, unavailable("webhook", err, msgReadDown)
	}
	return !ok, nil
}

// ForgetWebhookEvent drops a recorded event id, so that a delivery whose
// recording failed is processed again on Stripe's retry.
func (l *Ledger) ForgetWebhookEvent(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Timeout)
	defer cancel()
	_ = l.rdb.Del(ctx, l.keys.webhookEvent(id)).Err()
}

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// Principals lists the principals that ever asked for a hold (the
// principals index), for reconcile.
func (l *Ledger) Principals(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	ps, err := l.rdb.ZRange(ctx, l.keys.principals(), 0, -1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable("principals", err, msgReadDown)
	}
	slices.Sort(ps)
	return ps, nil
}
