package stripehook_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	stripego "github.com/stripe/stripe-go/v79"
	"github.com/stripe/stripe-go/v79/webhook"

	"github.com/tollgate-dev/tollgate/gates/spend"
	"github.com/tollgate-dev/tollgate/internal/fuse"
	"github.com/tollgate-dev/tollgate/internal/money"
	"github.com/tollgate-dev/tollgate/internal/testkit"
	"github.com/tollgate-dev/tollgate/sessions"
	"github.com/tollgate-dev/tollgate/webhooks/stripehook"
)

const (
	secret = "whsec_test_tollgate"
	alice  = "user:alice@example.com"
)

func TestMain(m *testing.M) { os.Exit(testkit.MainRedis(m)) }

type rig struct {
	t      *testing.T
	ledger *spend.Ledger
	trail  *sessions.Audit
	srv    *httptest.Server
}

func newRig(t *testing.T) *rig {
	rdb := testkit.Redis(t)
	t.Cleanup(func() { _ = rdb.Close() })
	return newRigOn(t, rdb, nil)
}

// newRigOn is newRig on rdb, with set (when not nil) changing the handler.
func newRigOn(t *testing.T, rdb *redis.Client, set func(*stripehook.Handler)) *rig {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	ledger, err := spend.New(rdb, spend.Config{DefaultCap: money.USD(10000), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := sessions.NewAudit(rdb, sessions.AuditConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h := &stripehook.Handler{Secret: secret, Ledger: ledger, Trail: trail, Redis: rdb, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if set != nil {
		set(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r := &rig{t: t, ledger: ledger, trail: trail, srv: srv}
	// A subscription started through the guard: hold, commit and bind.
	ctx := context.Background()
	hold, err := ledger.Hold(ctx, spend.HoldRequest{HoldID: "h1", Principal: alice, Provider: spend.Stripe, Amount: money.USD(2900),
		Recurring: money.USD(2900), Tool: "subscription_start"})
	if err != nil {
		t.Fatal(err)
	}
	cst, _, err := ledger.CommitStep(alice, hold.ID, money.USD(2900))
	if err != nil {
		t.Fatal(err)
	}
	bst, bparse, err := ledger.BindStep(alice, hold.ID, spend.Subscription{ID: "sub_1", Provider: spend.Stripe, Human: alice, Agent: "agent:claude"}, "in_first")
	if err != nil {
		t.Fatal(err)
	}
	res, err := fuse.Run(ctx, rdb, cst, bst)
	if err != nil || len(res.Replies) != 2 || bparse(res.Replies[1]) != nil {
		t.Fatalf("bind: %+v %v", res, err)
	}
	return r
}

func renewal(evt, inv, sub, principal string, periodStart time.Time, amount int64) []byte {
	obj := map[string]any{"id": inv, "object": "invoice", "billing_reason": "subscription_cycle", "amount_paid": amount, "currency": "usd",
		"subscription": sub, "status": "paid", "period_start": periodStart.AddDate(0, -1, 0).Unix(),
		"subscription_details": map[string]any{"metadata": map[string]string{stripehook.MetaPrincipal: principal, stripehook.MetaHold: "h1"}},
		"lines": map[string]any{"object": "list", "data": []any{map[string]any{"id": "il_1", "object": "line_item", "amount": amount,
			"period": map[string]any{"start": periodStart.Unix(), "end": periodStart.AddDate(0, 1, 0).Unix()}}}}}
	return event(evt, "invoice.paid", obj)
}

func event(id, typ string, obj any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": stripego.APIVersion, "type": typ,
		"created": time.Now().Unix(), "data": map[string]any{"object": obj}})
	return b
}

func (r *rig) post(payload []byte, sigSecret string, at time.Time) int {
	r.t.Helper()
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: sigSecret, Timestamp: at})
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL, strings.NewReader(string(sp.Payload)))
	req.Header.Set("Stripe-Signature", sp.Header)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func (r *rig) audit(event string) []sessions.Entry {
	r.t.Helper()
	var buf strings.Builder
	if _, err := r.trail.Export(context.Background(), &buf, sessions.ExportFilter{Principal: alice}); err != nil {
		r.t.Fatal(err)
	}
	var out []sessions.Entry
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e sessions.Entry
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event == event {
			out = append(out, e)
		}
	}
	return out
}

func (r *rig) spent(mon string) int64 {
	r.t.Helper()
	st, err := r.ledger.MonthStatus(context.Background(), alice, spend.Stripe, mon)
	if err != nil {
		r.t.Fatal(err)
	}
	return st.Spent.Minor
}

func TestRenewalCommitsToTheInvoicePeriodOnce(t *testing.T) {
	r := newRig(t)
	dec := time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)
	if c := r.post(renewal("evt_1", "in_2", "sub_1", alice, dec, 2900), secret, time.Now()); c != 200 {
		t.Fatalf("renewal: %d", c)
	}
	if got := r.spent("2026-12"); got != 2900 {
		t.Fatalf("December spent %d, want 2900", got)
	}
	es := r.audit("renewal")
	if len(es) != 1 || es[0].Detail["subscription"] != "sub_1" || es[0].Detail["human"] != alice || es[0].Detail["agent"] != "agent:claude" ||
		es[0].Detail["month"] != "2026-12" || es[0].Amount == nil || es[0].Amount.Minor != 2900 {
		t.Fatalf("renewal audit %+v", es)
	}
	// The same event again, and the same invoice under another event id:
	// recorded once.
	if c := r.post(renewal("evt_1", "in_2", "sub_1", alice, dec, 2900), secret, time.Now()); c != 200 {
		t.Fatalf("replay: %d", c)
	}
	if c := r.post(renewal("evt_1b", "in_2", "sub_1", alice, dec, 2900), secret, time.Now()); c != 200 {
		t.Fatalf("same invoice: %d", c)
	}
	if got := r.spent("2026-12"); got != 2900 || len(r.audit("renewal")) != 1 {
		t.Fatalf("after replays spent %d, %d renewal entries", got, len(r.audit("renewal")))
	}
	cs, err := r.ledger.Charges(context.Background(), alice, spend.Stripe, "2026-12")
	if err != nil || len(cs) != 1 || cs[0].Key != "in_2" {
		t.Fatalf("charges %+v %v", cs, err)
	}
	rec, _ := r.ledger.Recurring(context.Background(), alice, spend.Stripe)
	if len(rec) != 1 || rec[0].NextMonth != "2027-01" {
		t.Fatalf("commitment %+v", rec)
	}
}

func TestRejectedEventsRecordNothing(t *testing.T) {
	r := newRig(t)
	dec := time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)
	ok := renewal("evt_x", "in_2", "sub_1", alice, dec, 2900)
	for _, tc := range []struct {
		name    string
		payload []byte
		secret  string
		at      time.Time
		want    int
	}{
		{"bad signature", ok, "whsec_other", time.Now(), 400},
		{"stale timestamp", ok, secret, time.Now().Add(-10 * time.Minute), 400},
		{"malformed JSON", []byte(`{"id": "evt_y", "type": "invoice.paid", "data": {`), secret, time.Now(), 400},
		{"malformed invoice", event("evt_z", "invoice.paid", "not an object"), secret, time.Now(), 400},
		{"unknown event type", event("evt_t", "charge.refunded", map[string]any{"id": "ch_1"}), secret, time.Now(), 200},
	} {
		if c := r.post(tc.payload, tc.secret, tc.at); c != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, c, tc.want)
		}
	}
	if got := r.spent("2026-12"); got != 0 || len(r.audit("renewal")) != 0 {
		t.Fatalf("rejected events recorded: spent %d", got)
	}
	// The rejected event id was not remembered: the genuine one counts.
	if c := r.post(ok, secret, time.Now()); c != 200 || r.spent("2026-12") != 2900 {
		t.Fatalf("genuine event after rejections: %d, spent %d", c, r.spent("2026-12"))
	}
}

func TestUnknownSubscriptionIsNotedNotRetried(t *testing.T) {
	r := newRig(t)
	dec := time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)
	if c := r.post(renewal("evt_u", "in_9", "sub_unknown", alice, dec, 2900), secret, time.Now()); c != 200 {
		t.Fatalf("unknown subscription: %d", c)
	}
	if c := r.post(renewal("evt_v", "in_8", "sub_1", "", dec, 2900), secret, time.Now()); c != 200 {
		t.Fatalf("no principal metadata: %d", c)
	}
	notes := r.audit("webhook_unknown")
	if len(notes) != 1 || notes[0].Detail["subscription"] != "sub_unknown" || r.spent("2026-12") != 0 {
		t.Fatalf("notes %+v spent %d", notes, r.spent("2026-12"))
	}
}

func TestDeletedEndsTheCommitment(t *testing.T) {
	r := newRig(t)
	del := event("evt_d", "customer.subscription.deleted", map[string]any{"id": "sub_1", "object": "subscription", "status": "canceled",
		"metadata": map[string]string{stripehook.MetaPrincipal: alice, stripehook.MetaHold: "h1"}})
	for i := 0; i < 2; i++ {
		if c := r.post(del, secret, time.Now()); c != 200 {
			t.Fatalf("deleted: %d", c)
		}
	}
	rec, err := r.ledger.Recurring(context.Background(), alice, spend.Stripe)
	if err != nil || len(rec) != 0 {
		t.Fatalf("commitment after cancellation %+v %v", rec, err)
	}
	if es := r.audit("subscription_ended"); len(es) != 1 || es[0].Detail["subscription"] != "sub_1" {
		t.Fatalf("ended audit %+v", es)
	}
	st, _ := r.ledger.MonthStatus(context.Background(), alice, spend.Stripe, "2027-01")
	if st.Recurring.Minor != 0 {
		t.Fatal(fmt.Sprint("recurring after cancellation ", st.Recurring))
	}
}

// With --redis-wait-replicas, a renewal its replica acknowledged is
// answered 200; one it did not (the replica paused) is answered 503 and
// reported, and Stripe's retry, once the replica is back, records nothing
// twice and is answered 200.
func TestRenewalShortOfReplicasIsRetried(t *testing.T) {
	rep := testkit.StartReplicated(t)
	shorts := 0
	r := newRigOn(t, rep.Master, func(h *stripehook.Handler) {
		h.Wait = fuse.Wait{Replicas: 1, Timeout: 100 * time.Millisecond}
		h.Short = func(int) { shorts++ }
	})
	dec := time.Date(2026, 12, 20, 12, 0, 0, 0, time.UTC)
	if c := r.post(renewal("evt_1", "in_2", "sub_1", alice, dec, 2900), secret, time.Now()); c != 200 || shorts != 0 {
		t.Fatalf("acknowledged renewal: %d, %d short", c, shorts)
	}
	if err := rep.Pause(); err != nil {
		t.Fatal(err)
	}
	jan := dec.AddDate(0, 1, 0)
	start := time.Now()
	if c := r.post(renewal("evt_2", "in_3", "sub_1", alice, jan, 2900), secret, time.Now()); c != http.StatusServiceUnavailable || shorts != 1 {
		t.Fatalf("unacknowledged renewal: %d, %d short; want 503 and 1", c, shorts)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the unacknowledged renewal took %s", took)
	}
	if err := rep.Resume(); err != nil {
		t.Fatal(err)
	}
	if c := r.post(renewal("evt_2", "in_3", "sub_1", alice, jan, 2900), secret, time.Now()); c != 200 {
		t.Fatalf("Stripe's retry: %d, want 200", c)
	}
	if got := r.spent("2027-01"); got != 2900 {
		t.Fatalf("January spent %d, want the renewal once (2900)", got)
	}
}
