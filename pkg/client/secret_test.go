package client_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/pkg/client"
)

func TestNewSecretIs256BitsOfUnpaddedBase64URL(t *testing.T) {
	secret, digest := client.NewSecret()
	if len(secret) != 43 {
		t.Errorf("secret %q has %d characters, want 43", secret, len(secret))
	}
	// RawURLEncoding rejects padding and the characters + and /, which would
	// need escaping in client_secret_post bodies.
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil {
		t.Fatalf("secret %q is not unpadded base64url: %v", secret, err)
	}
	if len(raw) != 32 {
		t.Errorf("secret holds %d bytes, want 32", len(raw))
	}
	if !bytes.Equal(digest, client.HashSecret(secret)) {
		t.Errorf("digest %x is not HashSecret(secret) %x", digest, client.HashSecret(secret))
	}
}

func TestNewSecretIsFreshEachTime(t *testing.T) {
	s1, d1 := client.NewSecret()
	s2, d2 := client.NewSecret()
	if s1 == s2 {
		t.Errorf("two calls both returned %q", s1)
	}
	if bytes.Equal(d1, d2) {
		t.Errorf("two calls both returned digest %x", d1)
	}
}

func TestHashSecretIsSHA256(t *testing.T) {
	// Stored digests must stay readable across releases: pin the algorithm
	// with the FIPS 180-2 test vector for "abc".
	want, _ := hex.DecodeString("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	if got := client.HashSecret("abc"); !bytes.Equal(got, want) {
		t.Errorf("HashSecret(\"abc\") = %x, want %x", got, want)
	}
}

func TestHasherHashEqualsHashSecret(t *testing.T) {
	secret, _ := client.NewSecret()
	got, err := client.Hasher{}.Hash(context.Background(), []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, client.HashSecret(secret)) {
		t.Errorf("Hasher.Hash = %x, HashSecret = %x; fosite and the Manager would disagree", got, client.HashSecret(secret))
	}
}

func TestHasherCompareAcceptsOnlyTheRightSecret(t *testing.T) {
	secret, digest := client.NewSecret()
	tests := []struct {
		name      string
		hash      []byte
		presented string
		match     bool
	}{
		{"right secret", digest, secret, true},
		{"wrong secret", digest, "not-the-secret", false},
		{"secret with one character changed", digest, secret[:42] + string(secret[42]^1), false},
		{"empty secret", digest, "", false},
		{"digest presented as the secret", digest, string(digest), false},
		// A client with no secret must never authenticate with one, not even
		// an empty one.
		{"empty stored hash, empty secret", []byte{}, "", false},
		{"nil stored hash, empty secret", nil, "", false},
		{"empty stored hash, some secret", nil, secret, false},
		{"truncated stored hash", digest[:16], secret, false},
		{"stored hash too long", append(append([]byte{}, digest...), 0), secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := client.Hasher{}.Compare(context.Background(), tt.hash, []byte(tt.presented))
			switch {
			case tt.match && err != nil:
				t.Errorf("Compare = %v, want nil", err)
			case !tt.match && !errors.Is(err, client.ErrSecretMismatch):
				t.Errorf("Compare = %v, want ErrSecretMismatch", err)
			}
		})
	}
}

func TestRotateSecretKeepsTheOldSecretForTheGracePeriod(t *testing.T) {
	oldSecret, oldDigest := client.NewSecret()
	c := client.Client{SecretHash: oldDigest}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

	newSecret := c.RotateSecret(now, time.Hour)

	if newSecret == oldSecret {
		t.Fatal("RotateSecret returned the old secret")
	}
	if !bytes.Equal(c.SecretHash, client.HashSecret(newSecret)) {
		t.Error("SecretHash is not the digest of the returned secret")
	}
	if !bytes.Equal(c.GetHashedSecret(), c.SecretHash) {
		t.Error("GetHashedSecret() is not SecretHash")
	}
	if !bytes.Equal(c.PreviousSecretHash, oldDigest) {
		t.Errorf("PreviousSecretHash = %x, want the old digest %x", c.PreviousSecretHash, oldDigest)
	}
	if want := now.Add(time.Hour); !c.PreviousSecretExpiresAt.Equal(want) {
		t.Errorf("PreviousSecretExpiresAt = %v, want %v", c.PreviousSecretExpiresAt, want)
	}
}

func TestRotatedOutSecretAuthenticatesUntilGraceEnds(t *testing.T) {
	// This is what fosite does: try the current digest, then the rotated ones.
	authenticates := func(c *client.Client, secret string) bool {
		h := client.Hasher{}
		if h.Compare(context.Background(), c.GetHashedSecret(), []byte(secret)) == nil {
			return true
		}
		for _, d := range c.GetRotatedHashes() {
			if h.Compare(context.Background(), d, []byte(secret)) == nil {
				return true
			}
		}
		return false
	}
	oldSecret, oldDigest := client.NewSecret()
	c := client.Client{SecretHash: oldDigest}
	newSecret := c.RotateSecret(time.Now(), time.Hour)
	if !authenticates(&c, newSecret) {
		t.Error("the new secret is refused")
	}
	if !authenticates(&c, oldSecret) {
		t.Error("the old secret is refused during its grace period")
	}
	c.PreviousSecretExpiresAt = time.Now().Add(-time.Second)
	if authenticates(&c, oldSecret) {
		t.Error("the old secret still works after its grace period")
	}
}

func TestRotateSecretWithoutGraceEndsTheOldSecretAtOnce(t *testing.T) {
	_, oldDigest := client.NewSecret()
	_, olderDigest := client.NewSecret()
	c := client.Client{
		SecretHash:              oldDigest,
		PreviousSecretHash:      olderDigest,
		PreviousSecretExpiresAt: time.Now().Add(time.Hour),
	}
	c.RotateSecret(time.Now(), 0)
	if c.PreviousSecretHash != nil || !c.PreviousSecretExpiresAt.IsZero() {
		t.Errorf("after rotating with no grace: PreviousSecretHash = %x, PreviousSecretExpiresAt = %v; want none",
			c.PreviousSecretHash, c.PreviousSecretExpiresAt)
	}
	if got := c.GetRotatedHashes(); got != nil {
		t.Errorf("GetRotatedHashes() = %x, want nil", got)
	}
}

func TestRotateSecretKeepsOnlyTheLastSecretRotatedOut(t *testing.T) {
	_, firstDigest := client.NewSecret()
	c := client.Client{SecretHash: firstDigest}
	now := time.Now()
	c.RotateSecret(now, time.Hour)
	secondDigest := c.SecretHash
	c.RotateSecret(now.Add(time.Minute), time.Hour)
	if !bytes.Equal(c.PreviousSecretHash, secondDigest) {
		t.Errorf("PreviousSecretHash = %x, want the second secret's digest %x", c.PreviousSecretHash, secondDigest)
	}
	if got := c.GetRotatedHashes(); len(got) != 1 || bytes.Equal(got[0], firstDigest) {
		t.Errorf("GetRotatedHashes() = %x, want only the second secret's digest", got)
	}
}

func TestRotateSecretOfAClientWithoutSecretKeepsNoPrevious(t *testing.T) {
	var c client.Client
	secret := c.RotateSecret(time.Now(), time.Hour)
	if !bytes.Equal(c.SecretHash, client.HashSecret(secret)) {
		t.Error("SecretHash is not the digest of the returned secret")
	}
	// An empty digest kept as "previous" would be a secret no one holds.
	if c.PreviousSecretHash != nil || !c.PreviousSecretExpiresAt.IsZero() {
		t.Errorf("PreviousSecretHash = %x, PreviousSecretExpiresAt = %v; want none", c.PreviousSecretHash, c.PreviousSecretExpiresAt)
	}
}

func TestGetRotatedHashesOnlyDuringTheGracePeriod(t *testing.T) {
	_, digest := client.NewSecret()
	tests := []struct {
		name      string
		previous  []byte
		expiresAt time.Time
		want      bool
	}{
		{"grace period running", digest, time.Now().Add(time.Hour), true},
		{"grace period over", digest, time.Now().Add(-time.Second), false},
		{"never rotated", nil, time.Time{}, false},
		{"no previous digest but an expiry ahead", nil, time.Now().Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client.Client{PreviousSecretHash: tt.previous, PreviousSecretExpiresAt: tt.expiresAt}
			got := c.GetRotatedHashes()
			switch {
			case tt.want && (len(got) != 1 || !bytes.Equal(got[0], digest)):
				t.Errorf("GetRotatedHashes() = %x, want [%x]", got, digest)
			case !tt.want && len(got) != 0:
				t.Errorf("GetRotatedHashes() = %x, want none", got)
			}
		})
	}
}
