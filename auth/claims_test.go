//go:build !nosandbox

package auth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

func TestActorChain(t *testing.T) {
	a := NewActorChain("c", "b", "a")
	if got := a.Chain(); !reflect.DeepEqual(got, []string{"c", "b", "a"}) {
		t.Fatalf("chain %q", got)
	}
	if a.Depth() != 3 || !a.Contains("b") || a.Contains("d") {
		t.Fatalf("depth %d contains b %v d %v", a.Depth(), a.Contains("b"), a.Contains("d"))
	}
	var none *Actor
	if none.Depth() != 0 || none.Chain() != nil || none.Contains("") || NewActorChain() != nil {
		t.Fatal("nil actor misbehaves")
	}
	b, err := json.Marshal(a)
	must(t, err)
	if string(b) != `{"sub":"c","act":{"sub":"b","act":{"sub":"a"}}}` {
		t.Fatalf("wire form %s", b)
	}
}

func TestClaimsWireForm(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := Claims{
		Issuer: testIssuer, Subject: "user:alice@example.com", Audience: testResource,
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		ID: "j", Scope: "a b", ClientID: "agent", SessionID: "s", ParentSessionID: "p",
		Act: NewActorChain("agent"), MayAct: NewActorChain("other"),
	}
	b, err := json.Marshal(c)
	must(t, err)
	var m map[string]any
	must(t, json.Unmarshal(b, &m))
	for name, want := range map[string]any{
		"iss": testIssuer, "aud": testResource, "exp": float64(1_800_000_060), "iat": float64(1_800_000_000),
		"scope": "a b", "client_id": "agent", "sid": "s", "parent_sid": "p", "jti": "j",
	} {
		if m[name] != want {
			t.Errorf("%s = %#v; want %#v", name, m[name], want)
		}
	}
	if _, ok := m["authorization_details"]; ok {
		t.Error("empty authorization_details on the wire")
	}
	if got := c.Scopes(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("scopes %q", got)
	}
	if s, err := JoinScopes([]string{"dns:write", "domains:read"}); err != nil || s != "dns:write domains:read" {
		t.Errorf("JoinScopes = %q, %v", s, err)
	}
	for _, bad := range [][]string{{"a b"}, {""}, {`q"`}, {"é"}} {
		if _, err := JoinScopes(bad); err == nil {
			t.Errorf("JoinScopes(%q) accepted", bad)
		}
	}
	sc := SubjectClaims{Subject: "alice@example.com", Scope: "x"}
	if sc.Principal() != "user:alice@example.com" || !reflect.DeepEqual(sc.Scopes(), []string{"x"}) {
		t.Errorf("subject claims %q %q", sc.Principal(), sc.Scopes())
	}
}

func TestParseAuthorizationDetails(t *testing.T) {
	ok := []struct {
		name string
		in   string
		want AuthorizationDetails
	}{
		{"null", `null`, nil},
		{"empty", `[]`, nil},
		{"resources", `[{"type":"tollgate:resources","domains":["shop.example","api.shop.example"]}]`,
			AuthorizationDetails{{Type: DetailResources, Domains: []string{"shop.example", "api.shop.example"}}}},
		{"domain case folded", `[{"type":"tollgate:resources","domains":["Shop.EXAMPLE"]}]`,
			AuthorizationDetails{{Type: DetailResources, Domains: []string{"shop.example"}}}},
		{"punycode domain", `[{"type":"tollgate:resources","domains":["xn--bcher-kva.example"]}]`,
			AuthorizationDetails{{Type: DetailResources, Domains: []string{"xn--bcher-kva.example"}}}},
		{"spend canonicalised", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"20","currency":"USD"}]`,
			AuthorizationDetails{{Type: DetailSpend, Provider: "stripe", MaxAmount: "20.00", Currency: "usd"}}},
		{"both providers and resources", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"1.50","currency":"usd"},
			{"type":"tollgate:spend","provider":"cloudflare","max_amount":"9.99","currency":"usd"},
			{"type":"tollgate:resources","domains":["a.example"]}]`,
			AuthorizationDetails{
				{Type: DetailSpend, Provider: "stripe", MaxAmount: "1.50", Currency: "usd"},
				{Type: DetailSpend, Provider: "cloudflare", MaxAmount: "9.99", Currency: "usd"},
				{Type: DetailResources, Domains: []string{"a.example"}},
			}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorizationDetails([]byte(tt.in))
			must(t, err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	refused := []struct{ name, in string }{
		{"not an array", `{"type":"tollgate:resources","domains":["a.example"]}`},
		{"unknown type", `[{"type":"payment_initiation","instructedAmount":{"amount":"1"}}]`},
		{"missing type", `[{"domains":["a.example"]}]`},
		{"type not a string", `[{"type":1}]`},
		{"unknown field", `[{"type":"tollgate:resources","domains":["a.example"],"locations":["x"]}]`},
		{"field of another type", `[{"type":"tollgate:resources","domains":["a.example"],"provider":"stripe"}]`},
		{"field name in another case", `[{"type":"tollgate:resources","DOMAINS":["a.example"]}]`},
		{"duplicate member", `[{"type":"tollgate:resources","domains":["a.example"],"domains":["b.example"]}]`},
		{"no domains", `[{"type":"tollgate:resources","domains":[]}]`},
		{"domains not strings", `[{"type":"tollgate:resources","domains":[1]}]`},
		{"wildcard domain", `[{"type":"tollgate:resources","domains":["*.a.example"]}]`},
		{"trailing dot", `[{"type":"tollgate:resources","domains":["a.example."]}]`},
		{"single label", `[{"type":"tollgate:resources","domains":["localhost"]}]`},
		{"ip address", `[{"type":"tollgate:resources","domains":["10.0.0.1"]}]`},
		{"kelvin sign", `[{"type":"tollgate:resources","domains":["\u212aey.example"]}]`},
		{"hyphen-edged label", `[{"type":"tollgate:resources","domains":["-a.example"]}]`},
		{"duplicate domain", `[{"type":"tollgate:resources","domains":["a.example","A.example"]}]`},
		{"second resources entry", `[{"type":"tollgate:resources","domains":["a.example"]},{"type":"tollgate:resources","domains":["b.example"]}]`},
		{"second spend for one provider", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"1","currency":"usd"},{"type":"tollgate:spend","provider":"stripe","max_amount":"2","currency":"usd"}]`},
		{"unknown provider", `[{"type":"tollgate:spend","provider":"aws","max_amount":"1","currency":"usd"}]`},
		{"amount as number", `[{"type":"tollgate:spend","provider":"stripe","max_amount":20,"currency":"usd"}]`},
		{"negative amount", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"-1","currency":"usd"}]`},
		{"too many decimals", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"1.001","currency":"usd"}]`},
		{"exponent amount", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"1e3","currency":"usd"}]`},
		{"unknown currency", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"1","currency":"xyz"}]`},
		{"missing currency", `[{"type":"tollgate:spend","provider":"stripe","max_amount":"1"}]`},
		{"trailing data", `[] []`},
		{"too many entries", "[" + strings.Repeat(`{"type":"tollgate:spend","provider":"stripe","max_amount":"1","currency":"usd"},`, 16) + `{"type":"tollgate:resources","domains":["a.example"]}]`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorizationDetails([]byte(tt.in))
			if err == nil {
				t.Fatalf("accepted as %+v", got)
			}
			if fault.CodeOf(err) != fault.InvalidArgument {
				t.Fatalf("code %s", fault.CodeOf(err))
			}
		})
	}
}

func TestAuthorizationDetailHelpers(t *testing.T) {
	sd, err := SpendDetail("cloudflare", money.USD(2000))
	must(t, err)
	rd, err := ResourcesDetail("shop.example")
	must(t, err)
	ds := AuthorizationDetails{rd, sd}
	if m, ok := ds.Budget("cloudflare"); !ok || m != money.USD(2000) {
		t.Fatalf("budget %v %v", m, ok)
	}
	if _, ok := ds.Budget("stripe"); ok {
		t.Fatal("stripe budget from nowhere")
	}
	if d, ok := ds.Domains(); !ok || !reflect.DeepEqual(d, []string{"shop.example"}) {
		t.Fatalf("domains %v %v", d, ok)
	}
	if _, err := SpendDetail("aws", money.USD(1)); err == nil {
		t.Fatal("unknown provider accepted")
	}
	if _, err := ResourcesDetail("*.example"); err == nil {
		t.Fatal("wildcard accepted")
	}
	b, err := json.Marshal(ds)
	must(t, err)
	var back AuthorizationDetails
	must(t, json.Unmarshal(b, &back))
	if !reflect.DeepEqual(back, ds) {
		t.Fatalf("round trip %s -> %+v", b, back)
	}
}
