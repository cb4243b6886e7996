// Package oauth is Latchkey's OAuth 2.0 protocol layer: fosite, composed
// once from an explicit list of handlers, and the HTTP endpoints around it.
//
// # What fosite does and what this package adds
//
// fosite parses requests, authenticates clients, runs the grants and writes
// token responses. This package chooses the grants (authorization code with
// PKCE, refresh token, client credentials; never implicit or password),
// supplies the strategy that makes tokens (strategy.go) and the signer that
// signs them with Latchkey's rotating keys (signer.go), and fills in what
// fosite leaves to its user:
//
//   - client credentials grant the client's scopes and audience (token.go);
//   - introspection authenticates the caller as a client with any of its
//     methods, describes only tokens that are the caller's to know about,
//     and answers with iss and token_type (introspect.go);
//   - codes and refresh tokens are honoured only while their user is still
//     allowed to use them (grant.go);
//   - private_key_jwt assertions live at most minutes, and their jti values
//     are kept per client (assertion.go);
//   - revocation answers 503, not 200, when the store fails (revoke.go);
//   - API keys (pkg/apikey) are introspected and revoked like tokens, by
//     their prefix, through APIKeys (apikeys.go);
//   - errors keep the RFC 6749 §5.2 shape, with WWW-Authenticate on 401 and
//     503 when the database is unreachable (errors.go);
//   - the authorization endpoint decides when the user must sign in or
//     consent, hands over to the pages of pkg/ui, and adds RFC 9207 iss to
//     every answer (authorize.go); what a request keeps while the user
//     signs in is only the parameters the flow uses, each of bounded
//     length (authorize_bounds.go);
//   - failed client authentications are limited per client ID and address
//     (authenticateClient);
//   - pushed authorization requests (RFC 9126): fosite's PAR handler
//     stores the push, and ParseAuthorize redeems its request_uri once, for
//     its own client only, and refuses unpushed requests of clients that
//     must push (par.go);
//   - resource indicators (RFC 8707) restrict a token's aud and scopes to
//     registered resources the client's audience lists (resource.go);
//   - userinfo and RP-initiated logout, which fosite does not provide
//     (userinfo.go, logout.go);
//   - the device authorization grant (RFC 8628), which fosite v0.49 lacks:
//     the device authorization endpoint, and a token endpoint handler
//     composed into fosite like its own, so that fosite's strategies still
//     make the tokens (device.go); pkg/signin serves the user's side.
//
// # The request path
//
// The handlers are http.HandlerFuncs mounted by cmd/latchkey. Each hands
// the request to fosite, which calls back into storage/postgres for clients
// and tokens, inside a transaction where writes must happen together. The
// browser-facing ones (Authorize, Resume, EndSession) run under the browser
// session of pkg/session.
package oauth

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/hmac"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/devicegrant"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/ratelimit"
)

// hmacKeyInfo labels the derivation of the opaque-token HMAC keys from
// LATCHKEY_SECRETS. Changing it invalidates every token.
const hmacKeyInfo = "latchkey oauth v1: token hmac key"

// How client key sets published at a jwks_uri are fetched and cached.
const (
	jwksFetchTimeout = 5 * time.Second
	jwksCacheTTL     = 5 * time.Minute
)

// Config is what the protocol layer needs from the server's configuration.
type Config struct {
	// Issuer is the iss of every token and the base of every endpoint URL.
	Issuer string
	// Secrets key the HMAC of opaque tokens: the first signs, all verify,
	// so tokens issued before a secret rotation keep working.
	Secrets [][]byte

	AccessTokenLifespan       time.Duration
	RefreshTokenLifespan      time.Duration
	IDTokenLifespan           time.Duration
	AuthorizationCodeLifespan time.Duration

	// EnforcePKCE requires PKCE of confidential clients too; public clients
	// always need it.
	EnforcePKCE bool
	// AccessTokenSigningAlg signs the JWT access tokens of clients that
	// registered no access_token_signed_response_alg of their own.
	AccessTokenSigningAlg jose.SignatureAlgorithm
	// ClientRateLimit is how many requests per second each client may make
	// to each of the token, introspection and revocation endpoints of this
	// node; 0 is no limit.
	ClientRateLimit int
	// ClientAuthFailureLimit is how many failed authentications per minute
	// each client ID may have from each address at those endpoints on this
	// node; 0 is no limit.
	ClientAuthFailureLimit int

	// PAR serves the pushed authorization request endpoint (RFC 9126)
	// and honours its request_uri values at the authorization endpoint.
	PAR bool
	// RequirePAR refuses authorization requests that were not pushed,
	// of every client; without it only clients registered with
	// require_pushed_authorization_requests must push. It needs PAR.
	RequirePAR bool
	// PARLifespan is how long a request_uri may wait to be redeemed;
	// 0 is DefaultPARLifespan.
	PARLifespan time.Duration
	// Device configures the device authorization grant (device.go); off
	// unless Device.Enabled.
	Device DeviceConfig
}

// Deps are what the provider works with. Every field is required but
// Metrics and Meter.
type Deps struct {
	Store  Store
	Keys   *keys.Manager
	Logger *slog.Logger
	// Users are who sign-ins and userinfo describe, and whether a code's
	// or refresh token's user may still use it.
	Users Users
	// Roles tells apps allowed the roles scope who has which role.
	Roles Roles
	// Audit records refresh-token reuse.
	Audit *audit.Log
	// Metrics, if not nil, is told what the token endpoints did.
	Metrics Observer
	// APIKeys, if not nil, checks and revokes API keys at the
	// introspection and revocation endpoints; without it every key is
	// inactive.
	APIKeys APIKeys
	// Meter, if not nil, charges clients' calls to their usage plans.
	Meter Meter
	// Resources, if not nil, are the RFC 8707 resources clients may name;
	// without it every resource parameter is invalid_target.
	Resources Resources
	// Devices keeps device codes; required when Config.Device.Enabled.
	Devices devicegrant.Store
}

// Observer is told what the token, introspection and revocation endpoints
// did, for metrics. Every argument is one of a few fixed words, never a
// client, a user or a token.
type Observer interface {
	// TokenIssued is told of each token response: its grant type and
	// whether the access token is "opaque" or a "jwt".
	TokenIssued(grantType, format string)
	// Introspected is told how each introspection request ended:
	// "active", "inactive", "rejected" (an error answered to a caller that
	// asked wrongly, could not authenticate or is over its limit) or
	// "error" (Latchkey's side failed).
	Introspected(result string)
	// RateLimited is told of each request refused because its client is
	// over ClientRateLimit at endpoint: "token", "introspect" or "revoke";
	// or because the client ID it names has failed to authenticate from its
	// address ClientAuthFailureLimit times: "client_auth".
	RateLimited(endpoint string)
	// RefreshTokenReused is told of each spent refresh token presented
	// again, which revokes its grant.
	RefreshTokenReused()
}

// noObserver is the Observer of a provider without metrics.
type noObserver struct{}

func (noObserver) TokenIssued(string, string) {}
func (noObserver) Introspected(string)        {}
func (noObserver) RateLimited(string)         {}
func (noObserver) RefreshTokenReused()        {}

// Users is the user directory as the protocol reads it (pkg/identity):
// who a grant is for, and whether they still allow an app its scopes.
type Users interface {
	Get(ctx context.Context, id string) (*identity.User, error)
	Allows(ctx context.Context, userID string, app identity.App, scopes []string) (bool, error)
}

// Roles says which roles a user has (pkg/roles), for the roles scope.
type Roles interface {
	OfUser(ctx context.Context, userID string) ([]string, error)
}

// Provider serves the OAuth 2.0 and OpenID Connect endpoints.
type Provider struct {
	fosite      *fosite.Fosite
	store       Store
	issuer      string
	enforcePKCE bool
	idSigner    *signer
	logger      *slog.Logger
	users       Users
	roles       Roles
	// clientLimit limits each client's requests per endpoint.
	clientLimit *ratelimit.Limiter
	apiKeys     APIKeys
	// meter charges clients' calls to their usage plans; nil charges none.
	meter   Meter
	metrics Observer
	// par turns on pushed authorization requests, and requirePAR refuses
	// every other authorization request (par.go).
	par, requirePAR bool
	pushed          PushedRequests
	// resources are the RFC 8707 resources (resource.go); nil has none.
	resources Resources
	// grants are the grant types the token endpoint serves.
	grants []string
	audit  *audit.Log
	// devices, device and userCodeKey serve the device grant (device.go).
	devices     devicegrant.Store
	device      DeviceConfig
	userCodeKey []byte
}

// New composes fosite for Latchkey: the explicit list of grants below and
// nothing else.
func New(cfg Config, d Deps) (*Provider, error) {
	store, keyManager, logger := d.Store, d.Keys, d.Logger
	if store == nil || keyManager == nil || logger == nil || d.Users == nil || d.Roles == nil || d.Audit == nil {
		return nil, errors.New("oauth: Deps needs a Store, Keys, Logger, Users, Roles and Audit")
	}
	metrics := d.Metrics
	if metrics == nil {
		metrics = noObserver{}
	}
	if _, err := url.Parse(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("oauth: issuer: %w", err)
	}
	if len(cfg.Secrets) == 0 {
		return nil, fmt.Errorf("oauth: no secrets configured")
	}
	hmacKeys := make([][]byte, len(cfg.Secrets))
	for i, s := range cfg.Secrets {
		k, err := hkdf.Key(sha256.New, s, nil, hmacKeyInfo, 32)
		if err != nil {
			return nil, fmt.Errorf("oauth: derive token key %d: %w", i+1, err)
		}
		hmacKeys[i] = k
	}
	tokenURL := cfg.Issuer + discovery.TokenPath
	fc := &fosite.Config{
		AccessTokenLifespan:   cfg.AccessTokenLifespan,
		RefreshTokenLifespan:  cfg.RefreshTokenLifespan,
		IDTokenLifespan:       cfg.IDTokenLifespan,
		AuthorizeCodeLifespan: cfg.AuthorizationCodeLifespan,
		IDTokenIssuer:         cfg.Issuer,
		AccessTokenIssuer:     cfg.Issuer,
		TokenURL:              tokenURL,
		// Least privilege: "invoices" does not imply "invoices.write".
		ScopeStrategy:                  fosite.ExactScopeStrategy,
		AudienceMatchingStrategy:       fosite.ExactAudienceMatchingStrategy,
		EnforcePKCE:                    cfg.EnforcePKCE,
		EnforcePKCEForPublicClients:    true,
		EnablePKCEPlainChallengeMethod: false,
		GlobalSecret:                   hmacKeys[0],
		RotatedGlobalSecrets:           hmacKeys[1:],
		ClientSecretsHasher:            client.Hasher{},
		SendDebugMessagesToClients:     false,
		// select_account would need an account chooser Latchkey lacks.
		AllowedPromptValues: promptValues,
	}
	// jwks_uri of private_key_jwt clients: fosite's default client logs
	// every fetch to stderr and retries for half a minute with no timeout.
	jwksClient := retryablehttp.NewClient()
	jwksClient.Logger = nil
	jwksClient.RetryMax = 1
	jwksClient.HTTPClient.Timeout = jwksFetchTimeout
	fc.HTTPClient = jwksClient
	fc.JWKSFetcherStrategy = fosite.NewDefaultJWKSFetcherStrategy(
		fosite.JWKSFetcherWithHTTPClient(jwksClient),
		// A key a client removes stops working on every node within this.
		fosite.JKWKSFetcherWithDefaultTTL(jwksCacheTTL),
	)
	strat := &strategy{
		hmac:   oauth2.NewHMACSHAStrategyUnPrefixed(&hmac.HMACStrategy{Config: fc}, fc),
		signer: newSigner(keyManager, cfg.AccessTokenSigningAlg),
		issuer: cfg.Issuer,
	}
	// ID tokens are RS256 unless the client registered ES256, which the
	// session carries to the signer (algHeader).
	idSigner := newSigner(keyManager, jose.RS256)
	if cfg.RequirePAR && !cfg.PAR {
		return nil, errors.New("oauth: RequirePAR needs PAR")
	}
	if cfg.PARLifespan <= 0 {
		cfg.PARLifespan = DefaultPARLifespan
	}
	fc.PushedAuthorizeContextLifespan = cfg.PARLifespan
	fc.PushedAuthorizeRequestURIPrefix = parPrefix
	grants := grantTypes
	if cfg.Device.Enabled {
		if d.Devices == nil {
			return nil, errors.New("oauth: the device grant needs Deps.Devices")
		}
		grants = append(slices.Clone(grantTypes), client.GrantDeviceCode)
	}
	userCodeKey, err := hkdf.Key(sha256.New, cfg.Secrets[0], nil, userCodeKeyInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("oauth: derive user code key: %w", err)
	}
	factories := []compose.Factory{
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2ClientCredentialsGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
		// After the OAuth 2.0 code and refresh handlers, as fosite requires.
		compose.OpenIDConnectExplicitFactory,
		compose.OpenIDConnectRefreshFactory,
		// RFC 8628, which fosite v0.49 lacks (device.go); nothing while off.
		deviceGrantFactory(cfg.Device.Enabled, d.Devices),
	}
	if cfg.PAR {
		factories = append(factories, compose.PushedAuthorizeHandlerFactory)
	}
	f := compose.Compose(fc, &fositeStore{Store: store, audit: d.Audit, metrics: metrics, parLifespan: cfg.PARLifespan}, &compose.CommonStrategy{
		CoreStrategy:               strat,
		OpenIDConnectTokenStrategy: &openid.DefaultStrategy{Signer: idSigner, Config: fc},
		Signer:                     idSigner,
	}, factories...).(*fosite.Fosite)
	var apiKeys APIKeys = noAPIKeys{}
	if d.APIKeys != nil {
		apiKeys = d.APIKeys
	}
	issuerURL, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oauth: issuer %q: %w", cfg.Issuer, err)
	}
	f.Config = &fositeConfig{Config: fc, tokenURLs: []string{tokenURL, cfg.Issuer},
		origin: issuerURL.Scheme + "://" + issuerURL.Host}
	fc.ClientAuthenticationStrategy = authenticateClient(f, ratelimit.New(cfg.ClientAuthFailureLimit, time.Minute), metrics)
	return &Provider{
		fosite:      f,
		store:       store,
		issuer:      cfg.Issuer,
		enforcePKCE: cfg.EnforcePKCE,
		idSigner:    idSigner,
		logger:      logger,
		users:       d.Users,
		roles:       d.Roles,
		clientLimit: ratelimit.New(cfg.ClientRateLimit, time.Second),
		meter:       d.Meter,
		metrics:     metrics,
		apiKeys:     apiKeys,
		par:         cfg.PAR,
		requirePAR:  cfg.RequirePAR,
		pushed:      store,
		resources:   d.Resources,
		grants:      grants,
		audit:       d.Audit,
		devices:     d.Devices,
		device:      cfg.Device,
		userCodeKey: userCodeKey,
	}, nil
}
