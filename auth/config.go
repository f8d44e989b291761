package auth

import (
	"fmt"
	"net/url"
	"strings"
)

// checkURL requires an absolute http(s) URL with a host and no user info,
// query, fragment or trailing slash: issuers and resources are compared
// byte for byte, so they must have one spelling.
func checkURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("auth: %s %q must be an absolute http(s) URL such as https://tollgate.example.com", field, s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(s, "/") || strings.Contains(s, "#") || strings.Contains(s, "?") {
		return fmt.Errorf("auth: %s %q must have no user info, query, fragment or trailing slash", field, s)
	}
	return nil
}
