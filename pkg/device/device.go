// Package device recognises browsers that have signed in to an account
// before, by a device cookie (OWASP, "Slow down online guessing attacks
// with device cookies").
//
// Locking an account after too many wrong passwords stops guessing, but it
// also lets anyone who knows an email lock its owner out. With device
// cookies the lock falls on unknown devices only: a browser that has
// signed in to the account holds a cookie naming the account and a random
// device ID, and its wrong passwords are counted for that device alone
// (identity.Device). An attacker has no such cookie, so however often they
// guess, the owner's own browsers keep their allowance.
//
// The cookie is sealed (AES-256-GCM under LATCHKEY_SECRETS, pkg/seal), so
// it cannot be forged or read, and holds nothing but digests and random
// IDs: one entry per account the browser signed in to, newest first, each
// with its own expiry. The server keeps no state for it; every node reads
// it alike.
package device

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/server"
)

// Limits of a device cookie.
const (
	// Lifetime is how long a browser stays known to an account after it
	// last signed in to it.
	Lifetime = 180 * 24 * time.Hour
	// maxAccounts bounds the accounts one cookie remembers, and so its
	// size: a shared computer keeps the newest.
	maxAccounts = 5
	idBytes     = 16
)

// aad binds the sealed cookie to its purpose, so that nothing else sealed
// under the same secrets passes for it.
var aad = []byte("latchkey device cookie v1")

// Cookies reads and writes device cookies.
type Cookies struct {
	box    *seal.Box
	name   string
	secure bool
}

// New returns Cookies sealed with box. secure marks the cookie Secure and
// gives it the __Host- prefix; set it when the issuer is https.
func New(box *seal.Box, secure bool) *Cookies {
	name := server.CookieName("latchkey_device", secure)
	return &Cookies{box: box, name: name, secure: secure}
}

// entry is the cookie's record of one account.
type entry struct {
	// Account is identity.AccountKey of the account's email.
	Account []byte `json:"a"`
	// ID names the device to that account.
	ID      []byte `json:"d"`
	Expires int64  `json:"e"`
}

// Known returns the device this browser is to the account email signs in
// to: the ID its cookie holds for the account, or nil if it holds none (a
// missing, tampered, expired or other account's cookie).
func (c *Cookies) Known(r *http.Request, email string) identity.Device {
	account := identity.AccountKey(email)
	for _, e := range c.read(r) {
		if bytes.Equal(e.Account, account) {
			return identity.Device(e.ID)
		}
	}
	return nil
}

// Remember makes this browser a known device of the account email signed
// in to, with a new device ID: a successful sign-in starts the device's
// count afresh.
func (c *Cookies) Remember(w http.ResponseWriter, r *http.Request, email string) {
	account := identity.AccountKey(email)
	id := make([]byte, idBytes)
	_, _ = rand.Read(id)
	entries := []entry{{Account: account, ID: id, Expires: time.Now().Add(Lifetime).Unix()}}
	for _, e := range c.read(r) {
		if !bytes.Equal(e.Account, account) && len(entries) < maxAccounts {
			entries = append(entries, e)
		}
	}
	value, _ := c.box.SealText(entries, aad) // a slice of plain structs always encodes
	// Secure follows the issuer's scheme: http is allowed only for a
	// localhost issuer, where browsers drop Secure cookies.
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- Secure whenever the issuer is https; HttpOnly and SameSite always
		Name:     c.name,
		Value:    value,
		Path:     "/",
		MaxAge:   int(Lifetime / time.Second),
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

// read returns the cookie's unexpired entries; none if it does not open.
func (c *Cookies) read(r *http.Request) []entry {
	cookie, err := r.Cookie(c.name)
	if err != nil {
		return nil
	}
	var entries []entry
	if c.box.OpenText(cookie.Value, aad, &entries) != nil {
		return nil
	}
	now := time.Now().Unix()
	fresh := entries[:0]
	for _, e := range entries {
		if e.Expires > now && len(e.ID) == idBytes {
			fresh = append(fresh, e)
		}
	}
	return fresh
}
