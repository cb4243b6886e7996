package client

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/validation"
)

// Limits on metadata, generous for real clients and small enough that a
// client row stays a small row.
const (
	maxNameLen     = 200
	maxURILen      = 2000
	maxListLen     = 100
	maxRefreshLife = 10 * 365 * 24 * time.Hour
)

// MaxAccessTokenLifespan bounds how long a stolen bearer token stays
// useful; longer sessions are what refresh tokens are for. A client's own
// access_token_lifespan may not be longer, and neither may the server's
// default, LATCHKEY_ACCESS_TOKEN_LIFESPAN (pkg/config).
const MaxAccessTokenLifespan = 24 * time.Hour

// MaxIDLen is the longest client ID there can be. A longer one names no
// client, which lets lookups refuse it without asking the database.
const MaxIDLen = 128

// validID is what an operator-chosen client ID may contain: RFC 3986
// unreserved characters, which need no escaping in Basic auth or URLs.
var validID = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// IDTokenAlgorithms are the algorithms ID tokens can be signed with, and
// what discovery advertises for them. Latchkey keeps an EdDSA key too, but
// it signs access tokens only: OpenID Connect does not say which hash an
// EdDSA ID token's at_hash and c_hash use (fosite's is SHA-256 for all),
// and few relying parties verify EdDSA ID tokens.
var IDTokenAlgorithms = []string{"RS256", "ES256"}

// AccessTokenAlgorithms are the algorithms JWT access tokens can be signed
// with: RS256, which every JOSE library verifies, and ES256 and EdDSA, each
// far cheaper to sign, for resource servers that verify them. Latchkey
// keeps a signing key for each (pkg/keys).
var AccessTokenAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// AssertionAlgorithms are the signature algorithms accepted for
// private_key_jwt assertions.
var AssertionAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}

// Normalize fills in what the client left out, with RFC 7591's defaults
// where it has them, and sorts nothing: order is the operator's.
func (c *Client) Normalize() {
	if c.GrantTypes == nil {
		c.GrantTypes = []string{GrantAuthorizationCode}
	}
	if c.ResponseTypes == nil {
		c.ResponseTypes = []string{}
		if c.CanUse(GrantAuthorizationCode) {
			c.ResponseTypes = []string{"code"}
		}
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = AuthSecretBasic
	}
	if c.TokenEndpointAuthMethod == AuthPrivateKeyJWT && c.TokenEndpointAuthSigningAlg == "" {
		c.TokenEndpointAuthSigningAlg = "RS256"
	}
	if c.AccessTokenFormat == "" {
		c.AccessTokenFormat = FormatOpaque
	}
	if c.IDTokenSignedResponseAlg == "" && (c.CanUse(GrantAuthorizationCode) || c.CanUse(GrantDeviceCode)) {
		c.IDTokenSignedResponseAlg = "RS256"
	}
	// "jwks": null in a metadata document means no keys, not a key set.
	if strings.TrimSpace(string(c.JWKS)) == "null" {
		c.JWKS = nil
	}
	c.Scope = strings.Join(strings.Fields(c.Scope), " ")
	for _, p := range []*[]string{&c.RedirectURIs, &c.Audience, &c.PostLogoutRedirectURIs} {
		if *p == nil {
			*p = []string{}
		}
	}
}

// Validate checks the metadata of a normalized client and reports every
// problem at once as a *validation.Error.
func (c *Client) Validate() error {
	e := &validation.Error{Of: "client metadata"}
	if c.ID != "" && (len(c.ID) > MaxIDLen || !validID.MatchString(c.ID)) {
		e.Add("client_id", "must be 1 to %d of the characters A-Z a-z 0-9 . _ ~ -", MaxIDLen)
	}
	// A client's own tokens name it as their subject, and users' subs are
	// UUIDs (pkg/identity): a client ID that reads as one could be taken
	// for a user by whatever looks the subject up.
	if identity.IsSub(c.ID) {
		e.Add("client_id", "must not be a UUID: users' subject identifiers are UUIDs, and a client's must never be mistaken for a user's")
	}
	if utf8.RuneCountInString(c.Name) > maxNameLen || strings.IndexFunc(c.Name, unicode.IsControl) >= 0 {
		e.Add("client_name", "must be at most %d characters, with no control characters", maxNameLen)
	}
	c.validateGrants(e)
	c.validateURIs(e)
	for _, s := range c.Scopes() {
		if err := ValidateScopeToken(s); err != nil {
			e.Add("scope", "%v", err)
		}
	}
	if c.RequirePushedAuthorizationRequests && !slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		e.Add("require_pushed_authorization_requests", "applies to authorization requests, so the client needs the %s grant", GrantAuthorizationCode)
	}
	if hasDuplicate(c.Scopes()) {
		e.Add("scope", "lists a scope twice")
	}
	if c.IsAdmin() && (!slices.Equal(c.GrantTypes, []string{GrantClientCredentials}) || c.IsPublic()) {
		e.Add("scope", "%s and %s are only for confidential clients whose one grant is %s: admin power is the client's own, never a user's",
			AdminScope, AdminReadScope, GrantClientCredentials)
	}
	for _, a := range c.Audience {
		// A control character has no place in a URI or a name, and the
		// store could not hold one of them, NUL.
		if a == "" || strings.ContainsFunc(a, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			e.Add("audience", "entries must be non-empty and contain no spaces or control characters")
			break
		}
	}
	c.validateAuth(e)
	if c.IDTokenSignedResponseAlg != "" && !slices.Contains(IDTokenAlgorithms, c.IDTokenSignedResponseAlg) {
		e.Add("id_token_signed_response_alg", "is %q; it must be one of %s", c.IDTokenSignedResponseAlg, strings.Join(IDTokenAlgorithms, ", "))
	}
	switch c.AccessTokenFormat {
	case FormatOpaque, FormatJWT:
	default:
		e.Add("access_token_format", "is %q; it must be %q or %q", c.AccessTokenFormat, FormatOpaque, FormatJWT)
	}
	switch alg := c.AccessTokenSignedResponseAlg; {
	case alg == "":
	case !slices.Contains(AccessTokenAlgorithms, alg):
		e.Add("access_token_signed_response_alg", "is %q; it must be one of %s", alg, strings.Join(AccessTokenAlgorithms, ", "))
	case c.AccessTokenFormat != FormatJWT:
		// An opaque token is not signed: a setting that could not take
		// effect would only mislead whoever reads it.
		e.Add("access_token_signed_response_alg", "is only for clients whose access_token_format is %q; opaque tokens are not signed", FormatJWT)
	}
	if d := time.Duration(c.AccessTokenLifespan); d < 0 || d > MaxAccessTokenLifespan {
		e.Add("access_token_lifespan", "must be between 0 (the server's default) and %gh", MaxAccessTokenLifespan.Hours())
	}
	if d := time.Duration(c.RefreshTokenLifespan); d < 0 || d > maxRefreshLife {
		e.Add("refresh_token_lifespan", "must be between 0 (the server's default) and 87600h (ten years)")
	}
	return e.Err()
}

func (c *Client) validateGrants(e *validation.Error) {
	if len(c.GrantTypes) == 0 {
		e.Add("grant_types", "must list at least one of %s, %s, %s, %s", GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode)
	}
	for _, g := range c.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode:
		case "implicit", "password":
			e.Add("grant_types", "%q is not offered: the OAuth 2.0 Security BCP (RFC 9700) forbids it", g)
		default:
			e.Add("grant_types", "%q is not a grant type Latchkey supports (%s, %s, %s, %s)", g, GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode)
		}
	}
	if hasDuplicate(c.GrantTypes) {
		e.Add("grant_types", "lists a grant type twice")
	}
	if c.CanUse(GrantRefreshToken) && !c.CanUse(GrantAuthorizationCode) && !c.CanUse(GrantDeviceCode) {
		e.Add("grant_types", "%s needs %s or %s: refresh tokens are issued only at sign-in", GrantRefreshToken, GrantAuthorizationCode, GrantDeviceCode)
	}
	want := []string{}
	if c.CanUse(GrantAuthorizationCode) {
		want = []string{"code"}
	}
	if !slices.Equal(c.ResponseTypes, want) {
		if len(want) == 0 {
			e.Add("response_types", "must be empty without the %s grant", GrantAuthorizationCode)
		} else {
			e.Add("response_types", "must be [\"code\"]: the code flow is the only one offered")
		}
	}
}

func (c *Client) validateURIs(e *validation.Error) {
	browser := c.CanUse(GrantAuthorizationCode)
	switch {
	case browser && len(c.RedirectURIs) == 0:
		e.Add("redirect_uris", "must list at least one URI for the %s grant", GrantAuthorizationCode)
	case !browser && len(c.RedirectURIs) > 0:
		e.Add("redirect_uris", "is only for clients with the %s grant", GrantAuthorizationCode)
	}
	// A logout token is about a user's sign-in, which only the code flow
	// has. The address follows the redirect URIs' rules: absolute, no
	// fragment (§2.2), https or plain http on loopback only.
	if c.BackchannelLogoutURI != "" {
		if !browser {
			e.Add("backchannel_logout_uri", "is only for clients with the %s grant", GrantAuthorizationCode)
		}
		if err := ValidateRedirectURI(c.BackchannelLogoutURI); err != nil {
			e.Add("backchannel_logout_uri", "%v", err)
		}
	}
	if c.BackchannelLogoutSessionRequired && c.BackchannelLogoutURI == "" {
		e.Add("backchannel_logout_session_required", "needs a backchannel_logout_uri")
	}
	if !browser && len(c.PostLogoutRedirectURIs) > 0 {
		e.Add("post_logout_redirect_uris", "is only for clients with the %s grant", GrantAuthorizationCode)
	}
	for _, f := range []struct {
		field string
		uris  []string
	}{{"redirect_uris", c.RedirectURIs}, {"post_logout_redirect_uris", c.PostLogoutRedirectURIs}} {
		field, uris := f.field, f.uris
		if len(uris) > maxListLen {
			e.Add(field, "may list at most %d URIs", maxListLen)
		}
		for _, u := range uris {
			if err := ValidateRedirectURI(u); err != nil {
				e.Add(field, "%v", err)
			}
		}
		if hasDuplicate(uris) {
			e.Add(field, "lists a URI twice")
		}
	}
}

func (c *Client) validateAuth(e *validation.Error) {
	switch c.TokenEndpointAuthMethod {
	case AuthSecretBasic, AuthSecretPost:
	case AuthNone:
		if c.CanUse(GrantClientCredentials) {
			e.Add("grant_types", "%s needs a client that can authenticate; a client with token_endpoint_auth_method none cannot", GrantClientCredentials)
		}
	case AuthPrivateKeyJWT:
		switch {
		case len(c.JWKS) > 0 && c.JWKSURI != "":
			e.Add("jwks", "give jwks or jwks_uri, not both")
		case len(c.JWKS) > 0:
			if err := validateJWKS(c.JWKS, c.TokenEndpointAuthSigningAlg); err != nil {
				e.Add("jwks", "%v", err)
			}
		case c.JWKSURI != "":
			if err := validateJWKSURI(c.JWKSURI); err != nil {
				e.Add("jwks_uri", "%v", err)
			}
		default:
			e.Add("jwks", "%s needs the client's public keys in jwks or jwks_uri", AuthPrivateKeyJWT)
		}
		if !slices.Contains(AssertionAlgorithms, c.TokenEndpointAuthSigningAlg) {
			e.Add("token_endpoint_auth_signing_alg", "must be one of %s", strings.Join(AssertionAlgorithms, ", "))
		}
	default:
		e.Add("token_endpoint_auth_method", "is %q; it must be %s, %s, %s or %s",
			c.TokenEndpointAuthMethod, AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthNone)
	}
	if c.TokenEndpointAuthMethod != AuthPrivateKeyJWT {
		if len(c.JWKS) > 0 {
			e.Add("jwks", "public keys are only for %s clients", AuthPrivateKeyJWT)
		}
		if c.JWKSURI != "" {
			e.Add("jwks_uri", "public keys are only for %s clients", AuthPrivateKeyJWT)
		}
		if c.TokenEndpointAuthSigningAlg != "" {
			e.Add("token_endpoint_auth_signing_alg", "is only for %s clients", AuthPrivateKeyJWT)
		}
	}
}

// validateJWKS checks that a client's key set holds only public signing keys
// that fosite can use, and at least one that fits alg, without which no
// assertion the client signs could ever verify.
func validateJWKS(raw json.RawMessage, alg string) error {
	if !storableJSON(raw) {
		return fmt.Errorf("holds a NUL character, an unpaired surrogate (\\ud800) or text that is not UTF-8, which cannot be stored")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return fmt.Errorf("is not a JSON Web Key Set: %v", err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("holds no keys")
	}
	fits := false
	for i, k := range set.Keys {
		switch {
		case isSymmetric(k):
			return fmt.Errorf("key %d is a symmetric key; register the public half of an RSA or EC key pair", i+1)
		case !k.IsPublic():
			return fmt.Errorf("key %d is a private key; register only the public half", i+1)
		case k.Use != "sig":
			return fmt.Errorf("key %d must have \"use\": \"sig\"", i+1)
		case !k.Valid():
			return fmt.Errorf("key %d is not a valid key", i+1)
		}
		fits = fits || keyFits(k, alg)
	}
	// An unsupported alg is reported on its own field.
	if !fits && slices.Contains(AssertionAlgorithms, alg) {
		return fmt.Errorf("holds no key that can verify %s signatures (token_endpoint_auth_signing_alg)", alg)
	}
	return nil
}

// storableJSON reports whether PostgreSQL's jsonb, which keeps client
// metadata, can hold raw. A key set is kept as the client sent it, and
// jsonb refuses the NUL character, unpaired surrogates and invalid UTF-8,
// even in a string and escaped. encoding/json reads the last two as
// U+FFFD, so a string holding either character is refused; no key set
// needs one.
func storableJSON(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			// The end, or a syntax error, which json.Unmarshal reports.
			return true
		}
		if s, ok := tok.(string); ok && strings.ContainsAny(s, "\x00\uFFFD") {
			return false
		}
	}
}

func isSymmetric(k jose.JSONWebKey) bool {
	_, ok := k.Key.([]byte)
	return ok
}

// keyFits reports whether k can verify signatures made with alg.
func keyFits(k jose.JSONWebKey, alg string) bool {
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		want := map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
		return want != "" && pub.Curve.Params().Name == want
	}
	return false
}

func validateJWKSURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Hostname() == "" || len(raw) > maxURILen {
		return fmt.Errorf("must be an absolute URL")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && IsLoopback(u.Hostname())) {
		return fmt.Errorf("must use https (plain http only on loopback)")
	}
	return nil
}

// ValidateRedirectURI checks a redirect URI as RFC 9700 §2.1 and §4.1 want
// it registered: absolute, without a fragment or user info, and on https,
// or plain http only on the loopback interface (RFC 8252 §7.3), where the
// traffic never leaves the machine. Matching is then exact, byte for byte.
func ValidateRedirectURI(raw string) error {
	switch {
	case raw == "":
		return fmt.Errorf("redirect URI is empty")
	case len(raw) > maxURILen:
		return fmt.Errorf("redirect URI %.60q… is %d characters; at most %d are allowed", raw, len(raw), maxURILen)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return fmt.Errorf("redirect URI %q contains spaces or control characters", raw)
	}
	if strings.Contains(raw, "#") {
		return fmt.Errorf("redirect URI %q must not have a fragment (#...)", raw)
	}
	u, err := url.Parse(raw)
	// A port alone ("https://:443/") is no host (RFC 9110 §4.2.2).
	if err != nil || !u.IsAbs() || u.Hostname() == "" {
		return fmt.Errorf("redirect URI %q must be an absolute URL such as https://app.example.com/callback", raw)
	}
	if u.User != nil {
		return fmt.Errorf("redirect URI %q must not contain user info", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && IsLoopback(u.Hostname()):
	case u.Scheme == "http":
		return fmt.Errorf("redirect URI %q must use https; plain http is allowed only for loopback addresses", raw)
	default:
		return fmt.Errorf("redirect URI %q has scheme %q; it must use https (or http on loopback)", raw, u.Scheme)
	}
	return nil
}

// ValidateScopeToken checks one scope against RFC 6749 §3.3: printable ASCII
// without spaces, double quotes or backslashes.
func ValidateScopeToken(s string) error {
	if s == "" || len(s) > 200 {
		return fmt.Errorf("scope %q must be 1 to 200 characters", s)
	}
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < 0x21 || ch > 0x7e || ch == '"' || ch == '\\' {
			return fmt.Errorf("scope %q may hold only printable ASCII without spaces, \" or \\ (RFC 6749 §3.3)", s)
		}
	}
	return nil
}

// IsLoopback reports whether host, a URL's Hostname, names this machine:
// the name localhost, in any ASCII case, or an address in 127.0.0.0/8 or
// ::1. Plain http is safe only there, because the traffic never leaves the
// machine (RFC 8252 §8.3): it is the rule for clients' redirect and JWKS
// URIs, and for the issuer (pkg/config).
func IsLoopback(host string) bool {
	// The name is compared as ASCII: strings.EqualFold alone also takes
	// "localhoſt", whose long s folds to s, and which is not this machine
	// to a resolver that does not map it as browsers do.
	if len(host) == len("localhost") && strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func hasDuplicate(list []string) bool {
	seen := make(map[string]bool, len(list))
	for _, s := range list {
		if seen[s] {
			return true
		}
		seen[s] = true
	}
	return false
}
