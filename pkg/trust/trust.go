// Package trust keeps trusted devices: browsers on which a user ticked
// "Don't ask again on this browser" at the second-factor step, so that
// signing in there with the right password skips that step for a while
// (LATCHKEY_TRUSTED_DEVICE_LIFETIME).
//
// # What trust is, and is not
//
// A trusted device stands in for the second factor at an ordinary
// sign-in; it is not itself a factor. A sign-in it let through is
// recorded as what it was, a password (amr "pwd", the password level of
// acr), so an app that asks for the second factor, by require_mfa or
// acr, still gets it asked for, and so does a request that wants the user
// to prove who they are now (prompt=login, max_age). The sign-in decides
// where trust may stand in (pkg/signin); this package only says whether a
// browser is trusted.
//
// # The record and the cookie
//
// Each trusted device is a row (trusted_devices) with the SHA-256 digest
// of a random 256-bit secret, the user it was trusted for, a label from
// its user agent, and when it was trusted, last used and expires. The
// browser holds the secret in a cookie sealed like pkg/device's
// (AES-256-GCM under LATCHKEY_SECRETS, pkg/seal), so it cannot be forged
// or altered, and a copy of the table yields no cookie that works. The
// cookie names the user each secret is for, and a secret counts only for
// the user whose row holds its digest: another account's cookie does
// nothing. Forgetting a device deletes its row, so it ends on every node
// at once whatever the browser keeps; a change of password or of second
// factor forgets all the user's devices, in the transaction of the
// change (storage/postgres).
package trust

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/device"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/server"
)

// ErrNotFound means the user has no trusted device with that ID.
var ErrNotFound = errors.New("trust: no such trusted device")

// Device is a browser a user trusts.
type Device struct {
	// ID names the device to its user and to admins; it is not the secret
	// the browser holds.
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	// Label is what the browser was when trusted, such as "Firefox on
	// Linux" (device.Describe).
	Label      string    `json:"label"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// Store keeps trusted devices (storage/postgres). Each call joins the
// transaction its context carries, if any.
type Store interface {
	// CreateTrustedDevice stores d under the digest of its secret, and
	// deletes the user's device whose digest is replaces, if any: the
	// same browser trusted again is one device.
	CreateTrustedDevice(ctx context.Context, d Device, digest, replaces []byte) error
	// UseTrustedDevice reports whether userID has an unexpired device with
	// digest, and if so marks it used now.
	UseTrustedDevice(ctx context.Context, userID string, digest []byte) (bool, error)
	// TrustedDevices lists the user's unexpired devices, newest first.
	TrustedDevices(ctx context.Context, userID string) ([]Device, error)
	// DeleteTrustedDevice deletes one of the user's devices; false if the
	// user has none with that ID.
	DeleteTrustedDevice(ctx context.Context, userID, id string) (bool, error)
	// DeleteTrustedDevices deletes all the user's devices and says how
	// many there were.
	DeleteTrustedDevices(ctx context.Context, userID string) (int64, error)
}

// Auditor records changes with their audit events (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Limits of a trusted-device cookie.
const (
	secretBytes = 32
	// maxUsers bounds the users one browser's cookie remembers, and so its
	// size: a shared computer keeps the newest.
	maxUsers = 5
)

// aad binds the sealed cookie to its purpose, so that nothing else sealed
// under the same secrets (a device cookie, a TOTP secret) passes for it.
var aad = []byte("latchkey trusted device cookie v1")

// Manager trusts browsers, recognises them, and forgets them.
type Manager struct {
	store    Store
	audit    Auditor
	box      *seal.Box
	lifetime time.Duration
	name     string
	secure   bool
}

// New returns a Manager that keeps devices in store, records changes in
// the audit log, and seals cookies with box. Trust lasts lifetime; 0 turns
// trusted devices off, so that no browser is trusted or recognised.
// secure marks the cookie Secure and gives it the __Host- prefix; set it
// when the issuer is https. A Manager that only lists and forgets devices
// (as the CLI's) needs no box.
func New(store Store, audit Auditor, box *seal.Box, lifetime time.Duration, secure bool) *Manager {
	name := server.CookieName("latchkey_trusted", secure)
	return &Manager{store: store, audit: audit, box: box, lifetime: lifetime, name: name, secure: secure}
}

// Enabled reports whether browsers may be trusted at all
// (LATCHKEY_TRUSTED_DEVICE_LIFETIME is not 0).
func (m *Manager) Enabled() bool { return m != nil && m.lifetime > 0 && m.box != nil }

// Lifetime is how long trust lasts.
func (m *Manager) Lifetime() time.Duration { return m.lifetime }

// entry is the cookie's record of one user's trust.
type entry struct {
	User    string `json:"u"`
	Secret  []byte `json:"s"`
	Expires int64  `json:"e"`
}

// Trust makes the browser of r a trusted device of userID, until the
// lifetime runs out, and records it in the audit log. A browser trusted
// by the user before replaces its old record.
func (m *Manager) Trust(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string) error {
	if !m.Enabled() {
		return nil
	}
	secret := make([]byte, secretBytes)
	_, _ = rand.Read(secret)
	now := time.Now()
	d := Device{ID: uuid.NewString(), UserID: userID, Label: device.Describe(r.UserAgent()),
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(m.lifetime)}
	var replaces []byte
	entries := []entry{{User: userID, Secret: secret, Expires: d.ExpiresAt.Unix()}}
	for _, e := range m.read(r) {
		switch {
		case e.User == userID:
			replaces = digest(e.Secret)
		case len(entries) < maxUsers:
			entries = append(entries, e)
		}
	}
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.DeviceTrusted, Target: audit.User(userID),
				Details: map[string]any{"device": d.ID, "label": d.Label, "expires_at": d.ExpiresAt.UTC().Format(time.RFC3339)}},
			m.store.CreateTrustedDevice(ctx, d, digest(secret), replaces)
	})
	if err != nil {
		return err
	}
	// The secret is meant to be in the cookie, sealed.
	value, err := m.box.SealText(entries, aad) // #nosec G117 -- sealed before it leaves, and only the browser it is for holds it
	if err != nil {
		return err
	}
	// Secure follows the issuer's scheme: http is allowed only for a
	// localhost issuer, where browsers drop Secure cookies.
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- Secure whenever the issuer is https; HttpOnly and SameSite always
		Name:     m.name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(m.lifetime / time.Second),
		HttpOnly: true,
		Secure:   m.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return nil
}

// Recognised reports whether the browser of r is a trusted device of
// userID: its cookie opens, holds a secret for userID, and userID has an
// unexpired device with that secret's digest, which is then marked used.
// A missing, forged, altered or expired cookie, or one for another user,
// is not recognised; with trusted devices off, nothing is.
func (m *Manager) Recognised(ctx context.Context, r *http.Request, userID string) (bool, error) {
	if !m.Enabled() {
		return false, nil
	}
	for _, e := range m.read(r) {
		if e.User == userID {
			return m.store.UseTrustedDevice(ctx, userID, digest(e.Secret))
		}
	}
	return false, nil
}

// List returns the user's trusted devices, newest first.
func (m *Manager) List(ctx context.Context, userID string) ([]Device, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return nil, nil
	}
	return m.store.TrustedDevices(ctx, userID)
}

// Forget stops the user's device id being trusted, wherever it is, and
// records it in the audit log; ErrNotFound if the user has no such device.
func (m *Manager) Forget(ctx context.Context, userID, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrNotFound
	}
	if _, err := uuid.Parse(userID); err != nil {
		return ErrNotFound
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		found, err := m.store.DeleteTrustedDevice(ctx, userID, id)
		if err == nil && !found {
			err = ErrNotFound
		}
		return audit.Event{Action: audit.DeviceForgotten, Target: audit.User(userID),
			Details: map[string]any{"device": id}}, err
	})
}

// ForgetAll stops every device of the user being trusted, records it in
// the audit log, and says how many there were.
func (m *Manager) ForgetAll(ctx context.Context, userID string) (int64, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return 0, nil
	}
	var n int64
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		n, err = m.store.DeleteTrustedDevices(ctx, userID)
		return audit.Event{Action: audit.DeviceForgotten, Target: audit.User(userID),
			Details: map[string]any{"all": true, "count": n}}, err
	})
	return n, err
}

// read returns the cookie's unexpired entries; none if it does not open.
func (m *Manager) read(r *http.Request) []entry {
	cookie, err := r.Cookie(m.name)
	if err != nil {
		return nil
	}
	var entries []entry
	if m.box.OpenText(cookie.Value, aad, &entries) != nil {
		return nil
	}
	now := time.Now().Unix()
	fresh := entries[:0]
	for _, e := range entries {
		if e.Expires > now && len(e.Secret) == secretBytes && e.User != "" {
			fresh = append(fresh, e)
		}
	}
	return fresh
}

// digest is what the store keeps of a secret.
func digest(secret []byte) []byte {
	sum := sha256.Sum256(secret)
	return sum[:]
}
