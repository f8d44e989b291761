package cloudflare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	cffake "github.com/tollgate-dev/tollgate/fixtures/cloudflare"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

const workerJS = "export default {\n  async fetch(req) {\n    return new Response('hello')\n  }\n}\n"

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// uploads counts the recorded PUTs of a Worker script.
func uploads(f *cffake.Fake) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Method == http.MethodPut && strings.Contains(r.Path, "/workers/scripts/") {
			n++
		}
	}
	return n
}

func TestScriptRoundTrip(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()

	up, err := c.UploadScript(ctx, "shop-preview-a1b2", []byte(workerJS))
	if err != nil {
		t.Fatal(err)
	}
	want := hexSHA([]byte(workerJS))
	if up.Name != "shop-preview-a1b2" || up.SHA256 != want || up.Size != len(workerJS) || up.ETag == "" || up.Modified.IsZero() || up.RayID == "" {
		t.Fatalf("upload %+v", up)
	}
	stored := f.Scripts()["shop-preview-a1b2"]
	if string(stored.Body) != workerJS || stored.SHA256 != want || !stored.Module || stored.CompatibilityDate != CompatibilityDate {
		t.Fatalf("fake stored %+v", stored)
	}

	body, got, err := c.GetScript(ctx, "shop-preview-a1b2")
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != workerJS || got.SHA256 != want || got.Size != len(workerJS) || got.RayID == "" || got.RayID == up.RayID {
		t.Fatalf("get %+v %q", got, body)
	}

	reqs := f.Requests()
	if len(reqs) != 2 {
		t.Fatalf("fake saw %d requests, want 2", len(reqs))
	}
	for _, r := range reqs {
		if r.Auth != "Bearer "+serverToken {
			t.Fatalf("%s %s carried Authorization %q, want the server's token", r.Method, r.Path, r.Auth)
		}
		if r.Path != "/accounts/"+acct+"/workers/scripts/shop-preview-a1b2" {
			t.Fatalf("path %s", r.Path)
		}
	}
	if reqs[0].Method != http.MethodPut || reqs[1].Method != http.MethodGet || reqs[0].RayID != up.RayID || reqs[1].RayID != got.RayID {
		t.Fatalf("requests %s %s", reqs[0].Method, reqs[1].Method)
	}

	// The upload is the multipart form the API documents: metadata naming
	// the main module, then the module itself.
	mt, params, err := mime.ParseMediaType(reqs[0].Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		t.Fatalf("Content-Type %q", reqs[0].Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(bytes.NewReader(reqs[0].Body), params["boundary"])
	meta, err := mr.NextPart()
	if err != nil || meta.FormName() != "metadata" {
		t.Fatalf("first part %v", err)
	}
	var m map[string]any
	if err := json.NewDecoder(meta).Decode(&m); err != nil || m["main_module"] != MainModule || m["compatibility_date"] != CompatibilityDate {
		t.Fatalf("metadata %v, %v", m, err)
	}
	script, err := mr.NextPart()
	if err != nil || script.FormName() != MainModule || script.Header.Get("Content-Type") != "application/javascript+module" {
		t.Fatalf("script part %v", err)
	}
	if b, _ := io.ReadAll(script); string(b) != workerJS {
		t.Fatalf("script part %q", b)
	}
}

func TestUploadServerErrorIsNotRetried(t *testing.T) {
	for _, status := range []int{500, 502, 503} {
		f, c := setup(t, cffake.Config{})
		f.FailUploads(1, status)
		_, err := c.UploadScript(context.Background(), "shop", []byte(workerJS))
		wantCode(t, err, ProviderError)
		if !provider.Reached(err) || !strings.Contains(fault.PublicOf(err), "may have reached Cloudflare") {
			t.Fatalf("HTTP %d: reached %v, %q", status, provider.Reached(err), fault.PublicOf(err))
		}
		var ce *CallError
		if !errors.As(err, &ce) || ce.Op != "worker_upload" || ce.HTTPStatus != status || ce.RayID == "" ||
			!strings.Contains(strings.Join(ce.ProviderMessages, " "), "injected upload failure") {
			t.Fatalf("HTTP %d: cause %+v", status, ce)
		}
		if n := uploads(f); n != 1 {
			t.Fatalf("HTTP %d: fake recorded %d PUTs, want exactly 1", status, n)
		}
	}
}

func TestUploadRateLimitIsNotRetried(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	f.FailUploads(1, http.StatusTooManyRequests)
	_, err := c.UploadScript(context.Background(), "shop", []byte(workerJS))
	wantCode(t, err, ProviderRefused)
	if n := uploads(f); n != 1 || !strings.Contains(fault.PublicOf(err), "1s") {
		t.Fatalf("PUTs %d, %q", n, fault.PublicOf(err))
	}
}

func TestWorkersTimeout(t *testing.T) {
	f, c := setup(t, cffake.Config{}, func(c *Config) { c.Timeout = 150 * time.Millisecond })
	f.Timeout(10 * time.Second)
	began := time.Now()
	_, err := c.UploadScript(context.Background(), "slow", []byte(workerJS))
	if time.Since(began) > 3*time.Second {
		t.Fatalf("UploadScript took %s", time.Since(began))
	}
	wantCode(t, err, ProviderError)
	if !provider.Reached(err) || !strings.Contains(fault.PublicOf(err), "may have reached Cloudflare") {
		t.Fatalf("a timed-out upload must say it may have reached Cloudflare: %q", fault.PublicOf(err))
	}
	if n := uploads(f); n != 1 {
		t.Fatalf("fake recorded %d PUTs, want 1", n)
	}

	_, _, err = c.GetScript(context.Background(), "slow")
	wantCode(t, err, ProviderError)
	if !strings.Contains(fault.PublicOf(err), "nothing was changed") {
		t.Fatalf("a timed-out read must say nothing was changed: %q", fault.PublicOf(err))
	}
}

func TestMissingScriptIsNotFound(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	body, s, err := c.GetScript(context.Background(), "nope")
	wantCode(t, err, fault.NotFound)
	if body != nil || s != (Script{}) {
		t.Fatalf("got %q %+v with the error", body, s)
	}
	var ce *CallError
	if !errors.As(err, &ce) || ce.HTTPStatus != 404 || ce.RayID == "" {
		t.Fatalf("cause %+v", ce)
	}

	f.FailNext(1, 500)
	_, _, err = c.GetScript(context.Background(), "nope")
	wantCode(t, err, ProviderError) // a failure is not a missing script
}

func TestWorkersWrongTokenIsRefused(t *testing.T) {
	f, c := setup(t, cffake.Config{Token: "the-real-token"})
	_, err := c.UploadScript(context.Background(), "shop", []byte(workerJS))
	wantCode(t, err, fault.AccountRelinkRequired)
	if !strings.Contains(fault.PublicOf(err), "account_connect") || strings.Contains(fault.PublicOf(err)+err.Error(), serverToken) {
		t.Fatalf("message %q", fault.PublicOf(err))
	}
	if len(f.Scripts()) != 0 || f.Requests()[0].Auth != "Bearer "+serverToken {
		t.Fatal("refused upload stored, or sent another token")
	}
}

func TestScriptNameValidation(t *testing.T) {
	tests := []struct {
		name, script string
		valid        bool
	}{
		{"simple", "shop", true},
		{"one character", "a", true},
		{"digits and hyphens", "my-shop-2", true},
		{"63 chars", strings.Repeat("a", 63), true},
		{"uppercase", "Shop", false},
		{"dots", "shop.example", false},
		{"path traversal ../x", "../x", false},
		{"slash", "a/b", false},
		{"encoded slash", "a%2fb", false},
		{"query", "shop?x=1", false},
		{"64 chars", strings.Repeat("a", 64), false},
		{"empty", "", false},
		{"leading hyphen", "-shop", false},
		{"underscore", "my_shop", false},
		{"space", "my shop", false},
		{"trailing newline", "shop\n", false},
		{"unicode lookalike", "shоp", false}, // Cyrillic о
	}
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateScriptName(tt.script)
			if tt.valid {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantCode(t, err, fault.InvalidArgument)
			_, err = c.UploadScript(ctx, tt.script, []byte(workerJS))
			wantCode(t, err, fault.InvalidArgument)
			_, _, err = c.GetScript(ctx, tt.script)
			wantCode(t, err, fault.InvalidArgument)
		})
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("invalid names reached the fake: %d requests", n)
	}
}

func TestScriptBodyLimits(t *testing.T) {
	f, c := setup(t, cffake.Config{})
	ctx := context.Background()
	refused := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"one byte over the limit", bytes.Repeat([]byte("a"), MaxScriptSize+1)},
		{"not UTF-8", []byte("export default {}\xff")},
	}
	for _, tt := range refused {
		_, err := c.UploadScript(ctx, "shop", tt.body)
		if fault.CodeOf(err) != fault.InvalidArgument || !strings.Contains(fault.PublicOf(err), "nothing was sent") {
			t.Fatalf("%s: %v", tt.name, err)
		}
	}
	if n := len(f.Requests()); n != 0 {
		t.Fatalf("refused bodies reached the fake: %d requests", n)
	}
	big := bytes.Repeat([]byte("a"), MaxScriptSize)
	s, err := c.UploadScript(ctx, "big", big)
	if err != nil || s.Size != MaxScriptSize || f.Scripts()["big"].Size != MaxScriptSize {
		t.Fatalf("a script of exactly the limit: %+v, %v", s, err)
	}
}

func TestPreviewName(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := []struct {
		name, base, id, want string
	}{
		{"short", "shop", "k3x9", "shop---preview-k3x9"},
		{"fits exactly", strings.Repeat("b", 48), "k3x9", strings.Repeat("b", 48) + "---preview-k3x9"},
		{"uppercase base", "Shop", "k3x9", ""},
		{"empty base", "", "k3x9", ""},
		{"path in base", "../x", "k3x9", ""},
		{"empty id", "shop", "", ""},
		{"id with a dot", "shop", "k3.x9", ""},
		{"id with a hyphen", "shop", "k3-x9", ""},
		{"id too long", "shop", strings.Repeat("z", 33), ""},
		{"longest id", "shop", strings.Repeat("z", 32), "shop---preview-" + strings.Repeat("z", 32)},
	}
	for _, tt := range tests {
		if got := PreviewName(tt.base, tt.id); got != tt.want {
			t.Fatalf("%s: PreviewName(%q, %q) = %q, want %q", tt.name, tt.base, tt.id, got, tt.want)
		}
	}
	// A base too long to keep whole is shortened with a hash of itself.
	a, b := PreviewName(long+"x", "k3x9"), PreviewName(long+"y", "k3x9")
	if a == b || len(a) > MaxScriptNameLen || ValidateScriptName(a) != nil || !strings.HasSuffix(a, "---preview-k3x9") {
		t.Fatalf("long bases: %q %q", a, b)
	}
	if PreviewName(long+"x", "k3x9") != a {
		t.Fatal("PreviewName is not deterministic")
	}
	// Truncation never makes an invalid base valid.
	if got := PreviewName(strings.Repeat("a", 58)+"UPPER", "k3x9"); got != "" {
		t.Fatalf("truncation cut the invalid part off an invalid base: %q", got)
	}
	if got := PreviewName(strings.Repeat("a", 63), strings.Repeat("z", 32)); len(got) != MaxScriptNameLen || ValidateScriptName(got) != nil {
		t.Fatalf("longest base and id: %q", got)
	}
}

// FuzzPreviewName: a preview name is valid exactly when its inputs are, and
// is never the name of its base.
func FuzzPreviewName(f *testing.F) {
	f.Add("shop", "k3x9")
	f.Add(strings.Repeat("a", 63), "z")
	f.Add("a-", strings.Repeat("9", 32))
	f.Add("../x", "1")
	f.Fuzz(func(t *testing.T, base, id string) {
		got := PreviewName(base, id)
		inputsValid := ValidateScriptName(base) == nil && previewIDPattern.MatchString(id)
		if got == "" {
			if inputsValid {
				t.Fatalf("PreviewName(%q, %q) refused valid inputs", base, id)
			}
			return
		}
		if !inputsValid || ValidateScriptName(got) != nil || got == base || !strings.HasSuffix(got, "-preview-"+id) {
			t.Fatalf("PreviewName(%q, %q) = %q", base, id, got)
		}
	})
}

// FuzzDiff: Diff never shows more than maxLines, every line is a removal or
// an addition, and nothing invisible reaches the gate.
func FuzzDiff(f *testing.F) {
	f.Add([]byte("a\nb\n"), []byte("a\nc\n"), 3)
	f.Add([]byte(""), []byte("x\u202e\r\n"), 1)
	f.Add([]byte("\xff\n"), []byte("\n\n"), 10)
	f.Fuzz(func(t *testing.T, before, after []byte, maxLines int) {
		if len(before)+len(after) > 1<<16 {
			return
		}
		summary, lines := Diff(before, after, maxLines)
		if summary == "" || len(lines) > max(maxLines, 0) {
			t.Fatalf("summary %q, %d lines for maxLines %d", summary, len(lines), maxLines)
		}
		for _, l := range lines {
			if l == "" || (l[0] != '-' && l[0] != '+') || !utf8.ValidString(l) {
				t.Fatalf("line %q", l)
			}
			for _, r := range l {
				if r != '\t' && (unicode.IsControl(r) || unicode.In(r, unicode.Cf)) {
					t.Fatalf("invisible %U in %q", r, l)
				}
			}
		}
	})
}

func TestDiff(t *testing.T) {
	old := "export default {\n  async fetch(req) {\n    return new Response('hello')\n  }\n}\n"
	tests := []struct {
		name, before, after string
		max                 int
		summary             string // a prefix
		lines               []string
	}{
		{
			name: "one line changed", before: old, max: 10,
			after:   strings.Replace(old, "'hello'", "'hello, world'", 1),
			summary: "1 line removed, 1 added; first change at line 3",
			lines:   []string{"-    return new Response('hello')", "+    return new Response('hello, world')"},
		},
		{
			name: "line inserted", before: old, max: 10,
			after:   strings.Replace(old, "  async fetch(req) {\n", "  async fetch(req) {\n    console.log(req.url)\n", 1),
			summary: "0 lines removed, 1 added; first change at line 3",
			lines:   []string{"+    console.log(req.url)"},
		},
		{
			name: "line removed among equal lines", before: "a\nb\nc\nb\nd\n", after: "a\nc\nb\nd\n", max: 10,
			summary: "1 line removed, 0 added; first change at line 2",
			lines:   []string{"-b"},
		},
		{
			name: "at most maxLines", before: "a\nb\nc\n", after: "x\ny\nz\n", max: 2,
			summary: "3 lines removed, 3 added; first change at line 1",
			lines:   []string{"-a", "-b"},
		},
		{
			name: "identical", before: old, after: old, max: 10,
			summary: "no changes (5 lines",
		},
		{
			name: "new script", before: "", after: "a\nb\n", max: 10,
			summary: "new script: 2 lines, 4 bytes",
			lines:   []string{"+a", "+b"},
		},
		{
			name: "final newline only", before: "a\nb", after: "a\nb\n", max: 10,
			summary: "only the newline at the end of the script changed",
		},
		{
			name: "trojan source bidi override is shown", before: "a\n", after: "a\nx = 1 // \u202e } \u2066\n", max: 10,
			summary: "0 lines removed, 1 added",
			lines:   []string{`+x = 1 // \u{202e} } \u{2066}`},
		},
		{
			name: "carriage return and escape shown", before: "a\n", after: "a\r\n\x1b[2Kb\n", max: 10,
			lines: []string{"-a", `+a\u{000d}`, `+\u{001b}[2Kb`},
		},
		{
			name: "long line cut", before: "", after: strings.Repeat("x", 500), max: 1,
			lines: []string{"+" + strings.Repeat("x", 160) + "…"},
		},
		{
			name: "no lines asked", before: "a\n", after: "b\n", max: 0,
			summary: "1 line removed, 1 added; first change at line 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			summary, lines := Diff([]byte(tt.before), []byte(tt.after), tt.max)
			if !strings.HasPrefix(summary, tt.summary) {
				t.Fatalf("summary %q, want prefix %q", summary, tt.summary)
			}
			if strings.Join(lines, "\n") != strings.Join(tt.lines, "\n") {
				t.Fatalf("lines\n got %q\nwant %q", lines, tt.lines)
			}
		})
	}
}

func TestDiffOfLargeScriptsStaysBounded(t *testing.T) {
	var a, b strings.Builder
	for i := 0; i < 3000; i++ {
		a.WriteString("line a\n")
		b.WriteString("line b\n")
	}
	began := time.Now()
	summary, lines := Diff([]byte(a.String()), []byte(b.String()), 5)
	if time.Since(began) > 2*time.Second || len(lines) != 5 || !strings.Contains(summary, "3000 lines removed, 3000 added") ||
		!strings.Contains(summary, "too large") || !strings.Contains(summary, "showing the first 5 of 6000") {
		t.Fatalf("%q %q in %s", summary, lines, time.Since(began))
	}
}
