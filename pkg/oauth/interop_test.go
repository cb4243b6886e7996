package oauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/latchkey/latchkey/internal/openidclient"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/discovery"
)

// These tests are issue 19's interoperability edges, each driven by the
// library that hit it (openid-client, the Node.js library, and zitadel/oidc)
// rather than by a Go client written to Latchkey's expectations.

// openIDClient is one call through internal/openidclient's interop.mjs.
type openIDClient struct {
	f      *fixture
	id     string
	secret string
	// auth is "default" (openid-client's own choice, the body), "basic"
	// or "private_key_jwt".
	auth string
	jwk  json.RawMessage
	// assertionAud, for private_key_jwt, is "" (openid-client's own: the
	// issuer), "endpoint" (the URL being called) or a URL.
	assertionAud string
}

// call runs op and decodes what the library returned; err is the
// library's error, such as the OAuth error it was answered.
func (c openIDClient) call(t *testing.T, op string, params map[string]string) (map[string]any, error) {
	t.Helper()
	input := map[string]any{
		"server": map[string]string{
			"issuer":                 c.f.issuer,
			"token_endpoint":         c.f.issuer + discovery.TokenPath,
			"introspection_endpoint": c.f.issuer + discovery.IntrospectionPath,
			"revocation_endpoint":    c.f.issuer + discovery.RevocationPath,
		},
		"client_id": c.id, "client_secret": c.secret, "auth": c.auth, "op": op,
		"jwk": c.jwk, "assertion_aud": c.assertionAud,
	}
	for k, v := range params {
		input[k] = v
	}
	var out map[string]any
	err := openidclient.Try(t, "interop.mjs", input, &out)
	return out, err
}

func TestOpenIDClientSendsItsSecretInTheBodyToAClientRegisteredForBasic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Registered with the default method, client_secret_basic; openid-client
	// posts the secret unless told otherwise.
	c, secret := f.backend(t, "invoices.read")
	if c.TokenEndpointAuthMethod != client.AuthSecretBasic {
		t.Fatalf("a backend is registered with %s", c.TokenEndpointAuthMethod)
	}
	tok, err := openIDClient{f: f, id: c.ID, secret: secret, auth: "default"}.call(t, "client_credentials", map[string]string{"scope": "invoices.read"})
	if err != nil {
		t.Fatalf("openid-client's client credentials grant with the secret in the body: %v", err)
	}
	rs, rsSecret := f.resourceServer(t)
	got, err := openIDClient{f: f, id: rs.ID, secret: rsSecret, auth: "default"}.call(t, "introspect", map[string]string{"token": tok["access_token"].(string)})
	if err != nil || got["active"] != true {
		t.Fatalf("openid-client's introspection with the secret in the body: %v %v", got, err)
	}

	// A strict client is held to its method, and the library's error says
	// which one was expected; the operator's log says why, without the
	// secret.
	strict, strictSecret := f.backend(t, "invoices.read", func(c *client.Client) { c.StrictAuthMethod = true })
	_, err = openIDClient{f: f, id: strict.ID, secret: strictSecret, auth: "default"}.call(t, "client_credentials", map[string]string{"scope": "invoices.read"})
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), client.AuthSecretBasic) {
		t.Fatalf("a strict basic client posting its secret through openid-client: %v, want invalid_client naming %s", err, client.AuthSecretBasic)
	}
	logs := f.logs.String()
	for _, want := range []string{"oauth request refused", "error=invalid_client", client.AuthSecretBasic} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, strictSecret) {
		t.Error("the log holds the secret openid-client sent")
	}
	if _, err := (openIDClient{f: f, id: strict.ID, secret: strictSecret, auth: "basic"}).call(t, "client_credentials", map[string]string{"scope": "invoices.read"}); err != nil {
		t.Fatalf("a strict basic client using basic: %v", err)
	}
}

func TestOpenIDClientRefreshesWithItsSecretInTheBodyAndIntrospectsTheRefreshTokenPerRFC7662(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, secret, tok := f.signedIn(t)
	if app.TokenEndpointAuthMethod != client.AuthSecretBasic {
		t.Fatalf("the web app is registered with %s", app.TokenEndpointAuthMethod)
	}
	refreshed, err := openIDClient{f: f, id: app.ID, secret: secret, auth: "default"}.call(t, "refresh", map[string]string{"token": tok.RefreshToken})
	if err != nil {
		t.Fatalf("openid-client's refresh with the secret in the body: %v", err)
	}
	refreshToken, _ := refreshed["refresh_token"].(string)
	if refreshToken == "" || refreshToken == tok.RefreshToken {
		t.Fatalf("refresh answered %v, want a new refresh token", refreshed)
	}
	// The app asks about its own refresh token: RFC 7662 §2.2's token_type
	// is one of RFC 6749 §7.1's access token types, which a refresh token
	// has none of.
	got, err := openIDClient{f: f, id: app.ID, secret: secret, auth: "default"}.call(t, "introspect", map[string]string{"token": refreshToken})
	if err != nil || got["active"] != true {
		t.Fatalf("openid-client's introspection of the refresh token: %v %v", got, err)
	}
	if tt, ok := got["token_type"]; ok {
		t.Errorf("the refresh token is described with token_type %v", tt)
	}
}

func TestOpenIDClientPrivateKeyJWTMayNameTheEndpointItCalls(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kid := rand.Text()
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: "ES256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := f.backend(t, "", func(c *client.Client) {
		c.TokenEndpointAuthMethod = client.AuthPrivateKeyJWT
		c.TokenEndpointAuthSigningAlg = "ES256"
		c.JWKS = jwks
		c.IntrospectAnyToken = true
	})
	backend, backendSecret := f.backend(t, "invoices.read")
	token := f.token(t, backend.ID, backendSecret, "invoices.read").AccessToken
	as := func(aud string) openIDClient {
		return openIDClient{f: f, id: rs.ID, auth: "private_key_jwt", jwk: jwk, assertionAud: aud}
	}

	// openid-client's own assertion names the issuer.
	if got, err := as("").call(t, "introspect", map[string]string{"token": token}); err != nil || got["active"] != true {
		t.Fatalf("introspection with openid-client's own assertion: %v %v", got, err)
	}
	// Libraries such as Authlib name the URL they call.
	if got, err := as("endpoint").call(t, "introspect", map[string]string{"token": token}); err != nil || got["active"] != true {
		t.Fatalf("introspection with an assertion for the introspection endpoint: %v %v", got, err)
	}
	// Only a token's own client may revoke it (RFC 7009 §2.1).
	own, err := as("endpoint").call(t, "client_credentials", nil)
	if err != nil {
		t.Fatalf("client credentials with an assertion for the token endpoint: %v", err)
	}
	if _, err := as("endpoint").call(t, "revoke", map[string]string{"token": own["access_token"].(string)}); err != nil {
		t.Fatalf("revocation with an assertion for the revocation endpoint: %v", err)
	}
	// Any other audience is still refused: an assertion made for another
	// server, or for another of this server's endpoints, is not one for
	// this call.
	for _, aud := range []string{"https://other.example.com/oauth2/introspect", f.issuer + discovery.RevocationPath} {
		if _, err := as(aud).call(t, "introspect", map[string]string{"token": token}); err == nil || !strings.Contains(err.Error(), "invalid_client") {
			t.Errorf("introspection with an assertion for %s: %v, want invalid_client", aud, err)
		}
	}
}

func TestZitadelRefreshesWithItsSecretInTheBodyForAClientRegisteredForBasic(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, secret, tok := f.signedIn(t)
	if app.TokenEndpointAuthMethod != client.AuthSecretBasic {
		t.Fatalf("the web app is registered with %s", app.TokenEndpointAuthMethod)
	}
	// zitadel/oidc's relying party, as its users build it: it lets
	// x/oauth2 find the method for the code, but its own refresh request
	// posts client_id and client_secret in the body.
	cfg := f.web(app, secret)
	cfg.Scopes = []string{"offline_access"}
	relyingParty, err := rp.NewRelyingPartyOAuth(cfg)
	if err != nil {
		t.Fatal(err)
	}
	refreshed, err := rp.RefreshTokens[*oidc.IDTokenClaims](t.Context(), relyingParty, tok.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("zitadel's refresh with the secret in the body: %v", err)
	}
	if refreshed.AccessToken == "" || refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatalf("zitadel's refresh got %+v, want new tokens", refreshed.Token)
	}
}
