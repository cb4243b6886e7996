// Package discovery publishes Latchkey's provider metadata: OpenID Connect
// Discovery 1.0 at /.well-known/openid-configuration and RFC 8414 at
// /.well-known/oauth-authorization-server.
//
// The document lists only what this build serves. Each endpoint is added
// here in the same change that mounts it, and a test requests every URL the
// document names.
package discovery

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/roles"
)

// Paths of the documents and endpoints, relative to the issuer. The router
// in cmd/latchkey mounts handlers at these same constants.
const (
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
	JWKSPath                = "/.well-known/jwks.json"
	AuthorizationPath       = "/oauth2/authorize"
	TokenPath               = "/oauth2/token" // #nosec G101 -- an endpoint path, not a credential
	UserinfoPath            = "/oauth2/userinfo"
	EndSessionPath          = "/oauth2/logout"
	IntrospectionPath       = "/oauth2/introspect"
	RevocationPath          = "/oauth2/revoke"
	// RegistrationPath is the dynamic client registration endpoint (RFC
	// 7591); each registered client's configuration endpoint (RFC 7592)
	// is under it, at /oauth2/register/{client_id}.
	RegistrationPath = "/oauth2/register"
	// PushedAuthorizationPath is the PAR endpoint (RFC 9126), served
	// when Features.PAR is on.
	PushedAuthorizationPath = "/oauth2/par"
	// DeviceAuthorizationPath is RFC 8628's device authorization
	// endpoint, served when the device grant is on.
	DeviceAuthorizationPath = "/oauth2/device_authorization"
)

// DeviceVerificationPath is the page where users type a device's user
// code (RFC 8628 §3.3): the verification_uri.
const DeviceVerificationPath = "/device"

// AuthorizationResumePath is where the login and consent pages send the
// browser back to carry on with a parked authorization request. It is not
// part of the published metadata: clients never call it.
const AuthorizationResumePath = AuthorizationPath + "/resume"

// OAuthMetadataPrefix is where RFC 8414 metadata lives. Unlike OpenID
// Connect's, the well-known segment goes before the issuer's path:
// https://h/.well-known/oauth-authorization-server/tenant for issuer https://h/tenant.
const OAuthMetadataPrefix = "/.well-known/oauth-authorization-server"

// Document is the provider metadata, with the field names of RFC 8414 §2
// and OpenID Connect Discovery 1.0 §3.
type Document struct {
	Issuer                                     string   `json:"issuer"`
	JWKSURI                                    string   `json:"jwks_uri"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	ClaimTypesSupported                        []string `json:"claim_types_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	ACRValuesSupported                         []string `json:"acr_values_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	UILocalesSupported                         []string `json:"ui_locales_supported"`
	// RegistrationEndpoint is where clients register themselves (RFC 7591
	// §3; RFC 8414 §2), present only when registration is on.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// PushedAuthorizationRequestEndpoint and
	// RequirePushedAuthorizationRequests are RFC 9126 §5's.
	PushedAuthorizationRequestEndpoint string `json:"pushed_authorization_request_endpoint,omitempty"`
	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests,omitempty"`
	// OpenID Connect Back-Channel Logout 1.0 §2.1, when Features turn it on.
	BackchannelLogoutSupported        bool `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSessionSupported bool `json:"backchannel_logout_session_supported,omitempty"`
	// DeviceAuthorizationEndpoint is RFC 8628 §4's, when the device grant
	// is on.
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
}

// Features are the optional protocols a deployment has turned on. The
// document names each one's endpoint and metadata exactly when it is on,
// so that a client library never tries what would be refused.
type Features struct {
	// Registration is dynamic client registration
	// (LATCHKEY_REGISTRATION open or token; pkg/registration).
	Registration bool
	// PAR serves pushed authorization requests (RFC 9126), and RequirePAR
	// refuses authorization requests that were not pushed.
	PAR, RequirePAR bool
	// BackchannelLogout is OpenID Connect Back-Channel Logout 1.0: logout
	// tokens, with sid, posted to the backchannel_logout_uri of every app
	// a sign-in reached when it ends (pkg/logout).
	BackchannelLogout bool
	// DeviceAuthorization is the device authorization grant (RFC 8628):
	// its endpoint and grant type.
	DeviceAuthorization bool
}

// New describes a provider at issuer, which config has validated, serving
// the optional protocols f turns on.
func New(issuer string, f Features) Document {
	confidential := []string{client.AuthSecretBasic, client.AuthSecretPost, client.AuthPrivateKeyJWT}
	d := Document{
		Issuer:                            issuer,
		JWKSURI:                           issuer + JWKSPath,
		AuthorizationEndpoint:             issuer + AuthorizationPath,
		TokenEndpoint:                     issuer + TokenPath,
		UserinfoEndpoint:                  issuer + UserinfoPath,
		EndSessionEndpoint:                issuer + EndSessionPath,
		IntrospectionEndpoint:             issuer + IntrospectionPath,
		RevocationEndpoint:                issuer + RevocationPath,
		GrantTypesSupported:               []string{client.GrantAuthorizationCode, client.GrantRefreshToken, client.GrantClientCredentials},
		TokenEndpointAuthMethodsSupported: slices.Concat(confidential, []string{client.AuthNone}),
		TokenEndpointAuthSigningAlgValuesSupported: client.AssertionAlgorithms,
		// Introspection is for resource servers, which must authenticate.
		IntrospectionEndpointAuthMethodsSupported: confidential,
		RevocationEndpointAuthMethodsSupported:    slices.Concat(confidential, []string{client.AuthNone}),
		// Plain PKCE protects nothing against an attacker who sees the
		// request (RFC 9700 §2.1.1).
		CodeChallengeMethodsSupported: []string{"S256"},
		// The code flow only (RFC 9700 §2.1.2), answering in the query,
		// where iss can be added to errors as well as codes.
		ResponseTypesSupported:           []string{"code"},
		ResponseModesSupported:           []string{"query"},
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: client.IDTokenAlgorithms,
		ScopesSupported:                  []string{"openid", "profile", "email", "address", "phone", "offline_access", roles.Scope},
		ClaimsSupported: slices.Concat([]string{"iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash"},
			identity.SupportedClaims(), []string{roles.Claim}),
		ClaimTypesSupported:                        []string{"normal"},
		ClaimsParameterSupported:                   true,
		RequestParameterSupported:                  false,
		RequestURIParameterSupported:               false,
		AuthorizationResponseIssParameterSupported: true,
		ACRValuesSupported:                         identity.ACRValues,
		PromptValuesSupported:                      []string{"none", "login", "consent"},
		UILocalesSupported:                         []string{"en"},
		BackchannelLogoutSupported:                 f.BackchannelLogout,
		BackchannelLogoutSessionSupported:          f.BackchannelLogout,
	}
	if f.Registration {
		d.RegistrationEndpoint = issuer + RegistrationPath
	}
	if f.PAR {
		d.PushedAuthorizationRequestEndpoint = issuer + PushedAuthorizationPath
		d.RequirePushedAuthorizationRequests = f.RequirePAR
	}
	if f.DeviceAuthorization {
		d.DeviceAuthorizationEndpoint = issuer + DeviceAuthorizationPath
		d.GrantTypesSupported = append(d.GrantTypesSupported, client.GrantDeviceCode)
	}
	return d
}

// OAuthMetadataPath is the path, from the host's root, where the RFC 8414
// document for issuer is served.
func OAuthMetadataPath(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return "", fmt.Errorf("discovery: issuer: %w", err)
	}
	return OAuthMetadataPrefix + strings.TrimSuffix(u.Path, "/"), nil
}

// Handler serves the document. It is encoded once, as it never changes while
// the process runs.
func (d Document) Handler() http.Handler {
	body, err := json.Marshal(d)
	if err != nil {
		panic("discovery: document does not encode: " + err.Error()) // only plain strings in it
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	})
}
