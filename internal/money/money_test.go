package money

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, cur string
		want          int64
		ok            bool
	}{
		{"whole dollars", "20", "usd", 2000, true},
		{"cents", "20.05", "USD", 2005, true},
		{"one decimal", "0.5", "usd", 50, true},
		{"zero", "0.00", "usd", 0, true},
		{"negative", "-1.00", "usd", 0, false},
		{"plus sign", "+1.00", "usd", 0, false},
		{"fractional minor units", "1.001", "usd", 0, false},
		{"exponent", "1e3", "usd", 0, false},
		{"spaces", " 1.00", "usd", 0, false},
		{"empty", "", "usd", 0, false},
		{"trailing dot", "1.", "usd", 0, false},
		{"leading dot", ".5", "usd", 0, false},
		{"a word", "ten", "usd", 0, false},
		{"overflow", "92233720368547758.08", "usd", 0, false},
		{"largest", "92233720368547758.07", "usd", math.MaxInt64, true},
		{"unknown currency", "1.00", "btc", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.in, tc.cur)
			if (err == nil) != tc.ok || (tc.ok && m.Minor != tc.want) {
				t.Fatalf("Parse(%q) = %v, %v", tc.in, m, err)
			}
		})
	}
}

func TestJSONIsIntegerMinorUnits(t *testing.T) {
	b, _ := json.Marshal(USD(1044))
	if string(b) != `{"amount_minor":1044,"currency":"usd","display":"10.44 USD"}` {
		t.Fatalf("%s", b)
	}
	var m Money
	for _, bad := range []string{`{"amount_minor":10.5,"currency":"usd"}`, `{"amount_minor":"1044","currency":"usd"}`, `{"amount_minor":1e3,"currency":"usd"}`, `{"amount_minor":1,"currency":"xyz"}`} {
		if err := json.Unmarshal([]byte(bad), &m); err == nil {
			t.Fatalf("accepted %s", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"20.00", "0", "1.5", "-1", "1e9", "92233720368547758.07", "00.10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := Parse(s, "usd")
		if err != nil {
			return
		}
		if m.Minor < 0 {
			t.Fatalf("negative from %q", s)
		}
		back, err := Parse(m.Decimal(), "usd")
		if err != nil || back != m {
			t.Fatalf("round trip %q -> %s -> %v %v", s, m.Decimal(), back, err)
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			t.Fatalf("accepted a non-number %q", s)
		}
	})
}
