package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/provider"
)

// Codes this package decides.
const (
	// ProviderError: 5xx, timeout, no answer or an unreadable one.
	ProviderError fault.Code = "provider_error"
	// ProviderRefused: Cloudflare answered 4xx or success:false.
	ProviderRefused fault.Code = "provider_refused"
	// DomainUnavailable: the name is taken, reserved or already registered.
	DomainUnavailable fault.Code = "domain_unavailable"
	// ActionRequired: the registration is paused until the account owner
	// acts in the Cloudflare dashboard.
	ActionRequired fault.Code = "action_required"
)

// CallError is the internal cause of every provider failure: what the
// transport saw. Details exposes the parts safe to show a caller (tools
// put them in the tool error's details).
type CallError struct {
	Op               string // domain_check, registration or registration_status
	HTTPStatus       int    // 0 when no answer arrived
	RayID            string // cf-ray of the answer, for the audit trail
	Reached          bool   // the request reached, or may have reached, Cloudflare
	ProviderMessages []string
	Err              error
}

func (e *CallError) Error() string {
	s := fmt.Sprintf("cloudflare %s: http %d, ray %q, reached %v", e.Op, e.HTTPStatus, e.RayID, e.Reached)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *CallError) Unwrap() error { return e.Err }

// Details is the public part of the failure.
func (e *CallError) Details() any {
	d := map[string]any{"provider": "cloudflare", "request_reached_provider": e.Reached}
	if e.HTTPStatus != 0 {
		d["http_status"] = e.HTTPStatus
	}
	if e.RayID != "" {
		d["ray_id"] = e.RayID
	}
	return d
}

// MayHaveReached reports whether the request reached, or may have reached,
// Cloudflare (provider.Error): provider.Reached finds it in any error that
// wraps it. When it is false nothing was sent and nothing can have been
// charged.
func (e *CallError) MayHaveReached() bool { return e.Reached }

var _ provider.Error = (*CallError)(nil)

// newCallError is the cause of a failed call, from what the transport saw.
func newCallError(op string, s provider.Seen, err error) *CallError {
	return &CallError{Op: op, HTTPStatus: s.Status, RayID: s.RequestID, Reached: s.Reached(), Err: err}
}

// op describes a call for error messages.
type op struct {
	name    string
	verb    string // "the availability check of", "the registration of", …
	domain  domainname.Name
	charges bool
}

func (o op) what() string { return o.verb + " " + string(o.domain) }

func (c *Client) noAnswer(ctx context.Context, o op, ce *CallError) error {
	why := "the connection failed"
	switch {
	case !ce.Reached && ce.Err != nil && strings.Contains(ce.Err.Error(), "request rate limiting"):
		// The SDK's client-side limiter gave up waiting before sending.
		why = "tollgate's own request rate limit to Cloudflare was full"
	case errors.Is(ce.Err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		why = "no answer within " + c.timeout.String()
	case errors.Is(ce.Err, context.Canceled):
		why = "the call was cancelled"
	}
	if !ce.Reached {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare was not reached for %s (%s); nothing was sent, so nothing was charged. Retry later.", o.what(), why))
	}
	if o.charges {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare did not answer %s (%s). The request reached Cloudflare, so the domain may be registering and may be charged. "+
				"Do not register it again: poll its registration status first.", o.what(), why))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Cloudflare did not answer %s (%s); nothing was charged. Retry later.", o.what(), why))
}

func badStatus(o op, ce *CallError, retryAfter string) error {
	said := providerSaid(ce)
	switch s := ce.HTTPStatus; {
	case s >= 500:
		if o.charges {
			return fault.Wrap(ce, ProviderError, fmt.Sprintf(
				"Cloudflare failed %s with HTTP %d%s. It reports the registration as failed, so it should not be charged, "+
					"but a failure after the registry accepted the name cannot be ruled out: poll its registration status before registering again.",
				o.what(), s, said))
		}
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare failed %s with HTTP %d%s; nothing was charged. Retry later.", o.what(), s, said))
	case s == http.StatusTooManyRequests:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare is rate-limiting tollgate (HTTP 429) for %s; nothing was charged. Retry after %s.", o.what(), retryWait(retryAfter)))
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare refused the linked account's credential for %s (HTTP %d%s); nothing was charged. "+
				"The human may need to allow tollgate the Registrar permission when linking the account again (account_connect).", o.what(), s, said))
	case s == http.StatusConflict && o.charges:
		return fault.Wrap(ce, DomainUnavailable, fmt.Sprintf(
			"Cloudflare will not register %s (HTTP 409%s); nothing was charged. If an earlier registration of it timed out, "+
				"poll its registration status; otherwise choose another name with domain_check.", o.domain, said))
	case s >= 400:
		return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
			"Cloudflare refused %s (HTTP %d%s); nothing was charged.", o.what(), s, said))
	}
	// 1xx or 3xx: redirects are never followed.
	return unreadable(o, ce)
}

func unreadable(o op, ce *CallError) error {
	if o.charges {
		return fault.Wrap(ce, ProviderError, fmt.Sprintf(
			"Cloudflare's answer to %s could not be read (HTTP %d). The request reached Cloudflare, so the domain may be registering "+
				"and may be charged: poll its registration status before registering again.", o.what(), ce.HTTPStatus))
	}
	return fault.Wrap(ce, ProviderError, fmt.Sprintf(
		"Cloudflare's answer to %s could not be read (HTTP %d); nothing was charged. Retry later.", o.what(), ce.HTTPStatus))
}

func refused(o op, ce *CallError) error {
	return fault.Wrap(ce, ProviderRefused, fmt.Sprintf(
		"Cloudflare reported %s as unsuccessful%s; nothing was charged.", o.what(), providerSaid(ce)))
}

func providerSaid(ce *CallError) string {
	if len(ce.ProviderMessages) == 0 {
		return ""
	}
	return ": " + strings.Join(ce.ProviderMessages, "; ")
}

func retryWait(h string) string {
	if n, err := strconv.Atoi(h); err == nil && n >= 0 && n <= 3600 {
		return (time.Duration(n) * time.Second).String()
	}
	return "a minute"
}

// sanitize keeps a provider message printable and bounded before it is
// shown to an agent.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

func codeSuffix(code int) string {
	if code == 0 {
		return ""
	}
	return " (code " + strconv.Itoa(code) + ")"
}
