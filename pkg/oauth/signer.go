package oauth

import (
	"context"
	"encoding/json"
	"fmt"

	josev3 "github.com/go-jose/go-jose/v3"
	josejson "github.com/go-jose/go-jose/v3/json"
	"github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/pkg/keys"
)

// signer is fosite's JWT signer over Latchkey's key manager. It signs with
// the current key of its algorithm, naming it in the kid header, and
// verifies with whichever published key the kid names. fosite's own signer
// knows a single key, so tokens signed before a rotation would stop
// verifying the moment a new key takes over.
type signer struct {
	keys *keys.Manager
	alg  jose.SignatureAlgorithm
	// DefaultSigner supplies the hashing that at_hash and c_hash use: SHA-256,
	// right for RS256 and ES256, the ID token algorithms. EdDSA, which
	// signs only access tokens, needs no such hash.
	jwt.DefaultSigner
}

var _ jwt.Signer = (*signer)(nil)

func newSigner(m *keys.Manager, alg jose.SignatureAlgorithm) *signer {
	return &signer{keys: m, alg: alg}
}

// algHeader carries, among the headers fosite hands the signer, the
// algorithm a client registered for its ID tokens (stored with the
// session) or its JWT access tokens (set by the strategy at each issue).
// fosite drops an "alg" header, so the choice travels under this name, and
// Generate takes it out before signing.
const algHeader = "latchkey_alg"

// Generate signs claims with the current key of the signer's algorithm, or
// of the one algHeader names. Passing the key as a JWK with its kid makes
// go-jose write that kid, so header and key cannot disagree even when a
// rotation lands between two calls.
func (s *signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	claims = exactNumbers(claims).(jwt.MapClaims)
	alg := s.alg
	h := header.ToMap()
	if a, ok := h[algHeader].(string); ok {
		alg = jose.SignatureAlgorithm(a)
		delete(h, algHeader)
		header = &jwt.Headers{Extra: h}
	}
	k, err := s.keys.Current(alg)
	if err != nil {
		return "", "", err
	}
	jwk := &josev3.JSONWebKey{Key: k.Signer, KeyID: k.ID, Algorithm: string(k.Algorithm), Use: "sig"}
	d := jwt.DefaultSigner{GetPrivateKey: func(context.Context) (any, error) { return jwk, nil }}
	return d.Generate(ctx, claims, header)
}

// exactNumbers returns v with every encoding/json Number in it, at any
// depth, as go-jose's own Number. Stored sessions keep their numbers as
// json.Number so that an integer claim such as updated_at stays an integer
// (storage/postgres); go-jose, which encodes the token, writes a JSON
// number only from its own type, and would write the other as a string.
// Maps and slices are copied, never changed: they may be the session's own.
func exactNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		return josejson.Number(t)
	case jwt.MapClaims:
		return jwt.MapClaims(exactNumbers(map[string]any(t)).(map[string]any))
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = exactNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = exactNumbers(e)
		}
		return out
	}
	return v
}

// Decode parses a token and verifies its signature with the published key
// its kid names, insisting on that key's algorithm so that a token cannot
// pick a weaker one, or another key's.
func (s *signer) Decode(_ context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := s.keys.Lookup(kid)
		if !ok {
			return nil, fmt.Errorf("no published key with kid %q", kid)
		}
		if string(t.Method) != string(k.Algorithm) {
			return nil, fmt.Errorf("token algorithm %s does not match key %s (%s)", t.Method, k.ID, k.Algorithm)
		}
		// As a JWK: fosite hands go-jose a pointer to what this returns,
		// and go-jose cannot verify with a pointer to an Ed25519 key (a
		// slice type), while it takes a *JSONWebKey of every key type.
		return &josev3.JSONWebKey{Key: k.Signer.Public(), KeyID: k.ID, Algorithm: string(k.Algorithm)}, nil
	})
}

// Validate verifies a token and returns its signature.
func (s *signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}
