package rediskey

import "strings"

// Root starts every key tollgate writes. Stores whose Config has a Prefix
// field put that prefix in its place; the registry describes the default.
const Root = "tg"

// Scope says where a family's keys sit in the key space.
type Scope uint8

const (
	// Global keys are "tg:<prefix>…": one per deployment, or looked up by
	// an id alone. Their Cluster slot is the key's own, or its own tag.
	Global Scope = iota + 1
	// Principal keys are "tg:{<escaped principal>}:<prefix>…": every key
	// of one principal hashes to one Redis Cluster slot, so one script can
	// touch all of them.
	Principal
)

func (s Scope) String() string {
	switch s {
	case Global:
		return "global"
	case Principal:
		return "principal"
	}
	return "unknown"
}

// Family is one key family: every key of its scope that starts with
// Prefix (or is exactly Prefix, when Exact). One store owns it: only that
// store reads or writes its keys, and anyone else goes through its API.
type Family struct {
	// Name is unique in the registry: "<package>.<what>".
	Name string
	// Scope is Global or Principal.
	Scope Scope
	// Prefix follows "tg:" (Global) or "tg:{P}:" (Principal). No family's
	// prefix starts another's of the same scope, so a key names at most
	// one family.
	Prefix string
	// Exact: the family is the single key Prefix (per principal when
	// Principal), not every key starting with it.
	Exact bool
	// Owner is the import path of the package whose store owns the family.
	Owner string
	// Store is the type in Owner that reads and writes the keys.
	Store string
	// Type is the Redis type of the keys.
	Type string
	// About says what the keys hold.
	About string
}

// Pattern is the family's key layout with placeholders: "tg:{P}:sess:<…>".
func (f Family) Pattern() string {
	p := Root + ":"
	if f.Scope == Principal {
		p += "{P}:"
	}
	p += f.Prefix
	if !f.Exact {
		p += "<…>"
	}
	return p
}

// module is the import path every owner starts with.
const module = "github.com/tollgate-dev/tollgate/"

// Families lists every Redis key family tollgate uses, each with its one
// owning store. It is the inventory a test holds the code to: every key a
// store writes belongs to one of its own families, and every "tg:…"
// literal in the module sits in its family's owning package.
func Families() []Family {
	const (
		sessions    = module + "sessions"
		human       = module + "gates/human"
		spend       = module + "gates/spend"
		loopguard   = module + "gates/loopguard"
		idempotency = module + "gates/idempotency"
		auth        = module + "auth"
		links       = module + "internal/links"
		mcpsession  = module + "internal/mcpsession"
		flowstate   = module + "internal/flowstate"
		secret      = module + "internal/sharedsecret"
	)
	return []Family{
		// Task sessions and their tokens (package sessions, Store).
		{Name: "sessions.session", Scope: Principal, Prefix: "sess:", Owner: sessions, Store: "Store", Type: "hash",
			About: "the session record, by session id"},
		{Name: "sessions.tokens", Scope: Principal, Prefix: "toks:", Owner: sessions, Store: "Store", Type: "set",
			About: "SHA-256 of every token issued for a session"},
		{Name: "sessions.children", Scope: Principal, Prefix: "kids:", Owner: sessions, Store: "Store", Type: "set",
			About: `a session's child sessions, "<principal>|<sid>"`},
		{Name: "sessions.denied", Scope: Principal, Prefix: "jti:", Owner: sessions, Store: "Store", Type: "string",
			About: "a deny-listed token id (value: its session id)"},
		{Name: "sessions.index", Scope: Principal, Prefix: "idx", Exact: true, Owner: sessions, Store: "Store", Type: "zset",
			About: "the principal's sessions, score = purge deadline"},
		{Name: "sessions.owner", Scope: Global, Prefix: "sid:", Owner: sessions, Store: "Store", Type: "string",
			About: "the principal of a session id, for operators who have only the id"},
		{Name: "sessions.all", Scope: Global, Prefix: "sessidx", Exact: true, Owner: sessions, Store: "Store", Type: "zset",
			About: "every session id, score = purge deadline"},

		// The audit trail (package sessions, Audit): one chain per
		// principal under its tag, so the guard appends in the same script
		// as the step it records; a system chain for entries without a
		// principal; and the index of principals with a chain.
		{Name: "sessions.audit-chain", Scope: Principal, Prefix: "audit", Owner: sessions, Store: "Audit", Type: "stream, hash, string",
			About: "the principal's entries (audit), the chain's head (audit:head), an appender's claim (audit:claim)"},
		{Name: "sessions.audit", Scope: Global, Prefix: "audit:", Owner: sessions, Store: "Audit", Type: "stream, hash, string, zset",
			About: "the system chain (audit:{chain}, :head, :claim) and the index of principals with a chain (audit:chains)"},

		// The human gate (package gates/human).
		{Name: "human.sealkey", Scope: Global, Prefix: "gates:sealkey", Exact: true, Owner: human, Store: "Sealer", Type: "string",
			About: "the master key sealing request states, shared by every replica"},
		{Name: "human.used", Scope: Principal, Prefix: "gate:used:", Owner: human, Store: "Sealer", Type: "string",
			About: "a sealed state already answered once"},
		{Name: "human.approval", Scope: Principal, Prefix: "approval:", Owner: human, Store: "Approvals", Type: "hash",
			About: "the approval record"},
		{Name: "human.approvals", Scope: Principal, Prefix: "approvals", Exact: true, Owner: human, Store: "Approvals", Type: "zset",
			About: "the principal's approvals, score = purge deadline"},
		{Name: "human.approval-owner", Scope: Global, Prefix: "approval:", Owner: human, Store: "Approvals", Type: "string",
			About: "the principal of an approval id, for the page and the CLI, which have only the id"},
		{Name: "human.consents", Scope: Principal, Prefix: "consents", Exact: true, Owner: human, Store: "Consents", Type: "hash",
			About: `"<provider>|<kind>|<version>" → first acceptance`},

		// The money ledger (package gates/spend, Ledger).
		{Name: "spend.cap", Scope: Principal, Prefix: "cap:", Owner: spend, Store: "Ledger", Type: "hash",
			About: "spent and held at a provider in a month: cap:<provider>:<YYYY-MM>"},
		{Name: "spend.budget", Scope: Principal, Prefix: "budget:", Owner: spend, Store: "Ledger", Type: "hash",
			About: "spent and held by a session at a provider: budget:<sid>:<provider>"},
		{Name: "spend.hold", Scope: Principal, Prefix: "hold:", Owner: spend, Store: "Ledger", Type: "hash",
			About: "the hold record"},
		{Name: "spend.open", Scope: Principal, Prefix: "holds:open", Exact: true, Owner: spend, Store: "Ledger", Type: "zset",
			About: "open holds, score = expiry"},
		{Name: "spend.stale", Scope: Principal, Prefix: "holds:stale", Exact: true, Owner: spend, Store: "Ledger", Type: "zset",
			About: "expired holds waiting for reconciliation, score = expiry"},
		{Name: "spend.principals", Scope: Global, Prefix: "spend:principals", Exact: true, Owner: spend, Store: "Ledger", Type: "zset",
			About: "principals that asked for a hold, score = last ask"},
		{Name: "spend.caps", Scope: Principal, Prefix: "caps", Exact: true, Owner: spend, Store: "Ledger", Type: "hash",
			About: "stored caps: <provider> (standing) and <provider>:<YYYY-MM> (a one-month raise) → minor units"},
		{Name: "spend.recurring", Scope: Principal, Prefix: "recurring:", Owner: spend, Store: "Ledger", Type: "hash",
			About: "recurring commitments at a provider: recurring:<provider>, hold id → <minor>|<next month>|<ref>"},
		{Name: "spend.charges", Scope: Principal, Prefix: "charges:", Owner: spend, Store: "Ledger", Type: "hash",
			About: "charges committed in a month, for reconcile: charges:<provider>:<YYYY-MM>, invoice id → <minor>|<ref>"},
		{Name: "spend.subs", Scope: Principal, Prefix: "subs", Exact: true, Owner: spend, Store: "Ledger", Type: "hash",
			About: "the principal's provider subscriptions: subscription id → its commitment, human, agent and customer (JSON), written with the commit of its first period"},
		{Name: "spend.capped", Scope: Global, Prefix: "spend:capped", Exact: true, Owner: spend, Store: "Ledger", Type: "set",
			About: "principals with a stored cap, for `tollgate spend cap show`"},
		{Name: "spend.webhook", Scope: Global, Prefix: "spend:webhook:", Owner: spend, Store: "Ledger", Type: "string",
			About: "a provider webhook event id already recorded (30 days)"},

		// The loop guard and idempotency records.
		{Name: "loopguard.calls", Scope: Principal, Prefix: "loop:", Owner: loopguard, Store: "Guard", Type: "zset, string",
			About: "loop:sess:<sid>, loop:all, loop:ref:<tool>:<digest>, loop:cool:<tool>:<digest>"},
		{Name: "idempotency.record", Scope: Principal, Prefix: "idem:", Owner: idempotency, Store: "Store", Type: "hash",
			About: "a call's idempotency record: idem:<tool>:<sha256(key)>"},

		// Signing keys every replica publishes (package auth); KeyRing
		// writes them and RedisKeys reads them, through one file.
		{Name: "auth.keys", Scope: Global, Prefix: "keys:", Owner: auth, Store: "KeyRing", Type: "zset",
			About: "the published public keys of a namespace: keys:<namespace>"},

		// Provider links and named secrets, sealed (package internal/links).
		{Name: "links.links", Scope: Principal, Prefix: "links", Exact: true, Owner: links, Store: "Store", Type: "hash",
			About: "the principal's provider accounts, customer, payment method, sealed credentials and secrets"},

		// The HTTP edge's own state.
		{Name: "mcpsession.owner", Scope: Global, Prefix: "mcpsess:", Owner: mcpsession, Store: "Owners", Type: "string",
			About: "the principal that opened an MCP transport session (Mcp-Session-Id)"},
		{Name: "mcpsession.open", Scope: Principal, Prefix: "mcpsess", Exact: true, Owner: mcpsession, Store: "Owners", Type: "zset",
			About: "the principal's open MCP transport sessions, scored by last use (unix ms), and reservations for ones being opened"},
		{Name: "flowstate.flow", Scope: Global, Prefix: "flow:", Owner: flowstate, Store: "Store", Type: "string",
			About: "a URL-mode flow's server-side state (PKCE verifier, OAuth state, Checkout session), by approval id; an approvals-page sign-in's (state, nonce, PKCE verifier), by signin:<state>"},
		{Name: "sharedsecret.secret", Scope: Global, Prefix: "secret:", Owner: secret, Store: "Store", Type: "string",
			About: "a 32-byte secret every replica shares: secret:<name>"},
	}
}

// Lookup returns the family key belongs to: the one whose prefix starts
// the key in its scope. A principal key's tag must be closed, and the
// escaped principal in it non-empty.
func Lookup(key string) (Family, bool) {
	rest, ok := strings.CutPrefix(key, Root+":")
	if !ok {
		return Family{}, false
	}
	scope := Global
	if tagged, ok := strings.CutPrefix(rest, "{"); ok {
		// EscapePrincipal leaves no '}' in a principal: the first one
		// closes the tag.
		end := strings.IndexByte(tagged, '}')
		if end <= 0 || !strings.HasPrefix(tagged[end+1:], ":") {
			return Family{}, false
		}
		scope, rest = Principal, tagged[end+2:]
	}
	for _, f := range Families() {
		if f.Scope != scope {
			continue
		}
		if f.Exact && rest == f.Prefix || !f.Exact && strings.HasPrefix(rest, f.Prefix) {
			return f, true
		}
	}
	return Family{}, false
}
