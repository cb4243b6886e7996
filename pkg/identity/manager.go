package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/latchkey/latchkey/pkg/audit"
)

var (
	// ErrNotFound means no user has the ID or email asked for.
	ErrNotFound = errors.New("user not found")
	// ErrEmailTaken means another user already has the email, in any case.
	ErrEmailTaken = errors.New("another user has this email")
	// ErrInvalidCredentials is the only answer a failed sign-in gets, whether
	// the email is unknown, the password wrong or the account disabled, so
	// that the answer reveals nothing about which accounts exist.
	ErrInvalidCredentials = errors.New("email or password is incorrect")
)

// Store keeps users, their sessions and their consents. UpdateUser runs
// update on the stored user inside a transaction. SetUserDisabled (when
// disabling), SetUserPassword, DeleteUser and SignOutEverywhere end the
// user's browser sessions and revoke their tokens and unused authorization
// codes in the same transaction, so that whoever held them is out at once;
// RevokeConsent does the same for one app's.
type Store interface {
	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	FindUsers(ctx context.Context, q Query) ([]*User, error)
	UpdateUser(ctx context.Context, id string, update func(*User) error) (*User, error)
	SetUserDisabled(ctx context.Context, id string, disabled bool) error
	SetUserPassword(ctx context.Context, id, hash string) error
	DeleteUser(ctx context.Context, id string) error
	SignOutEverywhere(ctx context.Context, id string) error

	BrowserSessions(ctx context.Context, userID string) ([]BrowserSession, error)
	EndUserBrowserSession(ctx context.Context, userID, sid string) (bool, error)
	Consents(ctx context.Context, userID string) ([]Consent, error)
	ConsentedScopes(ctx context.Context, userID, clientID string) ([]string, error)
	GrantConsent(ctx context.Context, userID, clientID string, scopes []string) error
	RevokeConsent(ctx context.Context, userID, clientID string) (bool, error)

	FailureStore
}

// Query selects users, ordered by email. Zero fields do not filter.
type Query struct {
	// EmailPrefix keeps users whose email starts with it, in any case.
	EmailPrefix string
	// After continues a listing after the user with this email (any case).
	After string
	// Limit caps the users returned; 0 returns all.
	Limit int
}

// Auditor records changes with their audit events (pkg/audit), and events
// that change nothing else.
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
	Record(ctx context.Context, e audit.Event) error
}

// Manager keeps the user directory consistent: every user valid, every
// password within the policy and hashed, every sign-in checked the same
// way, and every change recorded in the audit log. The CLI, the admin API
// and the account page all go through it.
type Manager struct {
	store  Store
	hasher *Hasher
	audit  Auditor
	// throttle limits wrong passwords per account.
	throttle Throttle
}

// NewManager returns a Manager over store whose sign-ins are throttled by
// throttle.
func NewManager(store Store, hasher *Hasher, audit Auditor, throttle Throttle) *Manager {
	return &Manager{store: store, hasher: hasher, audit: audit, throttle: throttle}
}

// Create adds a user with a new sub. password may be empty, for a user who
// will get one later with SetPassword; until then they cannot sign in.
func (m *Manager) Create(ctx context.Context, u User, password string) (*User, error) {
	u.Email = strings.TrimSpace(u.Email)
	if err := u.Validate(); err != nil {
		return nil, err
	}
	var hash string
	if password != "" {
		var err error
		if hash, err = m.HashPassword(ctx, password, u.Email); err != nil {
			return nil, err
		}
	}
	return m.CreateWithHash(ctx, u, hash)
}

// CreateWithHash is Create for a password that HashPassword checked and
// hashed earlier: a sign-up's, kept sealed in its link until the address
// is proven (pkg/account). hash may be empty, as Create's password may.
func (m *Manager) CreateWithHash(ctx context.Context, u User, hash string) (*User, error) {
	u.Email = strings.TrimSpace(u.Email)
	if err := u.Validate(); err != nil {
		return nil, err
	}
	u.PasswordHash = hash
	u.ID = newSub()
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.UserCreated, Target: audit.User(u.ID),
			Details: map[string]any{"email": u.Email, "password": u.PasswordHash != ""}}, m.store.CreateUser(ctx, &u)
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// Get returns the user with the given sub, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, id string) (*User, error) {
	if !IsSub(id) {
		return nil, ErrNotFound
	}
	return m.store.UserByID(ctx, id)
}

// GetByEmail returns the user with the given email, in any case.
func (m *Manager) GetByEmail(ctx context.Context, email string) (*User, error) {
	return m.store.UserByEmail(ctx, strings.TrimSpace(email))
}

// List returns every user, ordered by email.
func (m *Manager) List(ctx context.Context) ([]*User, error) {
	return m.store.FindUsers(ctx, Query{})
}

// Find returns the users q selects, ordered by email.
func (m *Manager) Find(ctx context.Context, q Query) ([]*User, error) {
	return m.store.FindUsers(ctx, q)
}

// Update applies edit to the stored user and keeps the result if it is
// valid. The sub, the password and the disabled flag have methods of their
// own and cannot change here.
//
// A changed address is also recorded as user.email_changed, with the old
// and the new address, whoever changed it, so that the old address can be
// told (pkg/notify).
//
// A new email address is not verified: apps rely on email_verified to mean
// that someone checked the address, and nobody has checked the new one.
// So when edit changes the address (more than the case of its ASCII
// letters), Update applies edit again, to the stored user with
// email_verified false: it stays false unless edit sets it itself, as
// `latchkey users update --email-verified` and an admin API patch with
// "email_verified" do. edit must therefore do the same whenever it runs,
// as edits that set fields from a request do.
func (m *Manager) Update(ctx context.Context, id string, edit func(*User) error) (*User, error) {
	if !IsSub(id) {
		return nil, ErrNotFound
	}
	var (
		updated  *User
		changed  []string
		oldEmail string
	)
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		updated, err = m.store.UpdateUser(ctx, id, func(u *User) error {
			keep := u.clone()
			oldEmail = keep.Email
			if err := edit(u); err != nil {
				return err
			}
			if !sameAddress(keep.Email, strings.TrimSpace(u.Email)) {
				*u = keep.clone()
				u.EmailVerified = false
				if err := edit(u); err != nil {
					return err
				}
			}
			u.ID, u.PasswordHash, u.Disabled, u.CreatedAt = keep.ID, keep.PasswordHash, keep.Disabled, keep.CreatedAt
			u.Email = strings.TrimSpace(u.Email)
			changed = audit.Changed(&keep, u)
			return u.Validate()
		})
		if err == nil && !sameAddress(oldEmail, updated.Email) {
			// Whoever changed it, the old address is where its owner still
			// looks: pkg/notify tells it, from this event.
			err = m.audit.Record(ctx, audit.Event{Action: audit.UserEmailChanged, Target: audit.User(id),
				Details: map[string]any{"old_email": oldEmail, "new_email": updated.Email}})
		}
		return audit.Event{Action: audit.UserUpdated, Target: audit.User(id), Details: map[string]any{"changed": changed}}, err
	})
	if err != nil {
		return nil, err
	}
	return updated, nil
}

// SetPassword replaces the user's password, after checking it against the
// policy, and signs the user out everywhere: a password is reset because
// someone else may know the old one, so their sessions and tokens must go
// too.
func (m *Manager) SetPassword(ctx context.Context, id, password string) error {
	u, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	hash, err := m.HashPassword(ctx, password, u.Email)
	if err != nil {
		return err
	}
	return m.SetPasswordHash(ctx, id, hash)
}

// HashPassword checks password against the policy for the user with email
// and returns its hash, for CreateWithHash or SetPasswordHash: a change
// that runs in a transaction hashes first, so that the transaction does
// not wait on the hash.
func (m *Manager) HashPassword(ctx context.Context, password, email string) (string, error) {
	if err := CheckPassword(password, email); err != nil {
		return "", err
	}
	return m.hasher.Hash(ctx, password)
}

// SetPasswordHash is SetPassword for a password that HashPassword checked
// and hashed: it replaces the user's password, signs them out everywhere
// and voids their unused reset and invitation links, in the transaction
// ctx carries if any.
func (m *Manager) SetPasswordHash(ctx context.Context, id, hash string) error {
	if !IsSub(id) {
		return ErrNotFound
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		u, err := m.store.UserByID(ctx, id)
		if err != nil {
			return audit.Event{}, err
		}
		// A first password (an invitation accepted, or an admin's for a
		// user created without one) replaces nothing: the event says so,
		// and nobody is told a password changed (pkg/notify).
		e := audit.Event{Action: audit.UserPasswordSet, Target: audit.User(id)}
		if u.PasswordHash == "" {
			e.Details = map[string]any{"first": true}
		}
		return e, m.store.SetUserPassword(ctx, id, hash)
	})
}

// Disable stops the user signing in, ends their browser sessions and
// revokes their tokens.
func (m *Manager) Disable(ctx context.Context, id string) error {
	return m.change(ctx, id, audit.UserDisabled, func(ctx context.Context) error {
		return m.store.SetUserDisabled(ctx, id, true)
	})
}

// Enable lets a disabled user sign in again.
func (m *Manager) Enable(ctx context.Context, id string) error {
	return m.change(ctx, id, audit.UserEnabled, func(ctx context.Context) error {
		return m.store.SetUserDisabled(ctx, id, false)
	})
}

// Delete removes the user with their sessions, consents and tokens.
func (m *Manager) Delete(ctx context.Context, id string) error {
	u, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.UserDeleted, Target: audit.User(id),
			Details: map[string]any{"email": u.Email}}, m.store.DeleteUser(ctx, id)
	})
}

// SignOutEverywhere ends every browser session of the user and revokes
// every access and refresh token and unused authorization code issued to
// them: after it, the user must sign in again everywhere, and no app can
// act for them until they do.
func (m *Manager) SignOutEverywhere(ctx context.Context, id string) error {
	return m.change(ctx, id, audit.UserSignedOut, func(ctx context.Context) error {
		return m.store.SignOutEverywhere(ctx, id)
	})
}

// change makes a change to user id that needs nothing but its event.
func (m *Manager) change(ctx context.Context, id, action string, f func(ctx context.Context) error) error {
	if !IsSub(id) {
		return ErrNotFound
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: action, Target: audit.User(id)}, f(ctx)
	})
}

// Device is a browser that has signed in to an account before, named by
// the random ID its device cookie holds (pkg/device); nil is a device the
// account does not know. Wrong passwords from a known device are counted
// per device, apart from the account's count for unknown devices, so that
// an attacker, who has no such cookie, cannot lock the account's owner out
// of the browsers they sign in with (OWASP, "Slow down online guessing
// attacks with device cookies").
type Device []byte

// Authenticate checks an email and password, typed on device. Every
// failure is ErrInvalidCredentials: an unknown email, a wrong password, a
// disabled account, and an account that must wait after too many failures
// (see Throttle) all look the same, so that the answer says nothing about
// whether the account exists. Failures are counted per email, whether or
// not an account has it, for the same reason; from a known device, per
// device. An attempt the throttle refuses costs no password check: the
// refusal depends only on the count for the email as typed, never on the
// account, so skipping the check tells nothing either. A hash made with
// older parameters is replaced on success.
func (m *Manager) Authenticate(ctx context.Context, email, password string, device Device) (*User, error) {
	kind, key := failedPassword, AccountKey(email)
	if len(device) > 0 {
		kind, key = failedDevicePassword, append(key, device...)
	}
	// The log is for admins, who may know which account was tried.
	e := audit.Event{Details: map[string]any{"email": email}}
	a, wait, err := m.throttle.begin(ctx, m.store, kind, key)
	if err != nil {
		return nil, err
	}
	u, err := m.GetByEmail(ctx, email)
	switch {
	case errors.Is(err, ErrNotFound):
		u = &User{}
	case err != nil:
		return nil, err
	}
	if u.ID != "" {
		e.Target = audit.User(u.ID)
	}
	if wait != nil {
		// Refused unchecked; not counted, so it does not prolong the wait.
		e.Action = audit.LoginFailed
		e.Details["reason"] = "throttled"
		e.Details["locked"] = wait.Locked
		if err := m.audit.Record(ctx, e); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	ok, stale, err := m.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return nil, err
	}
	if !ok || u.Disabled {
		switch {
		case u.ID == "":
			e.Details["reason"] = "unknown email"
		case ok:
			e.Details["reason"] = "disabled"
		default:
			e.Details["reason"] = "wrong password"
		}
		if err := a.failed(ctx, m.audit, e); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCredentials
	}
	if err := a.succeeded(ctx); err != nil {
		return nil, err
	}
	if stale {
		if hash, err := m.hasher.Hash(ctx, password); err == nil {
			_, err = m.store.UpdateUser(ctx, u.ID, func(u *User) error {
				u.PasswordHash = hash
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("identity: rehash password: %w", err)
			}
		}
	}
	return u, nil
}

// Unlock forgets a user's failed passwords, from every device, and
// second-factor codes, so that an account throttled or locked by an
// attack, or a user's own mistakes, can sign in again at once.
func (m *Manager) Unlock(ctx context.Context, id string) error {
	u, err := m.Get(ctx, id)
	if err != nil {
		return err
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		// The account's count for unknown devices, and every known
		// device's, whose keys start with the account's.
		for _, kind := range []string{failedPassword, failedDevicePassword} {
			if err := m.store.ClearFailures(ctx, kind, AccountKey(u.Email)); err != nil {
				return audit.Event{}, err
			}
		}
		return audit.Event{Action: audit.UserUnlocked, Target: audit.User(id)}, m.store.ClearFailures(ctx, failedCode, []byte(id))
	})
}

// sameAddress reports whether a and b are one email address: equal but for
// the case of ASCII letters. Any other difference makes another address,
// which nobody has checked, even one that Unicode case folding takes for
// the same ("adaſ@example.com" folds to "adas@example.com").
func sameAddress(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
