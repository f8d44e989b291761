package bench

import (
	"context"
	"encoding/json"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/sessions"
)

// floor measures, one at a time, the parts a guarded call cannot avoid or
// does today: a loopback Redis round trip (PING), a token verification
// (signature and claims, key cached), the session check (one EVALSHA) and
// the audit append (one EVALSHA, serialised within a process). Each on the
// App's own Redis client.
func (r *runner) floor(ctx context.Context) error {
	rdb := r.sys.app.Redis.Client
	cfg := r.sys.app.Cfg
	tok, err := r.sys.taskToken(ctx, "bench-floor@example.com", "catalog:read", "")
	if err != nil {
		return err
	}
	keys, err := auth.NewRedisKeys(auth.RedisKeysConfig{Namespace: auth.NamespaceSTS, Redis: rdb})
	if err != nil {
		return err
	}
	v, err := auth.NewAccessVerifier(auth.AccessVerifierConfig{
		Issuer: cfg.PublicURL, Resource: cfg.ResourceURL(), Keys: keys, MaxLifetime: cfg.TokenTTL,
	})
	if err != nil {
		return err
	}
	c, err := v.Verify(ctx, tok)
	if err != nil {
		return err
	}
	store, err := sessions.New(rdb, sessions.Config{})
	if err != nil {
		return err
	}
	trail, err := sessions.NewAudit(rdb, sessions.AuditConfig{})
	if err != nil {
		return err
	}
	args, _ := json.Marshal(map[string]any{"id": callArgs["id"]})
	entry := sessions.Entry{Event: "tool_call", Tool: "catalog_get", ArgsDigest: sessions.DigestArgs(args),
		Decision: sessions.DecisionAllow, Principal: c.Subject, Actors: c.Act.Chain(), ClientID: c.ClientID,
		Session: c.SessionID, JTI: c.ID}

	parts := []struct {
		what, note string
		op         func(ctx context.Context) error
	}{
		{"floor: Redis round trip", "PING on the App's client, loopback", func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
		{"floor: token verify", "AccessVerifier.Verify, Ed25519, key cached (no Redis)", func(ctx context.Context) error {
			_, err := v.Verify(ctx, tok)
			return err
		}},
		{"step: session check", "sessions.Store.Check, one EVALSHA", func(ctx context.Context) error {
			return store.Check(ctx, c.Subject, c.SessionID, c.ID)
		}},
		{"step: audit append", "sessions.Audit.Append of a tool_call entry, one EVALSHA", func(ctx context.Context) error {
			_, err := trail.Append(ctx, entry)
			return err
		}},
	}
	for _, p := range parts {
		op := func(ctx context.Context, _, _ int) error { return p.op(ctx) }
		if _, err := drive(ctx, 100, 1, op); err != nil {
			return err
		}
		s, err := drive(ctx, r.o.FloorSamples, 1, op)
		if err != nil {
			return err
		}
		r.rows = append(r.rows, sampleRow(p.what, "sequential", s, p.note))
		switch p.what {
		case "floor: Redis round trip":
			r.floorRTT = s.pct(50)
		case "floor: token verify":
			r.floorVerify = s.pct(50)
		}
	}
	return nil
}
