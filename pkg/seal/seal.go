// Package seal encrypts small secrets at rest (signing keys, and later TOTP
// secrets) with AES-256-GCM under keys derived from LATCHKEY_SECRETS.
//
// Every sealed value names the secret it was sealed under by a short
// fingerprint, so that a value sealed under a secret the operator has since
// removed fails with a clear error instead of an anonymous authentication
// failure, and so that Open tries exactly one key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Derivation labels. Changing one makes every sealed value unreadable, so
// they are part of the storage format.
const (
	keyInfo         = "latchkey seal v1: aes-256-gcm key"
	fingerprintInfo = "latchkey seal v1: key fingerprint"
)

const (
	version        = 1
	fingerprintLen = 8
	nonceLen       = 12
	headerLen      = 1 + fingerprintLen + nonceLen
)

var (
	// ErrUnknownSecret means a value was sealed under a secret that is not in
	// the configured list, typically because it was dropped from
	// LATCHKEY_SECRETS too early or the wrong secrets were given.
	ErrUnknownSecret = errors.New("sealed under a secret that is not in LATCHKEY_SECRETS")
	// ErrCorrupt means a value is not a sealed value, or was altered.
	ErrCorrupt = errors.New("sealed value is corrupt or has been tampered with")
)

// Box seals with the first secret and opens with any of them, which is what
// lets operators rotate LATCHKEY_SECRETS without re-encrypting everything at
// once.
type Box struct {
	keys []sealKey
}

type sealKey struct {
	fingerprint [fingerprintLen]byte
	aead        cipher.AEAD
}

// New returns a Box for the given secrets, the first of which seals. The
// secrets are stretched with HKDF-SHA256, so their length, not their format,
// is what matters; config validates that each holds at least 32 bytes.
func New(secrets [][]byte) (*Box, error) {
	if len(secrets) == 0 {
		return nil, errors.New("seal: no secrets configured")
	}
	b := &Box{}
	for i, s := range secrets {
		k, err := hkdf.Key(sha256.New, s, nil, keyInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("seal: derive key %d: %w", i+1, err)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i+1, err)
		}
		fp, err := hkdf.Key(sha256.New, s, nil, fingerprintInfo, fingerprintLen)
		if err != nil {
			return nil, fmt.Errorf("seal: derive fingerprint %d: %w", i+1, err)
		}
		sk := sealKey{aead: aead}
		copy(sk.fingerprint[:], fp)
		b.keys = append(b.keys, sk)
	}
	return b, nil
}

// Seal encrypts plaintext under the current secret. additionalData binds the
// ciphertext to its context (for a signing key, its kid), so a sealed value
// copied onto another row does not open.
func (b *Box) Seal(plaintext, additionalData []byte) []byte {
	k := b.keys[0]
	out := make([]byte, headerLen, headerLen+len(plaintext)+k.aead.Overhead())
	out[0] = version
	copy(out[1:], k.fingerprint[:])
	nonce := out[1+fingerprintLen : headerLen]
	// Random 96-bit nonces are safe far beyond the number of values we seal.
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: crypto/rand failed: " + err.Error())
	}
	return k.aead.Seal(out, nonce, plaintext, additionalData) // #nosec G407 -- the nonce is random, read just above
}

// Open decrypts a value made by Seal under any configured secret. It returns
// ErrUnknownSecret or ErrCorrupt (wrapped) rather than garbage.
func (b *Box) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < headerLen || sealed[0] != version {
		return nil, ErrCorrupt
	}
	fp := sealed[1 : 1+fingerprintLen]
	for _, k := range b.keys {
		if string(k.fingerprint[:]) != string(fp) {
			continue
		}
		plain, err := k.aead.Open(nil, sealed[1+fingerprintLen:headerLen], sealed[headerLen:], additionalData)
		if err != nil {
			return nil, ErrCorrupt
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w (secret fingerprint %s)", ErrUnknownSecret, hex.EncodeToString(fp))
}

// NeedsReseal reports whether sealed was made under a secret other than the
// current one, so that callers can re-encrypt it after a rotation.
func (b *Box) NeedsReseal(sealed []byte) bool {
	return len(sealed) < headerLen || string(sealed[1:1+fingerprintLen]) != string(b.keys[0].fingerprint[:])
}

// Reseal re-encrypts sealed under the current secret, so that the secret
// it was made under can be dropped from the list. It returns nil if sealed
// is under the current secret already, and fails as Open does.
func (b *Box) Reseal(sealed, additionalData []byte) ([]byte, error) {
	if !b.NeedsReseal(sealed) {
		return nil, nil
	}
	plain, err := b.Open(sealed, additionalData)
	if err != nil {
		return nil, err
	}
	return b.Seal(plain, additionalData), nil
}

// SealText seals v, encoded as JSON, into text safe for a cookie or a URL
// (unpadded base64url): what a browser carries for us, which it can
// neither read nor alter. v must encode, as plain structs always do.
func (b *Box) SealText(v any, additionalData []byte) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("seal: encode: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b.Seal(plain, additionalData)), nil
}

// OpenText opens text made by SealText with the same additionalData into
// v. Anything else, tampered with or sealed for another purpose, is an
// error.
func (b *Box) OpenText(text string, additionalData []byte, v any) error {
	sealed, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return ErrCorrupt
	}
	plain, err := b.Open(sealed, additionalData)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return ErrCorrupt
	}
	return nil
}
