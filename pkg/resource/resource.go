// Package resource is Latchkey's registry of protected resources for RFC
// 8707 resource indicators: the APIs a client may ask for a token for by
// their URI (the resource parameter), each with the scopes it accepts.
//
// # How a token is restricted to a resource
//
// A client names the resource at the authorization and token endpoints
// (pkg/oauth). The resource must be registered here and listed in the
// client's audience (pkg/client): the client's audience says which APIs
// it may call, the resource which scopes mean something there. The token
// is issued with aud set to the resource(s), and with only the scopes
// those resources accept, besides the scopes Latchkey itself serves
// (openid, profile, offline_access, ...). Anything else is invalid_target
// (RFC 8707 §2).
package resource

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/validation"
)

var (
	// ErrNotFound means no resource has the URI asked for.
	ErrNotFound = errors.New("resource not found")
	// ErrExists means a resource with the URI is already registered.
	ErrExists = errors.New("a resource with this URI already exists")
)

// MaxURILen is the longest resource URI, as for redirect URIs.
const MaxURILen = 2000

// maxScopes bounds the scopes one resource lists.
const maxScopes = 100

// Resource is a protected resource (an API) that tokens can be issued for.
type Resource struct {
	// URI is the resource indicator clients send (RFC 8707 §2): an
	// absolute URI without a fragment, and the aud of its tokens.
	URI string `json:"uri"`
	// Name is for people.
	Name string `json:"name"`
	// Scopes are the scopes the resource accepts; a token for it carries
	// no others but Latchkey's own (openid, profile, ...).
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Accepts reports whether the resource accepts scope.
func (r *Resource) Accepts(scope string) bool { return slices.Contains(r.Scopes, scope) }

// ValidateURI checks a resource indicator as RFC 8707 §2 has it: an
// absolute URI with no fragment. Latchkey also wants no user info, no
// spaces or control characters, and a bounded length.
func ValidateURI(raw string) error {
	switch {
	case raw == "":
		return errors.New("is empty")
	case len(raw) > MaxURILen:
		return fmt.Errorf("is %d characters; at most %d are allowed", len(raw), MaxURILen)
	case strings.ContainsFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return errors.New("contains spaces or control characters")
	case strings.Contains(raw, "#"):
		return errors.New("must not have a fragment (RFC 8707 §2)")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return errors.New("must be an absolute URI such as https://api.example.com (RFC 8707 §2)")
	}
	if u.User != nil {
		return errors.New("must not contain user info")
	}
	return nil
}

// Validate checks a resource, reporting every problem as a
// *validation.Error.
func (r *Resource) Validate() error {
	e := &validation.Error{Of: "resource"}
	if err := ValidateURI(r.URI); err != nil {
		e.Add("uri", "%v", err)
	}
	if utf8.RuneCountInString(r.Name) > 200 || strings.ContainsFunc(r.Name, unicode.IsControl) {
		e.Add("name", "must be at most 200 characters, with no control characters")
	}
	if len(r.Scopes) > maxScopes {
		e.Add("scopes", "lists %d scopes; at most %d are allowed", len(r.Scopes), maxScopes)
	}
	for _, s := range r.Scopes {
		if err := client.ValidateScopeToken(s); err != nil {
			e.Add("scopes", "%v", err)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(r.Scopes)))) != len(r.Scopes) {
		e.Add("scopes", "lists a scope twice")
	}
	return e.Err()
}

// Query selects resources, by URI. Zero fields do not filter.
type Query struct {
	// After continues a listing after the resource with this URI.
	After string
	// Limit caps the resources returned; 0 returns all.
	Limit int
}

// Store keeps resources (storage/postgres).
type Store interface {
	CreateResource(ctx context.Context, r *Resource) error
	Resource(ctx context.Context, uri string) (*Resource, error)
	FindResources(ctx context.Context, q Query) ([]Resource, error)
	ReplaceResource(ctx context.Context, r *Resource) error
	DeleteResource(ctx context.Context, uri string) error
}

// Auditor records changes with their audit events.
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Manager registers resources, recording each change in the audit log.
// The admin API, the CLI and the token endpoints go through it.
type Manager struct {
	store Store
	audit Auditor
}

// NewManager returns a Manager over store.
func NewManager(store Store, audit Auditor) *Manager {
	return &Manager{store: store, audit: audit}
}

// Create registers a resource.
func (m *Manager) Create(ctx context.Context, r Resource) (*Resource, error) {
	if r.Scopes == nil {
		r.Scopes = []string{}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.ResourceCreated, Target: audit.Resource(r.URI)}, m.store.CreateResource(ctx, &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Replace changes a resource's name and scopes; its URI never changes,
// since tokens name it. Tokens already issued keep the scopes they have.
func (m *Manager) Replace(ctx context.Context, r Resource) (*Resource, error) {
	if r.Scopes == nil {
		r.Scopes = []string{}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.ResourceUpdated, Target: audit.Resource(r.URI)}, m.store.ReplaceResource(ctx, &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Get returns a resource, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, uri string) (*Resource, error) {
	if ValidateURI(uri) != nil {
		return nil, ErrNotFound
	}
	return m.store.Resource(ctx, uri)
}

// Find returns the resources q selects, by URI.
func (m *Manager) Find(ctx context.Context, q Query) ([]Resource, error) {
	return m.store.FindResources(ctx, q)
}

// Delete removes a resource: no new token can be asked for it. Tokens
// already issued for it live out their lifespan; a client's audience
// still listing the URI lets it get tokens by the audience parameter, as
// before resources existed.
func (m *Manager) Delete(ctx context.Context, uri string) error {
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.ResourceDeleted, Target: audit.Resource(uri)}, m.store.DeleteResource(ctx, uri)
	})
}
