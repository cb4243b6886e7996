package client_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/validation"
)

// rsaKey is one RSA key for the whole run: generating one is slow.
var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// jwks marshals keys into a JSON Web Key Set as a client would register it.
func jwks(t *testing.T, keys ...jose.JSONWebKey) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rsaJWKS is a valid registration: the public half of rsaKey, for signing.
func rsaJWKS(t *testing.T) json.RawMessage {
	t.Helper()
	return jwks(t, jose.JSONWebKey{Key: rsaKey().Public(), KeyID: "rsa-1", Use: "sig"})
}

func ecJWKS(t *testing.T) json.RawMessage {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwks(t, jose.JSONWebKey{Key: k.Public(), KeyID: "ec-1", Use: "sig"})
}

// backend is a valid machine-to-machine client.
func backend() client.Client {
	return client.Client{
		ID:         "billing-worker",
		Name:       "Billing worker",
		GrantTypes: []string{client.GrantClientCredentials},
		Scope:      "invoices.read invoices.write",
		Audience:   []string{"https://api.example.com"},
	}
}

// webApp is a valid confidential client that signs users in.
func webApp() client.Client {
	return client.Client{
		ID:                     "dashboard",
		Name:                   "Dashboard",
		GrantTypes:             []string{client.GrantAuthorizationCode, client.GrantRefreshToken},
		RedirectURIs:           []string{"https://app.example.com/callback"},
		PostLogoutRedirectURIs: []string{"https://app.example.com/"},
		Scope:                  "openid profile invoices.read",
	}
}

// spa is a valid public client: a single-page app on a developer's machine.
func spa() client.Client {
	return client.Client{
		ID:                      "spa",
		GrantTypes:              []string{client.GrantAuthorizationCode},
		RedirectURIs:            []string{"http://127.0.0.1:5173/callback"},
		TokenEndpointAuthMethod: client.AuthNone,
		Scope:                   "openid",
	}
}

// keyClient is a valid backend that authenticates with private_key_jwt.
func keyClient(t *testing.T) client.Client {
	c := backend()
	c.TokenEndpointAuthMethod = client.AuthPrivateKeyJWT
	c.JWKS = rsaJWKS(t)
	return c
}

// validate does what the Manager does: Normalize, then Validate.
func validate(c client.Client) error {
	c.Normalize()
	return c.Validate()
}

// problems validates c and returns its problems, failing the test if the
// error is anything but a *validation.Error.
func problems(t *testing.T, c client.Client) []validation.Problem {
	t.Helper()
	err := validate(c)
	if err == nil {
		return nil
	}
	var verr *validation.Error
	if !errors.As(err, &verr) {
		t.Fatalf("Validate() = %T %v, want a *validation.Error", err, err)
	}
	if len(verr.Problems) == 0 {
		t.Fatalf("Validate() returned a ValidationError with no problems")
	}
	return verr.Problems
}

func TestRedirectURIMustBeHTTPSOrLoopback(t *testing.T) {
	for _, uri := range []string{
		"https://app.example.com/callback",
		"https://app.example.com/oauth/callback?tenant=acme&x=1",
		"https://app.example.com:8443/callback",
		"https://app.example.com",
		"https://203.0.113.7/callback",
		// RFC 8252 §7.3: native apps listen on a loopback port of their choosing.
		"http://127.0.0.1/callback",
		"http://127.0.0.1:49152/callback",
		"http://127.10.20.30:8080/callback",
		"http://[::1]/callback",
		"http://[::1]:3000/callback",
		"http://localhost/callback",
		"http://localhost:5173/callback",
		"http://LOCALHOST:5173/callback",
	} {
		if err := client.ValidateRedirectURI(uri); err != nil {
			t.Errorf("ValidateRedirectURI(%q) = %v, want nil", uri, err)
		}
	}
}

// Plain http is allowed where traffic never leaves the machine: the name
// localhost in ASCII, and loopback addresses. Names that only look like it
// (Unicode that case folding maps onto it, subdomains) are anyone's.
func TestIsLoopbackIsLocalhostInASCIIOrALoopbackAddress(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost":             true,
		"LocalHost":             true,
		"127.0.0.1":             true,
		"127.255.0.9":           true,
		"::1":                   true,
		"::1%lo":                true,
		"localhoſt":             false, // long s, U+017F
		"LOCALHOſT":             false,
		"ｌｏｃａｌｈｏｓｔ":             false, // fullwidth
		"localhost.":            false,
		"localhost.example.com": false,
		"xlocalhost":            false,
		"0.0.0.0":               false,
		"::":                    false,
		"10.0.0.1":              false,
		"":                      false,
	} {
		if got := client.IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestRedirectURIRejectsUnsafeOrMalformedURIs(t *testing.T) {
	tests := []struct {
		name string
		uri  string
	}{
		{"empty", ""},
		{"http on a public host", "http://app.example.com/callback"},
		{"http on a private address", "http://10.0.0.1/callback"},
		{"http on a public address", "http://203.0.113.7/callback"},
		// Only the name localhost itself is loopback; a subdomain is anyone's.
		{"http on a name that starts with localhost", "http://localhost.example.com/callback"},
		{"http on the unspecified address", "http://0.0.0.0/callback"},
		// strings.EqualFold folds the long s to s; a resolver need not.
		{"http on localhost spelt with a long s", "http://localhoſt/callback"},
		{"ftp scheme", "ftp://files.example.com/callback"},
		{"javascript scheme", "javascript:alert(document.cookie)"},
		{"custom scheme", "com.example.app:/callback"},
		{"custom scheme with authority", "myapp://callback"},
		{"relative path", "/callback"},
		{"protocol-relative", "//app.example.com/callback"},
		{"scheme only", "https://"},
		{"scheme without authority", "https:app.example.com/callback"},
		// RFC 6749 §3.1.2: the redirection endpoint must not have a fragment.
		{"fragment", "https://app.example.com/callback#state"},
		{"empty fragment", "https://app.example.com/callback#"},
		{"user info", "https://user:pass@app.example.com/callback"},
		{"user name only", "https://user@app.example.com/callback"},
		// A host with user info can hide the real host: this goes to evil.example.
		{"user info that looks like a loopback host", "http://127.0.0.1@evil.example/callback"},
		{"space", "https://app.example.com/call back"},
		{"leading space", " https://app.example.com/callback"},
		{"trailing newline", "https://app.example.com/callback\n"},
		{"tab", "https://app.example.com/\tcallback"},
		{"NUL", "https://app.example.com/callback\x00"},
		{"non-breaking space", "https://app.example.com/call\u00a0back"},
		{"over 2000 characters", "https://app.example.com/" + strings.Repeat("a", 2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := client.ValidateRedirectURI(tt.uri); err == nil {
				t.Errorf("ValidateRedirectURI(%q) = nil, want an error", tt.uri)
			}
		})
	}
}

func TestRedirectURILengthLimitIs2000(t *testing.T) {
	base := "https://app.example.com/"
	atLimit := base + strings.Repeat("a", 2000-len(base))
	if err := client.ValidateRedirectURI(atLimit); err != nil {
		t.Errorf("a 2000-character URI: %v, want nil", err)
	}
	if err := client.ValidateRedirectURI(atLimit + "a"); err == nil {
		t.Error("a 2001-character URI was accepted")
	}
}

func TestRedirectURIErrorQuotesTheOffendingURI(t *testing.T) {
	// Over-long and empty URIs are left out: quoting 2000 characters, or
	// nothing, would not help an operator find them.
	for _, uri := range []string{
		"http://app.example.com/callback",
		"ftp://files.example.com/callback",
		"/callback",
		"https://app.example.com/callback#",
		"https://user@app.example.com/callback",
		"https://app.example.com/call back",
	} {
		err := client.ValidateRedirectURI(uri)
		if err == nil {
			t.Errorf("ValidateRedirectURI(%q) = nil, want an error", uri)
			continue
		}
		if quoted, _ := json.Marshal(uri); !strings.Contains(err.Error(), string(quoted)) {
			t.Errorf("ValidateRedirectURI(%q) = %q, want it to quote the URI as %s", uri, err, quoted)
		}
	}
}

func TestScopeTokenAcceptsRFC6749Charset(t *testing.T) {
	for _, s := range []string{
		"openid",
		"invoices.read",
		"a:b/c",
		"https://api.example.com/invoices.read",
		"!#$%&'()*+,-./:;<=>?@[]^_`{|}~",
		strings.Repeat("s", 200),
	} {
		if err := client.ValidateScopeToken(s); err != nil {
			t.Errorf("ValidateScopeToken(%q) = %v, want nil", s, err)
		}
	}
}

func TestScopeTokenRejectsCharactersOutsideRFC6749(t *testing.T) {
	tests := []struct {
		name  string
		scope string
	}{
		{"empty", ""},
		// A space separates scopes, so it can never be part of one.
		{"space", "invoices read"},
		{"double quote", `invoices"read`},
		{"backslash", `invoices\read`},
		{"non-ASCII", "é"},
		{"non-ASCII among ASCII", "invoices.créer"},
		{"tab", "invoices\tread"},
		{"newline", "invoices\nread"},
		{"NUL", "invoices\x00"},
		{"DEL", "invoices\x7f"},
		{"over 200 characters", strings.Repeat("s", 201)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := client.ValidateScopeToken(tt.scope); err == nil {
				t.Errorf("ValidateScopeToken(%q) = nil, want an error", tt.scope)
			}
		})
	}
}

func TestNormalizeDefaultsGrantTypesToAuthorizationCode(t *testing.T) {
	var c client.Client
	c.Normalize()
	if want := []string{client.GrantAuthorizationCode}; !slices.Equal(c.GrantTypes, want) {
		t.Errorf("GrantTypes = %q, want %q", c.GrantTypes, want)
	}
}

func TestNormalizeDefaultsResponseTypesToCodeOnlyForAuthorizationCode(t *testing.T) {
	tests := []struct {
		name   string
		grants []string
		want   []string
	}{
		{"default grant", nil, []string{"code"}},
		{"authorization code and refresh", []string{client.GrantAuthorizationCode, client.GrantRefreshToken}, []string{"code"}},
		{"client credentials", []string{client.GrantClientCredentials}, []string{}},
		{"no grants", []string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client.Client{GrantTypes: tt.grants}
			c.Normalize()
			if c.ResponseTypes == nil || !slices.Equal(c.ResponseTypes, tt.want) {
				t.Errorf("ResponseTypes = %#v, want %#v", c.ResponseTypes, tt.want)
			}
		})
	}
}

func TestNormalizeDefaultsTokenEndpointAuthMethodToClientSecretBasic(t *testing.T) {
	var c client.Client
	c.Normalize()
	if c.TokenEndpointAuthMethod != client.AuthSecretBasic {
		t.Errorf("TokenEndpointAuthMethod = %q, want %q", c.TokenEndpointAuthMethod, client.AuthSecretBasic)
	}
}

func TestNormalizeDefaultsSigningAlgToRS256OnlyForPrivateKeyJWT(t *testing.T) {
	tests := []struct {
		name   string
		method string
		alg    string
		want   string
	}{
		{"private_key_jwt without alg", client.AuthPrivateKeyJWT, "", "RS256"},
		{"private_key_jwt with its own alg", client.AuthPrivateKeyJWT, "ES256", "ES256"},
		{"client_secret_basic", client.AuthSecretBasic, "", ""},
		{"none", client.AuthNone, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client.Client{TokenEndpointAuthMethod: tt.method, TokenEndpointAuthSigningAlg: tt.alg}
			c.Normalize()
			if c.TokenEndpointAuthSigningAlg != tt.want {
				t.Errorf("TokenEndpointAuthSigningAlg = %q, want %q", c.TokenEndpointAuthSigningAlg, tt.want)
			}
		})
	}
}

func TestNormalizeDefaultsAccessTokenFormatToOpaque(t *testing.T) {
	var c client.Client
	c.Normalize()
	if c.AccessTokenFormat != client.FormatOpaque {
		t.Errorf("AccessTokenFormat = %q, want %q", c.AccessTokenFormat, client.FormatOpaque)
	}
}

func TestNormalizeCollapsesScopeWhitespace(t *testing.T) {
	tests := []struct{ scope, want string }{
		{"  a   b ", "a b"},
		{"openid\tprofile\nemail", "openid profile email"},
		{"   ", ""},
		{"openid", "openid"},
	}
	for _, tt := range tests {
		c := client.Client{Scope: tt.scope}
		c.Normalize()
		if c.Scope != tt.want {
			t.Errorf("Normalize turned Scope %q into %q, want %q", tt.scope, c.Scope, tt.want)
		}
	}
}

func TestNormalizeKeepsWhatTheOperatorChose(t *testing.T) {
	c := client.Client{
		GrantTypes:              []string{client.GrantRefreshToken, client.GrantAuthorizationCode},
		ResponseTypes:           []string{"code"},
		TokenEndpointAuthMethod: client.AuthSecretPost,
		AccessTokenFormat:       client.FormatJWT,
		RedirectURIs:            []string{"https://b.example.com/cb", "https://a.example.com/cb"},
	}
	c.Normalize()
	// Order is the operator's: Normalize sorts nothing.
	if want := []string{client.GrantRefreshToken, client.GrantAuthorizationCode}; !slices.Equal(c.GrantTypes, want) {
		t.Errorf("GrantTypes = %q, want %q", c.GrantTypes, want)
	}
	if want := []string{"https://b.example.com/cb", "https://a.example.com/cb"}; !slices.Equal(c.RedirectURIs, want) {
		t.Errorf("RedirectURIs = %q, want %q", c.RedirectURIs, want)
	}
	if c.TokenEndpointAuthMethod != client.AuthSecretPost {
		t.Errorf("TokenEndpointAuthMethod = %q, want %q", c.TokenEndpointAuthMethod, client.AuthSecretPost)
	}
	if c.AccessTokenFormat != client.FormatJWT {
		t.Errorf("AccessTokenFormat = %q, want %q", c.AccessTokenFormat, client.FormatJWT)
	}
	// An explicitly empty list is not "left out" and must not be defaulted,
	// or a client could never be given zero grants to have Validate reject.
	empty := client.Client{GrantTypes: []string{}}
	empty.Normalize()
	if len(empty.GrantTypes) != 0 {
		t.Errorf("GrantTypes [] became %q", empty.GrantTypes)
	}
}

func TestNormalizeMakesNilListsEmptyInJSON(t *testing.T) {
	c := client.Client{GrantTypes: []string{client.GrantClientCredentials}}
	c.Normalize()
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// RFC 7591 readers expect arrays; null would break clients that iterate.
	for _, field := range []string{"redirect_uris", "response_types", "audience", "post_logout_redirect_uris"} {
		if string(got[field]) != "[]" {
			t.Errorf("%s = %s in JSON, want []", field, got[field])
		}
	}
}

func TestValidateAcceptsWellFormedClients(t *testing.T) {
	tests := []struct {
		name   string
		client func(t *testing.T) client.Client
	}{
		{"client_credentials backend", func(*testing.T) client.Client { return backend() }},
		{"backend with client_secret_post and JWT access tokens", func(*testing.T) client.Client {
			c := backend()
			c.TokenEndpointAuthMethod = client.AuthSecretPost
			c.AccessTokenFormat = client.FormatJWT
			return c
		}},
		{"backend with JWT access tokens signed with ES256", func(*testing.T) client.Client {
			c := backend()
			c.AccessTokenFormat = client.FormatJWT
			c.AccessTokenSignedResponseAlg = "ES256"
			return c
		}},
		{"backend with JWT access tokens signed with EdDSA", func(*testing.T) client.Client {
			c := backend()
			c.AccessTokenFormat = client.FormatJWT
			c.AccessTokenSignedResponseAlg = "EdDSA"
			return c
		}},
		{"web app with JWT access tokens signed with RS256", func(*testing.T) client.Client {
			c := webApp()
			c.AccessTokenFormat = client.FormatJWT
			c.AccessTokenSignedResponseAlg = "RS256"
			return c
		}},
		{"web app with authorization_code, refresh_token and https redirect", func(*testing.T) client.Client { return webApp() }},
		{"public SPA with loopback redirect", func(*testing.T) client.Client { return spa() }},
		{"private_key_jwt with public RSA JWKS and default RS256", keyClient},
		{"private_key_jwt with public RSA JWKS and PS256", func(t *testing.T) client.Client {
			c := keyClient(t)
			c.TokenEndpointAuthSigningAlg = "PS256"
			return c
		}},
		{"private_key_jwt with public EC JWKS and ES256", func(t *testing.T) client.Client {
			c := keyClient(t)
			c.JWKS = ecJWKS(t)
			c.TokenEndpointAuthSigningAlg = "ES256"
			return c
		}},
		{"private_key_jwt with https jwks_uri", func(t *testing.T) client.Client {
			c := keyClient(t)
			c.JWKS = nil
			c.JWKSURI = "https://billing.example.com/.well-known/jwks.json"
			return c
		}},
		{"private_key_jwt with loopback http jwks_uri", func(t *testing.T) client.Client {
			c := keyClient(t)
			c.JWKS = nil
			c.JWKSURI = "http://127.0.0.1:9000/jwks.json"
			return c
		}},
		{"no client_id yet, as the Manager will choose one", func(*testing.T) client.Client {
			c := backend()
			c.ID = ""
			return c
		}},
		{"client_id of 128 unreserved characters", func(*testing.T) client.Client {
			c := backend()
			c.ID = strings.Repeat("a", 124) + "._~-"
			return c
		}},
		{"lifespans at their limits", func(*testing.T) client.Client {
			c := webApp()
			c.AccessTokenLifespan = client.Lifespan(24 * time.Hour)
			c.RefreshTokenLifespan = client.Lifespan(10 * 365 * 24 * time.Hour)
			return c
		}},
		{"no scope at all", func(*testing.T) client.Client {
			c := backend()
			c.Scope = ""
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validate(tt.client(t)); err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestValidateRejectsInvalidMetadata(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(t *testing.T, c *client.Client)
		base  func() client.Client // backend when nil
		field string               // the JSON field every problem must name
		msg   string               // a fragment one message must hold, if set
	}{
		// RFC 9700 §2.1.2 and §2.4: the implicit and password grants are out.
		{name: "implicit grant", base: webApp, field: "grant_types", msg: "RFC 9700",
			edit: func(_ *testing.T, c *client.Client) { c.GrantTypes = append(c.GrantTypes, "implicit") }},
		{name: "password grant", field: "grant_types", msg: "RFC 9700",
			edit: func(_ *testing.T, c *client.Client) { c.GrantTypes = append(c.GrantTypes, "password") }},
		{name: "unknown grant", field: "grant_types", msg: `"urn:ietf:params:oauth:grant-type:saml2-bearer"`,
			edit: func(_ *testing.T, c *client.Client) {
				c.GrantTypes = append(c.GrantTypes, "urn:ietf:params:oauth:grant-type:saml2-bearer")
			}},
		{name: "no grant", field: "grant_types",
			edit: func(_ *testing.T, c *client.Client) { c.GrantTypes = []string{} }},
		{name: "duplicate grant", field: "grant_types",
			edit: func(_ *testing.T, c *client.Client) {
				c.GrantTypes = append(c.GrantTypes, client.GrantClientCredentials)
			}},
		{name: "refresh_token without authorization_code", field: "grant_types",
			edit: func(_ *testing.T, c *client.Client) { c.GrantTypes = append(c.GrantTypes, client.GrantRefreshToken) }},
		{name: "authorization_code without redirect_uris", base: webApp, field: "redirect_uris",
			edit: func(_ *testing.T, c *client.Client) { c.RedirectURIs = nil }},
		{name: "redirect_uris on a client_credentials-only client", field: "redirect_uris",
			edit: func(_ *testing.T, c *client.Client) { c.RedirectURIs = []string{"https://app.example.com/callback"} }},
		{name: "redirect_uris with plain http", base: webApp, field: "redirect_uris", msg: `"http://app.example.com/callback"`,
			edit: func(_ *testing.T, c *client.Client) { c.RedirectURIs = []string{"http://app.example.com/callback"} }},
		{name: "duplicate redirect URI", base: webApp, field: "redirect_uris",
			edit: func(_ *testing.T, c *client.Client) { c.RedirectURIs = append(c.RedirectURIs, c.RedirectURIs[0]) }},
		{name: "over 100 redirect URIs", base: webApp, field: "redirect_uris",
			edit: func(_ *testing.T, c *client.Client) {
				c.RedirectURIs = nil
				for i := range 101 {
					c.RedirectURIs = append(c.RedirectURIs, "https://app.example.com/callback/"+strings.Repeat("x", i))
				}
			}},
		{name: "post_logout_redirect_uris without authorization_code", field: "post_logout_redirect_uris",
			edit: func(_ *testing.T, c *client.Client) { c.PostLogoutRedirectURIs = []string{"https://app.example.com/"} }},
		{name: "post_logout_redirect_uris with a fragment", base: webApp, field: "post_logout_redirect_uris",
			edit: func(_ *testing.T, c *client.Client) {
				c.PostLogoutRedirectURIs = []string{"https://app.example.com/#bye"}
			}},
		{name: "response_types with token", base: webApp, field: "response_types",
			edit: func(_ *testing.T, c *client.Client) { c.ResponseTypes = []string{"code", "token"} }},
		{name: "response_types id_token", base: webApp, field: "response_types",
			edit: func(_ *testing.T, c *client.Client) { c.ResponseTypes = []string{"id_token"} }},
		{name: "response_types empty with authorization_code", base: webApp, field: "response_types",
			edit: func(_ *testing.T, c *client.Client) { c.ResponseTypes = []string{} }},
		{name: "response_types code without authorization_code", field: "response_types",
			edit: func(_ *testing.T, c *client.Client) { c.ResponseTypes = []string{"code"} }},
		{name: "bad scope token", field: "scope", msg: `"invoices\\read"`,
			edit: func(_ *testing.T, c *client.Client) { c.Scope = `openid invoices\read` }},
		{name: "duplicate scope", field: "scope",
			edit: func(_ *testing.T, c *client.Client) { c.Scope = "invoices.read openid invoices.read" }},
		{name: "audience with a space", field: "audience",
			edit: func(_ *testing.T, c *client.Client) { c.Audience = []string{"https://api.example.com", "billing api"} }},
		{name: "empty audience", field: "audience",
			edit: func(_ *testing.T, c *client.Client) { c.Audience = []string{""} }},
		{name: "unknown token_endpoint_auth_method", field: "token_endpoint_auth_method", msg: `"tls_client_auth"`,
			edit: func(_ *testing.T, c *client.Client) { c.TokenEndpointAuthMethod = "tls_client_auth" }},
		// A public client has nothing to prove who it is with, and
		// client_credentials is nothing but that proof.
		{name: "none with client_credentials", field: "grant_types",
			edit: func(_ *testing.T, c *client.Client) { c.TokenEndpointAuthMethod = client.AuthNone }},
		{name: "private_key_jwt without jwks or jwks_uri", field: "jwks",
			edit: func(_ *testing.T, c *client.Client) { c.TokenEndpointAuthMethod = client.AuthPrivateKeyJWT }},
		{name: "private_key_jwt with both jwks and jwks_uri", field: "jwks",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKSURI = "https://billing.example.com/jwks.json"
			}},
		{name: "jwks that is not JSON", field: "jwks",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = json.RawMessage(`{"keys": [`)
			}},
		{name: "jwks with an empty key set", field: "jwks",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = json.RawMessage(`{"keys": []}`)
			}},
		// The server must never hold a client's private key.
		{name: "jwks with a private key", field: "jwks", msg: "private",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = jwks(t, jose.JSONWebKey{Key: rsaKey(), KeyID: "leaked", Use: "sig"})
			}},
		{name: "jwks with a symmetric key", field: "jwks", msg: "symmetric",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = jwks(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), Use: "sig"})
			}},
		{name: "jwks key without use", field: "jwks", msg: `"sig"`,
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = jwks(t, jose.JSONWebKey{Key: rsaKey().Public(), KeyID: "rsa-1"})
			}},
		{name: "jwks key for encryption", field: "jwks", msg: `"sig"`,
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = jwks(t, jose.JSONWebKey{Key: rsaKey().Public(), KeyID: "rsa-1", Use: "enc"})
			}},
		{name: "jwks_uri with http on a public host", field: "jwks_uri",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = nil
				c.JWKSURI = "http://billing.example.com/jwks.json"
			}},
		{name: "relative jwks_uri", field: "jwks_uri",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = nil
				c.JWKSURI = "/jwks.json"
			}},
		{name: "jwks on a client_secret_basic client", field: "jwks",
			edit: func(t *testing.T, c *client.Client) { c.JWKS = rsaJWKS(t) }},
		{name: "jwks_uri on a client_secret_basic client", field: "jwks_uri",
			edit: func(_ *testing.T, c *client.Client) { c.JWKSURI = "https://billing.example.com/jwks.json" }},
		// Assertions are checked against a key of the registered alg: an RSA
		// key can never verify ES256, so the client could never sign in.
		{name: "jwks whose keys cannot verify the registered alg", field: "jwks", msg: "ES256",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = rsaJWKS(t)
				c.TokenEndpointAuthSigningAlg = "ES256"
			}},
		{name: "EC key of another curve", field: "jwks", msg: "ES384",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.JWKS = ecJWKS(t)
				c.TokenEndpointAuthSigningAlg = "ES384"
			}},
		{name: "token_endpoint_auth_signing_alg HS256", field: "token_endpoint_auth_signing_alg",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.TokenEndpointAuthSigningAlg = "HS256"
			}},
		// alg "none" would let anyone sign assertions for the client.
		{name: "token_endpoint_auth_signing_alg none", field: "token_endpoint_auth_signing_alg",
			edit: func(t *testing.T, c *client.Client) {
				*c = keyClient(t)
				c.TokenEndpointAuthSigningAlg = "none"
			}},
		{name: "token_endpoint_auth_signing_alg on a client_secret_basic client", field: "token_endpoint_auth_signing_alg",
			edit: func(_ *testing.T, c *client.Client) { c.TokenEndpointAuthSigningAlg = "RS256" }},
		{name: "access_token_format paseto", field: "access_token_format", msg: `"paseto"`,
			edit: func(_ *testing.T, c *client.Client) { c.AccessTokenFormat = "paseto" }},
		// Only algorithms Latchkey keeps a key for; HS256 would need a
		// secret shared with every resource server, and "none" no key.
		{name: "access_token_signed_response_alg HS256", field: "access_token_signed_response_alg", msg: `"HS256"`,
			edit: func(_ *testing.T, c *client.Client) {
				c.AccessTokenFormat = client.FormatJWT
				c.AccessTokenSignedResponseAlg = "HS256"
			}},
		{name: "access_token_signed_response_alg none", field: "access_token_signed_response_alg", msg: "EdDSA",
			edit: func(_ *testing.T, c *client.Client) {
				c.AccessTokenFormat = client.FormatJWT
				c.AccessTokenSignedResponseAlg = "none"
			}},
		// JOSE names are case-sensitive (RFC 7515 §4.1.1).
		{name: "access_token_signed_response_alg eddsa in lower case", field: "access_token_signed_response_alg",
			edit: func(_ *testing.T, c *client.Client) {
				c.AccessTokenFormat = client.FormatJWT
				c.AccessTokenSignedResponseAlg = "eddsa"
			}},
		{name: "access_token_signed_response_alg Ed25519, a curve not an alg", field: "access_token_signed_response_alg",
			edit: func(_ *testing.T, c *client.Client) {
				c.AccessTokenFormat = client.FormatJWT
				c.AccessTokenSignedResponseAlg = "Ed25519"
			}},
		{name: "access_token_signed_response_alg on an opaque-token client", field: "access_token_signed_response_alg", msg: "opaque",
			edit: func(_ *testing.T, c *client.Client) { c.AccessTokenSignedResponseAlg = "EdDSA" }},
		{name: "negative access_token_lifespan", field: "access_token_lifespan",
			edit: func(_ *testing.T, c *client.Client) { c.AccessTokenLifespan = client.Lifespan(-time.Minute) }},
		{name: "access_token_lifespan over 24h", field: "access_token_lifespan",
			edit: func(_ *testing.T, c *client.Client) {
				c.AccessTokenLifespan = client.Lifespan(24*time.Hour + time.Second)
			}},
		{name: "negative refresh_token_lifespan", base: webApp, field: "refresh_token_lifespan",
			edit: func(_ *testing.T, c *client.Client) { c.RefreshTokenLifespan = client.Lifespan(-time.Hour) }},
		{name: "client_id with a space", field: "client_id",
			edit: func(_ *testing.T, c *client.Client) { c.ID = "billing worker" }},
		// A slash in the ID would break the admin API's /clients/{id} routes.
		{name: "client_id with a slash", field: "client_id",
			edit: func(_ *testing.T, c *client.Client) { c.ID = "billing/worker" }},
		// A colon would split the ID in HTTP Basic authentication.
		{name: "client_id with a colon", field: "client_id",
			edit: func(_ *testing.T, c *client.Client) { c.ID = "billing:worker" }},
		{name: "client_id over 128 characters", field: "client_id",
			edit: func(_ *testing.T, c *client.Client) { c.ID = strings.Repeat("a", 129) }},
		// Users' subs are UUIDs: a client whose ID is one would be the
		// subject of its own tokens under a user's name.
		{name: "client_id that is a UUID", field: "client_id", msg: "UUID",
			edit: func(_ *testing.T, c *client.Client) { c.ID = "3f0c5e0a-8a1d-4c47-9a36-2b2f4f7f1b65" }},
		// Postgres reads this as the same UUID, and so does uuid.Parse.
		{name: "client_id that is a UUID without hyphens", field: "client_id", msg: "UUID",
			edit: func(_ *testing.T, c *client.Client) { c.ID = "3F0C5E0A8A1D4C479A362B2F4F7F1B65" }},
		// A newline in the name could forge lines in logs and consent pages.
		{name: "client_name with a newline", field: "client_name",
			edit: func(_ *testing.T, c *client.Client) { c.Name = "Billing\nworker" }},
		{name: "client_name over 200 characters", field: "client_name",
			edit: func(_ *testing.T, c *client.Client) { c.Name = strings.Repeat("n", 201) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := backend
			if tt.base != nil {
				base = tt.base
			}
			c := base()
			tt.edit(t, &c)
			got := problems(t, c)
			if len(got) == 0 {
				t.Fatalf("Validate() = nil, want a problem with %s", tt.field)
			}
			found := tt.msg == ""
			for _, p := range got {
				if p.Field != tt.field {
					t.Errorf("unexpected problem %s: %s (want only %s)", p.Field, p.Message, tt.field)
				}
				if strings.Contains(p.Message, tt.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("problems %q: none of them mentions %s", got, tt.msg)
			}
		})
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	c := webApp()
	c.Name = "Dash\nboard"
	c.GrantTypes = append(c.GrantTypes, "implicit")
	c.RedirectURIs = []string{"https://app.example.com/callback\n"}
	c.Scope = "openid é"
	c.AccessTokenFormat = "paseto"
	err := validate(c)
	var verr *validation.Error
	if !errors.As(err, &verr) {
		t.Fatalf("Validate() = %v, want a *validation.Error", err)
	}
	fields := []string{"client_name", "grant_types", "redirect_uris", "scope", "access_token_format"}
	for _, f := range fields {
		if !slices.ContainsFunc(verr.Problems, func(p validation.Problem) bool { return p.Field == f }) {
			t.Errorf("problems %q do not include %s", verr.Problems, f)
		}
	}
	if len(verr.Problems) != len(fields) {
		t.Errorf("got %d problems, want %d: %q", len(verr.Problems), len(fields), verr.Problems)
	}
	// The message goes into a log line or a CLI error: one line, even when
	// the bad values themselves hold newlines.
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("Error() spans several lines: %q", msg)
	}
	for _, f := range fields {
		if !strings.Contains(msg, f+": ") {
			t.Errorf("Error() = %q does not mention %s", msg, f)
		}
	}
}

func TestLifespanRoundTripsThroughJSON(t *testing.T) {
	for _, d := range []time.Duration{15 * time.Minute, 90 * time.Minute, 720 * time.Hour, 1500 * time.Millisecond} {
		b, err := json.Marshal(client.Lifespan(d))
		if err != nil {
			t.Fatalf("Marshal(%v): %v", d, err)
		}
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			t.Errorf("Marshal(%v) = %s, want a JSON string", d, b)
		}
		var back client.Lifespan
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("Unmarshal(%s): %v", b, err)
		}
		if time.Duration(back) != d {
			t.Errorf("%v went through JSON as %s and came back as %v", d, b, time.Duration(back))
		}
	}
}

func TestLifespanReadsDurationStrings(t *testing.T) {
	tests := []struct {
		json string
		want time.Duration
	}{
		{`"10m"`, 10 * time.Minute},
		{`"1h30m"`, 90 * time.Minute},
		{`"720h"`, 720 * time.Hour},
		{`"0s"`, 0},
	}
	for _, tt := range tests {
		var c client.Client
		if err := json.Unmarshal([]byte(`{"access_token_lifespan":`+tt.json+`}`), &c); err != nil {
			t.Errorf("access_token_lifespan %s: %v", tt.json, err)
			continue
		}
		if got := time.Duration(c.AccessTokenLifespan); got != tt.want {
			t.Errorf("access_token_lifespan %s = %v, want %v", tt.json, got, tt.want)
		}
	}
}

func TestNullMeansUnsetInMetadata(t *testing.T) {
	var c client.Client
	doc := `{"grant_types": ["client_credentials"], "access_token_lifespan": null, "jwks": null, "jwks_uri": ""}`
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatalf("null lifespan: %v", err)
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("a client with null jwks and lifespan: %v, want valid", err)
	}
	if c.AccessTokenLifespan != 0 || c.JWKS != nil {
		t.Fatalf("null left lifespan %v and jwks %q, want both unset", c.AccessTokenLifespan, c.JWKS)
	}
}

func TestClientNameLimitCountsCharactersNotBytes(t *testing.T) {
	c := backend()
	c.Name = strings.Repeat("日", 200) // 600 bytes
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("200-character name: %v", err)
	}
}

func TestEmptyRedirectURIIsNamedAsSuch(t *testing.T) {
	if err := client.ValidateRedirectURI(""); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty URI: %v", err)
	}
	long := "https://app.example.com/" + strings.Repeat("x", 2000)
	if err := client.ValidateRedirectURI(long); err == nil || !strings.Contains(err.Error(), "https://app.example.com/") {
		t.Fatalf("over-long URI: %v, want the start of the URI quoted so it can be found", err)
	}
}

func TestLifespanRejectsWhatIsNotADurationString(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		// A bare number is ambiguous: seconds? nanoseconds? Refuse to guess.
		{"number", `600`},
		{"malformed string", `"ten minutes"`},
		{"number without unit", `"600"`},
		{"object", `{"minutes":10}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l client.Lifespan
			err := json.Unmarshal([]byte(tt.json), &l)
			if err == nil {
				t.Fatalf("Unmarshal(%s) = nil, want an error", tt.json)
			}
			// The error must tell the operator what to write instead.
			if !strings.Contains(err.Error(), `"10m"`) {
				t.Errorf("Unmarshal(%s) = %q, want it to show an example such as \"10m\"", tt.json, err)
			}
		})
	}
}

func TestUnsetLifespansAreLeftOutOfJSON(t *testing.T) {
	c := backend()
	c.Normalize()
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"access_token_lifespan", "refresh_token_lifespan"} {
		if strings.Contains(string(b), `"`+field+`"`) {
			t.Errorf("JSON of a client without its own lifespans has %s: %s", field, b)
		}
	}
}

func TestOnlyClientsWithAuthMethodNoneArePublic(t *testing.T) {
	tests := []struct {
		method string
		public bool
	}{
		{client.AuthNone, true},
		{client.AuthSecretBasic, false},
		{client.AuthSecretPost, false},
		{client.AuthPrivateKeyJWT, false},
	}
	for _, tt := range tests {
		c := client.Client{TokenEndpointAuthMethod: tt.method}
		if got := c.IsPublic(); got != tt.public {
			t.Errorf("IsPublic() with %s = %v, want %v", tt.method, got, tt.public)
		}
	}
}

func TestOnlySecretAuthMethodsHaveASecret(t *testing.T) {
	tests := []struct {
		method string
		secret bool
	}{
		{client.AuthSecretBasic, true},
		{client.AuthSecretPost, true},
		{client.AuthPrivateKeyJWT, false},
		{client.AuthNone, false},
	}
	for _, tt := range tests {
		c := client.Client{TokenEndpointAuthMethod: tt.method}
		if got := c.HasSecret(); got != tt.secret {
			t.Errorf("HasSecret() with %s = %v, want %v", tt.method, got, tt.secret)
		}
	}
}

func TestGetScopesSplitsTheScopeString(t *testing.T) {
	c := client.Client{Scope: "openid invoices.read a:b/c"}
	want := []string{"openid", "invoices.read", "a:b/c"}
	if got := c.GetScopes(); !slices.Equal(got, want) {
		t.Errorf("GetScopes() = %q, want %q", got, want)
	}
	if got := (&client.Client{}).GetScopes(); len(got) != 0 {
		t.Errorf("GetScopes() without a scope = %q, want none", got)
	}
}

func TestEffectiveLifespanIsTheClientsOwnWhereSet(t *testing.T) {
	const fallback = 7 * time.Minute
	own := client.Client{
		AccessTokenLifespan:  client.Lifespan(5 * time.Minute),
		RefreshTokenLifespan: client.Lifespan(48 * time.Hour),
	}
	tests := []struct {
		name   string
		client client.Client
		token  fosite.TokenType
		want   time.Duration
	}{
		{"access token, client lifespan set", own, fosite.AccessToken, 5 * time.Minute},
		{"refresh token, client lifespan set", own, fosite.RefreshToken, 48 * time.Hour},
		{"access token, client lifespan unset", client.Client{}, fosite.AccessToken, fallback},
		{"refresh token, client lifespan unset", client.Client{}, fosite.RefreshToken, fallback},
		// Clients choose only access and refresh lifespans; the rest are the server's.
		{"ID token", own, fosite.IDToken, fallback},
		{"authorization code", own, fosite.AuthorizeCode, fallback},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.client.GetEffectiveLifespan(fosite.GrantTypeAuthorizationCode, tt.token, fallback)
			if got != tt.want {
				t.Errorf("GetEffectiveLifespan(%s) = %v, want %v", tt.token, got, tt.want)
			}
		})
	}
}

func TestGetJSONWebKeysReturnsTheRegisteredKeys(t *testing.T) {
	if got := (&client.Client{}).GetJSONWebKeys(); got != nil {
		t.Errorf("GetJSONWebKeys() without jwks = %v, want nil", got)
	}
	c := keyClient(t)
	set := c.GetJSONWebKeys()
	if set == nil {
		t.Fatal("GetJSONWebKeys() = nil for a client with a JWKS")
	}
	keys := set.Key("rsa-1")
	if len(keys) != 1 {
		t.Fatalf("key set has %d keys with kid rsa-1, want 1", len(keys))
	}
	pub, ok := keys[0].Key.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("key is a %T, want *rsa.PublicKey", keys[0].Key)
	}
	if !pub.Equal(rsaKey().Public()) {
		t.Error("GetJSONWebKeys() returned a different key from the one registered")
	}
}

func TestAdminScopesAreOnlyForConfidentialClientCredentialsClients(t *testing.T) {
	tests := []struct {
		name string
		c    func() client.Client
		ok   bool
	}{
		{"backend", func() client.Client { c := backend(); c.Scope = client.AdminScope; return c }, true},
		{"read-only backend", func() client.Client { c := backend(); c.Scope = client.AdminReadScope; return c }, true},
		{"key-authenticated backend", func() client.Client { c := keyClient(t); c.Scope = client.AdminScope; return c }, true},
		{"web app", func() client.Client { c := webApp(); c.Scope = "openid " + client.AdminScope; return c }, false},
		{"web app reading", func() client.Client { c := webApp(); c.Scope = client.AdminReadScope; return c }, false},
		{"public app", func() client.Client { c := spa(); c.Scope = client.AdminReadScope; return c }, false},
		{"backend that also signs users in", func() client.Client {
			c := webApp()
			c.GrantTypes = append(c.GrantTypes, client.GrantClientCredentials)
			c.Scope = client.AdminScope
			return c
		}, false},
	}
	for _, tt := range tests {
		ps := problems(t, tt.c())
		if tt.ok != (len(ps) == 0) {
			t.Errorf("%s: problems %v, want ok=%v", tt.name, ps, tt.ok)
		}
		if !tt.ok && !slices.ContainsFunc(ps, func(p validation.Problem) bool { return p.Field == "scope" }) {
			t.Errorf("%s: problems %v do not name scope", tt.name, ps)
		}
	}
}

func TestAPublicDeviceClientNeedsNoRedirectURIAndMayRefresh(t *testing.T) {
	c := client.Client{
		GrantTypes:              []string{client.GrantDeviceCode, client.GrantRefreshToken},
		TokenEndpointAuthMethod: client.AuthNone,
		Scope:                   "openid offline_access",
	}
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatalf("a public client with the device grant and refresh tokens: %v", err)
	}
	if c.IDTokenSignedResponseAlg != "RS256" || len(c.ResponseTypes) != 0 {
		t.Errorf("normalized to id_token alg %q, response_types %v; want RS256 and none", c.IDTokenSignedResponseAlg, c.ResponseTypes)
	}
	c.RedirectURIs = []string{"https://tv.example.com/cb"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "redirect_uris") {
		t.Errorf("redirect URIs on a device-only client: %v, want a redirect_uris problem", err)
	}
}
