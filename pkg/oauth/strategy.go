package oauth

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"
	"github.com/ory/x/errorsx"

	"github.com/latchkey/latchkey/pkg/client"
)

// Token prefixes name what a token is, so that secret scanners can find a
// leaked one and people can tell them apart. fosite's own prefixes name Ory.
const (
	accessPrefix  = "lk_at_"
	refreshPrefix = "lk_rt_"
	codePrefix    = "lk_ac_"
)

// strategy makes and checks tokens. Refresh tokens and codes are always
// opaque HMAC tokens. Access tokens are opaque too unless the client asks
// for RFC 9068 JWTs; both kinds are stored by signature, so introspection
// and revocation work the same for either. Which kind a presented token is
// follows from its shape, not from the client's current setting, so
// switching a client's format does not strand the tokens it already holds.
type strategy struct {
	hmac   *oauth2.HMACSHAStrategyUnPrefixed
	signer jwt.Signer
	issuer string
}

var _ oauth2.CoreStrategy = (*strategy)(nil)

// isJWT reports whether token has the three parts of a compact JWS. Opaque
// tokens have two.
func isJWT(token string) bool { return strings.Count(token, ".") == 2 }

// AccessTokenSignature returns the part of an access token it is stored
// under: the HMAC of an opaque token or the signature of a JWT.
func (s *strategy) AccessTokenSignature(ctx context.Context, token string) string {
	if isJWT(token) {
		return token[strings.LastIndexByte(token, '.')+1:]
	}
	return s.hmac.AccessTokenSignature(ctx, token)
}

// jwtClient returns r's client if its access tokens are RFC 9068 JWTs:
// the client asked for them.
func jwtClient(r fosite.Requester) (*client.Client, bool) {
	c, ok := r.GetClient().(*client.Client)
	return c, ok && c.AccessTokenFormat == client.FormatJWT
}

// GenerateAccessToken makes an access token in the client's format,
// restricted to the resources the request names (narrowAccessToken): the
// one moment, after fosite has granted a code's scopes and audience and
// before it stores or signs anything, where that can be done. A JWT is
// signed with the algorithm the client registered, if any, else the
// server's; the choice is the client's current one, read at every issue,
// so that a change applies from the next token while tokens already
// issued keep verifying by their kid.
func (s *strategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	narrowAccessToken(ctx, r)
	if c, ok := jwtClient(r); ok {
		header := &jwt.Headers{Extra: map[string]any{"typ": "at+jwt"}}
		if c.AccessTokenSignedResponseAlg != "" {
			header.Extra[algHeader] = c.AccessTokenSignedResponseAlg
		}
		return s.signer.Generate(ctx, accessTokenClaims(r, s.issuer, time.Now().UTC()), header)
	}
	token, sig, err := s.hmac.GenerateAccessToken(ctx, r)
	return accessPrefix + token, sig, err
}

// ValidateAccessToken checks a token's integrity and expiry; whether it is
// still active is the store's answer.
func (s *strategy) ValidateAccessToken(ctx context.Context, r fosite.Requester, token string) error {
	if !isJWT(token) {
		return s.hmac.ValidateAccessToken(ctx, r, strings.TrimPrefix(token, accessPrefix))
	}
	t, err := s.signer.Decode(ctx, token)
	if err != nil {
		var ve *jwt.ValidationError
		if errors.As(err, &ve) && ve.Has(jwt.ValidationErrorExpired) {
			return errorsx.WithStack(fosite.ErrTokenExpired.WithWrap(err))
		}
		return errorsx.WithStack(fosite.ErrTokenSignatureMismatch.WithWrap(err))
	}
	if typ, _ := t.Header["typ"].(string); typ != "at+jwt" {
		return errorsx.WithStack(fosite.ErrTokenClaim.WithHint("The JWT is not an access token."))
	}
	return nil
}

// RefreshTokenSignature returns the part of a refresh token it is stored
// under.
func (s *strategy) RefreshTokenSignature(ctx context.Context, token string) string {
	return s.hmac.RefreshTokenSignature(ctx, token)
}

// GenerateRefreshToken makes a refresh token.
func (s *strategy) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, sig, err := s.hmac.GenerateRefreshToken(ctx, r)
	return refreshPrefix + token, sig, err
}

// ValidateRefreshToken checks a refresh token's integrity and expiry.
func (s *strategy) ValidateRefreshToken(ctx context.Context, r fosite.Requester, token string) error {
	return s.hmac.ValidateRefreshToken(ctx, r, strings.TrimPrefix(token, refreshPrefix))
}

// AuthorizeCodeSignature returns the part of a code it is stored under.
func (s *strategy) AuthorizeCodeSignature(ctx context.Context, token string) string {
	return s.hmac.AuthorizeCodeSignature(ctx, token)
}

// GenerateAuthorizeCode makes an authorization code.
func (s *strategy) GenerateAuthorizeCode(ctx context.Context, r fosite.Requester) (string, string, error) {
	token, sig, err := s.hmac.GenerateAuthorizeCode(ctx, r)
	return codePrefix + token, sig, err
}

// ValidateAuthorizeCode checks a code's integrity and expiry.
func (s *strategy) ValidateAuthorizeCode(ctx context.Context, r fosite.Requester, token string) error {
	return s.hmac.ValidateAuthorizeCode(ctx, r, strings.TrimPrefix(token, codePrefix))
}
