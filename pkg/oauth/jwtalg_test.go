package oauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
)

// invoicesAPI is the audience of the JWT access tokens in these tests.
const invoicesAPI = "https://invoices.example.com"

// jwtBackend registers a client-credentials client that gets JWT access
// tokens for invoicesAPI signed with alg ("" for the server's default).
func (f *fixture) jwtBackend(t *testing.T, alg string) (*client.Client, string) {
	t.Helper()
	return f.backend(t, "invoices.read", func(c *client.Client) {
		c.AccessTokenFormat = client.FormatJWT
		c.AccessTokenSignedResponseAlg = alg
		c.Audience = []string{invoicesAPI}
	})
}

// rawJWKS fetches the published key set and returns each key's members as
// published, by kid.
func (f *fixture) rawJWKS(t *testing.T) map[string]map[string]any {
	t.Helper()
	resp, err := http.Get(f.issuer + discovery.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var set struct{ Keys []map[string]any }
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	byKID := map[string]map[string]any{}
	for _, k := range set.Keys {
		byKID[k["kid"].(string)] = k
	}
	return byKID
}

// verifyOffline checks token as a resource server does with go-jose and
// the fetched JWKS: typ at+jwt, a kid in the set, the signature by that
// key with the key's own alg, and iss, aud and exp. It returns the header.
func (f *fixture) verifyOffline(t *testing.T, token string, wantAlg jose.SignatureAlgorithm) jose.Header {
	t.Helper()
	parsed, err := josejwt.ParseSigned(token, []jose.SignatureAlgorithm{wantAlg})
	if err != nil {
		t.Fatalf("token is not a JWS signed with %s: %v", wantAlg, err)
	}
	h := parsed.Headers[0]
	if h.ExtraHeaders["typ"] != "at+jwt" {
		t.Fatalf("typ = %v, want at+jwt", h.ExtraHeaders["typ"])
	}
	set := f.jwks(t)
	published := set.Key(h.KeyID)
	if len(published) != 1 || published[0].Algorithm != string(wantAlg) {
		t.Fatalf("kid %q names %v in the JWKS, want one %s key", h.KeyID, published, wantAlg)
	}
	var claims josejwt.Claims
	if err := parsed.Claims(published[0].Key, &claims); err != nil {
		t.Fatalf("signature does not verify with the published key: %v", err)
	}
	if err := claims.ValidateWithLeeway(josejwt.Expected{Issuer: f.issuer, AnyAudience: josejwt.Audience{invoicesAPI}}, 0); err != nil {
		t.Fatal(err)
	}
	return h
}

// goOIDCVerifier is go-oidc's verifier over the fetched JWKS, accepting
// only alg, with the API as the audience: what a Go resource server that
// verifies JWT access tokens with go-oidc runs.
func (f *fixture) goOIDCVerifier(ctx context.Context, alg string) *oidc.IDTokenVerifier {
	keySet := oidc.NewRemoteKeySet(ctx, f.issuer+discovery.JWKSPath)
	return oidc.NewVerifier(f.issuer, keySet, &oidc.Config{ClientID: invoicesAPI, SupportedSigningAlgs: []string{alg}})
}

func TestJWTAccessTokensAreSignedWithTheClientsAlgorithm(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// What RFC 7518 §3.1 and RFC 8037 §3.1 say each key is.
	wantKey := map[string]map[string]string{
		"RS256": {"kty": "RSA"},
		"ES256": {"kty": "EC", "crv": "P-256"},
		"EdDSA": {"kty": "OKP", "crv": "Ed25519"},
	}
	for _, tc := range []struct{ registered, want string }{
		{"", "RS256"}, // the server's default, as before
		{"RS256", "RS256"},
		{"ES256", "ES256"},
		{"EdDSA", "EdDSA"},
	} {
		t.Run("registered "+tc.registered, func(t *testing.T) {
			t.Parallel()
			c, secret := f.jwtBackend(t, tc.registered)
			token := f.token(t, c.ID, secret).AccessToken

			h := f.verifyOffline(t, token, jose.SignatureAlgorithm(tc.want))
			current, err := f.keys.Current(jose.SignatureAlgorithm(tc.want))
			if err != nil || h.KeyID != current.ID {
				t.Fatalf("kid %q, want the current %s key %q (err %v)", h.KeyID, tc.want, current.ID, err)
			}
			member := f.rawJWKS(t)[h.KeyID]
			for name, want := range wantKey[tc.want] {
				if member[name] != want {
					t.Errorf("JWKS key %s has %s %v, want %q", h.KeyID, name, member[name], want)
				}
			}
			if member["alg"] != tc.want || member["use"] != "sig" || member["d"] != nil {
				t.Errorf("JWKS key %s = %v, want alg %s, use sig and no private member", h.KeyID, member, tc.want)
			}

			// go-oidc verifies it, and refuses it when told to expect any
			// other algorithm.
			if _, err := f.goOIDCVerifier(t.Context(), tc.want).Verify(t.Context(), token); err != nil {
				t.Fatalf("go-oidc with %s: %v", tc.want, err)
			}
			for other := range wantKey {
				if other == tc.want {
					continue
				}
				if _, err := f.goOIDCVerifier(t.Context(), other).Verify(t.Context(), token); err == nil {
					t.Errorf("go-oidc expecting only %s accepted a %s token", other, tc.want)
				}
			}

			got := f.introspect(t, c.ID, secret, token)
			if got["active"] != true || got["client_id"] != c.ID {
				t.Fatalf("introspection of a %s token: %v", tc.want, got)
			}
		})
	}
}

// retoken returns token with its header replaced by edit's change to it,
// and its payload and signature as they were.
func retoken(t *testing.T, token string, edit func(h map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	edit(h)
	raw, err = json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	parts[0] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func TestJWTWithAnAlteredAlgOrKidIsInactive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	rs, rsSecret := f.resourceServer(t)
	// An older EdDSA key, still published, whose kid a forger could name.
	oldEd, _ := f.keys.Current(jose.EdDSA)
	if _, err := f.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	kidOf := func(alg jose.SignatureAlgorithm) string {
		k, err := f.keys.Current(alg)
		if err != nil {
			t.Fatal(err)
		}
		return k.ID
	}

	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			c, secret := f.jwtBackend(t, alg)
			token := f.token(t, c.ID, secret).AccessToken
			if got := f.introspect(t, rs.ID, rsSecret, token); got["active"] != true {
				t.Fatalf("the token as issued: %v, want active", got)
			}
			// Every forgery keeps the signature, which the token is stored
			// under, so each is found and must fail verification.
			forgeries := map[string]func(h map[string]any){
				"alg none":  func(h map[string]any) { h["alg"] = "none" },
				"alg HS256": func(h map[string]any) { h["alg"] = "HS256" },
				"no kid":    func(h map[string]any) { delete(h, "kid") },
				"unknown kid": func(h map[string]any) {
					h["kid"] = "no-such-key"
				},
				"kid of the old EdDSA key": func(h map[string]any) { h["kid"] = oldEd.ID },
				"typ JWT":                  func(h map[string]any) { h["typ"] = "JWT" },
			}
			for _, other := range keys.Algorithms {
				if string(other) == alg {
					continue
				}
				forgeries["alg "+string(other)+" with the same kid"] = func(h map[string]any) { h["alg"] = string(other) }
				forgeries["alg and kid of the "+string(other)+" key"] = func(h map[string]any) {
					h["alg"], h["kid"] = string(other), kidOf(other)
				}
				forgeries["kid of the "+string(other)+" key"] = func(h map[string]any) { h["kid"] = kidOf(other) }
			}
			for name, edit := range forgeries {
				forged := retoken(t, token, edit)
				if got := f.introspect(t, rs.ID, rsSecret, forged); got["active"] != false || len(got) != 1 {
					t.Errorf("%s: introspection answered %v, want exactly {active: false}", name, got)
				}
			}
		})
	}
}

func TestKeyRotationKeepsOldEdDSATokensVerifiable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.jwtBackend(t, "EdDSA")
	old := f.token(t, c.ID, secret).AccessToken
	oldKID := f.verifyOffline(t, old, jose.EdDSA).KeyID

	if _, err := f.keys.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	fresh := f.token(t, c.ID, secret).AccessToken
	if kid := f.verifyOffline(t, fresh, jose.EdDSA).KeyID; kid == oldKID {
		t.Fatal("a token issued after the rotation is signed by the old EdDSA key")
	}
	// The old key stays published: resource servers verify the old token
	// offline, with go-jose and with go-oidc, and introspection says active.
	f.verifyOffline(t, old, jose.EdDSA)
	if _, err := f.goOIDCVerifier(t.Context(), oidc.EdDSA).Verify(t.Context(), old); err != nil {
		t.Fatalf("go-oidc on the token signed before the rotation: %v", err)
	}
	if got := f.introspect(t, c.ID, secret, old); got["active"] != true {
		t.Fatalf("EdDSA token signed before a rotation: %v, want active", got)
	}

	// Once the old key is retired, its tokens stop verifying.
	if _, err := f.keys.Retire(t.Context(), oldKID); err != nil {
		t.Fatal(err)
	}
	if set := f.jwks(t); len(set.Key(oldKID)) != 0 {
		t.Fatal("the retired EdDSA key is still published")
	}
	if got := f.introspect(t, c.ID, secret, old); got["active"] != false {
		t.Fatalf("token of a retired EdDSA key: %v, want inactive", got)
	}
	if got := f.introspect(t, c.ID, secret, fresh); got["active"] != true {
		t.Fatalf("token of the current EdDSA key after retiring the old one: %v", got)
	}
}

func TestChangingAClientsAlgorithmKeepsItsTokensValid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.jwtBackend(t, "")
	before := f.token(t, c.ID, secret).AccessToken
	f.verifyOffline(t, before, jose.RS256)

	if _, _, err := f.clients.Update(t.Context(), c.ID, func(c *client.Client) error {
		c.AccessTokenSignedResponseAlg = "EdDSA"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after := f.token(t, c.ID, secret).AccessToken
	f.verifyOffline(t, after, jose.EdDSA)
	for _, tok := range []string{before, after} {
		if got := f.introspect(t, c.ID, secret, tok); got["active"] != true {
			t.Fatalf("token after the client changed its algorithm: %v, want active", got)
		}
	}
}

// Every algorithm a client may choose has a key to sign with.
func TestEveryAccessTokenAlgorithmHasASigningKey(t *testing.T) {
	for _, alg := range client.AccessTokenAlgorithms {
		if !slices.Contains(keys.Algorithms, jose.SignatureAlgorithm(alg)) {
			t.Errorf("clients may choose %s, for which pkg/keys keeps no key", alg)
		}
	}
	for _, alg := range client.IDTokenAlgorithms {
		if !slices.Contains(keys.Algorithms, jose.SignatureAlgorithm(alg)) {
			t.Errorf("ID tokens may be signed with %s, for which pkg/keys keeps no key", alg)
		}
	}
}

// BenchmarkSignAccessToken measures what the JWT strategy spends on one
// access token's signature with each algorithm, the part of issuance the
// algorithm changes.
func BenchmarkSignAccessToken(b *testing.B) {
	store := pgtest.Store(b)
	box, err := seal.New([][]byte{testSecret})
	if err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	km := keys.NewManager(store, box, logger, audit.New(store, logger))
	if err := km.Init(b.Context()); err != nil {
		b.Fatal(err)
	}
	s := newSigner(km, jose.RS256)
	claims := jwt.MapClaims{"iss": "https://id.example.com", "sub": "billing", "aud": []string{invoicesAPI},
		"client_id": "billing", "scope": "invoices.read", "jti": "3f0c5e0a", "iat": 1_700_000_000, "exp": 1_700_000_900}
	for _, alg := range keys.Algorithms {
		b.Run(string(alg), func(b *testing.B) {
			for b.Loop() {
				h := &jwt.Headers{Extra: map[string]any{"typ": "at+jwt", algHeader: string(alg)}}
				if _, _, err := s.Generate(b.Context(), claims, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
