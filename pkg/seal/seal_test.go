package seal_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/seal"
)

var (
	oldSecret   = []byte("old-secret-old-secret-old-secret-0")
	newSecret   = []byte("new-secret-new-secret-new-secret-1")
	otherSecret = []byte("someone-elses-secret-entirely-2222")
)

func mustBox(t *testing.T, secrets ...[]byte) *seal.Box {
	t.Helper()
	b, err := seal.New(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpenRoundTrip(t *testing.T) {
	b := mustBox(t, newSecret)
	plain := []byte("private key bytes")
	sealed := b.Seal(plain, []byte("kid-1"))
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed value contains the plaintext")
	}
	got, err := b.Open(sealed, []byte("kid-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, want %q", got, plain)
	}
	if again := b.Seal(plain, []byte("kid-1")); bytes.Equal(again, sealed) {
		t.Fatal("two seals of one value are identical: nonce is not random")
	}
}

func TestRotatedSecretStillOpens(t *testing.T) {
	sealed := mustBox(t, oldSecret).Seal([]byte("v"), nil)
	rotated := mustBox(t, newSecret, oldSecret)
	if _, err := rotated.Open(sealed, nil); err != nil {
		t.Fatalf("value sealed under the old secret does not open after rotation: %v", err)
	}
	if !rotated.NeedsReseal(sealed) {
		t.Fatal("NeedsReseal = false for a value sealed under a non-current secret")
	}
	if rotated.NeedsReseal(rotated.Seal([]byte("v"), nil)) {
		t.Fatal("NeedsReseal = true for a value sealed under the current secret")
	}
}

func TestResealMovesAValueToTheCurrentSecret(t *testing.T) {
	sealed := mustBox(t, oldSecret).Seal([]byte("v"), []byte("kid-1"))
	rotated := mustBox(t, newSecret, oldSecret)
	resealed, err := rotated.Reseal(sealed, []byte("kid-1"))
	if err != nil || resealed == nil {
		t.Fatalf("Reseal = %x, %v; want a new value", resealed, err)
	}
	if got, err := mustBox(t, newSecret).Open(resealed, []byte("kid-1")); err != nil || string(got) != "v" {
		t.Fatalf("the resealed value opens with the new secret alone as %q, %v", got, err)
	}
	if again, err := rotated.Reseal(resealed, []byte("kid-1")); again != nil || err != nil {
		t.Fatalf("Reseal of a current value = %x, %v; want nil, nil", again, err)
	}
	if _, err := rotated.Reseal(sealed, []byte("kid-2")); !errors.Is(err, seal.ErrCorrupt) {
		t.Fatalf("Reseal with the wrong additional data: %v, want ErrCorrupt", err)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	b := mustBox(t, newSecret)
	sealed := b.Seal([]byte("v"), []byte("kid-1"))
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1

	tests := []struct {
		name   string
		box    *seal.Box
		sealed []byte
		ad     string
		want   error
	}{
		{"wrong secret", mustBox(t, otherSecret), sealed, "kid-1", seal.ErrUnknownSecret},
		{"other row's context", b, sealed, "kid-2", seal.ErrCorrupt},
		{"flipped bit", b, flipped, "kid-1", seal.ErrCorrupt},
		{"truncated", b, sealed[:10], "kid-1", seal.ErrCorrupt},
		{"not sealed at all", b, []byte("plain text that was never sealed"), "kid-1", seal.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.box.Open(tt.sealed, []byte(tt.ad))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Fatalf("Open returned %q alongside an error", got)
			}
		})
	}
}

func TestWrongSecretErrorDoesNotLeakSecrets(t *testing.T) {
	sealed := mustBox(t, oldSecret).Seal([]byte("v"), nil)
	_, err := mustBox(t, otherSecret).Open(sealed, nil)
	if err == nil || strings.Contains(err.Error(), string(oldSecret)) || strings.Contains(err.Error(), string(otherSecret)) {
		t.Fatalf("error %v is missing or contains a secret", err)
	}
}

func TestSealedTextOpensOnlyUnchangedAndForItsPurpose(t *testing.T) {
	box, err := seal.New([][]byte{[]byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct{ ID string }
	text, err := box.SealText([]entry{{ID: "a"}}, []byte("cookie"))
	if err != nil {
		t.Fatal(err)
	}
	var got []entry
	if err := box.OpenText(text, []byte("cookie"), &got); err != nil || len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("opened %v, %v", got, err)
	}
	tampered := []byte(text)
	tampered[len(tampered)/2] ^= 1
	for name, c := range map[string]struct{ text, purpose string }{
		"tampered":        {string(tampered), "cookie"},
		"another purpose": {text, "another cookie"},
		"not base64url":   {"%%%", "cookie"},
		"empty":           {"", "cookie"},
	} {
		if err := box.OpenText(c.text, []byte(c.purpose), &got); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}
