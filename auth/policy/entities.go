package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cedar-policy/cedar-go/types"
)

// Kind says how an agent was attested, or that a subject is a human.
type Kind string

const (
	KindJWT  Kind = "jwt"  // workload JWT (JWT-SVID, Kubernetes, CI OIDC)
	KindUnix Kind = "unix" // peer process: uid, executable, its SHA-256
	KindDev  Kind = "dev"  // the sandbox's own signer
	KindUser Kind = "user" // a human principal (subjects only)
)

// Cedar names of the model. They are the contract with policy files.
const (
	typeUser     types.EntityType = "Tollgate::User"
	typeAgent    types.EntityType = "Tollgate::Agent"
	typeScope    types.EntityType = "Tollgate::Scope"
	typeProvider types.EntityType = "Tollgate::Provider"
	typeAction   types.EntityType = "Tollgate::Action"

	actActFor      types.String = "act_for"
	actImpersonate types.String = "impersonate"
	actUseScope    types.String = "use_scope"
	actSpend       types.String = "spend"
)

// Agent is an attested workload, as its attestor saw it.
type Agent struct {
	// ID is the attested agent id: a SPIFFE id or other JWT sub for
	// KindJWT and KindDev, "unix:uid=N:exe=PATH:sha256=HEX" for KindUnix.
	ID   string
	Kind Kind
	// Attrs are further attested facts, exposed to policy as String
	// attributes. The names of attributes derived from ID and Kind (id,
	// kind, trust_domain, path, uid, exe, sha256) are reserved: Attrs of
	// those names are dropped, present or not, so a claim can never pose as
	// an attested fact.
	Attrs map[string]string
}

// AsSubject returns a as the subject of a delegation: an upstream agent
// that another agent acts for.
func (a Agent) AsSubject() Subject { return Subject(a) }

// Subject is whom an agent acts for: a human (Kind == KindUser, ID
// "user:<sub>") or an upstream agent (Kind is that agent's kind, ID its id).
type Subject struct {
	ID   string
	Kind Kind
	// Attrs are verified facts about the subject. For users, "email" must
	// be a verified email address; when absent, an ID of the form
	// "user:<email>" supplies it. "id" and "domain" are reserved and
	// dropped; for agent subjects the Agent.Attrs rules apply.
	Attrs map[string]string
}

func (s Subject) isAgent() bool { return s.Kind != KindUser }

// agentEntity builds the Cedar entity for an attested agent. It refuses ids
// that do not parse as what their kind or scheme claims: a policy must never
// see half-parsed identity attributes.
func agentEntity(a Agent) (types.Entity, error) {
	if a.ID == "" {
		return types.Entity{}, fmt.Errorf("agent id is empty")
	}
	attrs := stringAttrs(a.Attrs, "id", "kind", "trust_domain", "path", "uid", "exe", "sha256")
	switch a.Kind {
	case KindJWT, KindDev, KindUnix:
	default:
		return types.Entity{}, fmt.Errorf("agent %q: unknown kind %q", a.ID, a.Kind)
	}
	if strings.HasPrefix(strings.ToLower(a.ID), "spiffe:") {
		td, path, err := parseSPIFFE(a.ID)
		if err != nil {
			return types.Entity{}, fmt.Errorf("agent %q: %w", a.ID, err)
		}
		attrs["trust_domain"] = types.String(td)
		attrs["path"] = types.String(path)
	}
	isUnixID := strings.HasPrefix(a.ID, "unix:")
	if isUnixID != (a.Kind == KindUnix) {
		return types.Entity{}, fmt.Errorf("agent %q: kind %q does not match the id", a.ID, a.Kind)
	}
	if isUnixID {
		uid, exe, sum, err := parseUnixID(a.ID)
		if err != nil {
			return types.Entity{}, fmt.Errorf("agent %q: %w", a.ID, err)
		}
		attrs["uid"] = types.Long(uid)
		attrs["exe"] = types.String(exe)
		attrs["sha256"] = types.String(sum)
	}
	attrs["id"] = types.String(a.ID)
	attrs["kind"] = types.String(a.Kind)
	return types.Entity{
		UID:        types.NewEntityUID(typeAgent, types.String(a.ID)),
		Attributes: types.NewRecord(attrs),
	}, nil
}

// subjectEntity builds the Cedar entity for whom the agent acts.
func subjectEntity(s Subject) (types.Entity, error) {
	if s.isAgent() {
		return agentEntity(Agent(s))
	}
	sub, ok := strings.CutPrefix(s.ID, "user:")
	if !ok || sub == "" {
		return types.Entity{}, fmt.Errorf("user subject %q: want \"user:<sub>\"", s.ID)
	}
	attrs := stringAttrs(s.Attrs, "id", "email", "domain")
	// Only an address the IdP verified becomes the user's email (and its
	// domain): an unverified email claim, or a sub that merely looks like
	// an address, is something the user typed ("nOAuth").
	email := s.Attrs["email"]
	if s.Attrs["email_verified"] != "true" {
		email = ""
	}
	if email != "" {
		local, domain, ok := strings.Cut(email, "@")
		if !ok || local == "" || domain == "" || strings.Contains(domain, "@") {
			return types.Entity{}, fmt.Errorf("user subject %q: malformed email %q", s.ID, email)
		}
		attrs["email"] = types.String(email)
		// Domains compare case-insensitively (RFC 4343); policies see lower case.
		attrs["domain"] = types.String(strings.ToLower(domain))
	}
	attrs["id"] = types.String(s.ID)
	return types.Entity{
		UID:        types.NewEntityUID(typeUser, types.String(s.ID)),
		Attributes: types.NewRecord(attrs),
	}, nil
}

// stringAttrs converts caller attributes, dropping the reserved names that
// only this package may set.
func stringAttrs(in map[string]string, reserved ...string) types.RecordMap {
	out := make(types.RecordMap, len(in)+len(reserved))
	for k, v := range in {
		if !slices.Contains(reserved, k) {
			out[types.String(k)] = types.String(v)
		}
	}
	return out
}

// parseSPIFFE splits a SPIFFE ID into trust domain and path, following the
// SPIFFE-ID standard §2: lower-case scheme and trust domain, no port,
// userinfo, query or fragment, no empty, "." or ".." path segments.
func parseSPIFFE(id string) (trustDomain, path string, err error) {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return "", "", fmt.Errorf("spiffe id must start with \"spiffe://\"")
	}
	trustDomain, path, _ = strings.Cut(rest, "/")
	if trustDomain == "" {
		return "", "", fmt.Errorf("spiffe id has no trust domain")
	}
	for _, c := range trustDomain {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return "", "", fmt.Errorf("spiffe trust domain has invalid character %q", c)
		}
	}
	if !strings.HasPrefix(rest[len(trustDomain):], "/") {
		return trustDomain, "", nil
	}
	path = rest[len(trustDomain):]
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", "", fmt.Errorf("spiffe path has an empty, \".\" or \"..\" segment")
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
				return "", "", fmt.Errorf("spiffe path has invalid character %q", c)
			}
		}
	}
	return trustDomain, path, nil
}

// parseUnixID parses "unix:uid=N:exe=PATH:sha256=HEX". The executable path
// may itself contain colons, so the digest is taken from the end.
func parseUnixID(id string) (uid int64, exe, sum string, err error) {
	rest, ok := strings.CutPrefix(id, "unix:uid=")
	if !ok {
		return 0, "", "", fmt.Errorf("unix id must start with \"unix:uid=\"")
	}
	uidText, rest, ok := strings.Cut(rest, ":exe=")
	if !ok {
		return 0, "", "", fmt.Errorf("unix id has no \":exe=\"")
	}
	uid, err = strconv.ParseInt(uidText, 10, 64)
	if err != nil || uid < 0 || strconv.FormatInt(uid, 10) != uidText {
		return 0, "", "", fmt.Errorf("unix id has a malformed uid %q", uidText)
	}
	i := strings.LastIndex(rest, ":sha256=")
	if i < 0 {
		return 0, "", "", fmt.Errorf("unix id has no \":sha256=\"")
	}
	exe, sum = rest[:i], rest[i+len(":sha256="):]
	if !strings.HasPrefix(exe, "/") {
		return 0, "", "", fmt.Errorf("unix id executable %q is not an absolute path", exe)
	}
	if len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
		return 0, "", "", fmt.Errorf("unix id sha256 must be 64 lower-case hex digits")
	}
	return uid, exe, sum, nil
}
