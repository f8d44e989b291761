package idempotency

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// decode reads JSON text as the guard does: numbers as json.Number.
func decode(t testing.TB, text string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %q: %v", text, err)
	}
	return m
}

func canon(t testing.TB, m map[string]any) string {
	t.Helper()
	c, err := Canonical(m)
	if err != nil {
		t.Fatalf("canonical: %v", err)
	}
	return string(c)
}

func TestCanonicalForms(t *testing.T) {
	tests := []struct {
		name string
		in   []string // every text must canonicalise to want
		want string
	}{
		{"key order and whitespace", []string{
			`{"a":1,"b":[2,3]}`,
			`{"b":[2,3],"a":1}`,
			"{ \"b\" : [ 2 ,\n\t3 ] , \"a\" : 1 }",
			`{"a":1,"b":[2,3],"a":1}`,
		}, `{"a":1,"b":[2,3]}`},
		{"nested objects sorted", []string{
			`{"z":{"y":1,"x":{"b":null,"a":true}},"a":[{"d":1,"c":2}]}`,
		}, `{"a":[{"c":2,"d":1}],"z":{"x":{"a":true,"b":null},"y":1}}`},
		{"numbers kept as written", []string{
			`{"n":[1.0,1,1e2,-0,0.10,12345678901234567890123]}`,
		}, `{"n":[1.0,1,1e2,-0,0.10,12345678901234567890123]}`},
		{"escapes are minimal and fixed", []string{
			`{"s":"\u0041\/<>&\u00e9\u2028\"\\\b\f\n\r\t\u0001\u001f\u007f"}`,
			"{\"s\":\"A/<>&\u00e9\u2028\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001F\u007f\"}",
		}, "{\"s\":\"A/<>&\u00e9\u2028\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\u007f\"}"},
		{"keys sorted by UTF-8 bytes", []string{
			`{"é":1,"z":2,"Z":3,"":4,"a\u0000":5,"a":6}`,
		}, "{\"\":4,\"Z\":3,\"a\":6,\"a\\u0000\":5,\"z\":2,\"é\":1}"},
		{"empty", []string{`{}`, ` { } `}, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, in := range tt.in {
				if got := canon(t, decode(t, in)); got != tt.want {
					t.Fatalf("canonical(%s)\n got %s\nwant %s", in, got, tt.want)
				}
			}
		})
	}
}

func TestCanonicalGoValues(t *testing.T) {
	type host struct {
		Name string `json:"name"`
		TTL  int    `json:"ttl"`
	}
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"float64 as encoding/json writes it", map[string]any{"a": 1.0, "b": 0.1, "c": 1e21, "d": 1e-7, "e": -0.0, "f": float32(0.1)},
			`{"a":1,"b":0.1,"c":1e+21,"d":1e-7,"e":0,"f":0.1}`},
		{"integers", map[string]any{"i": -7, "u": uint64(math.MaxUint64), "i8": int8(-8)},
			`{"i":-7,"i8":-8,"u":18446744073709551615}`},
		{"typed values through encoding/json", map[string]any{"h": host{"a", 3}, "s": []string{"x"}, "m": map[string]int{"b": 1, "a": 2}},
			`{"h":{"name":"a","ttl":3},"m":{"a":2,"b":1},"s":["x"]}`},
		{"raw message", map[string]any{"r": json.RawMessage(` {"b":1 , "a":[ ]} `)}, `{"r":{"a":[],"b":1}}`},
		{"nil map and nil values", nil, `{}`},
		{"nil slice", map[string]any{"n": nil, "s": []any(nil)}, `{"n":null,"s":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canon(t, tt.in); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// A float64 argument and the same number read back from canonical text
// digest alike; reading JSON as float64 instead of json.Number never changes
// integral values below 2^53.
func TestCanonicalFloatAgreesWithReadBack(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1.5e300, 5e-324, 123456789, 1e20, 1e21, 1e-6, 1e-7} {
		m := map[string]any{"x": f}
		c := canon(t, m)
		if again := canon(t, decode(t, c)); again != c {
			t.Fatalf("%v: %s then %s", f, c, again)
		}
		if want, _ := json.Marshal(m); string(want) != c {
			t.Fatalf("%v: %s, encoding/json writes %s", f, c, want)
		}
	}
}

func TestCanonicalIsStableAcrossMapOrders(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	want := ""
	for i := range 50 {
		// Build the same map with keys inserted in a different order; Go
		// also iterates maps in random order.
		keys := r.Perm(40)
		m := map[string]any{}
		for _, k := range keys {
			m["k"+strconv.Itoa(k)] = map[string]any{"v": json.Number(strconv.Itoa(k)), "w": []any{"x", k}}
		}
		got := canon(t, m)
		if i == 0 {
			want = got
		} else if got != want {
			t.Fatalf("insertion order %v changed the canonical form", keys)
		}
		d := digest(t, m)
		if d != digest(t, m) || !validDigest(d) {
			t.Fatalf("digest %q unstable or malformed", d)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	deep := map[string]any{}
	for cur, i := deep, 0; i < maxDepth+1; i++ {
		next := map[string]any{}
		cur["d"] = next
		cur = next
	}
	tests := []struct {
		name string
		in   map[string]any
	}{
		{"NaN", map[string]any{"x": math.NaN()}},
		{"+Inf", map[string]any{"x": math.Inf(1)}},
		{"-Inf float32", map[string]any{"x": float32(math.Inf(-1))}},
		{"NaN inside a typed slice", map[string]any{"x": []float64{1, math.NaN()}}},
		{"json.Number overflowing float64", map[string]any{"x": json.Number("1e400")}},
		{"json.Number that is not a number", map[string]any{"x": json.Number("NaN")}},
		{"json.Number with a leading zero", map[string]any{"x": json.Number("01")}},
		{"json.Number with a plus sign", map[string]any{"x": json.Number("+1")}},
		{"json.Number that is empty", map[string]any{"x": json.Number("")}},
		{"json.Number with a trailing dot", map[string]any{"x": json.Number("1.")}},
		{"json.Number injecting a member", map[string]any{"x": json.Number(`1,"y":2`)}},
		{"invalid UTF-8 value", map[string]any{"x": "a\xffb"}},
		{"invalid UTF-8 key", map[string]any{"a\xff": 1}},
		{"raw message with two values", map[string]any{"x": json.RawMessage(`1 2`)}},
		{"map that contains itself", cyclic},
		{"nesting deeper than 64", deep},
		{"channel", map[string]any{"x": make(chan int)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Canonical(tt.in)
			wantCode(t, err, fault.InvalidArgument)
			if c != nil {
				t.Fatalf("returned %q with the error", c)
			}
			if _, err := Digest(tt.in); err == nil {
				t.Fatal("Digest accepted what Canonical refused")
			}
		})
	}
}

func FuzzCanonical(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[2,3]}`,
		`{"b":[2,3],"a":1}`,
		`{"s":"\u2028\"\\\u0000é","n":-0.0e-0,"x":null,"t":true}`,
		`{"deep":[[[[{"a":[{}]}]]]]}`,
		`{"big":123456789012345678901234567890e-5}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Read as the guard does (json.Number) and as mcp-go might
		// (float64); neither may panic.
		var plain map[string]any
		if json.Unmarshal(data, &plain) == nil {
			_, _ = Canonical(plain)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) != nil {
			return
		}
		c1, err := Canonical(m)
		if err != nil {
			if fault.CodeOf(err) != fault.InvalidArgument {
				t.Fatalf("error %v without invalid_argument", err)
			}
			return
		}
		if !json.Valid(c1) {
			t.Fatalf("canonical form %q is not JSON", c1)
		}
		dec = json.NewDecoder(bytes.NewReader(c1))
		dec.UseNumber()
		var m2 map[string]any
		if err := dec.Decode(&m2); err != nil {
			t.Fatalf("canonical form %q does not decode: %v", c1, err)
		}
		c2, err := Canonical(m2)
		if err != nil {
			t.Fatalf("canonical form %q is refused: %v", c1, err)
		}
		if !bytes.Equal(c1, c2) {
			t.Fatalf("not idempotent:\n%q\n%q", c1, c2)
		}
	})
}
