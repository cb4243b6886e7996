package logout

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/pkg/keys"
)

// EventURI is the member of a logout token's events claim that makes it
// one (Back-Channel Logout 1.0 §2.4).
const EventURI = "http://schemas.openid.net/event/backchannel-logout"

// TokenType is a logout token's typ header (§2.4): it tells the token
// apart from an ID token, which must never be accepted as one.
const TokenType = "logout+jwt" // #nosec G101 -- a JWT type name, not a credential

// TokenLifetime is how long a logout token is valid. It is signed just
// before it is sent, so it need only outlast the request.
const TokenLifetime = 2 * time.Minute

// Claims are a logout token's claims (§2.4). It has no nonce: §2.4
// forbids one, so that a logout token cannot be replayed as an ID token.
type Claims struct {
	Issuer   string                    `json:"iss"`
	Audience string                    `json:"aud"`
	IssuedAt int64                     `json:"iat"`
	Expiry   int64                     `json:"exp"`
	ID       string                    `json:"jti"`
	Subject  string                    `json:"sub,omitempty"`
	SID      string                    `json:"sid,omitempty"`
	Events   map[string]map[string]any `json:"events"`
}

// NewClaims returns the claims telling app clientID that the sign-in sid
// of subject ended, identified by jti, issued at now.
func NewClaims(issuer, clientID, subject, sid, jti string, now time.Time) Claims {
	return Claims{
		Issuer: issuer, Audience: clientID, IssuedAt: now.Unix(), Expiry: now.Add(TokenLifetime).Unix(),
		ID: jti, Subject: subject, SID: sid,
		Events: map[string]map[string]any{EventURI: {}},
	}
}

// Sign signs claims with key, naming it in the kid header, with typ
// logout+jwt.
func Sign(key keys.Key, c Claims) (string, error) {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Algorithm, Key: jose.JSONWebKey{Key: key.Signer, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType(TokenType))
	if err != nil {
		return "", fmt.Errorf("logout: signer for key %s: %w", key.ID, err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("logout: encode claims: %w", err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("logout: sign with key %s: %w", key.ID, err)
	}
	return jws.CompactSerialize()
}
