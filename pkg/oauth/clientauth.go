// This file is how a client proves who it is at the token, introspection
// and revocation endpoints: fosite's client authentication, with the
// failures limited per client and address, and private_key_jwt assertions
// held to a short life and a jti per client.

package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/server"
)

// authenticateClient is fosite's client authentication, which every
// endpoint that authenticates clients (token, introspection, revocation)
// goes through, with these additions.
//
// Failures are limited: each client ID, as the request claims it, may fail
// failures' number of times a minute from each address. The attempt is
// taken before the credentials are checked and given back when they
// prove right, so that a parallel burst of guesses gets no more checks
// than the limit; over it, the request is refused unchecked (a
// *rateLimited, 429), the right secret included, since checking it would
// tell a guesser when a guess is right. A request that finds the limit
// taken only by attempts in flight waits up to attemptWait for one to
// end, so that a backend's burst of parallel requests with the right
// secret all pass (issue 18: 200 at once). It costs one reservation, and
// one refund when the client authenticates, and no database round trip.
//
// For private_key_jwt, an assertion that lives longer than a few minutes
// is refused before fosite stores anything of it, and fosite runs knowing
// which client the assertion names, so that jti values are kept per client
// (checkAssertion). And for an assertion that has expired or is not valid
// yet, fosite v0.49 returns the bare JWT validation error, which is no RFC
// 6749 error and would be answered as a server_error; every such failure
// is the client's, so it is invalid_client (RFC 7523 §3.2).
func authenticateClient(f *fosite.Fosite, failures *ratelimit.Limiter, metrics Observer) fosite.ClientAuthenticationStrategy {
	authenticate := func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		ctx = context.WithValue(ctx, calledEndpoint{}, r.URL.Path)
		ctx = context.WithValue(ctx, secretMethod{}, secretMethodOf(r, form))
		ctx, err := checkAssertion(ctx, form, time.Now())
		if err != nil {
			return nil, err
		}
		c, err := f.DefaultClientAuthenticationStrategy(ctx, r, form)
		var rfc *fosite.RFC6749Error
		if err != nil && !errors.As(err, &rfc) && assertionTimeErrors[err.Error()] {
			err = fosite.ErrInvalidClient.WithHint("The client assertion is expired or not valid yet.").WithWrap(err).WithDebug(err.Error())
		}
		return c, err
	}
	return func(ctx context.Context, r *http.Request, form url.Values) (fosite.Client, error) {
		attempt, ok, wait := failures.Attempt(ctx, ratelimit.AddressKey(server.ClientIP(ctx))+"\x00"+claimedClientID(r, form), attemptWait)
		if !ok {
			metrics.RateLimited("client_auth")
			return nil, &rateLimited{wait, "Too many failed authentications for this client from this address"}
		}
		c, err := authenticate(ctx, r, form)
		// Only the client's own failure counts: not an outage, nor a
		// malformed request, which costs no check.
		if err == nil || protocolError(err).ErrorField != fosite.ErrInvalidClient.ErrorField {
			attempt.Succeeded()
		} else {
			attempt.Failed()
		}
		return c, err
	}
}

// attemptWait is how long a client authentication waits for the attempts
// in flight of its client ID and address to end, when they hold the whole
// failure limit: long enough for a burst of hundreds of requests to pass
// through a limit of 20, short enough that a guesser's waiting requests
// are refused quickly.
const attemptWait = 3 * time.Second

// assertionTimeErrors are the messages of the bare errors fosite's
// token/jwt gives for exp, iat and nbf; they carry no type to match.
var assertionTimeErrors = map[string]bool{
	"Token is expired":         true,
	"Token used before issued": true,
	"Token is not valid yet":   true,
}

// fositeConfig adjusts fosite's configuration where a field is not enough.
type fositeConfig struct {
	*fosite.Config
	tokenURLs []string
	// origin is the issuer's scheme and host, on which the endpoint a
	// client authenticates at is named.
	origin string
}

// calledEndpoint carries, in a client authentication's context, the path
// of the endpoint the client called.
type calledEndpoint struct{}

// GetTokenURLs lists the audiences a private_key_jwt assertion may name:
// the token endpoint, which RFC 7523 suggests; the issuer, which OpenID
// Connect now recommends because it cannot be confused with another
// server's endpoint; and the endpoint the client is calling, which RFC
// 7523 §3 equally allows and which libraries send when they authenticate
// at introspection or revocation (issue 19: node openid-client does).
func (c *fositeConfig) GetTokenURLs(ctx context.Context) []string {
	if path, ok := ctx.Value(calledEndpoint{}).(string); ok {
		if called := c.origin + path; !slices.Contains(c.tokenURLs, called) {
			return append(slices.Clip(c.tokenURLs), called)
		}
	}
	return c.tokenURLs
}

// claimedClientID is the client a request claims to be, read as fosite
// reads it: HTTP Basic, else client_id in form, else the subject of a
// private_key_jwt assertion. Until authentication succeeds it is only a
// claim: good for limiting failures per client ID, not for trusting.
func claimedClientID(r *http.Request, form url.Values) string {
	if id, _, ok := r.BasicAuth(); ok {
		if decoded, err := url.QueryUnescape(id); err == nil {
			return decoded
		}
		return id
	}
	if id := form.Get("client_id"); id != "" {
		return id
	}
	// Unverified, as fosite reads it before it verifies the signature.
	if t, _ := jwt.ParseWithClaims(form.Get("client_assertion"), jwt.MapClaims{}, nil); t != nil && t.Claims != nil {
		sub, _ := t.Claims["sub"].(string)
		return sub
	}
	return ""
}

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

// secretMethod carries, in a client authentication's context, the secret
// method the request used, "" for none.
type secretMethod struct{}

// secretMethodOf is the secret method r authenticates with: HTTP Basic
// (client_secret_basic) or client_secret in the body (client_secret_post).
func secretMethodOf(r *http.Request, form url.Values) string {
	if _, _, ok := r.BasicAuth(); ok {
		return client.AuthSecretBasic
	}
	if form.Get("client_secret") != "" {
		return client.AuthSecretPost
	}
	return ""
}

// GetClient is the store's, except during a client authentication, when a
// secret client that is not strict is returned as registered with the
// secret method the request used (client.Client.AuthenticatingWith):
// fosite holds a client to its registered method, and libraries send the
// secret their own way (openid-client in the body, zitadel's refresh too)
// whatever was registered.
func (s *fositeStore) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	fc, err := s.Store.GetClient(ctx, id)
	if err != nil {
		return fc, err
	}
	if method, ok := ctx.Value(secretMethod{}).(string); ok {
		if c, ok := fc.(*client.Client); ok {
			return c.AuthenticatingWith(method), nil
		}
	}
	return fc, nil
}
