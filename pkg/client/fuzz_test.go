package client_test

// The fuzz targets here state the rules of client metadata a second time,
// independently of validate.go, and let `go test -fuzz` look for input on
// which the code and the rules disagree. Their seeds (the f.Add calls and
// testdata/fuzz) run as ordinary tests in every `go test`.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
)

// FuzzValidateRedirectURI checks that every redirect URI ValidateRedirectURI
// accepts is one RFC 9700 lets a client register: absolute, with a host,
// without a fragment or user info, and https, or plain http only on a
// loopback address, where the traffic never leaves the machine.
func FuzzValidateRedirectURI(f *testing.F) {
	for _, uri := range []string{
		"https://app.example.com/callback",
		"https://app.example.com:8443/cb?tenant=acme",
		"http://127.0.0.1:8080/callback",
		"http://[::1]:3000/callback",
		"http://localhost:5173/callback",
		"http://LOCALHOST/callback",
		"http://[::ffff:127.0.0.1]/callback",
		"http://[::1%25lo]/callback",
		"http://localhost.example.com/callback",
		"http://127.0.0.1.nip.io/callback",
		"http://127.0.0.1@evil.example/callback",
		"https://user:pass@app.example.com/callback",
		"https://app.example.com/callback#state",
		"https://app.example.com/callback#",
		"https://:443/callback",
		"https:///callback",
		"https:app.example.com/callback",
		"//app.example.com/callback",
		"com.example.app:/callback",
		"javascript:alert(1)",
		"HTTPS://APP.EXAMPLE.COM/CB",
		"https://app.example.com/call back",
		"https://app.example.com/\u2028",
		"",
	} {
		f.Add(uri)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if client.ValidateRedirectURI(raw) != nil {
			return
		}
		if problem := redirectURIProblem(raw); problem != "" {
			t.Fatalf("ValidateRedirectURI(%q) = nil, but the URI %s", raw, problem)
		}
	})
}

// redirectURIProblem says why raw may not be registered as a redirect URI,
// or returns "" if it may.
func redirectURIProblem(raw string) string {
	if raw == "" || len(raw) > 2000 {
		return "is empty or longer than 2000 bytes"
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "holds a space or control character"
	}
	if strings.Contains(raw, "#") {
		return "has a fragment"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "does not parse"
	case !u.IsAbs() || u.Opaque != "":
		return "is not absolute"
	case u.Hostname() == "":
		// RFC 9110 §4.2.2: an https URI with an empty host is invalid.
		return "has no host"
	case u.User != nil:
		return "has user info"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
		return ""
	}
	return "is neither https nor http on a loopback address"
}

// loopbackHost reports whether a URL's hostname is the loopback interface:
// the name localhost, spelt in ASCII in any case, or an IPv4 or IPv6
// loopback address, with or without an IPv6 zone.
func loopbackHost(host string) bool {
	if len(host) == len("localhost") && strings.EqualFold(host, "localhost") {
		return true
	}
	host, _, _ = strings.Cut(host, "%")
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// FuzzRedirectURIMatching checks how the authorization endpoint matches a
// redirect_uri against a client's registered ones, which fosite does for
// Latchkey (fosite.MatchRedirectURIWithClientRedirectURIs, called from
// NewAuthorizeRequest). registered is a space-separated list, since a
// redirect URI cannot hold a space. A redirect URI is accepted only if it
// is, byte for byte, one that the client registered, or fosite's reading
// of RFC 8252 §7.3 for native apps lets it through (loopbackVariant); and
// every URI a client could register matches itself, or the client could
// never sign anyone in.
func FuzzRedirectURIMatching(f *testing.F) {
	for _, seed := range [][2]string{
		{"https://app.example.com/callback", "https://app.example.com/callback"},
		{"https://app.example.com/callback", ""},
		{"https://app.example.com/callback https://app.example.com/other", ""},
		{"https://app.example.com/callback", "https://app.example.com/callback/"},
		{"https://app.example.com/callback", "https://APP.example.com/callback"},
		{"https://app.example.com/callback", "https://app.example.com:443/callback"},
		{"https://app.example.com/callback", "https://app.example.com/%63allback"},
		{"https://app.example.com/callback", "https://app.example.com/callback?x=1"},
		{"https://app.example.com/callback", "https://app.example.com/callback#x"},
		{"https://app.example.com/callback", "https://evil.example/callback"},
		{"https://app.example.com/callback", "https://app.example.com@evil.example/callback"},
		{"http://127.0.0.1/callback", "http://127.0.0.1:49152/callback"},
		{"http://127.0.0.1:8080/callback", "http://127.0.0.1:9090/callback"},
		{"http://[::1]/callback", "http://[::1]:3000/callback"},
		{"http://127.0.0.1/callback", "http://127.0.0.2:8080/callback"},
		{"http://127.0.0.1/callback", "http://127.0.0.1:8080/callback?x=1"},
		{"http://127.0.0.1/callback", "http://127.0.0.1:8080/%63allback"},
		{"http://127.0.0.1/callback", "http://user:pw@127.0.0.1:8080/callback"},
		{"http://127.0.0.1/callback", "http://127.0.0.1:8080/callback#"},
		{"http://127.0.0.1/callback", "http://127.0.0.1:8080/callback#frag"},
		{"https://127.0.0.1/callback", "http://127.0.0.1:8080/callback"},
		{"http://localhost/callback", "http://localhost:8080/callback"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, registered, requested string) {
		c := client.Client{ID: "app", GrantTypes: []string{client.GrantAuthorizationCode}, RedirectURIs: strings.Split(registered, " ")}
		c.Normalize()
		if c.Validate() != nil {
			return
		}
		for _, uri := range c.RedirectURIs {
			if _, err := fosite.MatchRedirectURIWithClientRedirectURIs(uri, &c); err != nil {
				t.Errorf("the registered redirect URI %q does not match itself: %v", uri, err)
			}
		}
		got, err := fosite.MatchRedirectURIWithClientRedirectURIs(requested, &c)
		if err != nil {
			return
		}
		switch {
		case requested == "":
			// RFC 6749 §3.1.2.3: the redirect_uri may be left out only
			// when the client registered one alone, which is then used.
			if len(c.RedirectURIs) != 1 {
				t.Fatalf("no redirect_uri was accepted for a client with %d registered: %q", len(c.RedirectURIs), c.RedirectURIs)
			}
			if want, _ := url.Parse(c.RedirectURIs[0]); got.String() != want.String() {
				t.Fatalf("no redirect_uri sends the browser to %q, not the one registered, %q", got, c.RedirectURIs[0])
			}
		case slices.Contains(c.RedirectURIs, requested):
		case slices.ContainsFunc(c.RedirectURIs, func(r string) bool { return loopbackVariant(requested, r) }):
		default:
			t.Fatalf("redirect_uri %q was accepted for a client that registered %q", requested, c.RedirectURIs)
		}
		if got.Fragment != "" {
			t.Fatalf("redirect_uri %q was accepted with a fragment", requested)
		}
	})
}

// loopbackVariant reports whether fosite v0.49 accepts requested as a
// redirect URI of a client that registered registered without the two
// being equal. RFC 8252 §7.3 wants a native app's loopback redirect URI
// accepted on any port, since the app listens on whatever port is free;
// fosite (isMatchingAsLoopback) grants this for a requested URI that is
// http on an IP-literal loopback address (127.0.0.0/8 or ::1, not the name
// localhost), whose hostname, path and query equal the registered URI's.
// It compares no more than that, so these may differ too:
//
//   - the registered URI's scheme: https://127.0.0.1/cb admits
//     http://127.0.0.1:1234/cb;
//   - user info, which Latchkey refuses to register but fosite accepts in
//     the request: http://user:pw@127.0.0.1:1234/cb;
//   - percent-encoding, since the paths are compared decoded:
//     http://127.0.0.1:1234/%63b matches /cb.
//
// A fragment is then refused (fosite.IsValidRedirectURI), but an empty one
// ("...#") is not, and disappears from the URL the browser is sent to.
func loopbackVariant(requested, registered string) bool {
	req, err := url.Parse(requested)
	if err != nil {
		return false
	}
	reg, err := url.Parse(registered)
	if err != nil {
		return false
	}
	ip := net.ParseIP(req.Hostname())
	return req.Scheme == "http" && ip != nil && ip.IsLoopback() &&
		reg.Hostname() == req.Hostname() && reg.Path == req.Path && reg.RawQuery == req.RawQuery
}

// scopeToken is RFC 6749 §3.3's scope-token, NQCHAR (%x21 / %x23-5B /
// %x5D-7E) repeated, within Latchkey's limit of 200 characters.
var scopeToken = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,200}$`)

// FuzzScope checks how a client's scope string becomes scopes, and how a
// requested scope is then granted. ValidateScopeToken must accept exactly
// RFC 6749's scope tokens; Scopes must split on whitespace into non-empty
// tokens, which Normalize keeps as they are; a client that validates has
// only valid, distinct tokens; and fosite's ExactScopeStrategy, the one
// Latchkey configures, must grant a requested scope only when the client
// registered exactly that scope, so that "invoices" does not give
// "invoices.write". requested is split on spaces, as fosite splits the
// scope parameter.
func FuzzScope(f *testing.F) {
	for _, seed := range [][2]string{
		{"invoices.read invoices.write", "invoices.read"},
		{"invoices.read invoices.write", "invoices"},
		{"invoices", "invoices.write"},
		{"invoices.read", "invoices.read invoices.write"},
		{"openid  profile\temail\n", "openid profile"},
		{"a\u00a0b", "a"},
		{"https://api.example.com/invoices.read", "https://api.example.com/invoices.read"},
		{"invoices:*", "invoices:read"},
		{"read read", "read"},
		{`say"hi`, `say"hi`},
		{`back\slash`, `back\slash`},
		{"caf\u00e9", "caf\u00e9"},
		{"\x7f", "\x7f"},
		{"latchkey:admin", "latchkey:admin"},
		{strings.Repeat("s", 201), strings.Repeat("s", 200)},
		{"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, scope, requested string) {
		for _, s := range []string{scope, requested} {
			if ok := client.ValidateScopeToken(s) == nil; ok != scopeToken.MatchString(s) {
				t.Errorf("ValidateScopeToken(%q) accepts it: %t; RFC 6749 §3.3 says %t", s, ok, !ok)
			}
		}
		c := client.Client{ID: "backend", GrantTypes: []string{client.GrantClientCredentials}, Scope: scope}
		scopes := c.Scopes()
		for _, s := range scopes {
			if s == "" || strings.ContainsFunc(s, unicode.IsSpace) {
				t.Fatalf("Scopes() of %q = %q: an empty token or one with a space", scope, scopes)
			}
		}
		c.Normalize()
		if !slices.Equal(c.Scopes(), scopes) || c.Scope != strings.Join(scopes, " ") {
			t.Fatalf("Normalize changed scope %q to %q, with scopes %q instead of %q", scope, c.Scope, c.Scopes(), scopes)
		}
		if c.Validate() == nil {
			seen := map[string]bool{}
			for _, s := range scopes {
				if !scopeToken.MatchString(s) || seen[s] {
					t.Fatalf("a client with scope %q validated, but %q is not a scope token or is repeated", scope, s)
				}
				seen[s] = true
			}
		}
		for _, r := range fosite.RemoveEmpty(strings.Split(requested, " ")) {
			if granted := fosite.ExactScopeStrategy(c.GetScopes(), r); granted != slices.Contains(scopes, r) {
				t.Fatalf("a client with scopes %q asking for %q: granted %t, want %t", scopes, r, granted, !granted)
			}
		}
	})
}

// FuzzClientMetadataJSON feeds client metadata documents, as the admin API
// and the CLI receive them, through json.Unmarshal, Normalize and Validate.
// None of it may panic; JSON can never set a secret hash; and a client that
// validates must survive being stored: its JSON form (what the store keeps)
// decodes to a client that still validates and encodes to the same bytes,
// holds no secret hash, and is text that PostgreSQL's jsonb can hold.
func FuzzClientMetadataJSON(f *testing.F) {
	for _, doc := range []string{
		`{"client_id":"dashboard","client_name":"Dashboard","redirect_uris":["https://app.example.com/callback"],` +
			`"grant_types":["authorization_code","refresh_token"],"scope":"openid profile","access_token_lifespan":"10m"}`,
		`{"client_name":"Billing","grant_types":["client_credentials"],"scope":"invoices.read","audience":["https://api.example.com"]}`,
		`{"client_id":"spa","redirect_uris":["http://127.0.0.1:5173/cb"],"token_endpoint_auth_method":"none","scope":"openid"}`,
		`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://keys.example.com/jwks.json"}`,
		`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","token_endpoint_auth_signing_alg":"ES256",` +
			`"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis","y":"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE","use":"sig"}]}}`,
		`{"grant_types":["client_credentials"],"scope":"latchkey:admin"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"jwks":null,"access_token_lifespan":null,"refresh_token_lifespan":"720h"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"created_at":"2025-03-01T12:00:00+01:00","updated_at":"9999-12-31T23:59:59-23:59"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"SecretHash":"c2VjcmV0","PreviousSecretHash":"c2VjcmV0","client_secret":"x"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"audience":["a\u0000b"]}`,
		`{"redirect_uris":["https://app.example.com/cb"],"access_token_lifespan":"-1h"}`,
		`{"redirect_uris":["https://app.example.com/cb"],"grant_types":["implicit"]}`,
		`{"redirect_uris":[null],"grant_types":null,"response_types":null}`,
		`{"client_name":"\ud800"}`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var c client.Client
		if json.Unmarshal(doc, &c) != nil {
			return
		}
		if c.SecretHash != nil || c.PreviousSecretHash != nil || !c.PreviousSecretExpiresAt.IsZero() {
			t.Fatalf("metadata %q set a secret", doc)
		}
		_ = c.Validate() // must not panic on what Normalize has not seen
		c.Normalize()
		if c.Validate() != nil {
			return
		}
		c.SecretHash, c.PreviousSecretHash = client.HashSecret("current"), client.HashSecret("previous")
		stored, err := json.Marshal(&c)
		if err != nil {
			t.Fatalf("a valid client from %q does not encode: %v", doc, err)
		}
		for _, h := range [][]byte{c.SecretHash, c.PreviousSecretHash} {
			if bytes.Contains(stored, []byte(base64.StdEncoding.EncodeToString(h))) || bytes.Contains(stored, []byte(hex.EncodeToString(h))) {
				t.Fatalf("the JSON of a client holds a secret hash: %s", stored)
			}
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(stored, &fields); err != nil {
			t.Fatalf("the JSON of a valid client is not an object: %v\n%s", err, stored)
		}
		for name := range fields {
			if strings.Contains(strings.ToLower(name), "secret") {
				t.Fatalf("the JSON of a client has a field %q about its secret: %s", name, stored)
			}
		}
		if problem := jsonbProblem(stored); problem != "" {
			t.Fatalf("a client from %q validates, but PostgreSQL cannot store its metadata %q: %s", doc, stored, problem)
		}
		var back client.Client
		if err := json.Unmarshal(stored, &back); err != nil {
			t.Fatalf("the JSON of a valid client does not decode: %v\n%s", err, stored)
		}
		back.Normalize()
		if err := back.Validate(); err != nil {
			t.Fatalf("a client from %q validates, but not after a JSON round trip: %v\n%s", doc, err, stored)
		}
		if again, _ := json.Marshal(&back); !bytes.Equal(again, stored) {
			t.Fatalf("a JSON round trip changed a client:\n%s\n%s", stored, again)
		}
	})
}

// jsonbProblem says why PostgreSQL's jsonb type would refuse the JSON text
// doc, or returns "" if it would take it. jsonb refuses what text columns
// refuse, invalid UTF-8 and the NUL character, also when JSON escapes
// them: \u0000, and an unpaired surrogate half such as \ud800, which
// encoding/json quietly turns into U+FFFD.
func jsonbProblem(doc []byte) string {
	if !utf8.Valid(doc) {
		return "it is not UTF-8"
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "it is not JSON: " + err.Error()
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, 0) {
			return "a string holds the NUL character"
		}
	}
	for i := 0; i+1 < len(doc); i++ {
		if doc[i] != '\\' {
			continue
		}
		if doc[i+1] != 'u' || i+6 > len(doc) {
			i++ // an escaped character, perhaps a backslash
			continue
		}
		r, err := hex.DecodeString(string(doc[i+2 : i+6]))
		if err != nil {
			return "a \\u escape is not hexadecimal"
		}
		switch code := rune(r[0])<<8 | rune(r[1]); {
		case code >= 0xdc00 && code <= 0xdfff:
			return "a \\u escape is an unpaired low surrogate"
		case code >= 0xd800 && code <= 0xdbff:
			next := string(doc[i+6:])
			if len(next) < 6 || next[:2] != `\u` || !strings.ContainsAny(next[2:3], "dD") || !strings.ContainsAny(next[3:4], "cdefCDEF") {
				return "a \\u escape is an unpaired high surrogate"
			}
			i += 11
			continue
		}
		i += 5
	}
	return ""
}
