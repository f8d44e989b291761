package tools

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/tollgate-dev/tollgate/internal/fault"
	"github.com/tollgate-dev/tollgate/tools/cloudflare"
)

// zone is the call's zone in the principal's own account (step 4b
// resolved it from tollgate's record of what the account holds), with the
// client acting in that account.
func (t Tenant) zone() (*cloudflare.Client, cloudflare.Zone, error) {
	if t.Cloudflare == nil || t.Zone == nil {
		return nil, cloudflare.Zone{}, fault.New(fault.Internal, "no checked zone; nothing was changed")
	}
	return t.Cloudflare, *t.Zone, nil
}

type dnsRecord struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Name     string    `json:"name"`
	Content  string    `json:"content"`
	TTL      int       `json:"ttl" jsonschema:"seconds; 1 means automatic"`
	Proxied  bool      `json:"proxied"`
	Modified time.Time `json:"modified,omitzero"`
}

func toRecord(r cloudflare.Record) dnsRecord {
	return dnsRecord{ID: r.ID, Type: r.Type, Name: r.Name, Content: r.Content, TTL: r.TTL, Proxied: r.Proxied, Modified: r.Modified}
}

type dnsListArgs struct {
	Zone string `json:"zone" jsonschema:"the zone (domain), e.g. shop.example: one of your linked Cloudflare account, and one this task's token names when it names any"`
}

type dnsListResult struct {
	Zone    string      `json:"zone"`
	Records []dnsRecord `json:"records"`
}

// DNSList lists a zone's DNS records.
func DNSList() Tool {
	return Tool{
		def: mcp.NewTool("dns_list",
			mcp.WithDescription("List the DNS records of a zone of the human's linked Cloudflare account (one the task's token names, when it names any). Changes nothing."),
			mcp.WithInputSchema[dnsListArgs](),
			mcp.WithOutputSchema[dnsListResult](),
			annotate(true, false, true, true),
		),
		Scopes: []string{"dns:read"}, Provider: "cloudflare", Metered: true, Target: "zone", Account: true, Owned: true,
		run: handler[dnsListArgs, dnsListResult]{do: func(ctx context.Context, c Call[dnsListArgs]) (dnsListResult, error) {
			z, zone, err := c.Tenant.zone()
			if err != nil {
				return dnsListResult{}, err
			}
			recs, err := z.ListDNS(ctx, zone.ID)
			if err != nil {
				return dnsListResult{}, err
			}
			out := dnsListResult{Zone: string(zone.Name), Records: []dnsRecord{}}
			for _, r := range recs {
				out.Records = append(out.Records, toRecord(r))
			}
			return out, nil
		}},
	}
}

type dnsUpsertArgs struct {
	Zone    string      `json:"zone" jsonschema:"the zone (domain) the record belongs to; it must be one this task's token names"`
	Type    string      `json:"type" jsonschema:"A, AAAA, CNAME, TXT or MX"`
	Name    string      `json:"name" jsonschema:"@ for the apex, a label like www, or a full name within the zone"`
	Content string      `json:"content" jsonschema:"an IPv4/IPv6 address, a host name (CNAME, MX) or text (TXT)"`
	TTL     json.Number `json:"ttl,omitempty" jsonschema:"seconds, 60 to 86400; leave out for automatic"`
	Proxied *bool       `json:"proxied,omitempty" jsonschema:"route through Cloudflare (A, AAAA, CNAME)"`
}

type dnsUpsertResult struct {
	Record  dnsRecord `json:"record"`
	Created bool      `json:"created" jsonschema:"true when the record is new, false when an existing one was updated (or already matched)"`
}

// DNSUpsert creates a DNS record or updates the one of the same type and name.
func DNSUpsert() Tool {
	return Tool{
		def: mcp.NewTool("dns_upsert",
			mcp.WithDescription("Create a DNS record in a zone of the human's linked Cloudflare account that the task's token names, or update the record of the same type and name. Calling it again with the same arguments changes nothing."),
			mcp.WithInputSchema[dnsUpsertArgs](),
			mcp.WithOutputSchema[dnsUpsertResult](),
			annotate(false, false, true, true),
		),
		Scopes: []string{"dns:write"}, Provider: "cloudflare", Metered: true, Target: "zone", Account: true, Owned: true,
		args: map[string]ArgRule{
			"ttl":  intRule(cloudflare.MinTTL, cloudflare.MaxTTL),
			"type": {Enum: []string{cloudflare.TypeA, cloudflare.TypeAAAA, cloudflare.TypeCNAME, cloudflare.TypeTXT, cloudflare.TypeMX}, FoldCase: true},
		},
		run: handler[dnsUpsertArgs, dnsUpsertResult]{do: func(ctx context.Context, c Call[dnsUpsertArgs]) (dnsUpsertResult, error) {
			a := c.Args
			in := cloudflare.RecordInput{Type: a.Type, Name: a.Name, Content: a.Content, Proxied: a.Proxied}
			if a.TTL != "" {
				n, err := a.TTL.Int64()
				if err != nil || n < 1 || n > 86400 {
					return dnsUpsertResult{}, fault.Newf(fault.InvalidArgument, "ttl must be a whole number of seconds from 60 to 86400, got %s; nothing was changed", a.TTL)
				}
				in.TTL = int(n)
			}
			z, zone, err := c.Tenant.zone()
			if err != nil {
				return dnsUpsertResult{}, err
			}
			rec, created, err := z.UpsertDNS(ctx, zone.ID, in)
			if err != nil {
				return dnsUpsertResult{}, err
			}
			return dnsUpsertResult{Record: toRecord(rec), Created: created}, nil
		}},
	}
}

type dnsDeleteArgs struct {
	Zone string `json:"zone" jsonschema:"the zone (domain); it must be one this task's token names"`
	ID   string `json:"id" jsonschema:"the record id from dns_list"`
}

type dnsDeleteResult struct {
	Zone    string `json:"zone"`
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// DNSDelete deletes one DNS record.
func DNSDelete() Tool {
	return Tool{
		def: mcp.NewTool("dns_delete",
			mcp.WithDescription("Delete one DNS record (by id, from dns_list) in a zone of the human's linked Cloudflare account that the task's token names."),
			mcp.WithInputSchema[dnsDeleteArgs](),
			mcp.WithOutputSchema[dnsDeleteResult](),
			annotate(false, true, true, true),
		),
		Scopes: []string{"dns:write"}, Provider: "cloudflare", Metered: true, Target: "zone", Account: true, Owned: true,
		run: handler[dnsDeleteArgs, dnsDeleteResult]{do: func(ctx context.Context, c Call[dnsDeleteArgs]) (dnsDeleteResult, error) {
			a := c.Args
			z, zone, err := c.Tenant.zone()
			if err != nil {
				return dnsDeleteResult{}, err
			}
			// Only a record of this zone: an id from another zone is
			// refused, not deleted there.
			recs, err := z.ListDNS(ctx, zone.ID)
			if err != nil {
				return dnsDeleteResult{}, err
			}
			found := false
			for _, r := range recs {
				found = found || r.ID == a.ID
			}
			if !found {
				return dnsDeleteResult{}, fault.Newf(fault.NotFound, "zone %s has no record %q; nothing was deleted", zone.Name, a.ID)
			}
			if err := z.DeleteDNS(ctx, zone.ID, a.ID); err != nil {
				return dnsDeleteResult{}, err
			}
			return dnsDeleteResult{Zone: string(zone.Name), ID: a.ID, Deleted: true}, nil
		}},
	}
}

type sslArgs struct {
	Zone        string `json:"zone" jsonschema:"the zone (domain); it must be one this task's token names"`
	Mode        string `json:"mode" jsonschema:"off, flexible, full or strict"`
	AlwaysHTTPS *bool  `json:"always_https,omitempty" jsonschema:"redirect http to https"`
	MinTLS      string `json:"min_tls,omitempty" jsonschema:"1.0, 1.1, 1.2 or 1.3"`
}

type sslResult struct {
	Zone        string `json:"zone"`
	Mode        string `json:"mode"`
	AlwaysHTTPS bool   `json:"always_https"`
	MinTLS      string `json:"min_tls"`
}

// SSLConfigure sets a zone's SSL mode, always-HTTPS and minimum TLS.
func SSLConfigure() Tool {
	return Tool{
		def: mcp.NewTool("ssl_configure",
			mcp.WithDescription("Set a zone's SSL/TLS settings: mode (off, flexible, full, strict), always-HTTPS redirect and minimum TLS version. The zone must be one of the human's linked Cloudflare account that this task's token names. Calling it again with the same arguments changes nothing."),
			mcp.WithInputSchema[sslArgs](),
			mcp.WithOutputSchema[sslResult](),
			annotate(false, false, true, true),
		),
		Scopes: []string{"ssl:write"}, Provider: "cloudflare", Metered: true, Target: "zone", Account: true, Owned: true,
		args: map[string]ArgRule{"mode": {Enum: cloudflare.SSLModes()}, "min_tls": {Enum: cloudflare.TLSVersions()}},
		run: handler[sslArgs, sslResult]{do: func(ctx context.Context, c Call[sslArgs]) (sslResult, error) {
			a := c.Args
			z, zone, err := c.Tenant.zone()
			if err != nil {
				return sslResult{}, err
			}
			s, err := z.ConfigureSSL(ctx, zone.ID, cloudflare.SSLSettings{Mode: a.Mode, AlwaysHTTPS: a.AlwaysHTTPS, MinTLS: a.MinTLS})
			if err != nil {
				return sslResult{}, err
			}
			out := sslResult{Zone: string(zone.Name), Mode: s.Mode, MinTLS: s.MinTLS}
			if s.AlwaysHTTPS != nil {
				out.AlwaysHTTPS = *s.AlwaysHTTPS
			}
			return out, nil
		}},
	}
}
