package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/validation"
)

var (
	// ErrNotFound means no client has the ID asked for.
	ErrNotFound = errors.New("client not found")
	// ErrExists means a client with the chosen ID is already registered.
	ErrExists = errors.New("a client with this ID already exists")
	// ErrNoSecret means a secret was asked of a client that has none, such
	// as a public or private_key_jwt client.
	ErrNoSecret = errors.New("the client does not authenticate with a secret")
)

// Store keeps clients. UpdateClient runs update on the stored client inside
// a transaction and stores the result only if update returns nil, so that
// concurrent edits cannot lose each other's changes.
type Store interface {
	CreateClient(ctx context.Context, c *Client) error
	ClientByID(ctx context.Context, id string) (*Client, error)
	FindClients(ctx context.Context, q Query) ([]*Client, error)
	UpdateClient(ctx context.Context, id string, update func(*Client) error) (*Client, error)
	DeleteClient(ctx context.Context, id string) error
	RevokeClientTokens(ctx context.Context, id string) (int64, error)
}

// Query selects clients, by ID. Zero fields do not filter.
type Query struct {
	// NamePrefix keeps clients whose name starts with it, in any case.
	NamePrefix string
	// After continues a listing after the client with this ID.
	After string
	// Limit caps the clients returned; 0 returns all.
	Limit int
}

// Auditor records changes with their audit events (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Manager registers and changes clients, keeping every stored client valid
// and recording every change in the audit log. The CLI and the admin API
// both go through it.
type Manager struct {
	store Store
	audit Auditor
	// grace is how long a rotated-out secret keeps working by default.
	grace time.Duration
}

// NewManager returns a Manager over store. grace is the default time a
// rotated-out secret stays valid.
func NewManager(store Store, audit Auditor, grace time.Duration) *Manager {
	return &Manager{store: store, audit: audit, grace: grace}
}

// Create validates c and registers it, choosing an ID if c has none and
// generating a secret if its authentication method needs one. The secret is
// returned here and never again.
func (m *Manager) Create(ctx context.Context, c Client) (*Client, string, error) {
	return m.create(ctx, c, audit.ClientCreated, nil)
}

// Register is Create for a client that registers itself (RFC 7591,
// pkg/registration): the same rules, recorded as client.registered with
// details added to the event's. Inside a transaction (the one that spends
// an initial access token, say), it joins it.
func (m *Manager) Register(ctx context.Context, c Client, details map[string]any) (*Client, string, error) {
	c.SelfRegistered = true
	return m.create(ctx, c, audit.ClientRegistered, details)
}

// create is Create and Register, recording action.
func (m *Manager) create(ctx context.Context, c Client, action string, details map[string]any) (*Client, string, error) {
	c.Normalize()
	if err := c.Validate(); err != nil {
		return nil, "", err
	}
	if c.ID == "" {
		c.ID = newID()
	}
	var secret string
	if c.HasSecret() {
		secret, c.SecretHash = NewSecret()
	}
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		d := map[string]any{"client_name": c.Name, "scope": c.Scope}
		maps.Copy(d, details)
		return audit.Event{Action: action, Target: audit.Client(c.ID), Details: d}, m.store.CreateClient(ctx, &c)
	})
	if err != nil {
		return nil, "", err
	}
	return &c, secret, nil
}

// Get returns the client with the given ID, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (*Client, error) {
	return m.store.ClientByID(ctx, id)
}

// List returns every client, ordered by ID.
func (m *Manager) List(ctx context.Context) ([]*Client, error) {
	return m.store.FindClients(ctx, Query{})
}

// Find returns the clients q selects, ordered by ID.
func (m *Manager) Find(ctx context.Context, q Query) ([]*Client, error) {
	return m.store.FindClients(ctx, q)
}

// Update applies edit to the stored client and stores the result if it is
// valid. The ID and creation time cannot change. A client that switches to
// secret authentication gets a new secret, returned here; one that switches
// away loses its secrets.
func (m *Manager) Update(ctx context.Context, id string, edit func(*Client) error) (*Client, string, error) {
	var (
		secret  string
		changed []string
		c       *Client
	)
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		c, err = m.store.UpdateClient(ctx, id, func(c *Client) error {
			keep := *c
			if err := m.edit(c, edit, &secret); err != nil {
				return err
			}
			changed = audit.Changed(&keep, c)
			return nil
		})
		return audit.Event{Action: audit.ClientUpdated, Target: audit.Client(id),
			Details: map[string]any{"changed": changed, "new_secret": secret != ""}}, err
	})
	if err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// edit applies an edit to c under Update's rules, setting secret if the
// client gets a new one.
func (m *Manager) edit(c *Client, edit func(*Client) error, secret *string) error {
	keep := *c
	if err := edit(c); err != nil {
		return err
	}
	c.ID, c.CreatedAt = keep.ID, keep.CreatedAt
	c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = keep.SecretHash, keep.PreviousSecretHash, keep.PreviousSecretExpiresAt
	c.SecretRotatedAt = keep.SecretRotatedAt
	dropStaleKeys(c, &keep)
	dropStaleAccessTokenAlg(c, &keep)
	c.Normalize()
	if err := c.Validate(); err != nil {
		return err
	}
	switch {
	case c.HasSecret() && len(c.SecretHash) == 0:
		*secret, c.SecretHash = NewSecret()
	case !c.HasSecret():
		c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = nil, nil, time.Time{}
	}
	return nil
}

// dropStaleKeys forgets the public keys of a client that stops using
// private_key_jwt, unless the edit itself set them: left in place they
// would only make the new method fail validation.
func dropStaleKeys(c, old *Client) {
	if old.TokenEndpointAuthMethod != AuthPrivateKeyJWT || c.TokenEndpointAuthMethod == AuthPrivateKeyJWT {
		return
	}
	if bytes.Equal(c.JWKS, old.JWKS) && c.JWKSURI == old.JWKSURI && c.TokenEndpointAuthSigningAlg == old.TokenEndpointAuthSigningAlg {
		c.JWKS, c.JWKSURI, c.TokenEndpointAuthSigningAlg = nil, "", ""
	}
}

// dropStaleAccessTokenAlg forgets the signing algorithm of a client whose
// access tokens stop being JWTs, unless the edit itself set it: opaque
// tokens are not signed, and left in place it would only make the switch
// fail validation.
func dropStaleAccessTokenAlg(c, old *Client) {
	if old.AccessTokenFormat == FormatJWT && c.AccessTokenFormat != FormatJWT &&
		c.AccessTokenSignedResponseAlg == old.AccessTokenSignedResponseAlg {
		c.AccessTokenSignedResponseAlg = ""
	}
}

// MaxSecretGrace bounds how long a replaced, possibly leaked, client
// secret can keep working: RotateSecret refuses a longer grace, and
// LATCHKEY_CLIENT_SECRET_GRACE_PERIOD, the default grace, may not be
// longer either (pkg/config).
const MaxSecretGrace = 30 * 24 * time.Hour

// RotateSecret gives the client a new secret, returned here and never
// again. The old secret keeps working for grace, or for the Manager's
// default when grace is negative; 0 ends it at once. A grace longer than
// MaxSecretGrace is a *validation.Error on the field "grace", and nothing
// changes.
func (m *Manager) RotateSecret(ctx context.Context, id string, grace time.Duration) (*Client, string, error) {
	if grace < 0 {
		grace = m.grace
	}
	if grace > MaxSecretGrace {
		invalid := &validation.Error{Of: "secret rotation"}
		invalid.Add("grace", "is %s; it must be from 0s to %s", grace, MaxSecretGrace)
		return nil, "", invalid
	}
	var (
		secret string
		c      *Client
	)
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		c, err = m.store.UpdateClient(ctx, id, func(c *Client) error {
			if !c.HasSecret() {
				return fmt.Errorf("%w (token_endpoint_auth_method is %s)", ErrNoSecret, c.TokenEndpointAuthMethod)
			}
			secret = c.RotateSecret(time.Now(), grace)
			return nil
		})
		return audit.Event{Action: audit.ClientSecretRotated, Target: audit.Client(id),
			Details: map[string]any{"grace": grace.String()}}, err
	})
	if err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// Delete removes the client; its tokens go with it.
func (m *Manager) Delete(ctx context.Context, id string) error {
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.ClientDeleted, Target: audit.Client(id)}, m.store.DeleteClient(ctx, id)
	})
}

// RevokeTokens revokes every access token, refresh token and unused
// authorization code issued to the client, for a backend whose credentials
// leaked: the client itself stays registered. It returns how many were
// revoked.
func (m *Manager) RevokeTokens(ctx context.Context, id string) (int64, error) {
	var n int64
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		n, err = m.store.RevokeClientTokens(ctx, id)
		return audit.Event{Action: audit.ClientTokensRevoked, Target: audit.Client(id),
			Details: map[string]any{"revoked": n}}, err
	})
	return n, err
}

// newID returns a random client ID: 128 bits in lower-case base32, which
// needs no escaping anywhere a client ID travels.
func newID() string {
	return strings.ToLower(rand.Text())
}
