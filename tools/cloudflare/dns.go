package cloudflare

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	cf "github.com/cloudflare/cloudflare-go"

	"github.com/tollgate-dev/tollgate/internal/domainname"
	"github.com/tollgate-dev/tollgate/internal/fault"
)

// AmbiguousRecord: an upsert matched several records and cannot tell which
// one to change.
const AmbiguousRecord fault.Code = "ambiguous_record"

// Record types tollgate manages.
const (
	TypeA     = "A"
	TypeAAAA  = "AAAA"
	TypeCNAME = "CNAME"
	TypeTXT   = "TXT"
	TypeMX    = "MX"
)

// Limits of record input, as Cloudflare documents them.
const (
	// TTLAuto is the TTL Cloudflare calls automatic.
	TTLAuto = 1
	MinTTL  = 60
	MaxTTL  = 86400
	// MaxTXTLength is the longest TXT content Cloudflare accepts.
	MaxTXTLength = 2048
	// DefaultMXPriority is an MX record's priority when none is given.
	DefaultMXPriority uint16 = 10

	maxHostLength = 253
)

// RecordInput is a DNS record to create or update.
type RecordInput struct {
	Type string // A, AAAA, CNAME, TXT or MX (any case)
	// Name is "@" for the zone apex, a single label relative to the zone
	// ("www"), or a full name within the zone ("www.shop.com"). Wildcard
	// ("*.shop.com") and service labels ("_dmarc") are allowed.
	Name string
	// Content is an IPv4 address (A), an IPv6 address (AAAA), a fully
	// qualified host name (CNAME, MX) or text (TXT, 1 to 2048 characters).
	Content string
	TTL     int // seconds, 60 to 86400; 0 or 1 for automatic
	// Proxied routes traffic through Cloudflare; A, AAAA and CNAME only,
	// with an automatic TTL. nil keeps an existing record's setting and is
	// false for a new one.
	Proxied *bool
	// Priority is an MX record's preference; nil means 10. Other types
	// refuse it.
	Priority *uint16
}

// Record is a DNS record as Cloudflare reported it.
type Record struct {
	ID       string
	ZoneID   string
	Type     string
	Name     string // fully qualified
	Content  string
	TTL      int // 1 means automatic
	Proxied  bool
	Priority uint16 // MX only
	Modified time.Time
	RayID    string
}

// record is a RecordInput checked and in canonical form.
type record struct {
	typ      string
	name     string // lowercase, no trailing dot; "@" or relative until resolved
	content  string
	ttl      int
	proxied  *bool
	priority *uint16
}

// check refuses a record Cloudflare would refuse, before anything is sent.
func (in RecordInput) check() (record, error) {
	bad := func(format string, args ...any) (record, error) {
		return record{}, fault.Newf(fault.InvalidArgument, format+"; nothing was sent.", args...)
	}
	r := record{typ: strings.ToUpper(in.Type), ttl: in.TTL, proxied: in.Proxied, priority: in.Priority}
	r.name = strings.TrimSuffix(strings.ToLower(in.Name), ".")
	switch {
	case r.name == "":
		return bad("the record name is empty: use @ for the zone apex, a label such as www, or a full name within the zone")
	case r.name != "@" && (len(r.name) > maxHostLength || !isHost(r.name, true)):
		return bad("%s is not a valid record name: use lowercase letters, digits, hyphens and underscores in A-label (punycode) form, "+
			"with an optional leading *. label", quote(in.Name))
	}
	switch r.typ {
	case TypeA, TypeAAAA:
		a, err := netip.ParseAddr(in.Content)
		if err != nil || a.Zone() != "" || a.Is4() != (r.typ == TypeA) {
			if r.typ == TypeA {
				return bad("an A record's content must be an IPv4 address such as 192.0.2.1, not %s", quote(in.Content))
			}
			return bad("an AAAA record's content must be an IPv6 address such as 2001:db8::1, not %s", quote(in.Content))
		}
		r.content = a.String()
	case TypeCNAME, TypeMX:
		h := strings.TrimSuffix(strings.ToLower(in.Content), ".")
		if len(h) > maxHostLength || !isHost(h, false) || !strings.Contains(h, ".") {
			return bad("a %s record's content must be a fully qualified host name such as target.example.com, not %s", r.typ, quote(in.Content))
		}
		r.content = h
	case TypeTXT:
		n := utf8.RuneCountInString(in.Content)
		if n == 0 || n > MaxTXTLength || !utf8.ValidString(in.Content) || strings.IndexFunc(in.Content, unicode.IsControl) >= 0 {
			return bad("a TXT record's content must be 1 to %d printable characters", MaxTXTLength)
		}
		r.content = in.Content
	default:
		return bad("record type %s is not supported: use A, AAAA, CNAME, TXT or MX", quote(in.Type))
	}
	if r.ttl == 0 {
		r.ttl = TTLAuto
	}
	proxied := r.proxied != nil && *r.proxied
	switch {
	case r.ttl != TTLAuto && (r.ttl < MinTTL || r.ttl > MaxTTL):
		return bad("ttl must be %d to %d seconds, or 0 or 1 for automatic, not %d", MinTTL, MaxTTL, in.TTL)
	case proxied && r.typ != TypeA && r.typ != TypeAAAA && r.typ != TypeCNAME:
		return bad("only A, AAAA and CNAME records can be proxied, not %s", r.typ)
	case proxied && r.ttl != TTLAuto:
		return bad("a proxied record always has an automatic TTL; leave ttl out or set it to 1")
	case r.typ != TypeMX && r.priority != nil:
		return bad("priority applies to MX records only")
	case r.typ == TypeMX && r.priority == nil:
		p := DefaultMXPriority
		r.priority = &p
	}
	return r, nil
}

// resolve makes the name fully qualified within zone, refusing one outside
// it: a name with dots must be the zone or end in ".<zone>".
func (r *record) resolve(zone domainname.Name) error {
	z := string(zone)
	switch {
	case r.name == "@":
		r.name = z
	case !strings.Contains(r.name, "."):
		r.name += "." + z
	case r.name != z && !strings.HasSuffix(r.name, "."+z):
		return fault.Newf(fault.InvalidArgument,
			"record name %s is not within zone %s: use @, a label such as www, or a name ending in .%s; nothing was changed.", quote(r.name), z, z)
	}
	if len(r.name) > maxHostLength {
		return fault.Newf(fault.InvalidArgument, "record name %s is longer than %d characters; nothing was changed.", quote(r.name), maxHostLength)
	}
	if r.typ == TypeCNAME && r.content == r.name {
		return fault.Newf(fault.InvalidArgument, "a CNAME record cannot point to its own name %s; nothing was changed.", r.name)
	}
	return nil
}

// isHost accepts lowercase ASCII labels of letters, digits, hyphens and
// underscores (service labels such as _dmarc), 1 to 63 characters each,
// not starting or ending with a hyphen; with wildcard, the first label of
// several may be "*".
func isHost(s string, wildcard bool) bool {
	labels := strings.Split(s, ".")
	for i, l := range labels {
		if wildcard && i == 0 && l == "*" && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// ListDNS returns every DNS record of zoneID. A zone that does not exist
// in the account is an error with code fault.NotFound.
func (c *Client) ListDNS(ctx context.Context, zoneID string) ([]Record, error) {
	if err := checkZoneID(zoneID); err != nil {
		return nil, err
	}
	return c.listRecords(ctx, zoneID, cf.ListDNSRecordsParams{})
}

func (c *Client) listRecords(ctx context.Context, zoneID string, params cf.ListDNSRecordsParams) ([]Record, error) {
	o := zoneOp{name: "dns_list", what: "listing the DNS records of zone " + zoneID, needs: "DNS Read permission",
		notFound: "Cloudflare has no zone " + zoneID + " in this account; nothing was changed."}
	var list []cf.DNSRecord
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		list, _, err = c.api.ListDNSRecords(ctx, cf.ZoneIdentifier(zoneID), params)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(list))
	for _, r := range list {
		rec, err := fromSDK(o, zoneID, r, ray)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

func fromSDK(o zoneOp, zoneID string, r cf.DNSRecord, ray string) (Record, error) {
	if !isObjectID(r.ID) {
		return Record{}, unreadableAnswer(o, ray, fmt.Errorf("record id %q", r.ID))
	}
	rec := Record{ID: r.ID, ZoneID: zoneID, Type: r.Type, Name: r.Name, Content: r.Content, TTL: r.TTL, Modified: r.ModifiedOn, RayID: ray}
	if r.Proxied != nil {
		rec.Proxied = *r.Proxied
	}
	if r.Priority != nil {
		rec.Priority = *r.Priority
	}
	return rec, nil
}

// UpsertDNS makes zoneID hold the record in: it finds the records of the
// same type and name and updates the one with the same content, or the
// only one, or creates the record when there is none. created is true for
// a new record. A record that already matches is returned unchanged,
// without a write. Several records of the type and name, none with the
// content (round-robin A records, several TXT records), are an error with
// code AmbiguousRecord: upsert never guesses which to overwrite.
//
// Input is checked before anything is sent; the zone is then read to check
// that the name lies within it before anything is changed. The write is
// sent at most once.
func (c *Client) UpsertDNS(ctx context.Context, zoneID string, in RecordInput) (rec Record, created bool, err error) {
	if err := checkZoneID(zoneID); err != nil {
		return Record{}, false, err
	}
	r, err := in.check()
	if err != nil {
		return Record{}, false, err
	}
	zone, err := c.zoneName(ctx, zoneID)
	if err != nil {
		return Record{}, false, err
	}
	if err := r.resolve(zone); err != nil {
		return Record{}, false, err
	}
	existing, err := c.listRecords(ctx, zoneID, cf.ListDNSRecordsParams{Type: r.typ, Name: r.name})
	if err != nil {
		return Record{}, false, err
	}
	var same []Record
	for _, e := range existing {
		if e.Type == r.typ && strings.EqualFold(strings.TrimSuffix(e.Name, "."), r.name) {
			same = append(same, e)
		}
	}
	var target *Record
	for i := range same {
		if same[i].Content == r.content {
			target = &same[i]
		}
	}
	switch {
	case target == nil && len(same) == 1:
		target = &same[0]
	case target == nil && len(same) > 1:
		ids := make([]string, len(same))
		for i, e := range same {
			ids[i] = e.ID
		}
		return Record{}, false, fault.Newf(AmbiguousRecord,
			"zone %s has %d %s records named %s and none has this content, so the upsert cannot tell which to change; "+
				"delete the ones to replace (dns_delete with ids %s) and upsert again. Nothing was changed.",
			zone, len(same), r.typ, r.name, strings.Join(ids, ", "))
	}
	if target != nil && r.matches(*target) {
		return *target, false, nil
	}
	if target == nil {
		rec, err := c.createRecord(ctx, zoneID, r)
		return rec, err == nil, err
	}
	rec, err = c.updateRecord(ctx, zoneID, target.ID, r)
	return rec, false, err
}

// matches reports whether e already is what r asks for.
func (r record) matches(e Record) bool {
	proxied := e.Proxied
	if r.proxied != nil {
		proxied = *r.proxied
	}
	ttl := r.ttl
	if proxied {
		ttl = TTLAuto
	}
	return e.Content == r.content && e.TTL == ttl && e.Proxied == proxied &&
		(r.priority == nil || e.Priority == *r.priority)
}

func (r record) describe() string { return "DNS record " + r.typ + " " + r.name }

func (c *Client) createRecord(ctx context.Context, zoneID string, r record) (Record, error) {
	o := zoneOp{name: "dns_upsert", what: "the creation of " + r.describe(), writes: true, needs: "DNS Write permission",
		unknown:  "created the record: list the zone's records (dns_list) before trying again; dns_upsert is safe to repeat",
		notFound: "Cloudflare has no zone " + zoneID + " in this account; nothing was changed."}
	var out cf.DNSRecord
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		out, err = c.api.CreateDNSRecord(ctx, cf.ZoneIdentifier(zoneID), cf.CreateDNSRecordParams{
			Type: r.typ, Name: r.name, Content: r.content, TTL: r.ttl, Proxied: r.proxied, Priority: r.priority,
		})
		return err
	})
	if err != nil {
		return Record{}, err
	}
	return fromSDK(o, zoneID, out, ray)
}

func (c *Client) updateRecord(ctx context.Context, zoneID, id string, r record) (Record, error) {
	o := zoneOp{name: "dns_upsert", what: "the update of " + r.describe() + " (" + id + ")", writes: true, needs: "DNS Write permission",
		unknown:  "updated the record: list the zone's records (dns_list) before trying again; dns_upsert is safe to repeat",
		notFound: "Cloudflare no longer has DNS record " + id + " in zone " + zoneID + "; nothing was changed. Upsert again."}
	var out cf.DNSRecord
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		out, err = c.api.UpdateDNSRecord(ctx, cf.ZoneIdentifier(zoneID), cf.UpdateDNSRecordParams{
			ID: id, Type: r.typ, Name: r.name, Content: r.content, TTL: r.ttl, Proxied: r.proxied, Priority: r.priority,
		})
		return err
	})
	if err != nil {
		return Record{}, err
	}
	return fromSDK(o, zoneID, out, ray)
}

// DeleteDNS deletes the record id of zoneID. A record (or zone) that does
// not exist is an error with code fault.NotFound. The DELETE is sent at
// most once.
func (c *Client) DeleteDNS(ctx context.Context, zoneID, id string) error {
	if err := checkZoneID(zoneID); err != nil {
		return err
	}
	if !isObjectID(id) {
		return fault.Newf(fault.InvalidArgument,
			"%s is not a DNS record id (32 lowercase hexadecimal digits, as dns_list shows them); nothing was sent.", quote(id))
	}
	o := zoneOp{name: "dns_delete", what: "the deletion of DNS record " + id + " in zone " + zoneID, writes: true, needs: "DNS Write permission",
		unknown:  "deleted the record: list the zone's records (dns_list) to see whether it is gone",
		notFound: "Cloudflare has no DNS record " + id + " in zone " + zoneID + " (or no such zone in this account); nothing was changed."}
	_, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		return c.api.DeleteDNSRecord(ctx, cf.ZoneIdentifier(zoneID), id)
	})
	return err
}
