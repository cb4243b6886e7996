package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Attacks on the sign-in that use the defences against the user: locking
// the owner out by guessing at their account, counting a whole office as
// one guesser, and acting with nothing but a stolen session cookie.

// signedOutBrowser is a browser that signed in as email once and whose
// session has since ended: it keeps only what outlives a session, its
// device cookie.
func (n *node) signedOutBrowser(t *testing.T, email, ip string) *browser {
	t.Helper()
	first := newBrowser(t, n.issuer).from(ip)
	if p := first.signIn(first.visit(n.issuer+"/login"), email, testPassword); p.status != http.StatusOK || !strings.Contains(p.body, "Your account") {
		t.Fatalf("first sign-in as %s: %d", email, p.status)
	}
	issuer, _ := url.Parse(n.issuer)
	b := newBrowser(t, n.issuer).from(ip)
	for _, c := range first.http.Jar.Cookies(issuer) {
		if strings.Contains(c.Name, "device") {
			b.http.Jar.SetCookies(issuer, []*http.Cookie{c})
		}
	}
	return b
}

func TestGuessingAtAnAccountDoesNotLockItsOwnerOutOfTheirOwnBrowser(t *testing.T) {
	t.Parallel()
	// No pauses, and three wrong passwords lock the account for an hour.
	n := startNode(t, "LATCHKEY_LOGIN_MAX_FAILURES", "100", "LATCHKEY_LOCKOUT_FAILURES", "3")
	n.user(t, "ada@example.com")
	owner := n.signedOutBrowser(t, "ada@example.com", "127.0.0.2")

	attacker := newBrowser(t, n.issuer).from("127.0.0.3")
	for range 4 {
		attacker.signIn(attacker.visit(n.issuer+"/login"), "ada@example.com", "a guess")
	}
	// The lock holds against devices the account does not know...
	stranger := newBrowser(t, n.issuer).from("127.0.0.4")
	if p := stranger.signIn(stranger.visit(n.issuer+"/login"), "ada@example.com", testPassword); !strings.Contains(p.body, signInFailedWords) {
		t.Fatalf("a new browser with the right password got through a locked account (%d)", p.status)
	}
	// ...but not against the browser the owner signed in with before.
	p := owner.signIn(owner.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	if strings.Contains(p.body, signInFailedWords) || !strings.Contains(p.body, "Your account") {
		t.Fatalf("the owner's own browser is locked out by someone else's guesses (%d):\n%s", p.status, p.body)
	}
}

func TestAStolenDeviceCookieDoesNotBuyUnlimitedGuesses(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_LOGIN_MAX_FAILURES", "100", "LATCHKEY_LOCKOUT_FAILURES", "3")
	n.user(t, "ada@example.com")
	thief := n.signedOutBrowser(t, "ada@example.com", "127.0.0.2")
	for range 3 {
		thief.signIn(thief.visit(n.issuer+"/login"), "ada@example.com", "a guess")
	}
	if p := thief.signIn(thief.visit(n.issuer+"/login"), "ada@example.com", testPassword); !strings.Contains(p.body, signInFailedWords) {
		t.Fatal("a known device kept guessing past the lockout")
	}
	// The account's other browsers are not affected.
	other := newBrowser(t, n.issuer).from("127.0.0.3")
	if p := other.signIn(other.visit(n.issuer+"/login"), "ada@example.com", testPassword); strings.Contains(p.body, signInFailedWords) {
		t.Fatal("one device's guesses locked unknown devices out too")
	}
}

func TestAnOfficeBehindOneAddressCanAllSignInWhileGuessingFromItIsLimited(t *testing.T) {
	t.Parallel()
	// Five failures a minute per address; successes do not count.
	n := startNode(t, "LATCHKEY_SIGNIN_RATE_LIMIT", "5")
	n.user(t, "ada@example.com")
	for i := range 8 {
		b := newBrowser(t, n.issuer).from("127.0.0.2")
		if p := b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword); p.status != http.StatusOK || !strings.Contains(p.body, "Your account") {
			t.Fatalf("sign-in %d of 8 from one address: %d; successes must not use up the address's allowance", i+1, p.status)
		}
	}
	guesser := newBrowser(t, n.issuer).from("127.0.0.2")
	var last page
	for i := range 6 {
		last = guesser.signIn(guesser.visit(n.issuer+"/login"), "someone"+string(rune('a'+i))+"@example.com", "a guess")
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Fatalf("the sixth failure within a minute from one address: %d, want 429 with Retry-After", last.status)
	}
}

// reauthScene is a user signed in on b long enough ago that the account
// page's sensitive actions ask for the password again (the window is one
// second here).
func reauthScene(t *testing.T, settings ...string) (*node, *browser) {
	t.Helper()
	n := startNode(t, append([]string{"LATCHKEY_REAUTH_WINDOW", "1s"}, settings...)...)
	n.user(t, "ada@example.com")
	b := newBrowser(t, n.issuer)
	b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	time.Sleep(1100 * time.Millisecond)
	return n, b
}

// isReauth tells the page that asks for the password again.
func (p page) isReauth() bool { return strings.Contains(p.body, `name="reauth_password"`) }

func TestASessionCookieAloneCannotMakeSensitiveChanges(t *testing.T) {
	t.Parallel()
	n, b := reauthScene(t)
	u, err := n.users.GetByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	secret := n.enrol(t, u)
	phone := newBrowser(t, n.issuer)
	phone.secondFactor(phone.signIn(phone.visit(n.issuer+"/login"), "ada@example.com", testPassword), totpCode(t, secret, 1))
	sessions, err := n.users.Sessions(t.Context(), u.ID)
	if err != nil || len(sessions) != 2 {
		t.Fatalf("sessions %v, %v", sessions, err)
	}
	phoneSID := sessions[0].SID

	for _, action := range []struct {
		path string
		form url.Values
	}{
		{"/account/mfa/recovery-codes", nil},
		{"/account/mfa/enrol", nil},
		{"/account/mfa/disable", url.Values{"code": {totpCode(t, secret, 2)}}},
		{"/account/sessions/revoke", url.Values{"sid": {phoneSID}}},
	} {
		p := b.submit(action.path, action.form)
		if !p.isReauth() || strings.Contains(p.body, "<li><code>") {
			t.Fatalf("%s with only a session cookie: %d, want the page asking for the password:\n%s", action.path, p.status, p.body)
		}
		form := url.Values{"reauth_password": {"not the password"}}
		for k, v := range action.form {
			form[k] = v
		}
		if p := b.submit(action.path, form); !p.isReauth() || p.status != http.StatusUnauthorized {
			t.Fatalf("%s with a wrong password: %d, want the page again with an error", action.path, p.status)
		}
	}
	if on, err := n.mfa.Enabled(t.Context(), u.ID); err != nil || !on {
		t.Fatal("two-step verification was turned off without the password")
	}
	if left, _ := n.mfa.RecoveryCodesLeft(t.Context(), u.ID); left != 10 {
		t.Fatalf("%d recovery codes left, want the 10 first given: they were replaced without the password", left)
	}
	if s, _ := n.users.Sessions(t.Context(), u.ID); len(s) != 2 {
		t.Fatal("another session was ended without the password")
	}

	// With the password the change goes through, the action's own fields
	// carried by the page asking for it.
	p := b.submit("/account/sessions/revoke", url.Values{"sid": {phoneSID}})
	form := url.Values{"reauth_password": {testPassword}}
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], m[2])
	}
	if done := b.submit("/account/sessions/revoke", form); !strings.Contains(done.body, "That browser is signed out") {
		t.Fatalf("ending the phone's session after the password: %d:\n%s", done.status, done.body)
	}
	// Proven now, the next sensitive change needs nothing more, until the
	// window passes again.
	if codes := b.submit("/account/mfa/recovery-codes", nil); strings.Count(codes.body, "<li><code>") != 10 {
		t.Fatalf("new recovery codes right after proving it: %d", codes.status)
	}
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func TestNewRecoveryCodesWithoutTwoStepVerificationSayWhy(t *testing.T) {
	t.Parallel()
	_, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	p := b.submit("/account/mfa/recovery-codes", nil)
	if p.status != http.StatusConflict || !strings.Contains(p.body, "Turn it on first") {
		t.Fatalf("new recovery codes for a user without a factor: %d, want 409 and the account page saying why:\n%s", p.status, p.body)
	}
}
