package registration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/validation"
)

// The two bearer tokens of registration. Each is a fixed prefix, which
// secret scanners can match and which tells an operator what a leaked
// string is, and 256 random bits in base64url; only its SHA-256 digest is
// stored.
const (
	// InitialPrefix starts an initial access token (RFC 7591 §3), which
	// an admin issues to let someone register clients.
	InitialPrefix = "lk_iat_"
	// AccessPrefix starts a registration access token (RFC 7592 §3),
	// which a registered client uses to read, update and delete itself.
	AccessPrefix = "lk_rat_" // #nosec G101 -- a token prefix, not a credential
)

// Limits on initial access tokens.
const (
	// MaxTokenLifetime bounds how far away a token's expiry may be: a
	// token is for a rollout or an onboarding, not a standing credential.
	MaxTokenLifetime = 366 * 24 * time.Hour
	// MaxTokenUses bounds how many clients one token may register.
	MaxTokenUses = 10_000
	// maxTokenName is the longest name a token may have, in characters.
	maxTokenName = 100
	// displayLen is how much of a token listings show: the prefix and
	// four random characters, 24 bits, nothing towards guessing the rest.
	displayLen = len(InitialPrefix) + 4
)

var (
	// ErrTokenNotFound means no initial access token has the ID asked for.
	ErrTokenNotFound = errors.New("registration: no such initial access token")
	// ErrTokenRefused means an initial access token cannot be used: it is
	// unknown, expired, used up or revoked. Which one is never told.
	ErrTokenRefused = errors.New("registration: the initial access token is not usable")
)

// InitialToken is an initial access token as it is listed: everything but
// the token itself.
type InitialToken struct {
	ID string `json:"id"`
	// Prefix is the token's first characters, for people to recognise it.
	Prefix string `json:"prefix"`
	Name   string `json:"name"`
	// MaxUses is how many clients the token may register; Uses how many
	// it has.
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
	// Policy is what clients registered with the token may have.
	Policy Policy `json:"policy"`
}

// TokenRequest is what an admin asks a new initial access token for.
// Left out, the cap is what open registration allows (Manager's Open).
type TokenRequest struct {
	Name string `json:"name"`
	// MaxUses is how many clients the token may register; 1 (single use)
	// when left out.
	MaxUses int `json:"max_uses"`
	// ExpiresIn is how long the token works, as a duration ("24h").
	ExpiresIn string `json:"expires_in"`
	// GrantTypes, Scope (space-separated) and RedirectURIs (rules, see
	// ParseRule) cap what the token may register.
	GrantTypes   []string `json:"grant_types"`
	Scope        string   `json:"scope"`
	RedirectURIs []string `json:"redirect_uris"`
}

// newToken returns a fresh token with prefix, and the digest to store.
func newToken(prefix string) (token string, digest []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails on Linux
	token = prefix + base64.RawURLEncoding.EncodeToString(b)
	return token, Digest(token)
}

// Digest is what the database keeps of a token.
func Digest(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// matches reports, in time independent of the contents, whether token is
// the one whose digest is stored.
func matches(stored []byte, token string) bool {
	return len(stored) == sha256.Size && subtle.ConstantTimeCompare(stored, Digest(token)) == 1
}

// wellformed reports whether token could be one Latchkey made with
// prefix, so that garbage costs no database round trip.
func wellformed(token, prefix string) bool {
	return strings.HasPrefix(token, prefix) && len(token) == len(prefix)+43
}

// tokenActor names an initial access token as the actor of what was
// registered with it, and as the target of its own events.
func tokenActor(id string) string { return "registration_token:" + id }

// CreateToken makes an initial access token, records
// registration_token.created, and returns it with the token itself, which
// is never available again. Invalid requests are *validation.Error naming
// the field.
func (m *Manager) CreateToken(ctx context.Context, req TokenRequest) (*InitialToken, string, error) {
	now := time.Now()
	t, err := m.validateTokenRequest(req, now)
	if err != nil {
		return nil, "", err
	}
	secret, digest := newToken(InitialPrefix)
	t.ID, t.Prefix, t.CreatedAt = uuid.NewString(), secret[:displayLen], now
	err = m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.RegistrationTokenCreated, Target: tokenActor(t.ID), Details: map[string]any{
			"name": t.Name, "prefix": t.Prefix, "max_uses": t.MaxUses, "expires_at": t.ExpiresAt.Format(time.RFC3339),
			"grant_types": t.Policy.GrantTypes, "scopes": t.Policy.Scopes, "redirect_uris": t.Policy.RedirectURIs,
		}}, m.store.CreateRegistrationToken(ctx, t, digest)
	})
	if err != nil {
		return nil, "", err
	}
	return t, secret, nil
}

func (m *Manager) validateTokenRequest(req TokenRequest, now time.Time) (*InitialToken, error) {
	e := &validation.Error{Of: "initial access token"}
	name := strings.TrimSpace(req.Name)
	if name == "" || len([]rune(name)) > maxTokenName || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		e.Add("name", "must be 1 to %d characters, without control characters, saying whom the token is for", maxTokenName)
	}
	uses := req.MaxUses
	if uses == 0 {
		uses = 1
	}
	if uses < 1 || uses > MaxTokenUses {
		e.Add("max_uses", "is %d; it must be from 1 to %d", req.MaxUses, MaxTokenUses)
	}
	life, err := time.ParseDuration(req.ExpiresIn)
	switch {
	case req.ExpiresIn == "":
		e.Add("expires_in", "is required: how long the token works, such as \"24h\"")
	case err != nil || life <= 0 || life > MaxTokenLifetime:
		e.Add("expires_in", "is %q; it must be a duration from 1s to %s, such as \"24h\"", req.ExpiresIn, MaxTokenLifetime)
	}
	p := Policy{GrantTypes: req.GrantTypes, Scopes: strings.Fields(req.Scope), RedirectURIs: req.RedirectURIs}
	if p.GrantTypes == nil {
		p.GrantTypes = slices.Clone(m.open.GrantTypes)
	}
	if req.Scope == "" {
		p.Scopes = slices.Clone(m.open.Scopes)
	}
	if p.RedirectURIs == nil {
		p.RedirectURIs = slices.Clone(m.open.RedirectURIs)
	}
	slices.Sort(p.Scopes)
	p.Scopes = slices.Compact(p.Scopes)
	p.validate(e)
	if err := e.Err(); err != nil {
		return nil, err
	}
	return &InitialToken{Name: name, MaxUses: uses, ExpiresAt: now.Add(life).UTC().Truncate(time.Second), Policy: p}, nil
}

// Tokens lists the initial access tokens, newest first, used up and
// expired ones included until they are revoked.
func (m *Manager) Tokens(ctx context.Context) ([]InitialToken, error) {
	return m.store.RegistrationTokens(ctx)
}

// RevokeToken deletes an initial access token, at once on every node, and
// records registration_token.revoked. Clients registered with it stay.
func (m *Manager) RevokeToken(ctx context.Context, id string) error {
	if uuid.Validate(id) != nil {
		return ErrTokenNotFound
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		t, err := m.store.DeleteRegistrationToken(ctx, id)
		if err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.RegistrationTokenRevoked, Target: tokenActor(id),
			Details: map[string]any{"name": t.Name, "prefix": t.Prefix, "uses": t.Uses}}, nil
	})
}
