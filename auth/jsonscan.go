package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// duplicateNameError reports a JSON member name that appears twice in one
// object, compared the way encoding/json matches names to fields.
type duplicateNameError struct{ name string }

func (e *duplicateNameError) Error() string {
	return fmt.Sprintf("member name %q appears twice", e.name)
}

// scanJSON checks that data is exactly one JSON value, nested at most
// maxDepth deep, with no object holding two members whose names fold to the
// same key. RFC 7515 §5.2 and RFC 7519 §4 allow a parser to take the last
// duplicate; two parsers taking different ones is a classic signature-bypass
// differential, so tollgate refuses duplicates outright. encoding/json matches
// names to struct fields case-insensitively (Unicode simple folding, so
// "ſub" matches "sub"), hence the comparison after folding.
func scanJSON(data []byte, maxDepth int) error {
	type frame struct {
		object    bool
		expectKey bool
		names     map[string]bool
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	done := false
	value := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if !done {
				return errors.New("truncated JSON")
			}
			return nil
		}
		if err != nil {
			return err
		}
		if done {
			return errors.New("data after the JSON value")
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				value()
				if len(stack) >= maxDepth {
					return fmt.Errorf("JSON nested deeper than %d", maxDepth)
				}
				f := &frame{object: v == '{', expectKey: v == '{'}
				if f.object {
					f.names = map[string]bool{}
				}
				stack = append(stack, f)
			default:
				stack = stack[:len(stack)-1]
				done = len(stack) == 0
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
				top := stack[n-1]
				k := foldName(v)
				if top.names[k] {
					return &duplicateNameError{name: v}
				}
				top.names[k] = true
				top.expectKey = false
				continue
			}
			value()
			done = len(stack) == 0
		default:
			value()
			done = len(stack) == 0
		}
	}
}

// foldName maps every rune to the smallest rune of its simple-folding orbit,
// so foldName(a) == foldName(b) exactly when strings.EqualFold(a, b).
func foldName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		b.WriteRune(m)
	}
	return b.String()
}
