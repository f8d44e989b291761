package cloudflare

import (
	"context"
	"fmt"
	"slices"
	"strings"

	cf "github.com/cloudflare/cloudflare-go"

	"github.com/tollgate-dev/tollgate/internal/fault"
)

// SSL modes, as the ssl zone setting names them.
const (
	SSLOff      = "off"
	SSLFlexible = "flexible" // HTTPS to visitors, plain HTTP to the origin
	SSLFull     = "full"     // HTTPS to the origin, any certificate
	SSLStrict   = "strict"   // HTTPS to the origin, a valid certificate
)

// SSLSettings are a zone's TLS settings. As input, an empty field (nil
// AlwaysHTTPS) leaves that setting as it is; as output, every field is set.
type SSLSettings struct {
	Mode        string // off, flexible, full or strict
	AlwaysHTTPS *bool  // redirect every http:// request to https://
	MinTLS      string // minimum TLS version: 1.0, 1.1, 1.2 or 1.3
}

var (
	sslModes    = []string{SSLOff, SSLFlexible, SSLFull, SSLStrict}
	tlsVersions = []string{"1.0", "1.1", "1.2", "1.3"}
)

// SSLModes are the SSL modes ConfigureSSL sets (a copy).
func SSLModes() []string { return slices.Clone(sslModes) }

// TLSVersions are the minimum TLS versions ConfigureSSL sets (a copy).
func TLSVersions() []string { return slices.Clone(tlsVersions) }

// zoneSetting is one setting ConfigureSSL reads or writes.
type zoneSetting struct {
	id    string // ssl, min_tls_version or always_use_https
	label string // for messages
	want  string // "" to read only
	allow []string
}

// ConfigureSSL sets the given TLS settings of zoneID and returns all three
// as Cloudflare then reports them. Input is checked before anything is
// sent. Each setting is its own PATCH, in the order mode, minimum TLS,
// always-HTTPS (the redirect last, once TLS is set up), each sent at most
// once; a failure says which settings were already changed.
func (c *Client) ConfigureSSL(ctx context.Context, zoneID string, s SSLSettings) (SSLSettings, error) {
	if err := checkZoneID(zoneID); err != nil {
		return SSLSettings{}, err
	}
	bad := func(format string, args ...any) (SSLSettings, error) {
		return SSLSettings{}, fault.Newf(fault.InvalidArgument, format+"; nothing was sent.", args...)
	}
	switch {
	case s.Mode == "" && s.AlwaysHTTPS == nil && s.MinTLS == "":
		return bad("no SSL setting was given: set mode, always_https or min_tls")
	case s.Mode != "" && !slices.Contains(sslModes, s.Mode):
		return bad("SSL mode must be off, flexible, full or strict, not %s", quote(s.Mode))
	case s.MinTLS != "" && !slices.Contains(tlsVersions, s.MinTLS):
		return bad("the minimum TLS version must be 1.0, 1.1, 1.2 or 1.3, not %s", quote(s.MinTLS))
	case s.Mode == SSLOff && s.AlwaysHTTPS != nil && *s.AlwaysHTTPS:
		return bad("always-HTTPS with SSL mode off would redirect visitors to an HTTPS site that does not answer")
	}
	https := ""
	if s.AlwaysHTTPS != nil {
		https = onOff(*s.AlwaysHTTPS)
	}
	settings := []zoneSetting{
		{id: "ssl", label: "SSL mode", want: s.Mode, allow: sslModes},
		{id: "min_tls_version", label: "minimum TLS version", want: s.MinTLS, allow: tlsVersions},
		{id: "always_use_https", label: "always-HTTPS", want: https, allow: []string{"on", "off"}},
	}
	got := map[string]string{}
	var changed []string
	for _, st := range settings {
		v, err := c.zoneSetting(ctx, zoneID, st)
		if err != nil {
			if len(changed) > 0 {
				err = fault.Wrap(err, fault.CodeOf(err), fault.PublicOf(err)+" Already changed before this failure: "+strings.Join(changed, ", ")+".")
			}
			return SSLSettings{}, err
		}
		got[st.id] = v
		if st.want != "" {
			changed = append(changed, st.label+" set to "+v)
		}
	}
	on := got["always_use_https"] == "on"
	return SSLSettings{Mode: got["ssl"], AlwaysHTTPS: &on, MinTLS: got["min_tls_version"]}, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// zoneSetting writes st.want, or reads the setting when it is empty, and
// returns the value Cloudflare reports.
func (c *Client) zoneSetting(ctx context.Context, zoneID string, st zoneSetting) (string, error) {
	o := zoneOp{name: "ssl_configure", what: "reading the " + st.label + " of zone " + zoneID, needs: "Zone Settings Read permission",
		notFound: "Cloudflare has no zone " + zoneID + " in this account; nothing was changed."}
	if st.want != "" {
		o.what = "setting the " + st.label + " of zone " + zoneID + " to " + st.want
		o.writes, o.needs = true, "Zone Settings Write permission"
		o.unknown = "changed the " + st.label + ": read the zone's settings before relying on it (setting it again is safe)"
	}
	rc := cf.ZoneIdentifier(zoneID)
	var res cf.ZoneSetting
	ray, err := c.sdkCall(ctx, o, func(ctx context.Context) error {
		var err error
		if st.want == "" {
			res, err = c.api.GetZoneSetting(ctx, rc, cf.GetZoneSettingParams{Name: st.id})
		} else {
			res, err = c.api.UpdateZoneSetting(ctx, rc, cf.UpdateZoneSettingParams{Name: st.id, Value: st.want})
		}
		return err
	})
	if err != nil {
		return "", err
	}
	v, isString := res.Value.(string)
	if !isString || !slices.Contains(st.allow, v) || (st.want != "" && v != st.want) {
		return "", unreadableAnswer(o, ray, fmt.Errorf("setting %s has value %v", st.id, res.Value))
	}
	return v, nil
}
