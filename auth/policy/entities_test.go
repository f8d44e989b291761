package policy

import "testing"

// These tests pin the attributes policies can rely on, by asking a policy
// that permits only when the attribute has the documented value.
func TestEntityAttributes(t *testing.T) {
	tests := []struct {
		name      string
		condition string
		agent     Agent
		subject   Subject
		allow     bool
	}{
		{"spiffe agent exposes id, kind, trust domain and path",
			`principal.id == "spiffe://tollgate.sandbox/agent/deployer" && principal.kind == "dev" &&
			 principal.trust_domain == "tollgate.sandbox" && principal.path == "/agent/deployer"`,
			devAgent, alice, true},
		{"spiffe id without a path has an empty path",
			`principal.trust_domain == "example.org" && principal.path == ""`,
			Agent{ID: "spiffe://example.org", Kind: KindJWT}, alice, true},
		{"unix agent exposes uid as a Long, exe and sha256",
			`principal.kind == "unix" && principal.uid == 1000 && principal.uid < 1001 &&
			 principal.exe == "/usr/bin/node" && principal.sha256 == "` + testSum + `"`,
			unixAgent, alice, true},
		{"unix executable path may contain colons",
			`principal.exe == "/opt/a:b/node"`,
			Agent{ID: "unix:uid=0:exe=/opt/a:b/node:sha256=" + testSum, Kind: KindUnix}, alice, true},
		{"non-spiffe jwt agent has no trust domain",
			`!(principal has trust_domain) && principal.id == "system:serviceaccount:ci:deployer"`,
			Agent{ID: "system:serviceaccount:ci:deployer", Kind: KindJWT}, alice, true},
		{"extra attested attrs reach the policy",
			`principal.issuer == "https://token.actions.githubusercontent.com"`,
			Agent{ID: "repo:acme/site:ref:refs/heads/main", Kind: KindJWT,
				Attrs: map[string]string{"issuer": "https://token.actions.githubusercontent.com"}}, alice, true},
		{"user exposes id, email and lower-cased domain",
			`resource is Tollgate::User && resource.id == "user:Alice@Example.COM" &&
			 resource.email == "Alice@Example.COM" && resource.domain == "example.com"`,
			devAgent, Subject{ID: "user:Alice@Example.COM", Kind: KindUser, Attrs: map[string]string{"email": "Alice@Example.COM", "email_verified": "true"}}, true},
		{"user email comes from attrs when the sub is opaque",
			`resource.domain == "corp.example"`,
			devAgent, Subject{ID: "user:1234567", Kind: KindUser, Attrs: map[string]string{"email": "bob@corp.example", "email_verified": "true"}}, true},
		{"user domain cannot be supplied without an email",
			`!(resource has domain) && resource.id == "user:1234567"`,
			devAgent, Subject{ID: "user:1234567", Kind: KindUser, Attrs: map[string]string{"domain": "example.com", "id": "user:root"}}, true},
		{"user without an email has no domain",
			`!(resource has domain) && !(resource has email)`,
			devAgent, Subject{ID: "user:1234567", Kind: KindUser}, true},
		{"upstream agent subject is an Agent entity",
			`resource is Tollgate::Agent && resource.kind == "dev"`,
			devSub, devAgent.AsSubject(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustParse(t, `@id("probe") permit (principal, action == Tollgate::Action::"act_for", resource) when { `+tt.condition+` };`)
			d := e.MayActFor(tt.agent, tt.subject)
			if d.Allow != tt.allow {
				t.Fatalf("Allow = %v, want %v: %+v", d.Allow, tt.allow, d)
			}
		})
	}
}

func TestContextOnBehalfOf(t *testing.T) {
	e := mustParse(t, `
@id("example-com-users-only")
permit (principal, action == Tollgate::Action::"use_scope", resource == Tollgate::Scope::"dns:write")
when { context.on_behalf_of is Tollgate::User && context.on_behalf_of.domain == "example.com" };

@id("spend-for-example-com")
permit (principal, action == Tollgate::Action::"spend", resource)
when { context.on_behalf_of has domain && context.on_behalf_of.domain == "example.com" &&
       context.currency == "usd" && context.amount_minor <= 500 };
`)
	mallory := Subject{ID: "user:mallory@evil.example", Kind: KindUser}

	allowed, _ := e.AllowedScopes(devAgent, alice, []string{"dns:write"})
	if len(allowed) != 1 {
		t.Errorf("alice: allowed = %q, want dns:write", allowed)
	}
	allowed, _ = e.AllowedScopes(devAgent, mallory, []string{"dns:write"})
	if len(allowed) != 0 {
		t.Errorf("mallory: allowed = %q, want none", allowed)
	}
	check(t, e.MaxSpend(devAgent, alice, "stripe", 500, "usd"), want{allow: true, ids: []string{"spend-for-example-com"}})
	check(t, e.MaxSpend(devAgent, mallory, "stripe", 500, "usd"), want{})
	check(t, e.MaxSpend(devSub, devAgent.AsSubject(), "stripe", 500, "usd"), want{})
}

func TestParseIDs(t *testing.T) {
	tests := []struct {
		name      string
		id        string
		wantTD    string
		wantPath  string
		wantError bool
	}{
		{"plain", "spiffe://example.org/agent/a", "example.org", "/agent/a", false},
		{"trust domain only", "spiffe://example.org", "example.org", "", false},
		{"trailing slash", "spiffe://example.org/agent/", "", "", true},
		{"double slash", "spiffe://example.org//agent", "", "", true},
		{"dot-dot segment", "spiffe://example.org/agent/..", "", "", true},
		{"upper-case trust domain", "spiffe://Example.org/a", "", "", true},
		{"userinfo", "spiffe://user@example.org/a", "", "", true},
		{"query", "spiffe://example.org/a?x=1", "", "", true},
		{"fragment", "spiffe://example.org/a#x", "", "", true},
		{"percent-encoding", "spiffe://example.org/a%2Fb", "", "", true},
		{"no trust domain", "spiffe:///a", "", "", true},
		{"wrong scheme separator", "spiffe:example.org/a", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			td, path, err := parseSPIFFE(tt.id)
			if (err != nil) != tt.wantError {
				t.Fatalf("err = %v, want error %v", err, tt.wantError)
			}
			if td != tt.wantTD || path != tt.wantPath {
				t.Fatalf("= %q, %q; want %q, %q", td, path, tt.wantTD, tt.wantPath)
			}
		})
	}

	unix := []struct {
		name string
		id   string
		ok   bool
	}{
		{"well formed", "unix:uid=1000:exe=/usr/bin/node:sha256=" + testSum, true},
		{"negative uid", "unix:uid=-1:exe=/usr/bin/node:sha256=" + testSum, false},
		{"uid with leading zero", "unix:uid=01000:exe=/usr/bin/node:sha256=" + testSum, false},
		{"uid with plus sign", "unix:uid=+1000:exe=/usr/bin/node:sha256=" + testSum, false},
		{"relative executable", "unix:uid=1000:exe=node:sha256=" + testSum, false},
		{"short digest", "unix:uid=1000:exe=/usr/bin/node:sha256=abc", false},
		{"upper-case digest", "unix:uid=1000:exe=/usr/bin/node:sha256=" + "ABCDEF" + testSum[6:], false},
		{"no digest", "unix:uid=1000:exe=/usr/bin/node", false},
		{"no exe", "unix:uid=1000:sha256=" + testSum, false},
	}
	for _, tt := range unix {
		t.Run("unix "+tt.name, func(t *testing.T) {
			if _, _, _, err := parseUnixID(tt.id); (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestUnverifiedEmailIsNotAnIdentity: an email the IdP did not verify (or
// a sub that merely looks like one) never becomes the user's domain.
func TestUnverifiedEmailIsNotAnIdentity(t *testing.T) {
	e := mustParse(t, `
@id("corp-only")
permit (principal, action == Tollgate::Action::"act_for", resource is Tollgate::User)
when { resource has domain && resource.domain == "corp.example" };
`)
	claimed := Subject{ID: "user:ceo@corp.example", Kind: KindUser, Attrs: map[string]string{"email": "ceo@corp.example"}}
	if d := e.MayActFor(devAgent, claimed); d.Allow {
		t.Fatal("an unverified email passed a domain rule")
	}
	verified := Subject{ID: "user:ceo@corp.example", Kind: KindUser, Attrs: map[string]string{"email": "ceo@corp.example", "email_verified": "true"}}
	if d := e.MayActFor(devAgent, verified); !d.Allow {
		t.Fatalf("a verified email did not: %+v", d)
	}
}
