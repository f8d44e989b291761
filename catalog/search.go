package catalog

import (
	"slices"
	"strings"
)

// maxTerms bounds the work one query can cause; words past it are ignored.
const maxTerms = 16

// searchText holds a service's lowercased search fields, built once at Load.
type searchText struct {
	id, name, description, tool string
	tags                        []string
}

func newSearchText(s Service) searchText {
	t := searchText{
		id:          strings.ToLower(s.ID),
		name:        strings.ToLower(s.Name),
		description: strings.ToLower(s.Description),
		tool:        strings.ToLower(s.Tool),
	}
	for _, tag := range s.Tags {
		t.tags = append(t.tags, strings.ToLower(tag))
	}
	return t
}

// Weights of a query word's match per field. An exact id, tag or tool match
// outranks a word that merely appears in the prose.
const (
	wIDExact     = 100
	wTagExact    = 40
	wToolExact   = 30
	wIDPart      = 20
	wName        = 15
	wTagPart     = 10
	wToolPart    = 8
	wDescription = 3
)

// score is how well one lowercased word matches; 0 means not at all.
func (t searchText) score(word string) int {
	n := 0
	switch {
	case t.id == word:
		n += wIDExact
	case strings.Contains(t.id, word):
		n += wIDPart
	}
	switch {
	case t.tool == word:
		n += wToolExact
	case strings.Contains(t.tool, word):
		n += wToolPart
	}
	tag := 0
	for _, g := range t.tags {
		if g == word {
			tag = wTagExact
			break
		}
		if strings.Contains(g, word) {
			tag = wTagPart
		}
	}
	n += tag
	if strings.Contains(t.name, word) {
		n += wName
	}
	if strings.Contains(t.description, word) {
		n += wDescription
	}
	return n
}

// Search finds services whose id, name, description, tags or tool contain
// every word of query, case-insensitively. An empty query matches every
// service. provider, when not empty, keeps only that provider's services
// (exact match). Results come best match first; equal matches keep catalog
// order, so the same query always gives the same list. It never returns nil.
func (c *Catalog) Search(query, provider string) []Service {
	words := strings.Fields(strings.ToLower(query))
	if len(words) > maxTerms {
		words = words[:maxTerms]
	}
	type hit struct{ i, score int }
	var hits []hit
	for i, s := range c.services {
		if provider != "" && s.Provider != provider {
			continue
		}
		total := 0
		for _, w := range words {
			n := c.text[i].score(w)
			if n == 0 {
				total = -1
				break
			}
			total += n
		}
		if total >= 0 {
			hits = append(hits, hit{i, total})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return b.score - a.score })
	out := make([]Service, len(hits))
	for j, h := range hits {
		out[j] = c.services[h.i].clone()
	}
	return out
}
