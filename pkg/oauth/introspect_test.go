package oauth

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/discovery"
)

func TestIntrospection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs, rsSecret := f.resourceServer(t)
	for _, format := range []string{client.FormatOpaque, client.FormatJWT} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			c, secret := f.backend(t, "invoices.read", func(c *client.Client) { c.AccessTokenFormat = format })
			short, shortSecret := f.backend(t, "invoices.read", func(c *client.Client) {
				c.AccessTokenFormat = format
				c.AccessTokenLifespan = client.Lifespan(time.Second)
			})
			valid := f.token(t, c.ID, secret).AccessToken
			revoked := f.token(t, c.ID, secret).AccessToken
			if status := f.revoke(t, c.ID, secret, revoked, ""); status != http.StatusOK {
				t.Fatalf("revoke: %d", status)
			}
			expired := f.token(t, short.ID, shortSecret).AccessToken
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(2 * time.Second)))

			got := f.introspect(t, rs.ID, rsSecret, valid)
			for _, member := range []string{"active", "scope", "client_id", "sub", "aud", "iss", "exp", "iat", "token_type"} {
				if _, ok := got[member]; !ok {
					t.Errorf("active token's introspection lacks %q: %v", member, got)
				}
			}
			if got["active"] != true || got["iss"] != f.issuer || got["token_type"] != "Bearer" || got["client_id"] != c.ID {
				t.Errorf("introspection = %v", got)
			}
			if exp, _ := got["exp"].(float64); time.Until(time.Unix(int64(exp), 0)) < 14*time.Minute {
				t.Errorf("exp = %v, want about 15 minutes away", got["exp"])
			}

			inactive := map[string]string{
				"expired":   expired,
				"revoked":   revoked,
				"unknown":   accessPrefix + "AAAA.BBBB",
				"malformed": "not a token at all",
				"forged":    valid[:len(valid)-4] + "AAAA",
				// The stored signature with other content: only the
				// integrity check, not the lookup, can catch this.
				"tampered":  tamper(valid),
				"empty-ish": ".",
			}
			for name, token := range inactive {
				if got := f.introspect(t, rs.ID, rsSecret, token); len(got) != 1 || got["active"] != false {
					t.Errorf("%s token: introspection = %v, want exactly {\"active\": false}", name, got)
				}
			}
		})
	}
}

// tamper changes one character of a token before its last dot, keeping the
// part the token is stored under.
func tamper(token string) string {
	i := strings.LastIndexByte(token, '.') / 2
	b := []byte(token)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestIntrospectionNeedsAConfidentialClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.backend(t, "")
	token := f.token(t, c.ID, secret).AccessToken
	public, _ := f.register(t, client.Client{
		GrantTypes: []string{client.GrantAuthorizationCode}, RedirectURIs: []string{"http://127.0.0.1/cb"},
		TokenEndpointAuthMethod: client.AuthNone,
	})
	tests := []struct {
		name   string
		do     func() (int, http.Header, map[string]any)
		status int
		code   string
	}{
		{"no credentials", func() (int, http.Header, map[string]any) {
			return f.post(t, discovery.IntrospectionPath, "", "", url.Values{"token": {token}})
		}, 400, "invalid_request"},
		{"wrong secret", func() (int, http.Header, map[string]any) {
			return f.post(t, discovery.IntrospectionPath, c.ID, "wrong", url.Values{"token": {token}})
		}, 401, "invalid_client"},
		{"public client", func() (int, http.Header, map[string]any) {
			return f.post(t, discovery.IntrospectionPath, "", "", url.Values{"token": {token}, "client_id": {public.ID}})
		}, 401, "invalid_client"},
		{"a bearer token instead of client credentials", func() (int, http.Header, map[string]any) {
			req, _ := http.NewRequest(http.MethodPost, f.issuer+discovery.IntrospectionPath, strings.NewReader(url.Values{"token": {"x"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			return resp.StatusCode, resp.Header, body
		}, 401, "invalid_client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, body := tt.do()
			rfc6749Error(t, status, h, body, tt.status, tt.code)
		})
	}
}

func TestRefreshTokenIsDescribedOnlyToItsClient(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, appSecret, tok := f.signedIn(t)
	got := f.introspect(t, app.ID, appSecret, tok.RefreshToken)
	if got["active"] != true || got["sub"] != f.user.ID {
		t.Fatalf("own refresh token: %v", got)
	}
	// RFC 7662 §2.2: token_type is an RFC 6749 §7.1 access token type,
	// which a refresh token does not have.
	if tt, ok := got["token_type"]; ok {
		t.Errorf("own refresh token has token_type %v; want none", tt)
	}
	other, otherSecret := f.backend(t, "")
	if got := f.introspect(t, other.ID, otherSecret, tok.RefreshToken); got["active"] != false || len(got) != 1 {
		t.Fatalf("another client's refresh token: %v, want inactive", got)
	}
}

// jwks fetches the published key set as a resource server would.
func (f *fixture) jwks(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(f.issuer + discovery.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func TestJWTAccessTokenVerifiesAgainstTheJWKS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.backend(t, "invoices.read", func(c *client.Client) {
		c.AccessTokenFormat = client.FormatJWT
		c.Audience = []string{"https://invoices.example.com"}
	})
	token := f.token(t, c.ID, secret).AccessToken

	parsed, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := parsed.Headers[0]
	if h.ExtraHeaders["typ"] != "at+jwt" {
		t.Fatalf("typ = %v, want at+jwt (RFC 9068 §2.1)", h.ExtraHeaders["typ"])
	}
	set := f.jwks(t)
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q names %d keys in the JWKS", h.KeyID, len(keys))
	}
	var claims struct {
		josejwt.Claims
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	}
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("signature does not verify with the published key: %v", err)
	}
	if err := claims.ValidateWithLeeway(josejwt.Expected{
		Issuer:      f.issuer,
		Subject:     c.ID,
		AnyAudience: josejwt.Audience{"https://invoices.example.com"},
	}, 0); err != nil {
		t.Fatal(err)
	}
	if claims.ClientID != c.ID || claims.Scope != "invoices.read" || claims.ID == "" || claims.IssuedAt == nil || claims.Expiry == nil {
		t.Fatalf("claims %+v lack what RFC 9068 §2.2 requires", claims)
	}

	// Rotation: the new key signs from now on, and the token signed by the
	// old one still introspects as active because the old key is published.
	if _, err := f.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := f.introspect(t, c.ID, secret, token); got["active"] != true {
		t.Fatalf("JWT signed before a rotation: %v, want active", got)
	}
	fresh := f.token(t, c.ID, secret).AccessToken
	freshParsed, _ := josejwt.ParseSigned(fresh, []jose.SignatureAlgorithm{jose.RS256})
	if freshParsed.Headers[0].KeyID == h.KeyID {
		t.Fatal("a token issued after the rotation is still signed by the old key")
	}
	if f.revoke(t, c.ID, secret, fresh, "access_token") != http.StatusOK {
		t.Fatal("revoking a JWT access token failed")
	}
	if got := f.introspect(t, c.ID, secret, fresh); got["active"] != false {
		t.Fatalf("revoked JWT: %v", got)
	}
}

func TestJWTSignedByAnUnpublishedKeyIsInactive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.backend(t, "", func(c *client.Client) { c.AccessTokenFormat = client.FormatJWT })
	token := f.token(t, c.ID, secret).AccessToken
	old := f.jwks(t).Keys
	if _, err := f.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, k := range old {
		if k.Algorithm == string(jose.RS256) {
			if _, err := f.keys.Retire(t.Context(), k.KeyID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := f.introspect(t, c.ID, secret, token); got["active"] != false {
		t.Fatalf("token signed by a retired key: %v, want inactive", got)
	}
	if slices.ContainsFunc(f.jwks(t).Keys, func(k jose.JSONWebKey) bool { return k.KeyID == old[0].KeyID && k.Algorithm == "RS256" }) {
		t.Fatal("retired key still published")
	}
}
