package idempotency

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// maxDepth bounds the nesting of arguments; it also stops a map that
// contains itself.
const maxDepth = 64

// Canonical returns the canonical JSON text of a tool call's arguments, so
// that equal arguments give equal bytes however they were written:
//
//   - object keys sorted by the bytes of their UTF-8 encoding;
//   - no whitespace outside strings;
//   - strings as UTF-8, escaping only '"', '\\' and control characters
//     (\b \f \n \r \t, else \u00xx); invalid UTF-8 is refused;
//   - a json.Number kept exactly as written (1.0 and 1 differ), after
//     checking it is a JSON number within float64 range; float64 and float32
//     written as encoding/json writes them; NaN and ±Inf refused;
//   - nil as null; a nil []any as [] and a nil map[string]any as {}.
//
// Decode arguments with json.Decoder.UseNumber to keep numbers as written.
// Values of other types (structs, typed slices and maps) are first encoded
// with encoding/json. Errors carry fault.InvalidArgument.
func Canonical(args map[string]any) ([]byte, error) {
	var e encoder
	if err := e.object(args, 0); err != nil {
		return nil, fault.Wrap(err, fault.InvalidArgument,
			"the tool arguments cannot be read as JSON ("+err.Error()+"); nothing was charged. Send plain JSON values.")
	}
	return e.b, nil
}

// Digest is the lowercase hex SHA-256 of Canonical(args): the arguments'
// identity for idempotency and the loop guard.
func Digest(args map[string]any) (string, error) {
	c, err := Canonical(args)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

type encoder struct{ b []byte }

var (
	errDepth   = errors.New("arguments nested more than 64 deep")
	errUTF8    = errors.New("a string is not valid UTF-8")
	errFinite  = errors.New("a number is NaN or infinite")
	errNumber  = errors.New("a number is not a JSON number")
	errTrailer = errors.New("a value encodes to more than one JSON value")
)

func (e *encoder) value(v any, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	switch x := v.(type) {
	case nil:
		e.b = append(e.b, "null"...)
	case bool:
		e.b = strconv.AppendBool(e.b, x)
	case string:
		return e.str(x)
	case json.Number:
		return e.number(string(x))
	case float64:
		return e.float(x, 64)
	case float32:
		return e.float(float64(x), 32)
	case int:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int8:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int16:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int32:
		e.b = strconv.AppendInt(e.b, int64(x), 10)
	case int64:
		e.b = strconv.AppendInt(e.b, x, 10)
	case uint:
		e.b = strconv.AppendUint(e.b, uint64(x), 10)
	case uint8:
		e.b = strconv.AppendUint(e.b, uint64(x), 10)
	case uint16:
		e.b = strconv.AppendUint(e.b, uint64(x), 10)
	case uint32:
		e.b = strconv.AppendUint(e.b, uint64(x), 10)
	case uint64:
		e.b = strconv.AppendUint(e.b, x, 10)
	case map[string]any:
		return e.object(x, depth)
	case []any:
		e.b = append(e.b, '[')
		for i, el := range x {
			if i > 0 {
				e.b = append(e.b, ',')
			}
			if err := e.value(el, depth+1); err != nil {
				return err
			}
		}
		e.b = append(e.b, ']')
	case json.RawMessage:
		return e.raw(x, depth)
	default:
		// Anything else goes through encoding/json once, then is read back
		// as plain values.
		raw, err := json.Marshal(x)
		if err != nil {
			return err
		}
		return e.raw(raw, depth)
	}
	return nil
}

func (e *encoder) object(m map[string]any, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	e.b = append(e.b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if err := e.str(k); err != nil {
			return err
		}
		e.b = append(e.b, ':')
		if err := e.value(m[k], depth+1); err != nil {
			return err
		}
	}
	e.b = append(e.b, '}')
	return nil
}

func (e *encoder) raw(raw []byte, depth int) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailer
	}
	return e.value(v, depth)
}

const hexDigits = "0123456789abcdef"

func (e *encoder) str(s string) error {
	if !utf8.ValidString(s) {
		return errUTF8
	}
	e.b = append(e.b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			e.b = append(e.b, '\\', c)
		case c >= 0x20:
			e.b = append(e.b, c)
		case c == '\b':
			e.b = append(e.b, '\\', 'b')
		case c == '\f':
			e.b = append(e.b, '\\', 'f')
		case c == '\n':
			e.b = append(e.b, '\\', 'n')
		case c == '\r':
			e.b = append(e.b, '\\', 'r')
		case c == '\t':
			e.b = append(e.b, '\\', 't')
		default:
			e.b = append(e.b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	e.b = append(e.b, '"')
	return nil
}

// number appends a json.Number as written, once it is known to be a JSON
// number (RFC 8259 §6) that a float64 reader would not turn into ±Inf.
func (e *encoder) number(n string) error {
	if !isJSONNumber(n) {
		return errNumber
	}
	// A syntactically valid number only fails to parse by overflowing.
	if f, _ := strconv.ParseFloat(n, 64); math.IsInf(f, 0) {
		return errFinite
	}
	e.b = append(e.b, n...)
	return nil
}

// float writes f as encoding/json does, so that a float64 argument and the
// json.Number read back from its canonical text agree.
func (e *encoder) float(f float64, bits int) error {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return errFinite
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	start := len(e.b)
	e.b = strconv.AppendFloat(e.b, f, format, -1, bits)
	if format == 'e' {
		// e-09 → e-9, as encoding/json does.
		n := len(e.b)
		if n-start >= 4 && e.b[n-4] == 'e' && e.b[n-3] == '-' && e.b[n-2] == '0' {
			e.b[n-2] = e.b[n-1]
			e.b = e.b[:n-1]
		}
	}
	return nil
}

// isJSONNumber reports whether s matches
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
