package bearer

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ErrInactive is Introspect's answer for a token that is not usable now:
// unknown, malformed, expired, revoked, or not an access token.
var ErrInactive = errors.New("bearer: token is not active")

// Claims is what the authorization server said about an active access
// token (RFC 7662 §2.2). The same value may be handed to several requests
// from the cache: treat it as read-only. Latchkey fills in every field for a token a
// user's sign-in produced; a client credentials token has no ACR, AuthTime
// or Roles, and its Subject is the client's ID.
type Claims struct {
	Subject  string   `json:"sub"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
	Audience Audience `json:"aud"`
	Issuer   string   `json:"iss"`
	// ExpiresAt and IssuedAt are Unix times, in seconds.
	ExpiresAt int64 `json:"exp"`
	IssuedAt  int64 `json:"iat"`
	// ACR is how the user signed in, such as urn:latchkey:acr:mfa.
	ACR string `json:"acr"`
	// AuthTime is when the user last proved who they are, in Unix
	// seconds; 0 for a token without a user.
	AuthTime int64    `json:"auth_time"`
	Roles    []string `json:"roles"`
}

// HasScope reports whether the token carries scope. Scopes match exactly:
// notes does not grant notes.read.
func (c *Claims) HasScope(scope string) bool {
	return slices.Contains(strings.Fields(c.Scope), scope)
}

// Audience is the aud of a token, which RFC 7662 allows to be one string
// or an array of them.
type Audience []string

// UnmarshalJSON accepts both forms.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("bearer: aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// introspection is the endpoint's whole answer.
type introspection struct {
	Active    bool   `json:"active"`
	TokenType string `json:"token_type"`
	Claims
}

// maxAnswerBytes bounds how much of an introspection answer is read.
const maxAnswerBytes = 1 << 20

// Introspect returns what the authorization server says about token, from
// the cache when it has a recent answer. A token that is not an active
// access token gets ErrInactive; any other error means the endpoint could
// not be asked, and nothing is cached.
func (g *Guard) Introspect(ctx context.Context, token string) (*Claims, error) {
	key := sha256.Sum256([]byte(token))
	now := g.now()
	if c, ok := g.cache.get(key, now); ok {
		if c == nil {
			return nil, ErrInactive
		}
		return c, nil
	}
	c, err := g.introspect(ctx, token)
	if err != nil && !errors.Is(err, ErrInactive) {
		return nil, err
	}
	until := now.Add(g.cfg.MaxCacheAge)
	if c != nil && c.ExpiresAt != 0 && time.Unix(c.ExpiresAt, 0).Before(until) {
		until = time.Unix(c.ExpiresAt, 0)
	}
	g.cache.put(key, c, until, now)
	return c, err
}

// introspect asks the endpoint, as a confidential client with HTTP Basic
// authentication (client_secret_basic).
func (g *Guard) introspect(ctx context.Context, token string) (*Claims, error) {
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.IntrospectionURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("bearer: introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: the ID and secret are form-encoded before Basic.
	req.SetBasicAuth(url.QueryEscape(g.cfg.ClientID), url.QueryEscape(g.cfg.ClientSecret))
	resp, err := g.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bearer: introspection: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("bearer: introspection: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// 401 here means this resource server's own credentials are wrong.
		return nil, fmt.Errorf("bearer: introspection answered %s: %.200s", resp.Status, body)
	}
	var in introspection
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, fmt.Errorf("bearer: introspection answer: %w", err)
	}
	// A refresh token is described only to its own client; should this
	// resource server share a client with an app, it still must not take
	// one for an access token.
	if !in.Active || (in.TokenType != "" && !strings.EqualFold(in.TokenType, "bearer")) {
		return nil, ErrInactive
	}
	if in.ExpiresAt != 0 && !time.Unix(in.ExpiresAt, 0).After(g.now()) {
		return nil, ErrInactive
	}
	return &in.Claims, nil
}
