// Package webauthntest is a software authenticator for tests: it answers
// the options a relying party renders for navigator.credentials.create
// and .get with the JSON a browser would post back, made with an ECDSA
// P-256 key it holds. Its fields can be set to answers a browser would
// never give (another origin, another RP ID, a counter that goes back),
// which is what the tests of refusals need.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagAT = 0x40
)

// Authenticator holds one passkey. Origin and RPID are what its answers
// claim to be for; Count is its signature counter, raised before each
// assertion.
type Authenticator struct {
	Origin, RPID string
	Count        uint32
	// BackupEligible marks the passkey as one that may be synced.
	BackupEligible bool
	// Unverified answers with the user present but not verified, as a
	// security key without a PIN does.
	Unverified bool
	// ID is the credential ID, UserHandle the user handle it was
	// registered with.
	ID, UserHandle []byte
	key            *ecdsa.PrivateKey
}

// New returns an authenticator for the site at origin, with a new key.
func New(origin string) (*Authenticator, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return &Authenticator{Origin: origin, RPID: u.Hostname(), ID: id, key: key}, nil
}

// options is what the authenticator reads of a relying party's options.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

// Register answers creation options (the JSON of
// {"publicKey": PublicKeyCredentialCreationOptions}) with a new passkey,
// attestation "none".
func (a *Authenticator) Register(optionsJSON []byte) ([]byte, error) {
	var o options
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, fmt.Errorf("webauthntest: options: %w", err)
	}
	handle, err := base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: user ID: %w", err)
	}
	a.UserHandle = handle
	clientData := a.clientData("webauthn.create", o.PublicKey.Challenge)
	// The uncompressed point is 0x04 || x || y (SEC 1 §2.3.3).
	point, err := a.key.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:65]})
	if err != nil {
		return nil, err
	}
	idLen := binary.BigEndian.AppendUint16(nil, uint16(len(a.ID))) // #nosec G115 -- 32 bytes
	authData := slices.Concat(a.authData(flagAT), make([]byte, 16), idLen, a.ID, cose)
	attestation, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(a.ID), "rawId": b64(a.ID), "type": "public-key", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64(clientData), "attestationObject": b64(attestation),
			"transports": []string{"internal"}},
	})
}

// Assert answers request options (the JSON of
// {"publicKey": PublicKeyCredentialRequestOptions}) with an assertion,
// its counter one higher than the last.
func (a *Authenticator) Assert(optionsJSON []byte) ([]byte, error) {
	var o options
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, fmt.Errorf("webauthntest: options: %w", err)
	}
	a.Count++
	clientData := a.clientData("webauthn.get", o.PublicKey.Challenge)
	authData := a.authData(0)
	hash := sha256.Sum256(clientData)
	digest := sha256.Sum256(slices.Concat(authData, hash[:]))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64(a.ID), "rawId": b64(a.ID), "type": "public-key", "clientExtensionResults": map[string]any{},
		"response": map[string]any{"clientDataJSON": b64(clientData), "authenticatorData": b64(authData),
			"signature": b64(sig), "userHandle": b64(a.UserHandle)},
	})
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	data, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return data
}

// authData is the authenticator data's fixed part: the RP ID's hash, the
// flags (user present and, unless Unverified, verified, with extra), and
// the counter.
func (a *Authenticator) authData(extra byte) []byte {
	rp := sha256.Sum256([]byte(a.RPID))
	flags := flagUP | flagUV | extra
	if a.Unverified {
		flags &^= flagUV
	}
	if a.BackupEligible {
		flags |= flagBE
	}
	return binary.BigEndian.AppendUint32(append(rp[:], flags), a.Count)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
