package signin

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/server"
)

// Ceremonies carries the passwordless passkey ceremonies that the sign-in
// page begins on each showing (passwordless.go), without storing anything
// for them: the page may be shown to anyone, as often as they like, and
// a bare /login has no session and must not make one.
//
// The ceremony's session data (its challenge) goes into the page's form,
// sealed (AES-256-GCM under LATCHKEY_SECRETS, pkg/seal), so it cannot be
// read or altered, and comes back with the answer. The seal binds it to a
// random nonce that the browser holds in a cookie (HttpOnly, SameSite=Lax,
// __Host- and Secure under https), so that a ceremony begun in one browser
// cannot be finished in another: its form, carried elsewhere, opens only
// with the cookie of the browser that showed it. A browser keeps its
// nonce while it keeps showing the page, so its tabs do not spoil each
// other's ceremonies. A sealed ceremony is good for ceremonyTTL; that it
// is good for one answer is pkg/passkey's to enforce (it spends the
// challenge once an answer verifies).
type Ceremonies struct {
	box    *seal.Box
	name   string
	secure bool
}

// NewCeremonies returns Ceremonies sealed with box. secure marks the
// cookie Secure and gives it the __Host- prefix; set it when the issuer
// is https.
func NewCeremonies(box *seal.Box, secure bool) *Ceremonies {
	name := server.CookieName("latchkey_passkey", secure)
	return &Ceremonies{box: box, name: name, secure: secure}
}

// ceremonyAAD binds the sealed ceremony to its purpose, so that nothing
// else sealed under the same secrets (a device or trust cookie) passes
// for it.
var ceremonyAAD = []byte("latchkey passwordless ceremony v1")

// nonceChars is the length of a nonce as rand.Text writes it (26
// characters: 130 random bits).
const nonceChars = 26

// sealedCeremony is what the form carries.
type sealedCeremony struct {
	Nonce   string `json:"n"`
	Session []byte `json:"s"`
	Expires int64  `json:"e"`
}

// Begin seals session, the session data of a ceremony begun for the
// browser of r, into text for the page's form, and gives the browser the
// cookie it is bound to (the one it holds, or a new one).
func (c *Ceremonies) Begin(w http.ResponseWriter, r *http.Request, session []byte) (string, error) {
	nonce := c.nonce(r)
	if nonce == "" {
		nonce = rand.Text()
	}
	sealed, err := c.box.SealText(sealedCeremony{Nonce: nonce, Session: session,
		Expires: time.Now().Add(ceremonyTTL).Unix()}, ceremonyAAD)
	if err != nil {
		return "", err
	}
	// Secure follows the issuer's scheme: http is allowed only for a
	// localhost issuer, where browsers drop Secure cookies.
	http.SetCookie(w, &http.Cookie{ // #nosec G124 -- Secure whenever the issuer is https; HttpOnly and SameSite always
		Name:     c.name,
		Value:    nonce,
		Path:     "/",
		MaxAge:   int(ceremonyTTL / time.Second),
		HttpOnly: true,
		Secure:   c.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return sealed, nil
}

// Take returns the session data sealed in text (Begin) if it was sealed
// for the browser of r and has not expired; nil otherwise: tampered with,
// begun in another browser, or too old. nil makes pkg/passkey refuse the
// answer, and record why.
func (c *Ceremonies) Take(r *http.Request, text string) []byte {
	nonce := c.nonce(r)
	if c == nil || nonce == "" || len(text) > maxSealedCeremony {
		return nil
	}
	var sc sealedCeremony
	if err := c.box.OpenText(text, ceremonyAAD, &sc); err != nil {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(sc.Nonce), []byte(nonce)) != 1 || time.Now().Unix() > sc.Expires {
		return nil
	}
	return sc.Session
}

// maxSealedCeremony bounds the sealed text Take opens: a ceremony's
// session data is a few hundred bytes.
const maxSealedCeremony = 4096

// nonce is the nonce the browser of r holds, "" if none that could be
// one of ours.
func (c *Ceremonies) nonce(r *http.Request) string {
	if c == nil {
		return ""
	}
	cookie, err := r.Cookie(c.name)
	if err != nil || len(cookie.Value) != nonceChars {
		return ""
	}
	return cookie.Value
}
