package logout_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/logout"
)

func TestALogoutTokenIsTypedShortLivedAndHasNoNonce(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	raw, err := logout.Sign(keys.Key{ID: "k1", Algorithm: jose.ES256, Signer: k},
		logout.NewClaims("https://id.example.com", "notes", "sub-1", "SID1", "jti-1", now))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	if h.KeyID != "k1" || h.ExtraHeaders["typ"] != "logout+jwt" {
		t.Fatalf("header kid %q typ %v, want k1 and logout+jwt", h.KeyID, h.ExtraHeaders["typ"])
	}
	payload, err := jws.Verify(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"iss": "https://id.example.com", "aud": "notes", "sub": "sub-1", "sid": "SID1", "jti": "jti-1",
		"iat": float64(now.Unix()), "exp": float64(now.Add(2 * time.Minute).Unix()),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	if len(c) != len(want) {
		t.Fatalf("claims %v, want exactly %v (no nonce)", c, want)
	}
	for k, v := range want {
		if got, _ := json.Marshal(c[k]); string(got) != mustJSON(t, v) {
			t.Errorf("%s = %s, want %s", k, got, mustJSON(t, v))
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
