package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"
)

// jwtBearer is client_assertion_type for private_key_jwt (RFC 7523 §2.2).
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" // #nosec G101 -- a registered URN, not a credential

// How long a private_key_jwt assertion may live. RFC 7523 §3 leaves the
// limit to the server; an assertion is made for one request, and each one
// the server accepts costs a remembered jti until it expires, so a few
// minutes is plenty. Five is what Nimbus signs by default; Spring Security
// signs one, and Latchkey's own tests and examples one. The leeway lets
// exp, in whole seconds from a clock a little ahead of ours, round past the
// limit. (Authlib signs an hour unless told otherwise, and is refused.)
const (
	maxAssertionLifetime = 5 * time.Minute
	assertionLeeway      = 30 * time.Second
)

// checkAssertion refuses a private_key_jwt assertion that lives too long
// before fosite looks at it, so that nothing of it is stored, and returns
// the context to authenticate it under: carrying the client it names, whose
// jti the store checks and records (fositeStore). fosite reads the same
// assertion with the same parser, and authenticates the client only if the
// assertion's sub is that client; an assertion that does not parse here
// does not there either, and fosite refuses it.
func checkAssertion(ctx context.Context, form url.Values, now time.Time) (context.Context, error) {
	if form.Get("client_assertion_type") != jwtBearer {
		return ctx, nil
	}
	t, _ := jwt.ParseWithClaims(form.Get("client_assertion"), jwt.MapClaims{}, nil)
	if t == nil || t.Claims == nil {
		return ctx, nil
	}
	exp, ok := numericClaim(t.Claims, "exp")
	if !ok {
		return ctx, fosite.ErrInvalidClient.WithHint("The client assertion has no exp; RFC 7523 §3 requires one.")
	}
	tooLong := fosite.ErrInvalidClient.WithHintf("The client assertion lives too long: sign assertions that expire at most %d minutes after they are issued.", int(maxAssertionLifetime/time.Minute))
	if exp > float64(now.Add(maxAssertionLifetime+assertionLeeway).Unix()) {
		return ctx, tooLong
	}
	if iat, ok := numericClaim(t.Claims, "iat"); ok && exp-iat > maxAssertionLifetime.Seconds() {
		return ctx, tooLong
	}
	if sub, ok := t.Claims["sub"].(string); ok {
		ctx = context.WithValue(ctx, assertingClientKey{}, sub)
	}
	return ctx, nil
}

// numericClaim reads a NumericDate claim in any form fosite's parser gives it.
func numericClaim(claims jwt.MapClaims, name string) (float64, bool) {
	switch v := claims[name].(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

type assertingClientKey struct{}

// errNoAssertingClient is a jti check reached without checkAssertion having
// named the client: refused, rather than checked against no client.
var errNoAssertingClient = errors.New("oauth: a client assertion's jti was checked without its client")

// ClientAssertionJWTValid is fosite's replay check of a private_key_jwt
// assertion: fosite.ErrJTIKnown if the asserting client used the jti
// before. fosite names only the jti, but a jti is unique per client (RFC
// 7523 §3), so the check is per client: one client cannot use up another's
// jti values.
func (s *fositeStore) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	id, ok := ctx.Value(assertingClientKey{}).(string)
	if !ok {
		return errNoAssertingClient
	}
	return s.Store.AssertionJTIUsed(ctx, id, jti)
}

// SetClientAssertionJWT records that the asserting client used jti, until
// exp; of two requests with the same assertion, only one records it.
func (s *fositeStore) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	id, ok := ctx.Value(assertingClientKey{}).(string)
	if !ok {
		return errNoAssertingClient
	}
	return s.Store.RecordAssertionJTI(ctx, id, jti, exp)
}
