package registration

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/validation"
)

// Redirect URI rules. A rule is one of these words or an https URL prefix
// (ParseRule).
const (
	// RuleLoopback allows http and https redirect URIs on the loopback
	// interface, any port and path: the native apps and CLI tools of RFC
	// 8252 §7.3, and MCP clients, which listen there for the code.
	RuleLoopback = "loopback"
	// RuleAny allows every redirect URI that clients create allows
	// (pkg/client ValidateRedirectURI): https anywhere, http on loopback.
	RuleAny = "any"
)

// OpenGrantTypes are the grant types open registration allows, and an
// initial access token unless it says otherwise: grants with a user in
// them, who sees the client's name and approves its scopes. An anonymous
// client credentials client would be tokens for anyone who asks.
var OpenGrantTypes = []string{client.GrantAuthorizationCode, client.GrantRefreshToken}

// Policy is what a registration may ask for: the cap an initial access
// token carries, or, for open registration, the server's settings. The
// policy a client registered under is stored with it; updates (RFC 7592)
// are held to a token's, and to open registration's settings as they are
// at the time of the update.
type Policy struct {
	// GrantTypes are the grant types a client may have.
	GrantTypes []string `json:"grant_types"`
	// Scopes are the scopes a client may register; a registration that
	// names none gets them all.
	Scopes []string `json:"scopes"`
	// RedirectURIs are the rules every redirect URI and post-logout
	// redirect URI must meet, one of them at least.
	RedirectURIs []string `json:"redirect_uris"`
}

// ParseRule checks a redirect URI rule: RuleLoopback, RuleAny, or the
// prefix of https URLs, which names the host and a path ending in "/"
// (https://app.example.com/ or https://example.com/apps/). A prefix that
// stopped inside the host (https://app.example.com) would also allow
// https://app.example.com.evil.example/.
func ParseRule(rule string) error {
	if rule == RuleLoopback || rule == RuleAny {
		return nil
	}
	u, err := url.Parse(rule)
	switch {
	case err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.Contains(rule, "#"):
		return fmt.Errorf("redirect URI rule %q must be %s, %s, or an https URL prefix such as https://app.example.com/", rule, RuleLoopback, RuleAny)
	case !strings.HasSuffix(u.EscapedPath(), "/"):
		return fmt.Errorf("redirect URI rule %q must end its path with /, such as https://app.example.com/, so that it cannot match another host or a longer path name", rule)
	case hasDotSegment(u.EscapedPath()):
		return fmt.Errorf("redirect URI rule %q must not have . or .. segments", rule)
	}
	return nil
}

// Check reports, as a *validation.Error on the field at fault, what of c,
// normalized and valid client metadata, is beyond p.
func (p Policy) Check(c *client.Client) error {
	e := &validation.Error{Of: "client metadata"}
	for _, g := range c.GrantTypes {
		if !slices.Contains(p.GrantTypes, g) {
			e.Add("grant_types", "%s is not allowed here; registration allows %s", g, strings.Join(p.GrantTypes, ", "))
		}
	}
	for _, s := range c.Scopes() {
		switch {
		case s == client.AdminScope || s == client.AdminReadScope:
			e.Add("scope", "%s cannot be registered: admin power is given only by an operator", s)
		case !slices.Contains(p.Scopes, s):
			e.Add("scope", "%s is not allowed here; registration allows %s", s, strings.Join(p.Scopes, " "))
		}
	}
	for _, f := range []struct {
		field string
		uris  []string
	}{{"redirect_uris", c.RedirectURIs}, {"post_logout_redirect_uris", c.PostLogoutRedirectURIs}} {
		for _, u := range f.uris {
			if !p.allowsRedirect(u) {
				e.Add(f.field, "%s is outside what registration allows (%s)", u, strings.Join(p.RedirectURIs, ", "))
			}
		}
	}
	return e.Err()
}

// allowsRedirect reports whether raw, a redirect URI that client
// validation accepted, meets one of p's rules.
func (p Policy) allowsRedirect(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	for _, rule := range p.RedirectURIs {
		switch rule {
		case RuleAny:
			return true
		case RuleLoopback:
			if (u.Scheme == "http" || u.Scheme == "https") && client.IsLoopback(u.Hostname()) {
				return true
			}
		default:
			r, err := url.Parse(rule)
			if err != nil {
				continue
			}
			// The host compares as DNS does, without case; the path byte
			// for byte, and without dot segments, which a browser would
			// resolve to outside the prefix.
			if u.Scheme == r.Scheme && strings.EqualFold(u.Host, r.Host) &&
				strings.HasPrefix(u.EscapedPath(), r.EscapedPath()) && !hasDotSegment(u.EscapedPath()) {
				return true
			}
		}
	}
	return false
}

// hasDotSegment reports whether an escaped path has a "." or ".."
// segment, plainly or percent-encoded, or an encoded slash, any of which
// lets a path that starts with a prefix lead outside it.
func hasDotSegment(path string) bool {
	lower := strings.ToLower(path)
	if strings.Contains(lower, "%2e") || strings.Contains(lower, "%2f") || strings.Contains(lower, "%5c") || strings.Contains(path, `\`) {
		return true
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// validate checks p itself, for an initial access token an admin asks for
// (field names as the admin API has them).
func (p Policy) validate(e *validation.Error) {
	if len(p.GrantTypes) == 0 {
		e.Add("grant_types", "must allow at least one grant type")
	}
	for _, g := range p.GrantTypes {
		switch g {
		case client.GrantAuthorizationCode, client.GrantRefreshToken, client.GrantClientCredentials:
		default:
			e.Add("grant_types", "%q is not a grant type Latchkey supports (%s, %s, %s)", g,
				client.GrantAuthorizationCode, client.GrantRefreshToken, client.GrantClientCredentials)
		}
	}
	if len(p.Scopes) == 0 {
		e.Add("scope", "must allow at least one scope")
	}
	for _, s := range p.Scopes {
		if s == client.AdminScope || s == client.AdminReadScope {
			e.Add("scope", "%s cannot be registered: admin power is given only by an operator", s)
		} else if err := client.ValidateScopeToken(s); err != nil {
			e.Add("scope", "%v", err)
		}
	}
	if len(p.RedirectURIs) == 0 && slices.Contains(p.GrantTypes, client.GrantAuthorizationCode) {
		e.Add("redirect_uris", "must give at least one rule: %s, %s or an https URL prefix", RuleLoopback, RuleAny)
	}
	for _, r := range p.RedirectURIs {
		if err := ParseRule(r); err != nil {
			e.Add("redirect_uris", "%v", err)
		}
	}
	if len(p.Scopes) > maxPolicyItems || len(p.RedirectURIs) > maxPolicyItems {
		e.Add("scope", "a token may list at most %d scopes and %d redirect URI rules", maxPolicyItems, maxPolicyItems)
	}
}

// maxPolicyItems bounds the scopes and rules a policy lists.
const maxPolicyItems = 50
