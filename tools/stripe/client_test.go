package stripe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tollgate-dev/tollgate/catalog"
	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/internal/money"
)

func TestNewClientConfig(t *testing.T) {
	ok := Config{SecretKey: "sk_test_x"}
	tests := []struct {
		name string
		mod  func(*Config)
		fail bool
	}{
		{name: "defaults to Stripe", mod: func(*Config) {}},
		{name: "restricted key", mod: func(c *Config) { c.SecretKey = "rk_live_x" }},
		{name: "loopback http for the sandbox", mod: func(c *Config) { c.BaseURL = "http://127.0.0.1:12111" }},
		{name: "localhost http", mod: func(c *Config) { c.BaseURL = "http://localhost:12111/" }},
		{name: "https elsewhere", mod: func(c *Config) { c.BaseURL = "https://stripe.internal.example" }},
		{name: "plain http off the host", mod: func(c *Config) { c.BaseURL = "http://api.stripe.com" }, fail: true},
		{name: "credentials in the url", mod: func(c *Config) { c.BaseURL = "https://u:p@api.stripe.com" }, fail: true},
		{name: "a path in the url", mod: func(c *Config) { c.BaseURL = "https://api.stripe.com/v2" }, fail: true},
		{name: "relative url", mod: func(c *Config) { c.BaseURL = "/v1" }, fail: true},
		{name: "missing key", mod: func(c *Config) { c.SecretKey = "" }, fail: true},
		{name: "publishable key", mod: func(c *Config) { c.SecretKey = "pk_live_x" }, fail: true},
		{name: "key with a newline", mod: func(c *Config) { c.SecretKey = "sk_test_x\r\nX-Evil: 1" }, fail: true},
		{name: "negative timeout", mod: func(c *Config) { c.Timeout = -1 }, fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			_, err := NewClient(cfg)
			if tt.fail != (err != nil) {
				t.Fatalf("NewClient: %v, want failure %v", err, tt.fail)
			}
			if err != nil && fault.CodeOf(err) != fault.InvalidArgument {
				t.Fatalf("code %s", fault.CodeOf(err))
			}
			if err != nil && strings.Contains(err.Error(), "sk_test_x") {
				t.Fatal("the error shows the key")
			}
		})
	}
}

// rawServer answers every request with status and body and counts hits.
func rawServer(t *testing.T, status int, body string) (*Client, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Request-Id", "req_raw")
		if status == http.StatusTemporaryRedirect {
			http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", status)
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{BaseURL: srv.URL, SecretKey: "sk_test_x"})
	if err != nil {
		t.Fatal(err)
	}
	return c, &hits
}

func TestAnswerShapes(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		code    fault.Code
		charged bool
	}{
		{name: "502 that is not JSON keeps status and Request-Id", status: 502, body: `<html>bad gateway</html>`, code: ProviderError, charged: true},
		{name: "200 that is not JSON", status: 200, body: `<html>`, code: ProviderError, charged: true},
		{name: "redirect is not followed", status: 307, code: ProviderError, charged: true},
		{name: "400 with Stripe's error", status: 400, body: `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such price: 'price_1'\u0007"}}`, code: ProviderRefused},
		{name: "402 card error", status: 402, body: `{"error":{"type":"card_error","code":"expired_card","message":"Your card has expired."}}`, code: CardDeclined},
		{name: "409 key in use may still charge", status: 409, body: `{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use","message":"in progress"}}`, code: ProviderError, charged: true},
		{name: "404 not JSON", status: 404, body: `not found`, code: ProviderRefused},
		{name: "incomplete subscription", status: 200, code: PaymentIncomplete,
			body: `{"id":"sub_1","object":"subscription","status":"incomplete","customer":"cus_1","items":{"object":"list","data":[{"price":{"id":"price_1","unit_amount":900,"currency":"usd"},"quantity":1}]}}`},
		{name: "subscription of another customer", status: 200, code: ProviderError, charged: true,
			body: `{"id":"sub_1","object":"subscription","status":"active","customer":"cus_2","items":{"object":"list","data":[{"price":{"id":"price_1","unit_amount":900,"currency":"usd"},"quantity":1}]}}`},
		{name: "subscription in an unsupported currency", status: 200, code: ProviderError, charged: true,
			body: `{"id":"sub_1","object":"subscription","status":"active","customer":"cus_1","items":{"object":"list","data":[{"price":{"id":"price_1","unit_amount":900,"currency":"jpy"},"quantity":1}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, hits := rawServer(t, tt.status, tt.body)
			_, err := c.StartSubscription(context.Background(), "cus_1", "price_1", "pm_1", "k-1", nil)
			wantCode(t, err, tt.code)
			if MayHaveCharged(err) != tt.charged {
				t.Fatalf("MayHaveCharged = %v, want %v: %s", !tt.charged, tt.charged, fault.PublicOf(err))
			}
			if strings.ContainsRune(fault.PublicOf(err), '\a') {
				t.Fatal("a control character from the provider reached the message")
			}
			var ce *CallError
			if errors.As(err, &ce) && (ce.HTTPStatus != tt.status || ce.RequestID != "req_raw") {
				t.Fatalf("CallError %+v", ce)
			}
			if hits.Load() != 1 {
				t.Fatalf("server saw %d requests", hits.Load())
			}
		})
	}
}

func TestPriceShapes(t *testing.T) {
	price := func(fields string) string {
		return `{"object":"list","has_more":false,"url":"/v1/prices","data":[{"id":"price_1","object":"price","lookup_key":"plan.x",` + fields + `}]}`
	}
	flat := `"type":"recurring","billing_scheme":"per_unit","unit_amount":900,"currency":"usd","recurring":{"interval":"month","interval_count":1}`
	tests := []struct {
		name string
		body string
		want money.Money
		per  catalog.Interval
		code fault.Code
	}{
		{name: "monthly usd", body: price(flat), want: money.USD(900), per: catalog.Month},
		{name: "yearly eur", body: price(`"type":"recurring","unit_amount":9900,"currency":"eur","recurring":{"interval":"year","interval_count":1}`),
			want: money.Money{Minor: 9900, Currency: "eur"}, per: catalog.Year},
		{name: "every three months", body: price(strings.Replace(flat, `"interval_count":1`, `"interval_count":3`, 1)), code: ProviderError},
		{name: "weekly", body: price(strings.Replace(flat, `"month"`, `"week"`, 1)), code: ProviderError},
		{name: "one-time", body: price(`"type":"one_time","unit_amount":900,"currency":"usd"`), code: ProviderError},
		{name: "tiered", body: price(strings.Replace(flat, `"per_unit"`, `"tiered"`, 1)), code: ProviderError},
		{name: "no unit amount", body: price(strings.Replace(flat, `"unit_amount":900`, `"unit_amount":null`, 1)), code: ProviderError},
		{name: "unsupported currency", body: price(strings.Replace(flat, `"usd"`, `"jpy"`, 1)), code: ProviderError},
		{name: "another lookup key", body: strings.Replace(price(flat), `"plan.x"`, `"plan.y"`, 1), code: ProviderError},
		{name: "two prices", body: strings.Replace(price(flat), `}]}`, `},{"id":"price_2","object":"price"}]}`, 1), code: ProviderError},
		{name: "none", body: `{"object":"list","has_more":false,"url":"/v1/prices","data":[]}`, code: fault.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := rawServer(t, 200, tt.body)
			p, err := c.PriceForPlan(context.Background(), "plan.x")
			if tt.code != "" {
				wantCode(t, err, tt.code)
				if MayHaveCharged(err) {
					t.Fatal("a price lookup may have charged")
				}
				return
			}
			if err != nil || p.Amount != tt.want || p.Interval != tt.per || p.ID != "price_1" || p.RequestID != "req_raw" {
				t.Fatalf("%+v, %v", p, err)
			}
		})
	}
}
