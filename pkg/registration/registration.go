// Package registration is dynamic client registration: clients that
// register themselves (RFC 7591) and then read, update and delete their
// registration (RFC 7592), as MCP clients, CLI tools and other apps that
// meet a provider for the first time do.
//
// # Modes
//
// LATCHKEY_REGISTRATION is off (the default: the endpoint does not exist
// and discovery does not name it), open (anyone may register) or token
// (an initial access token an admin issued is required, as a bearer
// token). What a registration may ask for is a Policy: for open
// registration the server's settings, for a token the cap it carries. No
// registration ever gets Latchkey's privileged fields (skip_consent,
// introspect_any_token, audience, lifespans and so on): only the RFC 7591
// metadata in Metadata can be sent, and everything else is left at its
// default. Admin scopes are never registered.
//
// # Flow
//
// Register runs in one transaction: it spends one use of the initial
// access token (UPDATE ... WHERE uses < max_uses, which serializes
// parallel registrations on the token's row), or, for open registration,
// takes a lock and counts the open registrations against their caps;
// then it builds the client from the metadata, checks it with the same
// rules as latchkey clients create (pkg/client, through client.Manager,
// which records client.registered) and with the policy, and stores the
// digest of a new registration access token beside it. A registration
// that fails spends nothing.
//
// The registration access token is shown in the registration response
// and nowhere else; only its SHA-256 digest is stored, and it is compared
// in constant time. It is not rotated on update (RFC 7592 §2.2 allows
// either): a client whose update response was lost would otherwise be
// locked out of its own registration. Deleting the client deletes it.
package registration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/validation"
)

// Modes of LATCHKEY_REGISTRATION.
const (
	Off   = "off"
	Open  = "open"
	Token = "token"
)

// Modes lists them, for the setting's validation.
var Modes = []string{Off, Open, Token}

var (
	// ErrNotFound means a client has no registration: it does not exist,
	// or an operator made it.
	ErrNotFound = errors.New("registration: the client did not register itself")
	// errInvalidToken is a management request whose registration access
	// token does not belong to the client it names, or a registration
	// whose initial access token cannot be used.
	errInvalidToken = errors.New("registration: invalid token")
	// errFull is open registration at its cap of clients.
	errFull = errors.New("registration: open registration is full")
	// errAddressLimit is an address at its cap of open registrations
	// this hour.
	errAddressLimit = errors.New("registration: too many registrations from this address")
)

// Registration is what is kept of a client that registered itself.
type Registration struct {
	ClientID string
	// Digest is the SHA-256 digest of its registration access token.
	Digest []byte
	// Policy is what it registered under. A token's cap holds the
	// client's updates too; open registration's are held to the settings
	// of the day (policyOf).
	Policy Policy
	// Open is true for open registration; TokenID names the initial
	// access token otherwise (empty once the token is revoked).
	Open    bool
	TokenID string
	// From is the address it registered from.
	From      string
	CreatedAt time.Time
}

// Store keeps registrations and initial access tokens
// (storage/postgres). Each call joins the transaction its context
// carries.
type Store interface {
	InTx(ctx context.Context, f func(ctx context.Context) error) error
	CreateRegistrationToken(ctx context.Context, t *InitialToken, digest []byte) error
	RegistrationTokens(ctx context.Context) ([]InitialToken, error)
	// DeleteRegistrationToken deletes a token and returns it, or
	// ErrTokenNotFound.
	DeleteRegistrationToken(ctx context.Context, id string) (*InitialToken, error)
	// SpendRegistrationToken adds one use to the token with digest if it
	// has uses left and has not expired at now, and returns it; else
	// errors. Its row stays locked until the transaction ends.
	SpendRegistrationToken(ctx context.Context, digest []byte, now time.Time) (*InitialToken, error)
	// LockOpenRegistrations takes a lock that open registrations queue on
	// until the transaction ends, and counts the open registrations there
	// are, and those since from the network (an address, or an IPv6 /64,
	// as ratelimit.AddressKey writes it).
	LockOpenRegistrations(ctx context.Context, network string, since time.Time) (total, fromNetwork int, err error)
	CreateRegistration(ctx context.Context, r *Registration) error
	// RegistrationOf returns the client's registration, or ErrNotFound.
	RegistrationOf(ctx context.Context, clientID string) (*Registration, error)
}

// Clients registers and changes clients (pkg/client's Manager), with the
// rules every client follows.
type Clients interface {
	Register(ctx context.Context, c client.Client, details map[string]any) (*client.Client, string, error)
	Get(ctx context.Context, id string) (*client.Client, error)
	Update(ctx context.Context, id string, edit func(*client.Client) error) (*client.Client, string, error)
	Delete(ctx context.Context, id string) error
}

// Auditor records changes with their audit events (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Config is what a Manager allows.
type Config struct {
	// Mode is Off, Open or Token.
	Mode string
	// Open is what open registration allows, and what an initial access
	// token allows unless it says otherwise.
	Open Policy
	// MaxOpenClients caps the clients open registration keeps at once:
	// anonymous callers must not be able to store without bound.
	MaxOpenClients int
	// AddressLimit caps open registrations from one address per hour,
	// counted in the database, across nodes.
	AddressLimit int
	// Endpoint is the registration endpoint's URL; a client's
	// registration_client_uri is it and the client's ID.
	Endpoint string
}

// Manager registers clients and manages their registrations, and the
// initial access tokens admins issue.
type Manager struct {
	store   Store
	clients Clients
	audit   Auditor
	cfg     Config
	open    Policy
}

// New returns a Manager allowing what cfg says.
func New(store Store, clients Clients, auditor Auditor, cfg Config) *Manager {
	return &Manager{store: store, clients: clients, audit: auditor, cfg: cfg, open: cfg.Open}
}

// Mode is the registration mode.
func (m *Manager) Mode() string { return m.cfg.Mode }

// Metadata is client metadata under RFC 7591 §2's names: all that a
// registration may set. Metadata a client sends that is not here is
// ignored, as §2 requires of metadata a server does not understand.
type Metadata struct {
	RedirectURIs                []string        `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod     string          `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes                  []string        `json:"grant_types,omitempty"`
	ResponseTypes               []string        `json:"response_types,omitempty"`
	ClientName                  string          `json:"client_name,omitempty"`
	Scope                       string          `json:"scope,omitempty"`
	JWKS                        json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                     string          `json:"jwks_uri,omitempty"`
	TokenEndpointAuthSigningAlg string          `json:"token_endpoint_auth_signing_alg,omitempty"`
	IDTokenSignedResponseAlg    string          `json:"id_token_signed_response_alg,omitempty"`
	PostLogoutRedirectURIs      []string        `json:"post_logout_redirect_uris,omitempty"`
}

// Request is a registration or update request's body: the metadata, and
// on update the client's ID and, if the client sends it, its secret.
type Request struct {
	Metadata
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
}

// ParseRequest reads a request body: one JSON object. What does not
// decode is a *validation.Error (invalid_client_metadata).
func ParseRequest(body []byte) (Request, error) {
	var req Request
	trimmed := bytes.TrimSpace(body)
	e := &validation.Error{Of: "client metadata"}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		e.Add("(body)", "must be a JSON object of client metadata (RFC 7591 §2)")
		return req, e
	}
	if err := json.Unmarshal(trimmed, &req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			e.Add(typeErr.Field, "has the wrong JSON type (%s)", typeErr.Value)
		} else {
			e.Add("(body)", "is not JSON client metadata")
		}
		return req, e
	}
	return req, nil
}

// Response is client information (RFC 7591 §3.2.1, RFC 7592 §3): the
// registered metadata, the client's credentials where they are shown,
// and how to manage the registration.
type Response struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// ClientIDIssuedAt is when the client registered, in seconds.
	ClientIDIssuedAt int64 `json:"client_id_issued_at"`
	// ClientSecretExpiresAt is 0, never, for a client with a secret,
	// and absent otherwise (RFC 7591 §3.2.1).
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string `json:"registration_access_token"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	Metadata
}

// Register registers a client from md, under initialToken in Token mode,
// for a caller at address from, and returns its information with its
// secret and registration access token, shown this once.
func (m *Manager) Register(ctx context.Context, initialToken string, md Metadata, from string) (*Response, error) {
	switch m.cfg.Mode {
	case Open, Token:
	default:
		return nil, ErrNotFound
	}
	if m.cfg.Mode == Token && !wellformed(initialToken, InitialPrefix) {
		return nil, ErrTokenRefused
	}
	var resp *Response
	err := m.store.InTx(ctx, func(ctx context.Context) error {
		now := time.Now()
		reg := &Registration{Open: m.cfg.Mode == Open, From: from}
		details := map[string]any{"via": m.cfg.Mode}
		if m.cfg.Mode == Token {
			t, err := m.store.SpendRegistrationToken(ctx, Digest(initialToken), now)
			if err != nil {
				return err
			}
			reg.Policy, reg.TokenID = t.Policy, t.ID
			details["registration_token"] = t.ID
			ctx = audit.WithActor(ctx, tokenActor(t.ID))
		} else {
			// An IPv6 host commonly holds a whole /64: counted by address,
			// it could register without limit.
			total, recent, err := m.store.LockOpenRegistrations(ctx, ratelimit.AddressKey(from), now.Add(-time.Hour))
			switch {
			case err != nil:
				return err
			case total >= m.cfg.MaxOpenClients:
				return errFull
			case recent >= m.cfg.AddressLimit:
				return errAddressLimit
			}
			reg.Policy = m.open
			ctx = audit.WithActor(ctx, audit.Anonymous)
		}
		c, err := build(client.Client{}, md, reg.Policy)
		if err != nil {
			return err
		}
		created, secret, err := m.clients.Register(ctx, *c, details)
		if err != nil {
			return err
		}
		token, digest := newToken(AccessPrefix)
		reg.ClientID, reg.Digest = created.ID, digest
		if err := m.store.CreateRegistration(ctx, reg); err != nil {
			return err
		}
		resp = m.response(created, secret, token)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// build applies md, the RFC 7591 metadata of a request, to base (the
// stored client on update, whose other fields an operator may have set),
// and checks the result with the rules of every client and then with p.
func build(base client.Client, md Metadata, p Policy) (*client.Client, error) {
	c := base
	c.Name = md.ClientName
	c.RedirectURIs = md.RedirectURIs
	c.GrantTypes = md.GrantTypes
	c.ResponseTypes = md.ResponseTypes
	c.TokenEndpointAuthMethod = md.TokenEndpointAuthMethod
	c.TokenEndpointAuthSigningAlg = md.TokenEndpointAuthSigningAlg
	c.IDTokenSignedResponseAlg = md.IDTokenSignedResponseAlg
	c.PostLogoutRedirectURIs = md.PostLogoutRedirectURIs
	c.JWKS = md.JWKS
	c.JWKSURI = ""
	// RFC 7591 §2 lets the server register a default set of scopes when
	// the client names none: here, all the policy allows.
	c.Scope = md.Scope
	if strings.TrimSpace(c.Scope) == "" {
		c.Scope = strings.Join(p.Scopes, " ")
	}
	c.Normalize()
	e := &validation.Error{Of: "client metadata"}
	// Latchkey would fetch a jwks_uri, from wherever an anonymous caller
	// pointed it: the keys go in jwks instead.
	if md.JWKSURI != "" {
		e.Add("jwks_uri", "is not accepted at registration; send the public keys in jwks")
	}
	if err := c.Validate(); err != nil {
		var invalid *validation.Error
		if !errors.As(err, &invalid) {
			return nil, err
		}
		e.Problems = append(e.Problems, invalid.Problems...)
	} else if err := p.Check(&c); err != nil {
		var invalid *validation.Error
		if errors.As(err, &invalid) {
			e.Problems = append(e.Problems, invalid.Problems...)
		}
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	return &c, nil
}

// response is c's client information.
func (m *Manager) response(c *client.Client, secret, token string) *Response {
	r := &Response{
		ClientID:                c.ID,
		ClientSecret:            secret,
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
		RegistrationAccessToken: token,
		RegistrationClientURI:   m.cfg.Endpoint + "/" + c.ID,
		Metadata: Metadata{
			RedirectURIs:                c.RedirectURIs,
			TokenEndpointAuthMethod:     c.TokenEndpointAuthMethod,
			GrantTypes:                  c.GrantTypes,
			ResponseTypes:               c.ResponseTypes,
			ClientName:                  c.Name,
			Scope:                       c.Scope,
			JWKS:                        c.JWKS,
			TokenEndpointAuthSigningAlg: c.TokenEndpointAuthSigningAlg,
			IDTokenSignedResponseAlg:    c.IDTokenSignedResponseAlg,
			PostLogoutRedirectURIs:      c.PostLogoutRedirectURIs,
		},
	}
	if c.HasSecret() {
		never := int64(0)
		r.ClientSecretExpiresAt = &never
	}
	return r
}

// authorize returns the registration of clientID if token is its
// registration access token, and errInvalidToken otherwise, whether the
// client exists or not (RFC 7592 §2.1).
func (m *Manager) authorize(ctx context.Context, clientID, token string) (*Registration, error) {
	if !wellformed(token, AccessPrefix) || len(clientID) > client.MaxIDLen {
		return nil, errInvalidToken
	}
	reg, err := m.store.RegistrationOf(ctx, clientID)
	if errors.Is(err, ErrNotFound) {
		return nil, errInvalidToken
	}
	if err != nil {
		return nil, err
	}
	if !matches(reg.Digest, token) {
		return nil, errInvalidToken
	}
	return reg, nil
}

// Read returns the client information of clientID to the holder of its
// registration access token (RFC 7592 §2.1). The secret is not in it:
// only its digest is kept.
func (m *Manager) Read(ctx context.Context, clientID, token string) (*Response, error) {
	if _, err := m.authorize(ctx, clientID, token); err != nil {
		return nil, err
	}
	c, err := m.clients.Get(ctx, clientID)
	if errors.Is(err, client.ErrNotFound) {
		return nil, errInvalidToken
	}
	if err != nil {
		return nil, err
	}
	return m.response(c, "", token), nil
}

// Update replaces the registered metadata of clientID with req's, for the
// holder of its registration access token (RFC 7592 §2.2): metadata left
// out takes its default, as at registration, within the policy the
// client registered under. Fields an operator set that are not RFC 7591
// metadata stay as they are. A client that comes to need a secret gets
// one, in the response.
func (m *Manager) Update(ctx context.Context, clientID, token string, req Request) (*Response, error) {
	reg, err := m.authorize(ctx, clientID, token)
	if err != nil {
		return nil, err
	}
	e := &validation.Error{Of: "client metadata"}
	if req.ClientID != clientID {
		e.Add("client_id", "must be the client's ID, %s (RFC 7592 §2.2)", clientID)
		return nil, e
	}
	ctx = audit.WithActor(ctx, audit.Client(clientID))
	c, secret, err := m.clients.Update(ctx, clientID, func(stored *client.Client) error {
		// A client may send its secret back; if it does, it must be the
		// secret it has (RFC 7592 §2.2).
		if req.ClientSecret != "" && (client.Hasher{}).Compare(ctx, stored.SecretHash, []byte(req.ClientSecret)) != nil {
			e.Add("client_secret", "is not the client's secret; leave it out")
			return e
		}
		c, err := build(*stored, req.Metadata, m.policyOf(reg))
		if err != nil {
			return err
		}
		*stored = *c
		return nil
	})
	if errors.Is(err, client.ErrNotFound) {
		return nil, errInvalidToken
	}
	if err != nil {
		return nil, err
	}
	return m.response(c, secret, token), nil
}

// policyOf is the policy an update of reg is held to: for open
// registration the settings as they are now, so that an operator who
// narrows them narrows what anonymous clients may change to; for a token,
// its cap when it registered the client, which outlives the token.
func (m *Manager) policyOf(reg *Registration) Policy {
	if reg.Open {
		return m.open
	}
	return reg.Policy
}

// Delete deletes clientID, its tokens and its registration, for the
// holder of its registration access token (RFC 7592 §2.3).
func (m *Manager) Delete(ctx context.Context, clientID, token string) error {
	if _, err := m.authorize(ctx, clientID, token); err != nil {
		return err
	}
	err := m.clients.Delete(audit.WithActor(ctx, audit.Client(clientID)), clientID)
	if errors.Is(err, client.ErrNotFound) {
		return errInvalidToken
	}
	return err
}

// describe is a validation error as one line for error_description, and
// the RFC 7591 §3.2.2 error code it is.
func describe(invalid *validation.Error) (code, desc string) {
	code = "invalid_client_metadata"
	parts := make([]string, len(invalid.Problems))
	for i, p := range invalid.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	// invalid_redirect_uri says the redirect URIs alone are at fault;
	// anything else wrong makes it invalid_client_metadata.
	if !slices.ContainsFunc(invalid.Problems, func(p validation.Problem) bool { return p.Field != "redirect_uris" }) {
		code = "invalid_redirect_uri"
	}
	return code, fmt.Sprintf("The client metadata is not valid: %s.", strings.Join(parts, "; "))
}
