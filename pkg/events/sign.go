package events

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// secretPrefix marks a signing secret as Standard Webhooks writes it:
// whsec_ and the key in base64.
const secretPrefix = "whsec_"

// secretBytes is the size of a signing key: as long as SHA-256's block
// is wide enough for HMAC, and more than the scheme's 24-byte minimum.
const secretBytes = 32

// NewSecret returns a fresh signing secret as the receiver is given it,
// whsec_ and 32 random bytes in base64.
func NewSecret() string {
	key := make([]byte, secretBytes)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24)
	return secretPrefix + base64.StdEncoding.EncodeToString(key)
}

// Sign returns the webhook-signature header of body sent as msgID at
// at, with secret: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body"
// under the secret's key. The scheme is a few lines of crypto/hmac, which
// keeps a dependency out of the server; the tests check it against the
// Standard Webhooks library's Verify.
func Sign(secret, msgID string, at time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil || len(key) == 0 {
		return "", errors.New("events: a webhook secret is whsec_ and base64")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + strconv.FormatInt(at.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
