package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"
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
	ListClients(ctx context.Context) ([]*Client, error)
	UpdateClient(ctx context.Context, id string, update func(*Client) error) (*Client, error)
	DeleteClient(ctx context.Context, id string) error
}

// Manager registers and changes clients, keeping every stored client valid.
// The CLI and the admin API both go through it.
type Manager struct {
	store Store
	// grace is how long a rotated-out secret keeps working by default.
	grace time.Duration
}

// NewManager returns a Manager over store. grace is the default time a
// rotated-out secret stays valid.
func NewManager(store Store, grace time.Duration) *Manager {
	return &Manager{store: store, grace: grace}
}

// Create validates c and registers it, choosing an ID if c has none and
// generating a secret if its authentication method needs one. The secret is
// returned here and never again.
func (m *Manager) Create(ctx context.Context, c Client) (*Client, string, error) {
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
	if err := m.store.CreateClient(ctx, &c); err != nil {
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
	return m.store.ListClients(ctx)
}

// Update applies edit to the stored client and stores the result if it is
// valid. The ID and creation time cannot change. A client that switches to
// secret authentication gets a new secret, returned here; one that switches
// away loses its secrets.
func (m *Manager) Update(ctx context.Context, id string, edit func(*Client) error) (*Client, string, error) {
	var secret string
	c, err := m.store.UpdateClient(ctx, id, func(c *Client) error {
		keep := *c
		if err := edit(c); err != nil {
			return err
		}
		c.ID, c.CreatedAt = keep.ID, keep.CreatedAt
		c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = keep.SecretHash, keep.PreviousSecretHash, keep.PreviousSecretExpiresAt
		dropStaleKeys(c, &keep)
		c.Normalize()
		if err := c.Validate(); err != nil {
			return err
		}
		switch {
		case c.HasSecret() && len(c.SecretHash) == 0:
			secret, c.SecretHash = NewSecret()
		case !c.HasSecret():
			c.SecretHash, c.PreviousSecretHash, c.PreviousSecretExpiresAt = nil, nil, time.Time{}
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return c, secret, nil
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

// RotateSecret gives the client a new secret, returned here and never
// again. The old secret keeps working for grace, or for the Manager's
// default when grace is negative; 0 ends it at once.
func (m *Manager) RotateSecret(ctx context.Context, id string, grace time.Duration) (*Client, string, error) {
	if grace < 0 {
		grace = m.grace
	}
	var secret string
	c, err := m.store.UpdateClient(ctx, id, func(c *Client) error {
		if !c.HasSecret() {
			return fmt.Errorf("%w (token_endpoint_auth_method is %s)", ErrNoSecret, c.TokenEndpointAuthMethod)
		}
		secret = c.RotateSecret(time.Now(), grace)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// Delete removes the client; its tokens go with it.
func (m *Manager) Delete(ctx context.Context, id string) error {
	return m.store.DeleteClient(ctx, id)
}

// newID returns a random client ID: 128 bits in lower-case base32, which
// needs no escaping anywhere a client ID travels.
func newID() string {
	return strings.ToLower(rand.Text())
}
