package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/discovery"
)

// keyPair is a client's signing key and the public JWKS it registers.
type keyPair struct {
	private any
	alg     jose.SignatureAlgorithm
	kid     string
	jwks    []byte
}

func newKeyPair(t *testing.T, alg jose.SignatureAlgorithm) keyPair {
	t.Helper()
	var (
		priv any
		pub  any
		err  error
	)
	switch alg {
	case jose.RS256:
		var k *rsa.PrivateKey
		k, err = rsa.GenerateKey(rand.Reader, 2048)
		priv, pub = k, k.Public()
	case jose.ES256:
		var k *ecdsa.PrivateKey
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		priv, pub = k, k.Public()
	}
	if err != nil {
		t.Fatal(err)
	}
	kid := rand.Text()
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Algorithm: string(alg), Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{private: priv, alg: alg, kid: kid, jwks: set}
}

// assertion signs a client assertion (RFC 7523 §3) for clientID.
func (k keyPair) assertion(t *testing.T, clientID, audience string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	raw, err := josejwt.Signed(s).Claims(josejwt.Claims{
		Issuer:   clientID,
		Subject:  clientID,
		Audience: josejwt.Audience{audience},
		ID:       rand.Text(),
		IssuedAt: josejwt.NewNumericDate(now),
		Expiry:   josejwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// withAssertion is a client-credentials configuration that authenticates
// with a signed assertion instead of a secret.
func (f *fixture) withAssertion(clientID, assertion string) *clientcredentials.Config {
	c := f.cc(clientID, "", oauth2.AuthStyleInParams)
	c.EndpointParams = map[string][]string{
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	return c
}

func TestPrivateKeyJWT(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs, rsSecret := f.resourceServer(t)
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			key := newKeyPair(t, alg)
			c, secret := f.backend(t, "reports.read", func(c *client.Client) {
				c.TokenEndpointAuthMethod = client.AuthPrivateKeyJWT
				c.TokenEndpointAuthSigningAlg = string(alg)
				c.JWKS = key.jwks
			})
			if secret != "" {
				t.Fatal("a private_key_jwt client was given a secret")
			}
			for _, aud := range []string{f.issuer + discovery.TokenPath, f.issuer} {
				tok, err := f.withAssertion(c.ID, key.assertion(t, c.ID, aud)).Token(t.Context())
				if err != nil {
					t.Fatalf("assertion for audience %s: %v", aud, err)
				}
				if got := f.introspect(t, rs.ID, rsSecret, tok.AccessToken); got["active"] != true || got["scope"] != "reports.read" {
					t.Fatalf("token from an assertion: %v", got)
				}
			}
		})
	}
}

func TestPrivateKeyJWTRejects(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := newKeyPair(t, jose.RS256)
	c, _ := f.backend(t, "", func(c *client.Client) {
		c.TokenEndpointAuthMethod = client.AuthPrivateKeyJWT
		c.JWKS = key.jwks
	})
	used := key.assertion(t, c.ID, f.issuer)
	if _, err := f.withAssertion(c.ID, used).Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	stranger := newKeyPair(t, jose.RS256)
	stranger.kid = key.kid
	tests := []struct{ name, assertion string }{
		{"a replayed assertion", used},
		{"an assertion signed by another key", stranger.assertion(t, c.ID, f.issuer)},
		{"an assertion for another server", key.assertion(t, c.ID, "https://elsewhere.example.com/token")},
		{"an assertion naming another client", key.assertion(t, "someone-else", f.issuer)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.withAssertion(c.ID, tt.assertion).Token(t.Context())
			if errorCode(err) != "invalid_client" {
				t.Fatalf("got %v, want invalid_client", err)
			}
		})
	}
	t.Run("a secret instead", func(t *testing.T) {
		_, err := f.cc(c.ID, "guess", oauth2.AuthStyleInHeader).Token(t.Context())
		if errorCode(err) != "invalid_client" {
			t.Fatalf("got %v, want invalid_client", err)
		}
	})
}

func TestConcurrentReplaysOfAnAssertionHaveOneWinner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := newKeyPair(t, jose.ES256)
	c, _ := f.backend(t, "", func(c *client.Client) {
		c.TokenEndpointAuthMethod = client.AuthPrivateKeyJWT
		c.TokenEndpointAuthSigningAlg = "ES256"
		c.JWKS = key.jwks
	})
	assertion := key.assertion(t, c.ID, f.issuer)
	errs := race(10, func() error {
		_, err := f.withAssertion(c.ID, assertion).Token(context.Background())
		return err
	})
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errorCode(err) != "invalid_client":
			t.Errorf("a replay failed with %v, want invalid_client", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of 10 concurrent uses of one assertion succeeded, want 1", won)
	}
}

func TestPrivateKeyJWTWithJWKSURI(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := newKeyPair(t, jose.RS256)
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(key.jwks)
	}))
	t.Cleanup(keys.Close)
	c, _ := f.backend(t, "", func(c *client.Client) {
		c.TokenEndpointAuthMethod = client.AuthPrivateKeyJWT
		c.JWKSURI = keys.URL
	})
	if _, err := f.withAssertion(c.ID, key.assertion(t, c.ID, f.issuer)).Token(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// A client that authenticates with private_key_jwt at introspection or
// revocation may name that endpoint as the assertion's audience, as node
// openid-client does (RFC 7523 §3: the authorization server, or the
// endpoint); an assertion made for another endpoint is still refused.
func TestPrivateKeyJWTMayNameTheEndpointItIsSentTo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	key := newKeyPair(t, jose.RS256)
	c, _ := f.backend(t, "reports.read", func(c *client.Client) {
		c.TokenEndpointAuthMethod = client.AuthPrivateKeyJWT
		c.JWKS = key.jwks
		c.IntrospectAnyToken = true
	})
	tok, err := f.withAssertion(c.ID, key.assertion(t, c.ID, f.issuer)).Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	call := func(path, aud string) (int, map[string]any) {
		status, _, body := f.post(t, path, "", "", url.Values{"token": {tok.AccessToken},
			"client_id":             {c.ID},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
			"client_assertion":      {key.assertion(t, c.ID, aud)}})
		return status, body
	}
	if status, body := call(discovery.IntrospectionPath, f.issuer+discovery.IntrospectionPath); status != http.StatusOK || body["active"] != true {
		t.Fatalf("introspection with an assertion for the introspection endpoint: %d %v", status, body)
	}
	if status, body := call(discovery.IntrospectionPath, f.issuer+discovery.RevocationPath); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("introspection with an assertion for the revocation endpoint: %d %v, want invalid_client", status, body)
	}
	if status, body := call(discovery.RevocationPath, f.issuer+discovery.RevocationPath); status != http.StatusOK {
		t.Fatalf("revocation with an assertion for the revocation endpoint: %d %v", status, body)
	}
}
