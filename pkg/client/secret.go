package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"time"

	"github.com/ory/fosite"
)

// secretBytes is the entropy of a generated secret: 256 bits, the same as
// the keys that protect everything else.
const secretBytes = 32

// ErrSecretMismatch is what Hasher.Compare returns for a wrong secret.
var ErrSecretMismatch = errors.New("client secret does not match")

// NewSecret returns a fresh secret, to be shown to the operator once, and
// the digest to store.
func NewSecret() (secret string, digest []byte) {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret)
}

// HashSecret returns the digest under which a secret is stored.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Hasher is fosite's secret hasher for server-generated secrets: SHA-256,
// compared in constant time. See the package comment for why no slow KDF.
type Hasher struct{}

var _ fosite.Hasher = Hasher{}

// Hash returns the SHA-256 digest of data.
func (Hasher) Hash(_ context.Context, data []byte) ([]byte, error) {
	sum := sha256.Sum256(data)
	return sum[:], nil
}

// Compare reports, in time independent of the contents, whether data is the
// secret whose digest is hash. An empty hash matches nothing.
func (Hasher) Compare(_ context.Context, hash, data []byte) error {
	sum := sha256.Sum256(data)
	if len(hash) != sha256.Size || subtle.ConstantTimeCompare(hash, sum[:]) != 1 {
		return ErrSecretMismatch
	}
	return nil
}

// RotateSecret gives c a new secret and keeps the old one valid for grace.
// It records now as the rotation's time, and returns the new secret, which
// is not stored anywhere in clear.
func (c *Client) RotateSecret(now time.Time, grace time.Duration) string {
	secret, digest := NewSecret()
	c.SecretRotatedAt = now
	c.PreviousSecretHash = nil
	c.PreviousSecretExpiresAt = time.Time{}
	if grace > 0 && len(c.SecretHash) > 0 {
		c.PreviousSecretHash = c.SecretHash
		c.PreviousSecretExpiresAt = now.Add(grace)
	}
	c.SecretHash = digest
	return secret
}
