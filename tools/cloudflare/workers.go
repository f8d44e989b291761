package cloudflare

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	cf "github.com/cloudflare/cloudflare-go"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// Workers scripts, through cloudflare-go's UploadWorker and GetWorker on the
// same client as the Registrar calls (retries off, redirects refused, every
// exchange recorded):
//
//	PUT /accounts/{account_id}/workers/scripts/{name}   multipart: metadata + worker.mjs
//	GET /accounts/{account_id}/workers/scripts/{name}   the script (multipart for a module)

const (
	// MaxScriptSize bounds the script body tollgate uploads. It leaves room
	// for the multipart form around the script within 1 MiB of request.
	MaxScriptSize = 1_000_000
	// MaxScriptNameLen is the longest Worker name Cloudflare accepts.
	MaxScriptNameLen = 63
	// CompatibilityDate pins the Workers runtime behaviour of every upload.
	CompatibilityDate = "2025-09-01"
	// MainModule is the part name cloudflare-go v0.119.0 gives the module of
	// an ES module upload (formatMultipartBody); it cannot be chosen.
	MainModule = "worker.mjs"

	previewInfix = "---preview-"
)

var (
	workerName       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	previewIDPattern = regexp.MustCompile(`^[a-z0-9]{1,32}$`)
)

// Script describes a Worker script as tollgate uploaded or read it. SHA256
// (hex) and Size are computed from the body itself; ETag and Modified are
// what Cloudflare reported, and are empty for GetScript, whose answer is
// the bare script.
type Script struct {
	Name     string
	SHA256   string
	Size     int
	ETag     string
	Modified time.Time
	RayID    string
}

// ValidateScriptName refuses anything but a Worker name Cloudflare accepts:
// 1 to 63 lowercase letters, digits and hyphens, not starting with a hyphen.
// The name goes into a URL path unescaped by the SDK, so this check is what
// keeps "../" and "%2f" out of it.
func ValidateScriptName(name string) error {
	if !workerName.MatchString(name) {
		return fault.Newf(fault.InvalidArgument,
			"%s is not a valid Worker name: use 1 to %d lowercase letters, digits and hyphens, starting with a letter or digit; nothing was sent.",
			quote(name), MaxScriptNameLen)
	}
	return nil
}

// PreviewName is the Worker name a preview of base is uploaded under:
// base---preview-{previewID}. A production name (domainname.WorkerName)
// never holds a run of exactly three hyphens and never ends in one, so the
// preview of such a base is never another domain's production name. When that is longer than 63 characters, base is
// shortened and followed by 8 hex digits of its SHA-256, so that two long
// names never share a preview name. It returns "" (which every call
// refuses) when base is not a valid Worker name or previewID is not 1 to 32
// lowercase letters and digits: truncation must never turn an invalid name
// into a valid one.
func PreviewName(base, previewID string) string {
	if ValidateScriptName(base) != nil || !previewIDPattern.MatchString(previewID) {
		return ""
	}
	suffix := previewInfix + previewID
	if len(base)+len(suffix) <= MaxScriptNameLen {
		return base + suffix
	}
	sum := sha256.Sum256([]byte(base))
	tag := "-" + hex.EncodeToString(sum[:4])
	// At least 63-9-32-9 = 13 characters of base are kept.
	keep := MaxScriptNameLen - len(suffix) - len(tag)
	return strings.TrimRight(base[:keep], "-") + tag + suffix
}

// UploadScript uploads body as the ES module Worker name (main module
// worker.mjs, CompatibilityDate), replacing any script of that name. It
// refuses an invalid name and an empty, non-UTF-8 or oversized body before
// sending anything. The SDK does not retry; a failure whose request may have
// reached Cloudflare says so (provider.Reached), because the script may then
// have been replaced.
func (c *Client) UploadScript(ctx context.Context, name string, body []byte) (Script, error) {
	if err := checkScript(name, body); err != nil {
		return Script{}, err
	}
	o := workerOp{name: "worker_upload", what: "the upload of Worker " + quote(name), script: name, writes: true}
	var res cf.WorkerScriptResponse
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		res, err = c.api.UploadWorker(ctx, cf.AccountIdentifier(c.account), cf.CreateWorkerParams{
			ScriptName:        name,
			Script:            string(body),
			Module:            true,
			CompatibilityDate: CompatibilityDate,
		})
		return err
	})
	if err != nil {
		return Script{}, err
	}
	if !res.Success {
		ce := &CallError{Op: o.name, HTTPStatus: http.StatusOK, RayID: ray, Reached: true, ProviderMessages: messages(res.Errors)}
		return Script{}, fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare reported %s as unsuccessful%s; nothing was changed or charged.", o.what, providerSaid(ce)))
	}
	s := describe(name, body, ray)
	s.ETag, s.Modified = sanitize(res.ETAG), res.ModifiedOn
	return s, nil
}

// GetScript reads the script of the Worker name. A Worker that does not
// exist is an error with code fault.NotFound (not a provider failure); for a
// module worker of several modules the body is the first one.
func (c *Client) GetScript(ctx context.Context, name string) ([]byte, Script, error) {
	if err := ValidateScriptName(name); err != nil {
		return nil, Script{}, err
	}
	o := workerOp{name: "worker_get", what: "reading Worker " + quote(name), script: name}
	var res cf.WorkerScriptResponse
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		res, err = c.api.GetWorker(ctx, cf.AccountIdentifier(c.account), name)
		return err
	})
	if err != nil {
		return nil, Script{}, err
	}
	body := []byte(res.Script)
	return body, describe(name, body, ray), nil
}

func checkScript(name string, body []byte) error {
	if err := ValidateScriptName(name); err != nil {
		return err
	}
	switch {
	case len(body) == 0:
		return fault.New(fault.InvalidArgument, "the Worker script is empty; nothing was sent.")
	case len(body) > MaxScriptSize:
		return fault.Newf(fault.InvalidArgument,
			"the Worker script is %d bytes, more than the %d tollgate uploads; bundle and minify it; nothing was sent.", len(body), MaxScriptSize)
	case !utf8.Valid(body):
		return fault.New(fault.InvalidArgument, "the Worker script is not valid UTF-8 text; nothing was sent.")
	}
	return nil
}

func describe(name string, body []byte, ray string) Script {
	sum := sha256.Sum256(body)
	return Script{Name: name, SHA256: hex.EncodeToString(sum[:]), Size: len(body), RayID: ray}
}

// quote shows a caller-supplied name in a message: escaped, and bounded.
func quote(s string) string {
	if len(s) > 80 {
		s = strings.ToValidUTF8(s[:80], "") + "…"
	}
	return fmt.Sprintf("%+q", s)
}

// workerOp describes a Workers call for error messages.
type workerOp struct {
	name   string // worker_upload or worker_get
	what   string // `the upload of Worker "shop"`
	script string
	writes bool // the call replaces the script
}

// sdkOp is a Workers or zone call as sdkCall needs it: its name, and how
// its failures read.
type sdkOp interface {
	opName() string
	noAnswer(ctx context.Context, c *Client, ce *CallError) error
	badStatus(ce *CallError, retryAfter string) error
	unreadable(ce *CallError) error
}

// sdkCall runs one SDK call with the client's timeout, recording the
// exchange as call does for raw requests, and translates its failure.
func (c *Client) sdkCall(ctx context.Context, o sdkOp, send func(context.Context) error) (string, error) {
	ray, err := c.sdkCallOnce(ctx, o, send)
	if c.renewAfter(err) {
		ray, err = c.sdkCallOnce(ctx, o, send)
		c.rejectAfter(err)
	}
	return ray, err
}

func (c *Client) sdkCallOnce(ctx context.Context, o sdkOp, send func(context.Context) error) (string, error) {
	ctx, err := c.credential(ctx)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ctx, ex := provider.Record(ctx)
	err = send(ctx)
	s := ex.Seen()
	ray := s.RequestID
	ce := newCallError(o.opName(), s, err)
	switch {
	case err != nil && s.Status == 0:
		return ray, o.noAnswer(ctx, c, ce)
	case s.Status < 200 || s.Status > 299:
		// Includes a 3xx, which the SDK passes on as a success.
		ce.ProviderMessages = envelopeMessages(s.Body)
		if credentialRefused(s.Status, s.Body) {
			return ray, relink(ce)
		}
		return ray, o.badStatus(ce, s.RetryAfter)
	case err != nil:
		return ray, o.unreadable(ce)
	}
	return ray, nil
}

// mayHaveChanged is said of every write whose outcome is unknown. Uploads
// replace the whole script, so repeating the same one is harmless.
func (o workerOp) mayHaveChanged() string {
	return fmt.Sprintf("The request may have reached Cloudflare and replaced the script of Worker %s: read it back before relying on either version "+
		"(uploading the same script again is safe). Nothing was charged.", quote(o.script))
}

func (o workerOp) opName() string { return o.name }
func (o workerOp) noAnswer(ctx context.Context, c *Client, ce *CallError) error {
	return c.callNoAnswer(ctx, o.what, o.writes, o.mayHaveChanged(), ce)
}
func (o workerOp) badStatus(ce *CallError, retryAfter string) error {
	return workerBadStatus(o, ce, retryAfter)
}
func (o workerOp) unreadable(ce *CallError) error { return workerUnreadable(o, ce) }

func workerBadStatus(o workerOp, ce *CallError, retryAfter string) error {
	said := providerSaid(ce)
	switch s := ce.HTTPStatus; {
	case s >= 500 && o.writes:
		return fault.Wrap(ce, ProviderError, fmt.Sprintf("Cloudflare failed %s with HTTP %d%s. %s", o.what, s, said, o.mayHaveChanged()))
	case s >= 500:
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare failed %s with HTTP %d%s; nothing was changed. Retry later.", o.what, s, said))
	case s == http.StatusTooManyRequests:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare is rate-limiting tollgate (HTTP 429) for %s; nothing was changed. Retry after %s.", o.what, retryWait(retryAfter)))
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare refused the linked account's credential for %s (HTTP %d%s); nothing was changed. "+
				"The human may need to allow tollgate the Workers Scripts permission when linking the account again (account_connect).", o.what, s, said))
	case s == http.StatusNotFound && !o.writes:
		return fault.Wrap(ce, fault.NotFound, fmt.Sprintf(
			"Worker %s does not exist in this Cloudflare account; nothing was changed.", quote(o.script)))
	case s >= 400:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare refused %s (HTTP %d%s); nothing was changed.", o.what, s, said))
	}
	return workerUnreadable(o, ce)
}

func workerUnreadable(o workerOp, ce *CallError) error {
	if o.writes {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare's answer to %s could not be read (HTTP %d). %s", o.what, ce.HTTPStatus, o.mayHaveChanged()))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Cloudflare's answer to %s could not be read (HTTP %d); nothing was changed. Retry later.", o.what, ce.HTTPStatus))
}

// Limits of Diff.
const (
	// maxDiffCells bounds the LCS table of the changed region (4 MiB of
	// int32); a larger region is shown as all removed, then all added.
	maxDiffCells = 1 << 20
	// maxShownRunes bounds one shown line: minified bundles are one line.
	maxShownRunes = 160
)

// Diff compares two scripts line by line for the production gate. summary
// says how many lines were removed and added and where the first change is;
// firstChanged holds at most maxLines changed lines in order, each "-" for a
// line removed from before or "+" for a line added in after. Lines are shown
// with control and invisible format characters escaped and cut to 160
// characters, so that what the human approves is what they see.
func Diff(before, after []byte, maxLines int) (summary string, firstChanged []string) {
	a, b := splitLines(before), splitLines(after)
	sizes := fmt.Sprintf("before: %s, %d bytes; after: %s, %d bytes", lines(len(a)), len(before), lines(len(b)), len(after))
	switch {
	case string(before) == string(after):
		return fmt.Sprintf("no changes (%s, %d bytes)", lines(len(b)), len(after)), nil
	case len(before) == 0:
		summary = fmt.Sprintf("new script: %s, %d bytes", lines(len(b)), len(after))
	}

	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	edits, exact := lineEdits(a[pre:len(a)-suf], b[pre:len(b)-suf])
	removed, added := 0, 0
	for _, e := range edits {
		if e.op == '-' {
			removed++
		} else {
			added++
		}
		if len(firstChanged) < maxLines {
			firstChanged = append(firstChanged, string(e.op)+visible(e.line))
		}
	}
	if summary != "" {
		return summary, firstChanged
	}
	if len(edits) == 0 {
		return "only the newline at the end of the script changed (" + sizes + ")", nil
	}
	summary = fmt.Sprintf("%s removed, %d added; first change at line %d (%s)", lines(removed), added, pre+1, sizes)
	if !exact {
		summary += "; the changed region is too large for a line-by-line comparison and is shown as removed, then added"
	}
	if len(firstChanged) < len(edits) {
		summary += fmt.Sprintf("; showing the first %d of %d changed lines", len(firstChanged), len(edits))
	}
	return summary, firstChanged
}

func lines(n int) string {
	if n == 1 {
		return "1 line"
	}
	return fmt.Sprintf("%d lines", n)
}

type lineEdit struct {
	op   byte // '-' or '+'
	line string
}

// lineEdits is a shortest edit script from a to b by longest common
// subsequence, or, when the table would be too large, a replacement of
// all of a by all of b (exact is then false).
func lineEdits(a, b []string) (edits []lineEdit, exact bool) {
	n, m := len(a), len(b)
	if n == 0 || m == 0 || (n+1)*(m+1) > maxDiffCells {
		for _, l := range a {
			edits = append(edits, lineEdit{'-', l})
		}
		for _, l := range b {
			edits = append(edits, lineEdit{'+', l})
		}
		return edits, n == 0 || m == 0
	}
	// lcs[i*(m+1)+j] is the LCS length of a[i:] and b[j:].
	w := m + 1
	lcs := make([]int32, (n+1)*w)
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			i, j = i+1, j+1
		case i < n && (j == m || lcs[(i+1)*w+j] >= lcs[i*w+j+1]):
			// Removals first, as in a unified diff.
			edits = append(edits, lineEdit{'-', a[i]})
			i++
		default:
			edits = append(edits, lineEdit{'+', b[j]})
			j++
		}
	}
	return edits, true
}

// splitLines splits at "\n", keeping any "\r", without an empty last line
// for a final newline.
func splitLines(data []byte) []string {
	if len(data) == 0 {
		return nil
	}
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// visible escapes what would hide or disguise code in a gate: control
// characters (ANSI escapes, carriage returns) and invisible format
// characters, bidirectional overrides among them ("Trojan Source",
// CVE-2021-42574). Tabs stay; invalid UTF-8 shows as U+FFFD.
func visible(line string) string {
	var sb strings.Builder
	n := 0
	for _, r := range strings.ToValidUTF8(line, "\uFFFD") {
		if n == maxShownRunes {
			sb.WriteString("…")
			break
		}
		n++
		if r != '\t' && (unicode.IsControl(r) || unicode.In(r, unicode.Cf)) {
			fmt.Fprintf(&sb, `\u{%04x}`, r)
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
