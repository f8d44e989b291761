package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// clients are one MCP client per worker, all speaking 2026-07-28 (mcp-go's
// default, stateless).
type clients []*client.Client

func (cs clients) close() {
	for _, c := range cs {
		_ = c.Close()
	}
}

func startClient(ctx context.Context, c *client.Client) error {
	if err := c.Start(context.Background()); err != nil {
		return fmt.Errorf("start MCP client: %w", err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "tollgate-bench", Version: "0"}
	ictx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := c.Initialize(ictx, req)
	if err != nil {
		return fmt.Errorf("initialize MCP client: %w", err)
	}
	if res.ProtocolVersion != mcp.LATEST_PROTOCOL_VERSION {
		return fmt.Errorf("MCP client negotiated %s, want %s", res.ProtocolVersion, mcp.LATEST_PROTOCOL_VERSION)
	}
	return nil
}

// inProcessClients connects n clients in this process.
func inProcessClients(ctx context.Context, connect func() (*client.Client, error), n int) (clients, error) {
	var cs clients
	for range n {
		c, err := connect()
		if err != nil {
			cs.close()
			return nil, err
		}
		if err := startClient(ctx, c); err != nil {
			cs.close()
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// httpClients connects n Streamable HTTP clients to url (…/mcp), each with
// its own keep-alive connection, sending token as a bearer when set.
func httpClients(ctx context.Context, url, token string, n int) (clients, error) {
	var cs clients
	for range n {
		opts := []transport.StreamableHTTPCOption{
			transport.WithHTTPTimeout(30 * time.Second),
			transport.WithHTTPBasicClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}),
		}
		if token != "" {
			opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
		}
		tr, err := transport.NewStreamableHTTP(url, opts...)
		if err != nil {
			cs.close()
			return nil, err
		}
		c := client.NewClient(tr)
		if err := startClient(ctx, c); err != nil {
			cs.close()
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, nil
}

// callTool calls a tool and turns a refusal into an error.
func callTool(ctx context.Context, c *client.Client, name string, args map[string]any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.IsError {
		b, _ := json.Marshal(res.StructuredContent)
		return res, fmt.Errorf("%s refused: %s", name, b)
	}
	return res, nil
}
