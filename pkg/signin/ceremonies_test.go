package signin_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/signin"
)

// begin shows the sign-in page's ceremony to a browser holding cookies,
// and returns the sealed form value and the browser's cookies after.
func begin(t *testing.T, c *signin.Ceremonies, session string, cookies ...*http.Cookie) (string, []*http.Cookie) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/login", nil)
	for _, k := range cookies {
		r.AddCookie(k)
	}
	w := httptest.NewRecorder()
	sealed, err := c.Begin(w, r, []byte(session))
	if err != nil {
		t.Fatal(err)
	}
	return sealed, w.Result().Cookies()
}

// take is the answer's POST from a browser holding cookies.
func take(c *signin.Ceremonies, sealed string, cookies ...*http.Cookie) []byte {
	r := httptest.NewRequest(http.MethodPost, "/login/passkey/passwordless", nil)
	for _, k := range cookies {
		r.AddCookie(k)
	}
	return c.Take(r, sealed)
}

// The ceremony's session data comes back only in the browser that was
// shown it, untouched: in another browser, or without the cookie, or
// altered, there is none. A browser keeps its cookie across showings, so
// two tabs' ceremonies both stand.
func TestAPasswordlessCeremonyOpensOnlyInTheBrowserItWasBegunIn(t *testing.T) {
	box, err := seal.New([][]byte{testSecret})
	if err != nil {
		t.Fatal(err)
	}
	c := signin.NewCeremonies(box, true)
	first, mine := begin(t, c, "one")
	if len(mine) != 1 || mine[0].Name != "__Host-latchkey_passkey" || !mine[0].HttpOnly || !mine[0].Secure ||
		mine[0].SameSite != http.SameSiteLaxMode || mine[0].Path != "/" || mine[0].MaxAge != 300 {
		t.Fatalf("cookies %+v, want one __Host- cookie, HttpOnly, Secure, Lax, for five minutes", mine)
	}
	second, again := begin(t, c, "two", mine...)
	if len(again) != 1 || again[0].Value != mine[0].Value {
		t.Errorf("a second showing gave the browser another nonce: %v, then %v", mine, again)
	}
	if got := take(c, first, mine...); !bytes.Equal(got, []byte("one")) {
		t.Errorf("the first tab's ceremony: %q", got)
	}
	if got := take(c, second, mine...); !bytes.Equal(got, []byte("two")) {
		t.Errorf("the second tab's ceremony: %q", got)
	}
	_, theirs := begin(t, c, "theirs")
	tampered := []byte(first)
	tampered[len(tampered)/2] ^= 1
	for name, got := range map[string][]byte{
		"in another browser":    take(c, first, theirs...),
		"without the cookie":    take(c, first),
		"altered":               take(c, string(tampered), mine...),
		"sealed by another key": take(signin.NewCeremonies(mustBox(t, "another-secret-another-secret-0123456789"), true), first, mine...),
	} {
		if got != nil {
			t.Errorf("%s: the ceremony opened: %q", name, got)
		}
	}
}

func mustBox(t *testing.T, secret string) *seal.Box {
	t.Helper()
	box, err := seal.New([][]byte{[]byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// Under http (a localhost issuer), the cookie cannot be Secure, and so
// cannot have the __Host- prefix.
func TestAPasswordlessCeremonyCookieOverHTTPHasNoHostPrefix(t *testing.T) {
	c := signin.NewCeremonies(mustBox(t, string(testSecret)), false)
	_, cookies := begin(t, c, "one")
	if len(cookies) != 1 || cookies[0].Name != "latchkey_passkey" || cookies[0].Secure || !cookies[0].HttpOnly {
		t.Errorf("cookies %+v, want latchkey_passkey, HttpOnly, not Secure", cookies)
	}
}
