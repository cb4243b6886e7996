package device_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/device"
	"github.com/latchkey/latchkey/pkg/seal"
)

func newCookies(t *testing.T) *device.Cookies {
	t.Helper()
	box, err := seal.New([][]byte{[]byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	return device.New(box, false)
}

// signedIn returns the request a browser sends after signing in to each
// account in turn on a page that answered with rec.
func signedIn(t *testing.T, c *device.Cookies, emails ...string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/login", nil)
	for _, email := range emails {
		rec := httptest.NewRecorder()
		c.Remember(rec, r, email)
		r = httptest.NewRequest(http.MethodGet, "/login", nil)
		for _, ck := range rec.Result().Cookies() {
			r.AddCookie(ck)
		}
	}
	return r
}

func TestABrowserIsKnownOnlyToTheAccountsItSignedInTo(t *testing.T) {
	c := newCookies(t)
	r := signedIn(t, c, "ada@example.com")
	if c.Known(r, " ADA@example.com ") == nil {
		t.Fatal("the browser is not known to the account it signed in to (typed in another case)")
	}
	if c.Known(r, "grace@example.com") != nil {
		t.Fatal("the browser is known to an account it never signed in to")
	}
	if c.Known(httptest.NewRequest(http.MethodGet, "/", nil), "ada@example.com") != nil {
		t.Fatal("a browser without the cookie is known")
	}
}

func TestATamperedOrForeignCookieIsAnUnknownDevice(t *testing.T) {
	c := newCookies(t)
	good := signedIn(t, c, "ada@example.com")
	ck, _ := good.Cookie("latchkey_device")
	tampered := httptest.NewRequest(http.MethodGet, "/", nil)
	flipped := []byte(ck.Value)
	flipped[len(flipped)/2] ^= 1
	tampered.AddCookie(&http.Cookie{Name: ck.Name, Value: string(flipped)})
	if c.Known(tampered, "ada@example.com") != nil {
		t.Fatal("a tampered cookie is accepted")
	}
	box, _ := seal.New([][]byte{[]byte("another secret, 32 bytes long...")})
	if device.New(box, false).Known(good, "ada@example.com") != nil {
		t.Fatal("a cookie sealed under other secrets is accepted")
	}
}

func TestSigningInAgainGivesANewDeviceIDAndKeepsOtherAccounts(t *testing.T) {
	c := newCookies(t)
	first := signedIn(t, c, "ada@example.com", "grace@example.com")
	again := signedIn(t, c, "ada@example.com", "grace@example.com", "ada@example.com")
	if c.Known(first, "grace@example.com") == nil || c.Known(again, "grace@example.com") == nil {
		t.Fatal("signing in to one account forgot the other")
	}
	if string(c.Known(first, "ada@example.com")) == string(c.Known(again, "ada@example.com")) {
		t.Fatal("a new sign-in kept the old device ID")
	}
	// A shared computer keeps the newest few accounts only.
	var emails []string
	for _, name := range strings.Fields("a b c d e f g") {
		emails = append(emails, name+"@example.com")
	}
	many := signedIn(t, c, emails...)
	if c.Known(many, "a@example.com") != nil || c.Known(many, "g@example.com") == nil {
		t.Fatal("the cookie does not keep just the newest accounts")
	}
}

func TestUnderHTTPSTheCookieIsHostBound(t *testing.T) {
	box, _ := seal.New([][]byte{[]byte("0123456789abcdef0123456789abcdef")})
	rec := httptest.NewRecorder()
	device.New(box, true).Remember(rec, httptest.NewRequest(http.MethodGet, "/", nil), "ada@example.com")
	ck := rec.Result().Cookies()[0]
	if ck.Name != "__Host-latchkey_device" || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie %+v: want __Host-, Secure, HttpOnly, path /, SameSite=Lax", ck)
	}
}
