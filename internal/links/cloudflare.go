package links

// The principal's Cloudflare account: its id, the OAuth token the human
// granted (sealed), and the zones tollgate knows the account holds. These
// are the facts every Cloudflare call of that principal acts on, so they
// are read together in one round trip (Tenant) and written together.
//
// Fields of the principal's links hash:
//
//	cloudflare_account      the account id (plain, for operators)
//	cred:cloudflare         the sealed credential: account id + oauth2.Token
//	                        (apart from the human's named secret:* fields,
//	                        so no secret name can overwrite it)
//	cred:cloudflare:dead    digest of a credential that can no longer be renewed
//	zone:<name>             "<account id> <zone id>": a zone of that account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/fuse"
)

const (
	fieldCloudflareAccount = "cloudflare_account"
	secretCloudflare       = "cloudflare"
	credField              = "cred:" + secretCloudflare
	// deadField holds the digest of a credential Cloudflare definitively
	// refused to renew: later calls fail at once, without asking again.
	deadField       = credField + ":dead"
	fieldZonePrefix = "zone:"
)

// CloudflareLink is a linked Cloudflare account and its credential.
type CloudflareLink struct {
	AccountID string        `json:"account_id"`
	Token     *oauth2.Token `json:"token"`
}

// ZoneRef is a zone tollgate knows to be in the principal's linked account.
type ZoneRef struct {
	Name      domainname.Name
	ID        string
	AccountID string
}

// Tenant is what one read tells about a principal's Cloudflare account.
type Tenant struct {
	Link CloudflareLink
	// Zone is the asked zone when the linked account holds it.
	Zone *ZoneRef
	// sealed is the stored credential as read, for compare-and-set.
	sealed string
}

// LinkCloudflare records the principal's linked account and its
// credential, and the zones it holds, replacing any earlier link (and
// forgetting the zones of an earlier account), in one transaction.
func (s *Store) LinkCloudflare(ctx context.Context, principal string, link CloudflareLink, zones []ZoneRef) error {
	if link.AccountID == "" || link.Token == nil || link.Token.AccessToken == "" {
		return fault.New(fault.Internal, "links: a Cloudflare link needs an account and a token; nothing was saved")
	}
	sealed, err := s.sealLink(principal, link)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := s.key(principal)
	old, err := s.rdb.HKeys(ctx, key).Result()
	if err != nil {
		return fault.Wrap(err, fault.Unavailable, "the account store is unavailable; nothing was linked. Retry shortly")
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, f := range old {
			if strings.HasPrefix(f, fieldZonePrefix) {
				p.HDel(ctx, key, f)
			}
		}
		p.HDel(ctx, key, deadField)
		args := []any{fieldCloudflareAccount, link.AccountID, credField, sealed}
		for _, z := range zones {
			args = append(args, fieldZonePrefix+string(z.Name), link.AccountID+" "+z.ID)
		}
		p.HSet(ctx, key, args...)
		return nil
	})
	if err != nil {
		return fault.Wrap(err, fault.Unavailable, "the account store is unavailable; nothing was linked. Retry shortly")
	}
	return nil
}

// SetZones replaces the zones recorded for the principal's linked
// account, atomically, while that account is still the linked one.
func (s *Store) SetZones(ctx context.Context, principal, account string, zones []ZoneRef) error {
	args := []any{fieldCloudflareAccount, account, fieldZonePrefix}
	for _, z := range zones {
		args = append(args, fieldZonePrefix+string(z.Name), account+" "+z.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := setZones.Run(ctx, s.rdb, []string{s.key(principal)}, args...).Err()
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "other_account"):
		return fault.New(fault.Unavailable, "the Cloudflare account was linked again meanwhile; its zones were not recorded. Run account_connect again")
	}
	return fault.Wrap(err, fault.Unavailable, "the account store is unavailable; the zones were not recorded. Retry shortly")
}

// setZones drops every zone field and sets the given ones, only while the
// linked account is ARGV[2]. Replaying it gives the same state.
var setZones = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return redis.error_reply('other_account') end
local fields = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(fields) do
  if string.sub(f, 1, string.len(ARGV[3])) == ARGV[3] then redis.call('HDEL', KEYS[1], f) end
end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
return 1`)

// AddZone records that the principal's linked account holds zone, on its
// own (tests and tools outside a call); it refuses when the linked account
// is another.
func (s *Store) AddZone(ctx context.Context, principal string, z ZoneRef) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := fuse.Run(ctx, s.rdb, s.AddZoneStep(principal, z))
	if err != nil {
		return fault.Wrap(err, fault.Unavailable, "the account store is unavailable; the zone was not recorded. Retry shortly")
	}
	if len(res.Replies) != 1 || res.Replies[0] != int64(1) {
		return fault.New(fault.ResourceForbidden, "the zone is not in the principal's linked Cloudflare account; it was not recorded")
	}
	return nil
}

// AddZoneStep records that the principal's linked account holds zone (after
// a registration there), as a step of a fused script (internal/fuse): a
// registration records its zone in the same round trip as its commit. The
// step writes only while the linked account is still the zone's, answers 1
// when it wrote and 0 when the account was linked again meanwhile, and
// always lets the script go on: the commit before it stands either way.
func (s *Store) AddZoneStep(principal string, z ZoneRef) fuse.Step {
	return fuse.Step{Name: "links_add_zone", Body: addZoneStepLua, Continue: "true",
		Keys: []string{s.key(principal)},
		Args: []any{fieldCloudflareAccount, z.AccountID, fieldZonePrefix + string(z.Name), z.AccountID + " " + z.ID}}
}

// addZoneStepLua sets a zone field only while the linked account is the
// zone's. KEYS: the principal's links. ARGV: account field, account, zone
// field, zone value.
const addZoneStepLua = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
return 1`

// Tenant reads, in one round trip, the principal's linked account, its
// credential, and — when zone is not empty — whether the account holds it.
// No link is fault.AccountRequired.
func (s *Store) Tenant(ctx context.Context, principal string, zone domainname.Name) (Tenant, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	fields := tenantFields(zone)
	vals, err := s.rdb.HMGet(ctx, s.key(principal), fields...).Result()
	if err != nil {
		return Tenant{}, fault.Wrap(err, fault.Unavailable, "the account store is unavailable; nothing was done. Retry shortly")
	}
	return s.tenantOf(principal, zone, vals)
}

// TenantStep is Tenant's read as a step of a fused script (internal/fuse),
// so the guard reads the account in the same round trip as its other steps
// of the principal. The script always goes on; the returned function reads
// the reply as Tenant answers.
func (s *Store) TenantStep(principal string, zone domainname.Name) (fuse.Step, func(reply any) (Tenant, error)) {
	fields := tenantFields(zone)
	args := make([]any, len(fields))
	for i, f := range fields {
		args[i] = f
	}
	step := fuse.Step{Name: "links_tenant", Body: "return redis.call('HMGET', KEYS[1], unpack(ARGV))", Continue: "true",
		Keys: []string{s.key(principal)}, Args: args}
	return step, func(reply any) (Tenant, error) {
		vals, ok := reply.([]any)
		if !ok || len(vals) != len(fields) {
			return Tenant{}, fault.Newf(fault.Internal, "the account store answered %d fields for %d; nothing was done", len(vals), len(fields))
		}
		return s.tenantOf(principal, zone, vals)
	}
}

func tenantFields(zone domainname.Name) []string {
	fields := []string{credField, deadField}
	if zone != "" {
		fields = append(fields, fieldZonePrefix+string(zone))
	}
	return fields
}

// tenantOf reads Tenant's answer from the HMGET of tenantFields.
func (s *Store) tenantOf(principal string, zone domainname.Name, vals []any) (Tenant, error) {
	sealed, _ := vals[0].(string)
	if sealed == "" {
		return Tenant{}, fault.New(fault.AccountRequired,
			"no Cloudflare account is linked for this human: run account_connect first (after billing_setup). Nothing was held, sent or charged.")
	}
	if dead, _ := vals[1].(string); dead != "" && dead == digest(sealed) {
		return Tenant{}, relinkError(nil)
	}
	link, err := s.openLink(principal, sealed)
	if err != nil {
		return Tenant{}, err
	}
	t := Tenant{Link: link, sealed: sealed}
	if zone != "" {
		if raw, _ := vals[2].(string); raw != "" {
			acct, id, _ := strings.Cut(raw, " ")
			// A zone of an account linked before is not this one's.
			if acct == link.AccountID && id != "" {
				t.Zone = &ZoneRef{Name: zone, ID: id, AccountID: acct}
			}
		}
	}
	return t, nil
}

// Zones lists the zones recorded for the principal's linked account.
func (s *Store) Zones(ctx context.Context, principal string) ([]ZoneRef, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	all, err := s.rdb.HGetAll(ctx, s.key(principal)).Result()
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "the account store is unavailable")
	}
	acct := all[fieldCloudflareAccount]
	var out []ZoneRef
	for f, v := range all {
		name, ok := strings.CutPrefix(f, fieldZonePrefix)
		a, id, _ := strings.Cut(v, " ")
		if ok && a == acct && acct != "" {
			out = append(out, ZoneRef{Name: domainname.Name(name), ID: id, AccountID: a})
		}
	}
	return out, nil
}

// CloudflareAccounts maps the Cloudflare account each of principals has
// linked now to that principal; principals with none are left out (when
// two name one account, the first in sorted order keeps it). It reads
// plain ids only, no credential, so it needs no Store and no key: for the
// operator's tools (tollgate spend reconcile).
func CloudflareAccounts(ctx context.Context, rdb redis.UniversalClient, principals []string) (map[string]string, error) {
	ps := slices.Clone(principals)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	out := map[string]string{}
	const batch = 256
	for i := 0; i < len(ps); i += batch {
		chunk := ps[i:min(i+batch, len(ps))]
		cmds := make([]*redis.StringCmd, len(chunk))
		_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for j, pr := range chunk {
				cmds[j] = p.HGet(ctx, linksKey(pr), fieldCloudflareAccount)
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fault.Wrap(err, fault.Unavailable, "the account store is unavailable; nothing was read. Retry shortly")
		}
		for j, c := range cmds {
			if acct := c.Val(); acct != "" {
				if _, taken := out[acct]; !taken {
					out[acct] = chunk[j]
				}
			}
		}
	}
	return out, nil
}

// CloudflareAccount is the id of the linked account ("" for none).
func (s *Store) CloudflareAccount(ctx context.Context, principal string) (string, error) {
	return s.Get(ctx, principal, fieldCloudflareAccount)
}

func (s *Store) sealLink(principal string, link CloudflareLink) (string, error) {
	b, err := json.Marshal(link)
	if err != nil {
		return "", fault.Wrap(err, fault.Internal, "links: the credential does not encode; nothing was saved")
	}
	return s.seal(principal, credField, b)
}

func (s *Store) openLink(principal, sealed string) (CloudflareLink, error) {
	b, err := s.open(principal, credField, sealed)
	if err != nil {
		return CloudflareLink{}, err
	}
	var link CloudflareLink
	if err := json.Unmarshal(b, &link); err != nil || link.AccountID == "" || link.Token == nil {
		return CloudflareLink{}, fault.New(fault.AccountRelinkRequired,
			"the stored Cloudflare credential is unreadable; the human has to link the account again (account_connect). Nothing was sent or charged.")
	}
	return link, nil
}

// Refresher is how a token is renewed: the OAuth client's refresh.
type Refresher interface {
	Refresh(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error)
}

// OAuthRefresher renews tokens through an oauth2.Config's TokenSource
// (golang.org/x/oauth2), which sends the refresh_token grant.
type OAuthRefresher struct {
	Config *oauth2.Config
	HTTP   *http.Client // nil: http.DefaultClient
}

// Refresh sends the refresh_token grant for old.
func (r OAuthRefresher) Refresh(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	if r.Config == nil {
		return nil, errors.New("links: no OAuth client is configured to renew Cloudflare credentials")
	}
	if r.HTTP != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, r.HTTP)
	}
	expired := *old
	expired.AccessToken, expired.Expiry = "", time.Unix(1, 0)
	return r.Config.TokenSource(ctx, &expired).Token()
}

// TokenSource returns the credential of t as an oauth2.TokenSource: while
// the access token is valid it is used as is; once it expires, one replica
// at a time refreshes it and writes the new token back sealed. A refresh
// that fails is fault.AccountRelinkRequired, and nothing is written.
func (s *Store) TokenSource(ctx context.Context, principal string, t Tenant, r Refresher) oauth2.TokenSource {
	return &storedSource{ctx: context.WithoutCancel(ctx), s: s, principal: principal, cur: t, r: r}
}

type storedSource struct {
	ctx       context.Context
	s         *Store
	principal string
	r         Refresher

	mu  sync.Mutex
	cur Tenant
	// rejected is the stored credential the provider refused although it
	// had not expired (revoked, or expired early): renew it, whatever its
	// expiry says.
	rejected string
}

// Reject marks the current credential dead: renewed, it was still refused
// (the account no longer lets tollgate in), so later calls fail at once
// until the human links it again.
func (ts *storedSource) Reject() {
	ts.mu.Lock()
	sealed := ts.cur.sealed
	ts.mu.Unlock()
	_ = markDead.Run(ts.ctx, ts.s.rdb, []string{ts.s.key(ts.principal)}, credField, sealed, deadField, digest(sealed)).Err()
}

// Invalidate marks the current access token as refused by the provider:
// the next Token renews it (once, across replicas) even before it expires.
func (ts *storedSource) Invalidate() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.rejected = ts.cur.sealed
}

// usable reports whether t holds a token to use as it is.
func (ts *storedSource) usable(t Tenant) bool {
	return t.Link.Token.Valid() && t.sealed != ts.rejected
}

// refreshBackoff is how long a renewal that got no answer is not retried.
const refreshBackoff = 5 * time.Second

// refreshLockTTL bounds a refresh: a replica that dies holding the lock
// delays the others by at most this.
const refreshLockTTL = 10 * time.Second

func (ts *storedSource) Token() (*oauth2.Token, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.usable(ts.cur) {
		return ts.cur.Link.Token, nil
	}
	if ts.r == nil || ts.cur.Link.Token.RefreshToken == "" {
		return nil, relinkError(nil)
	}
	ctx, cancel := context.WithTimeout(ts.ctx, refreshLockTTL)
	defer cancel()
	lock, owner := ts.s.key(ts.principal)+":refresh", newLockToken()
	// Refresh tokens rotate: two replicas refreshing one token would
	// spend it twice and lose the newer grant. One refreshes; the others
	// wait and read what it wrote.
	for {
		got, err := ts.s.rdb.SetNX(ctx, lock, owner, refreshLockTTL).Result()
		if err != nil {
			return nil, fault.Wrap(err, fault.Unavailable, "the account store is unavailable; nothing was sent. Retry shortly")
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fault.New(fault.Unavailable, "another call is renewing the Cloudflare credential; nothing was sent. Retry shortly")
		case <-time.After(50 * time.Millisecond):
		}
		if fresh, err := ts.reread(ctx); err == nil && ts.usable(fresh) {
			ts.cur = fresh
			return fresh.Link.Token, nil
		}
	}
	// Only our own lock is released: one that expired under a slow
	// refresh may be another replica's by now.
	defer releaseLock.Run(context.WithoutCancel(ctx), ts.s.rdb, []string{lock}, owner)
	if n, err := ts.s.rdb.Exists(ctx, ts.s.key(ts.principal)+":refresh-backoff").Result(); err == nil && n > 0 {
		return nil, fault.New(fault.Unavailable, "renewing the Cloudflare credential failed a moment ago; nothing was sent. Retry in a few seconds")
	}
	// Another replica may have refreshed between our read and the lock.
	fresh, err := ts.reread(ctx)
	if err != nil {
		return nil, err
	}
	if ts.usable(fresh) {
		ts.cur = fresh
		return fresh.Link.Token, nil
	}
	tok, err := ts.r.Refresh(ctx, fresh.Link.Token)
	if err != nil || tok == nil || tok.AccessToken == "" {
		if !definitive(err) {
			// No answer or a 5xx: wait a little before asking again, so
			// that an agent retrying does not hammer the token endpoint.
			_ = ts.s.rdb.Set(context.WithoutCancel(ctx), ts.s.key(ts.principal)+":refresh-backoff", "1", refreshBackoff).Err()
		}
		if definitive(err) {
			// Remember it, so that the next calls do not ask Cloudflare
			// again (an agent retrying must not hammer the token
			// endpoint); a relink replaces the credential and the mark.
			_ = markDead.Run(context.WithoutCancel(ctx), ts.s.rdb, []string{ts.s.key(ts.principal)}, credField, fresh.sealed, deadField, digest(fresh.sealed)).Err()
		}
		return nil, relinkError(err)
	}
	if tok.RefreshToken == "" {
		tok.RefreshToken = fresh.Link.Token.RefreshToken
	}
	next := CloudflareLink{AccountID: fresh.Link.AccountID, Token: tok}
	sealed, err := ts.s.sealLink(ts.principal, next)
	if err != nil {
		return nil, err
	}
	// Compare-and-set: only over the credential this refresh started
	// from, so a relink meanwhile is never overwritten.
	res, err := swapSecret.Run(ctx, ts.s.rdb, []string{ts.s.key(ts.principal)}, credField, fresh.sealed, sealed).Int()
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "the renewed Cloudflare credential could not be saved; nothing was sent. Retry shortly")
	}
	if res == 0 {
		// Relinked meanwhile: use what is stored now.
		return nil, fault.New(fault.Unavailable, "the Cloudflare account was linked again while this call ran; nothing was sent. Retry")
	}
	ts.cur = Tenant{Link: next, Zone: fresh.Zone, sealed: sealed}
	return tok, nil
}

// releaseLock deletes a lock only while it holds the releaser's token.
var releaseLock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

func newLockToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// markDead marks the credential dead only while it is still the stored one.
var markDead = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
return 1`)

// definitive reports a refresh the provider refused for good (RFC 6749
// §5.2: invalid_grant, invalid_client, unauthorized_client), as opposed to
// one that did not get an answer.
func definitive(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	switch re.ErrorCode {
	case "invalid_grant", "invalid_client", "unauthorized_client", "unsupported_grant_type", "invalid_scope":
		return true
	}
	return re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 && re.Response.StatusCode != 429
}

func digest(sealed string) string {
	sum := sha256.Sum256([]byte(sealed))
	return hex.EncodeToString(sum[:])
}

// swapSecret replaces a field only while it still holds the expected
// value; replaying it with the new value already there is a success
// (go-redis retries on network errors).
var swapSecret = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == ARGV[3] then return 1 end
if cur ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1`)

func (ts *storedSource) reread(ctx context.Context) (Tenant, error) {
	var zone domainname.Name
	if ts.cur.Zone != nil {
		zone = ts.cur.Zone.Name
	}
	t, err := ts.s.Tenant(ctx, ts.principal, zone)
	if err != nil {
		return Tenant{}, err
	}
	if t.Link.AccountID != ts.cur.Link.AccountID {
		return Tenant{}, fault.New(fault.Unavailable, "the Cloudflare account was linked again while this call ran; nothing was sent. Retry")
	}
	return t, nil
}

func relinkError(cause error) error {
	return fault.Wrap(cause, fault.AccountRelinkRequired,
		"the linked Cloudflare account's credential expired and could not be renewed (revoked at Cloudflare?); the human has to link the account again (account_connect). Nothing was held, sent or charged.")
}
