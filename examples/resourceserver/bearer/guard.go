package bearer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
)

// DefaultMaxCacheAge is how long an introspection answer is reused when
// Config.MaxCacheAge is zero, and so how long a revoked token may still be
// accepted.
const DefaultMaxCacheAge = time.Minute

// DefaultMaxCacheEntries is how many answers are cached when
// Config.MaxCacheEntries is zero.
const DefaultMaxCacheEntries = 10000

// Config says where and how a Guard checks tokens.
type Config struct {
	// IntrospectionURL is the authorization server's
	// introspection_endpoint, from its discovery document.
	IntrospectionURL string
	// ClientID and ClientSecret authenticate this resource server at the
	// introspection endpoint: it is a confidential client of its own
	// (docs/tokens.md), not one of the apps whose tokens it checks.
	// Latchkey describes to a client only the tokens whose aud names its
	// client ID (and its own), so register it under the Audience.
	ClientID, ClientSecret string
	// Audience is this API's identifier. A token whose aud does not list
	// it was issued for another API and is refused, so that a token given
	// to one API cannot be replayed at another. Latchkey already answers
	// such a token as inactive to a client not allowed introspect_any_token;
	// the check here holds for any authorization server. Empty turns the
	// check off: do that only when one API is all there is.
	Audience string
	// MaxCacheAge is the longest an introspection answer is reused, and
	// so the longest a revoked token is still accepted. Zero means
	// DefaultMaxCacheAge; negative turns the cache off.
	MaxCacheAge time.Duration
	// MaxCacheEntries bounds the cache's size. Zero means
	// DefaultMaxCacheEntries.
	MaxCacheEntries int
	// Realm names the API in challenges; optional.
	Realm string
	// HTTPClient makes the introspection calls. Nil means a client with a
	// ten-second timeout: never wait forever for the authorization server.
	HTTPClient *http.Client
	// Logger records failed introspection calls. Nil means slog.Default().
	Logger *slog.Logger
}

// Guard checks bearer tokens for one API. It is safe for concurrent use;
// make one per API and share it between routes, so that they share the
// cache.
type Guard struct {
	cfg   Config
	cache *cache
	now   func() time.Time
}

// New returns a Guard for cfg, filling in the defaults.
func New(cfg Config) *Guard {
	if cfg.MaxCacheAge == 0 {
		cfg.MaxCacheAge = DefaultMaxCacheAge
	}
	if cfg.MaxCacheEntries == 0 {
		cfg.MaxCacheEntries = DefaultMaxCacheEntries
	}
	if cfg.MaxCacheAge < 0 {
		cfg.MaxCacheEntries = 0
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Guard{cfg: cfg, cache: newCache(cfg.MaxCacheEntries), now: time.Now}
}

// Rule is what a route demands of a token beyond being an active access
// token for this API. The zero Rule demands nothing more.
type Rule struct {
	// Scopes must all be granted to the token.
	Scopes []string
	// ACRValues, if any, lists the sign-ins the route accepts, strongest
	// first: the token's acr must be one of them. With Latchkey,
	// urn:latchkey:acr:mfa demands a second factor (docs/mfa.md).
	ACRValues []string
	// MaxAge, if positive, is how long ago at most the user may have
	// proved who they are (auth_time). It is sent to the client in whole
	// seconds, rounded up.
	MaxAge time.Duration
}

// Require returns middleware that lets a request through only with a
// token that meets rule, and answers every other request itself, as the
// package documentation describes. The handler it wraps finds the token's
// claims with ClaimsFrom.
func (g *Guard) Require(rule Rule) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, refused := tokenOf(r)
			if refused != nil {
				g.refuse(w, refused)
				return
			}
			claims, err := g.Introspect(r.Context(), token)
			switch {
			case errors.Is(err, ErrInactive):
				g.refuse(w, &refusal{status: http.StatusUnauthorized, code: "invalid_token",
					description: "The access token is not active: it expired, was revoked, or is unknown"})
				return
			case err != nil && r.Context().Err() != nil:
				return // the client went away; nobody to answer
			case err != nil:
				g.cfg.Logger.ErrorContext(r.Context(), "cannot check a bearer token", "err", err)
				w.Header().Set("Retry-After", "5")
				http.Error(w, "The access token cannot be checked just now; try again.", http.StatusServiceUnavailable)
				return
			}
			if refused := g.check(claims, rule); refused != nil {
				g.refuse(w, refused)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
		})
	}
}

// claimsKey keys the claims in a request's context.
type claimsKey struct{}

// ClaimsFrom returns the claims of the token Require accepted for the
// request whose context ctx is.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// check applies the audience and rule to an active token's claims, in the
// order that lets the client fix things: a token for another API is
// useless; a missing scope needs a new grant; a weak or old sign-in needs
// the user.
func (g *Guard) check(c *Claims, rule Rule) *refusal {
	if g.cfg.Audience != "" && !slices.Contains(c.Audience, g.cfg.Audience) {
		return &refusal{status: http.StatusUnauthorized, code: "invalid_token",
			description: "The access token was issued for another API"}
	}
	for _, s := range rule.Scopes {
		if !c.HasScope(s) {
			return &refusal{status: http.StatusForbidden, code: "insufficient_scope",
				description: "The access token lacks a scope this request needs",
				scope:       strings.Join(rule.Scopes, " ")}
		}
	}
	weak := len(rule.ACRValues) > 0 && !slices.Contains(rule.ACRValues, c.ACR)
	old := rule.MaxAge > 0 && (c.AuthTime == 0 || g.now().Sub(time.Unix(c.AuthTime, 0)) > rule.MaxAge)
	if !weak && !old {
		return nil
	}
	// The challenge states all the rule asks, not only what failed, so that
	// the next sign-in meets every part of it at once.
	f := &refusal{status: http.StatusUnauthorized, code: "insufficient_user_authentication",
		acrValues: strings.Join(rule.ACRValues, " ")}
	if rule.MaxAge > 0 {
		f.maxAge = int64((rule.MaxAge + time.Second - 1) / time.Second)
	}
	switch {
	case weak && old:
		f.description = "A stronger and more recent sign-in is required"
	case weak:
		f.description = "A stronger sign-in is required"
	default:
		f.description = "A more recent sign-in is required"
	}
	return f
}

// tokenOf takes the bearer token from the Authorization header (RFC 6750
// §2.1), the one place this package accepts it.
func tokenOf(r *http.Request) (string, *refusal) {
	if r.URL.Query().Has("access_token") {
		// RFC 9700 §2.5: URLs end up in logs and Referer headers.
		return "", badRequest("Send the access token in the Authorization header, not in the URL")
	}
	headers := r.Header.Values("Authorization")
	if len(headers) == 0 {
		return "", &refusal{status: http.StatusUnauthorized}
	}
	if len(headers) > 1 {
		return "", badRequest("Send one Authorization header")
	}
	scheme, token, _ := strings.Cut(headers[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &refusal{status: http.StatusUnauthorized}
	}
	if !isB64Token(token) {
		return "", badRequest("The Authorization header does not hold a bearer token")
	}
	return token, nil
}

// isB64Token reports whether s has the syntax RFC 6750 §2.1 gives a bearer
// token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for _, r := range body {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("-._~+/", r):
		default:
			return false
		}
	}
	return true
}

func badRequest(description string) *refusal {
	return &refusal{status: http.StatusBadRequest, code: "invalid_request", description: description}
}

// refusal is an answer to a request without a good token.
type refusal struct {
	status int
	// code is the RFC 6750 error code; "" for a request with no token.
	code, description string
	// scope lists the scopes a 403 needs.
	scope string
	// acrValues and maxAge are the RFC 9470 step-up parameters.
	acrValues string
	maxAge    int64
}

// refuse writes f as a challenge (RFC 6750 §3, RFC 9470 §3) and a JSON
// body with the same error.
func (g *Guard) refuse(w http.ResponseWriter, f *refusal) {
	var params []string
	add := func(name, value string) {
		if value != "" {
			// Every value here is this package's own: none holds a quote
			// or a backslash that would need escaping.
			params = append(params, fmt.Sprintf("%s=%q", name, value))
		}
	}
	add("realm", g.cfg.Realm)
	add("error", f.code)
	add("error_description", f.description)
	add("scope", f.scope)
	add("acr_values", f.acrValues)
	if f.maxAge > 0 {
		add("max_age", fmt.Sprint(f.maxAge))
	}
	challenge := "Bearer"
	if len(params) > 0 {
		challenge += " " + strings.Join(params, ", ")
	}
	h := w.Header()
	h.Set("WWW-Authenticate", challenge)
	h.Set("Cache-Control", "no-store")
	if f.code == "" {
		w.WriteHeader(f.status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{f.code, f.description})
}
