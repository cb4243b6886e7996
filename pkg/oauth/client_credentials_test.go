package oauth

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/discovery"
)

func TestClientCredentialsWithBasicAndPostAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs, rsSecret := f.resourceServer(t)
	tests := []struct {
		method string
		style  oauth2.AuthStyle
	}{
		{client.AuthSecretBasic, oauth2.AuthStyleInHeader},
		{client.AuthSecretPost, oauth2.AuthStyleInParams},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			c, secret := f.backend(t, "invoices.read invoices.write", func(c *client.Client) { c.TokenEndpointAuthMethod = tt.method })
			tok, err := f.cc(c.ID, secret, tt.style, "invoices.read").Token(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok.AccessToken, accessPrefix) || tok.RefreshToken != "" || !strings.EqualFold(tok.TokenType, "Bearer") {
				t.Fatalf("token %+v: want an opaque %s… bearer token and no refresh token", tok, accessPrefix)
			}
			got := f.introspect(t, rs.ID, rsSecret, tok.AccessToken)
			if got["active"] != true || got["scope"] != "invoices.read" || got["sub"] != c.ID || got["client_id"] != c.ID {
				t.Fatalf("introspection = %v; want active, scope invoices.read only, sub and client_id %s", got, c.ID)
			}
		})
	}
}

func TestClientCredentialsWithoutScopeGetsTheRegisteredScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.backend(t, "invoices.read invoices.write", func(c *client.Client) { c.Audience = []string{"https://api.example.com"} })
	tok := f.token(t, c.ID, secret)
	got := f.introspect(t, c.ID, secret, tok.AccessToken)
	if got["scope"] != "invoices.read invoices.write" {
		t.Fatalf("scope = %v, want the client's registered scopes", got["scope"])
	}
	if aud, _ := got["aud"].([]any); len(aud) != 1 || aud[0] != "https://api.example.com" {
		t.Fatalf("aud = %v, want the client's registered audience", got["aud"])
	}
}

// rfc6749Error checks an error response has the shape of RFC 6749 §5.2: a
// JSON object with error and error_description and nothing else, never
// cached.
func rfc6749Error(t *testing.T, status int, h http.Header, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	if status != wantStatus || body["error"] != wantCode {
		t.Fatalf("got %d %v, want %d with error %s", status, body, wantStatus, wantCode)
	}
	if keys := slices.Sorted(maps.Keys(body)); !slices.Equal(keys, []string{"error", "error_description"}) {
		t.Errorf("error body has members %v, want error and error_description only", keys)
	}
	if d, _ := body["error_description"].(string); d == "" {
		t.Errorf("error_description is empty")
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "application/json") || h.Get("Cache-Control") != "no-store" {
		t.Errorf("Content-Type %q, Cache-Control %q; want JSON, no-store", h.Get("Content-Type"), h.Get("Cache-Control"))
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.backend(t, "invoices.read")
	public, _ := f.register(t, client.Client{
		GrantTypes: []string{client.GrantAuthorizationCode}, RedirectURIs: []string{"http://127.0.0.1/cb"},
		TokenEndpointAuthMethod: client.AuthNone,
	})
	tests := []struct {
		name       string
		id, secret string
		form       url.Values
		wantStatus int
		wantCode   string
	}{
		{"wrong secret", c.ID, "not-the-secret", url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"unknown client", "nobody", "whatever", url.Values{"grant_type": {"client_credentials"}}, 401, "invalid_client"},
		{"no credentials", "", "", url.Values{"grant_type": {"client_credentials"}}, 400, "invalid_request"},
		{"scope outside the client's set", c.ID, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {"invoices.read invoices.delete"}}, 400, "invalid_scope"},
		{"audience not registered", c.ID, secret, url.Values{"grant_type": {"client_credentials"}, "audience": {"https://other.example.com"}}, 400, "invalid_request"},
		{"password grant", c.ID, secret, url.Values{"grant_type": {"password"}, "username": {"a"}, "password": {"b"}}, 400, "unsupported_grant_type"},
		{"implicit", c.ID, secret, url.Values{"grant_type": {"implicit"}}, 400, "unsupported_grant_type"},
		{"grant the client lacks", c.ID, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"lk_rt_x.y"}}, 400, "unauthorized_client"},
		{"missing grant type", c.ID, secret, url.Values{"scope": {"invoices.read"}}, 400, "invalid_request"},
		{"public client asks for client credentials", public.ID, "", url.Values{"grant_type": {"client_credentials"}, "client_id": {public.ID}}, 400, "invalid_grant"},
		{"bad code", c.ID, secret, url.Values{"grant_type": {"authorization_code"}, "code": {"lk_ac_nope.nope"}}, 400, "unauthorized_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, h, body := f.post(t, discovery.TokenPath, tt.id, tt.secret, tt.form)
			rfc6749Error(t, status, h, body, tt.wantStatus, tt.wantCode)
			if status == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a WWW-Authenticate Basic challenge: %q", h.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestWrongSecretFailsThroughTheClientLibrary(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.backend(t, "invoices.read")
	_, err := f.cc(c.ID, "wrong", oauth2.AuthStyleInHeader).Token(t.Context())
	if errorCode(err) != "invalid_client" {
		t.Fatalf("err = %v, want invalid_client", err)
	}
}

func TestPerClientAccessTokenLifespan(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.backend(t, "", func(c *client.Client) { c.AccessTokenLifespan = client.Lifespan(2 * time.Minute) })
	tok := f.token(t, c.ID, secret)
	if left := time.Until(tok.Expiry); left < 100*time.Second || left > 2*time.Minute {
		t.Fatalf("token expires in %s, want the client's 2m", left)
	}
	d, dSecret := f.backend(t, "")
	if left := time.Until(f.token(t, d.ID, dSecret).Expiry); left < 14*time.Minute {
		t.Fatalf("token of a client without its own lifespan expires in %s, want the server's 15m", left)
	}
}

// A refused request is logged with the error the client was told, so that
// an operator can tell why a client was turned away, and never with the
// secret it sent.
func TestARefusedClientIsLoggedWithWhyAndWithoutItsSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, _ := f.backend(t, "")
	const guess = "a-wrong-secret-that-must-not-be-logged"
	status, _, _ := f.post(t, "/oauth2/token", c.ID, guess, url.Values{"grant_type": {"client_credentials"}})
	if status != http.StatusUnauthorized {
		t.Fatalf("a wrong secret: %d", status)
	}
	status, _, _ = f.post(t, "/oauth2/token", c.ID, "", url.Values{"grant_type": {"password"}})
	if status != http.StatusBadRequest && status != http.StatusUnauthorized {
		t.Fatalf("an unsupported grant: %d", status)
	}
	logs := f.logs.String()
	for _, want := range []string{`msg="oauth request refused"`, "status=401", "error=invalid_client", "error=unsupported_grant_type", "description="} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, guess) {
		t.Errorf("the log holds the secret the client sent:\n%s", logs)
	}
}

// A secret client may send its secret either way, in the Authorization
// header or in the body, whichever it registered (libraries pick their own
// default: openid-client posts it); a client marked strict is held to its
// registered method, and the refusal says which method that is.
func TestASecretClientMaySendItsSecretEitherWayUnlessStrict(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tt := range []struct {
		registered string
		style      oauth2.AuthStyle
	}{
		{client.AuthSecretBasic, oauth2.AuthStyleInParams},
		{client.AuthSecretPost, oauth2.AuthStyleInHeader},
	} {
		c, secret := f.backend(t, "invoices.read", func(c *client.Client) { c.TokenEndpointAuthMethod = tt.registered })
		if _, err := f.cc(c.ID, secret, tt.style).Token(t.Context()); err != nil {
			t.Errorf("a %s client sending its secret the other way: %v", tt.registered, err)
		}
		strict, strictSecret := f.backend(t, "invoices.read", func(c *client.Client) {
			c.TokenEndpointAuthMethod, c.StrictAuthMethod = tt.registered, true
		})
		_, err := f.cc(strict.ID, strictSecret, tt.style).Token(t.Context())
		if errorCode(err) != "invalid_client" || !strings.Contains(err.Error(), tt.registered) {
			t.Errorf("a strict %s client sending its secret the other way: %v, want invalid_client naming %s", tt.registered, err, tt.registered)
		}
	}
}
