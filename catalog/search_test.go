package catalog

import (
	"slices"
	"strings"
	"testing"
)

func TestSearch(t *testing.T) {
	c := mustLoad(t)
	var registrations []string
	for _, s := range c.ForTool("domain_register") {
		if s.TLD != "" {
			registrations = append(registrations, s.ID)
		}
	}
	for _, tc := range []struct {
		name, query, provider string
		// first lists the ids the results must start with, in order.
		first []string
		// contains lists ids that must be somewhere in the results.
		contains []string
		// only, when set, is a provider every result must have.
		only string
		// count, when not -1, is the exact number of results.
		count int
	}{
		{name: "domain finds every registration, registrations first",
			query: "domain", first: registrations, count: -1},
		{name: "case does not matter",
			query: "DoMaIn", first: registrations, count: -1},
		{name: "empty query lists everything in catalog order",
			query: "", first: ids(c.All()), count: c.Len()},
		{name: "blank query lists everything",
			query: " \t\n", count: c.Len()},
		{name: "provider filter keeps only stripe",
			query: "", provider: "stripe", only: "stripe", count: len(c.ByProvider("stripe")),
			contains: []string{"stripe/subscription:plan.starter", "stripe/subscription:plan.team", "stripe/billing:payment-method"}},
		{name: "provider filter with a query",
			query: "plan", provider: "cloudflare", only: "cloudflare", count: -1,
			contains: []string{"cloudflare/zone:plan.pro", "cloudflare/workers:plan.paid"}},
		{name: "provider filter is exact",
			query: "", provider: "Stripe", count: 0},
		{name: "unknown provider finds nothing",
			query: "domain", provider: "aws", count: 0},
		{name: "every word must match",
			query: "workers paid", first: []string{"cloudflare/workers:plan.paid"}, count: 1},
		{name: "exact tag outranks substring",
			query: ".ai", first: []string{"cloudflare/registrar:domain.ai"}, count: -1},
		{name: "exact id ranks first",
			query: "cloudflare/dns:record", first: []string{"cloudflare/dns:record"}, count: 1},
		{name: "tool name finds what it provisions",
			query: "subscription_start", count: len(c.ForTool("subscription_start")),
			contains: []string{"stripe/subscription:plan.team", "cloudflare/zone:plan.business"}},
		{name: "description words match",
			query: "https", contains: []string{"cloudflare/ssl:settings", "cloudflare/registrar:domain.dev"}, count: -1},
		{name: "no match is empty, not nil",
			query: "kubernetes", count: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := c.Search(tc.query, tc.provider)
			if got == nil {
				t.Fatal("Search returned nil")
			}
			gotIDs := ids(got)
			if tc.count != -1 && len(got) != tc.count {
				t.Fatalf("Search(%q, %q) = %d results %v, want %d", tc.query, tc.provider, len(got), gotIDs, tc.count)
			}
			if len(tc.first) > len(gotIDs) || !slices.Equal(gotIDs[:len(tc.first)], tc.first) {
				t.Errorf("Search(%q, %q) starts %v, want %v", tc.query, tc.provider, gotIDs, tc.first)
			}
			for _, id := range tc.contains {
				if !slices.Contains(gotIDs, id) {
					t.Errorf("Search(%q, %q) lacks %s: %v", tc.query, tc.provider, id, gotIDs)
				}
			}
			for _, s := range got {
				if tc.only != "" && s.Provider != tc.only {
					t.Errorf("Search(%q, %q) returned %s of provider %s", tc.query, tc.provider, s.ID, s.Provider)
				}
			}
		})
	}
}

func TestSearchIsDeterministic(t *testing.T) {
	c := mustLoad(t)
	for _, q := range []string{"", "domain", "plan", "a", "cloudflare"} {
		first := ids(c.Search(q, ""))
		for i := 0; i < 5; i++ {
			if again := ids(c.Search(q, "")); !slices.Equal(first, again) {
				t.Fatalf("Search(%q) changed order: %v then %v", q, first, again)
			}
		}
	}
}

func FuzzSearch(f *testing.F) {
	c := mustLoad(f)
	for _, seed := range [][2]string{
		{"", ""}, {"domain", ""}, {"plan", "stripe"}, {".ai", "cloudflare"}, {"WORKERS paid", ""},
		{"\x00\xff", "stripe"}, {strings.Repeat("a ", 100), ""}, {"ДОМЕН İ ǅ", "cloudflare"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, query, provider string) {
		got := c.Search(query, provider)
		if got == nil || len(got) > c.Len() {
			t.Fatalf("Search returned %d results (nil %v)", len(got), got == nil)
		}
		seen := map[string]bool{}
		for _, s := range got {
			if provider != "" && s.Provider != provider {
				t.Fatalf("provider filter %q let through %s", provider, s.ID)
			}
			if seen[s.ID] {
				t.Fatalf("duplicate result %s", s.ID)
			}
			seen[s.ID] = true
		}
		if strings.TrimSpace(query) == "" && provider == "" && len(got) != c.Len() {
			t.Fatalf("blank query returned %d of %d", len(got), c.Len())
		}
		if again := ids(c.Search(query, provider)); !slices.Equal(ids(got), again) {
			t.Fatalf("not deterministic: %v vs %v", ids(got), again)
		}
	})
}
