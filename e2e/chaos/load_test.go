package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// principal is one human of the load, with task tokens whose resources name
// its domains.
type principal struct {
	Email   string
	Account string   // their account in the shared fake Cloudflare
	Tokens  []string // one per agent, each naming some of Domains
	Domains []string
}

// paidCall is one domain_register with its idempotency key, and how it
// ended after every retry.
type paidCall struct {
	P        *principal
	Token    string
	Domain   string
	Key      string
	Attempts int
	// Transport counts attempts that failed below MCP (a replica gone, a
	// connection reset); Unavailable those refused while Redis was not
	// reachable. Both are retried with the same key.
	Transport, Unavailable int
	Code                   string // "" success, else the last refusal code
	RegID                  string
	Charged                int64
	Replicas               map[string]bool // replicas that saw an attempt
}

// fleet is what the load talks to: the tollgate replicas, and how many
// calls each has in flight (to kill one in the middle of paid calls).
type fleet struct {
	replicas []*replica
	inflight []atomic.Int64

	mu        sync.Mutex
	transport map[string]int // transport failures by message, for the report
}

func (f *fleet) noteTransport(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.transport == nil {
		f.transport = map[string]int{}
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	f.transport[msg]++
}

func newFleet(rs ...*replica) *fleet {
	return &fleet{replicas: rs, inflight: make([]atomic.Int64, len(rs))}
}

// retriable are the ends of an attempt that a client retries with the same
// idempotency key: nothing was decided, or the decision could not be read.
func retriable(code string) bool {
	switch code {
	case "unavailable", "internal", "rate_limited", "too_many_requests":
		return true
	}
	return false
}

// do runs one paid call to its end: attempts go to replica (start+i) mod n,
// skipping dead ones, and are retried with the same key while the answer
// is a transport failure or a retriable refusal, up to maxAttempts.
func (f *fleet) do(ctx context.Context, c *paidCall, start, maxAttempts int) {
	c.Replicas = map[string]bool{}
	for i := 0; i < maxAttempts && ctx.Err() == nil; i++ {
		idx := (start + i) % len(f.replicas)
		r := f.replicas[idx]
		if !r.alive() {
			idx = (idx + 1) % len(f.replicas)
			r = f.replicas[idx]
		}
		c.Attempts++
		c.Replicas[r.Name] = true
		f.inflight[idx].Add(1)
		res, err := callTool(ctx, r.URL, c.Token, "domain_register", map[string]any{"domain": c.Domain, "idempotency_key": c.Key})
		f.inflight[idx].Add(-1)
		if err != nil {
			c.Transport++
			f.noteTransport(err)
			c.Code = "transport: " + err.Error()
			sleep(ctx, 250*time.Millisecond)
			continue
		}
		code, out := decode(res)
		c.Code = code
		if code == "" {
			c.RegID, c.Charged = out.RegistrationID, out.Charged.Minor
			return
		}
		if !retriable(code) {
			return
		}
		if code == "unavailable" {
			c.Unavailable++
		}
		sleep(ctx, 250*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

type registerOut struct {
	RegistrationID string `json:"registration_id"`
	Charged        struct {
		Minor int64 `json:"amount_minor"`
	} `json:"charged"`
	Error struct {
		Code string `json:"code"`
	} `json:"error"`
}

func decode(res *mcp.CallToolResult) (code string, out registerOut) {
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &out)
	if !res.IsError {
		return "", out
	}
	if out.Error.Code == "" {
		return "tool_error_without_code", out
	}
	return out.Error.Code, out
}

// callTool opens a fresh Streamable HTTP client (one per attempt: the
// replica it talked to may be gone), calls tool and closes it.
func callTool(ctx context.Context, base, token, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tr, err := transport.NewStreamableHTTP(base+"/mcp",
		transport.WithHTTPTimeout(30*time.Second),
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}),
		transport.WithHTTPBasicClient(&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}))
	if err != nil {
		return nil, err
	}
	c := client.NewClient(tr)
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "tollgate-chaos", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, errors.New("no result")
	}
	return res, nil
}

// runLoad starts every call, the first half at once and the rest spread over
// spread, and returns when all have ended.
func (f *fleet) runLoad(ctx context.Context, calls []*paidCall, spread time.Duration, maxAttempts int) {
	var wg sync.WaitGroup
	half := len(calls) / 2
	for i, c := range calls {
		var delay time.Duration
		if i >= half && len(calls) > half {
			delay = spread * time.Duration(i-half) / time.Duration(len(calls)-half)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sleep(ctx, delay)
			f.do(ctx, c, i, maxAttempts)
		}()
	}
	wg.Wait()
}
