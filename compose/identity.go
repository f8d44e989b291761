package compose

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tollgate-dev/tollgate/auth"
	"github.com/tollgate-dev/tollgate/auth/policy"
	"github.com/tollgate-dev/tollgate/auth/sts"
	"github.com/tollgate-dev/tollgate/internal/config"
	"github.com/tollgate-dev/tollgate/sessions"
)

// identity is the wiring of keys, verifiers, attestors, policy, sessions
// and the STS.
type identity struct {
	signer   *auth.KeyRing
	verifier *auth.CachedVerifier // access tokens on the call path: each verified once per replica
	trail    *sessions.Audit
	access   *auth.AccessVerifier
	sessions *sessions.Store
	sts      *sts.STS
	dev      devIdentity  // sandbox only
	devIDP   http.Handler // the sandbox's OpenID provider (sandbox only)
	rings    []*auth.KeyRing
	subjects []*auth.SubjectVerifier // user-token verifiers, for the approvals page's sign-in
}

// devIdentity is the sandbox's dev IdP and dev attestor (sandbox.go).
type devIdentity interface {
	UserToken(email string, scopes []string, ttl time.Duration) (string, error)
	AgentToken(name string, ttl time.Duration) (string, error)
}

func (a *App) buildIdentity(ctx context.Context) (*identity, error) {
	cfg, rdb := a.Cfg, a.Redis.Client
	id := &identity{}
	ring := func(ns auth.Namespace) (*auth.KeyRing, error) {
		k, err := auth.NewKeyRing(auth.KeyRingConfig{Namespace: ns, Redis: rdb, OnError: func(err error) {
			a.Log.Error("publishing signing key failed", "namespace", ns, "err", err)
		}})
		if err != nil {
			return nil, err
		}
		if err := k.Publish(ctx); err != nil {
			return nil, fmt.Errorf("app: publish %s key to Redis: %w", ns, err)
		}
		id.rings = append(id.rings, k)
		return k, nil
	}
	keys := func(ns auth.Namespace) (*auth.RedisKeys, error) {
		return auth.NewRedisKeys(auth.RedisKeysConfig{Namespace: ns, Redis: rdb})
	}
	var err error
	if id.signer, err = ring(auth.NamespaceSTS); err != nil {
		return nil, err
	}
	stsKeys, err := keys(auth.NamespaceSTS)
	if err != nil {
		return nil, err
	}
	if id.access, err = auth.NewAccessVerifier(auth.AccessVerifierConfig{
		Issuer: cfg.PublicURL, Resource: cfg.ResourceURL(), Keys: stsKeys, MaxLifetime: cfg.TokenTTL,
	}); err != nil {
		return nil, err
	}
	id.verifier = auth.NewCachedVerifier(id.access, 0, nil)
	if id.sessions, err = sessions.New(rdb, sessions.Config{}); err != nil {
		return nil, err
	}
	if id.trail, err = sessions.NewAudit(rdb, sessions.AuditConfig{}); err != nil {
		return nil, err
	}

	var subjects []*auth.SubjectVerifier
	var attestors []auth.Attestor
	if cfg.Mode == config.Sandbox {
		idp, err := ring(auth.NamespaceDevIDP)
		if err != nil {
			return nil, err
		}
		agent, err := ring(auth.NamespaceDevAgent)
		if err != nil {
			return nil, err
		}
		if id.dev, err = newDevSigner(cfg.PublicURL, idp, agent); err != nil {
			return nil, err
		}
		if id.devIDP, err = newDevIDP(cfg.PublicURL, idp); err != nil {
			return nil, err
		}
		idpKeys, err := keys(auth.NamespaceDevIDP)
		if err != nil {
			return nil, err
		}
		agentKeys, err := keys(auth.NamespaceDevAgent)
		if err != nil {
			return nil, err
		}
		sv, err := auth.NewDevSubjectVerifier(auth.DevVerifyConfig{Issuer: cfg.PublicURL, Keys: idpKeys})
		if err != nil {
			return nil, err
		}
		at, err := auth.NewDevAttestor(auth.DevVerifyConfig{Issuer: cfg.PublicURL, Keys: agentKeys})
		if err != nil {
			return nil, err
		}
		subjects, attestors = append(subjects, sv), append(attestors, at)
	}
	external := []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}
	if cfg.IdPIssuer != "" {
		ks, err := auth.LoadStaticKeys(cfg.IdPJWKS)
		if err != nil {
			return nil, fmt.Errorf("--idp-jwks: %w", err)
		}
		sv, err := auth.NewSubjectVerifier(auth.SubjectVerifierConfig{Issuer: cfg.IdPIssuer, Audience: cfg.IdPAudience,
			Keys: ks, Algorithms: external, AllowMissingTyp: true})
		if err != nil {
			return nil, fmt.Errorf("--idp-issuer: %w", err)
		}
		subjects = append(subjects, sv)
	}
	if cfg.AttestIssuer != "" {
		ks, err := auth.LoadStaticKeys(cfg.AttestJWKS)
		if err != nil {
			return nil, fmt.Errorf("--attest-jwks: %w", err)
		}
		at, err := auth.NewJWTAttestor(auth.JWTAttestorConfig{Issuer: cfg.AttestIssuer, Audience: cfg.AttestAudience,
			Keys: ks, Algorithms: external, AllowMissingTyp: true})
		if err != nil {
			return nil, fmt.Errorf("--attest-issuer: %w", err)
		}
		attestors = append(attestors, at)
	}

	var pol *policy.Engine
	if cfg.PolicyFile != "" {
		pol, err = policy.LoadFile(cfg.PolicyFile)
	} else {
		pol, err = policy.Sandbox()
	}
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	a.Log.Info("exchange policy loaded", "policy", pol.Name(), "digest", pol.Digest())

	id.subjects = subjects
	id.sts, err = sts.New(sts.Config{
		Issuer: cfg.PublicURL, Resource: cfg.ResourceURL(), TokenTTL: cfg.TokenTTL, Sandbox: cfg.Mode == config.Sandbox,
	}, sts.Deps{
		Signer: id.signer, Access: id.access, Subjects: subjects, Attestors: attestors,
		Policy: pol, Sessions: id.sessions, Trail: id.trail, Audit: a.Log.With("component", "audit"),
		Observe: a.Observe,
	})
	if err != nil {
		return nil, err
	}
	return id, nil
}

// runKeys re-publishes every signing key until ctx ends, so a live
// replica's keys never expire from Redis.
func (id *identity) runKeys(ctx context.Context) {
	for _, k := range id.rings {
		go func() { _ = k.Run(ctx) }()
	}
}
