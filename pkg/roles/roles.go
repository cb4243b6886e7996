// Package roles is Latchkey's role-based access control: roles an admin
// defines and assigns to users, which apps allowed the roles scope learn in
// the roles claim of ID tokens, userinfo, JWT access tokens and
// introspection. What a role permits is the app's business; Latchkey says
// who has it.
package roles

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/validation"
)

// Scope is the scope that lets an app learn a user's roles, and Claim the
// claim that carries them.
const (
	Scope = "roles"
	Claim = "roles"
)

var (
	// ErrNotFound means no role has the name asked for.
	ErrNotFound = errors.New("role not found")
	// ErrExists means a role with the name is already defined.
	ErrExists = errors.New("a role with this name already exists")
	// ErrUserNotFound means the user a role was to be assigned to does not
	// exist.
	ErrUserNotFound = errors.New("user not found")
)

// Role is a named set of permissions an app grants to the users who have it.
type Role struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// validName keeps role names safe in tokens and URLs: apps compare them as
// strings, so they are short and plain.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

// Validate checks a role's name and description, reporting every problem
// as a *validation.Error.
func (r *Role) Validate() error {
	e := &validation.Error{Of: "role"}
	if !validName.MatchString(r.Name) {
		e.Add("name", "must be 1 to 64 of the characters A-Z a-z 0-9 . _ : -, starting with a letter or digit")
	}
	if utf8.RuneCountInString(r.Description) > 500 || strings.ContainsFunc(r.Description, unicode.IsControl) {
		e.Add("description", "must be at most 500 characters on one line")
	}
	return e.Err()
}

// Query selects roles, by name. Zero fields do not filter.
type Query struct {
	// After continues a listing after the role with this name.
	After string
	// Limit caps the roles returned; 0 returns all.
	Limit int
}

// Store keeps roles and who has them. Deleting a role removes it from
// every user.
type Store interface {
	CreateRole(ctx context.Context, r *Role) error
	Role(ctx context.Context, name string) (*Role, error)
	FindRoles(ctx context.Context, q Query) ([]Role, error)
	UpdateRoleDescription(ctx context.Context, name, description string) (*Role, error)
	DeleteRole(ctx context.Context, name string) error
	AssignRole(ctx context.Context, userID, name string) (bool, error)
	UnassignRole(ctx context.Context, userID, name string) (bool, error)
	UserRoles(ctx context.Context, userID string) ([]string, error)
}

// Auditor records changes with their audit events.
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Manager defines roles and assigns them, recording each change in the
// audit log. The admin API goes through it.
type Manager struct {
	store Store
	audit Auditor
}

// NewManager returns a Manager over store.
func NewManager(store Store, audit Auditor) *Manager {
	return &Manager{store: store, audit: audit}
}

// Create defines a role.
func (m *Manager) Create(ctx context.Context, r Role) (*Role, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.RoleCreated, Target: audit.Role(r.Name)}, m.store.CreateRole(ctx, &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// Get returns a role, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, name string) (*Role, error) {
	return m.store.Role(ctx, name)
}

// Find returns the roles q selects, by name.
func (m *Manager) Find(ctx context.Context, q Query) ([]Role, error) {
	return m.store.FindRoles(ctx, q)
}

// Describe changes a role's description; its name never changes, since
// apps know it by name.
func (m *Manager) Describe(ctx context.Context, name, description string) (*Role, error) {
	if !validName.MatchString(name) {
		return nil, ErrNotFound
	}
	check := Role{Name: name, Description: description}
	if err := check.Validate(); err != nil {
		return nil, err
	}
	var r *Role
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		r, err = m.store.UpdateRoleDescription(ctx, name, description)
		return audit.Event{Action: audit.RoleUpdated, Target: audit.Role(name)}, err
	})
	return r, err
}

// Delete removes a role, and takes it from every user who had it.
func (m *Manager) Delete(ctx context.Context, name string) error {
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.RoleDeleted, Target: audit.Role(name)}, m.store.DeleteRole(ctx, name)
	})
}

// Assign gives a user a role; having it already is not an error. Tokens
// issued before carry the roles of their time until they are refreshed.
func (m *Manager) Assign(ctx context.Context, userID, name string) error {
	if !identity.IsSub(userID) {
		return ErrUserNotFound
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if added, err := m.store.AssignRole(ctx, userID, name); !added {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.UserRoleAssigned, Target: audit.User(userID), Details: map[string]any{"role": name}}, nil
	})
}

// Unassign takes a role from a user; not having it is not an error.
func (m *Manager) Unassign(ctx context.Context, userID, name string) error {
	if !identity.IsSub(userID) {
		return ErrUserNotFound
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if removed, err := m.store.UnassignRole(ctx, userID, name); !removed {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.UserRoleUnassigned, Target: audit.User(userID), Details: map[string]any{"role": name}}, nil
	})
}

// OfUser returns the names of a user's roles, sorted.
func (m *Manager) OfUser(ctx context.Context, userID string) ([]string, error) {
	if !identity.IsSub(userID) {
		return nil, ErrUserNotFound
	}
	roles, err := m.store.UserRoles(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("roles of user %s: %w", userID, err)
	}
	return roles, nil
}
