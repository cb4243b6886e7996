package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// virtualAuthenticator gives the tab a platform authenticator, as a
// laptop's fingerprint reader is, through Chromium's DevTools WebAuthn
// domain: it makes real passkeys and answers real assertions, with the
// user present and verified.
func virtualAuthenticator(t *testing.T, tab context.Context) {
	t.Helper()
	if _, err := chromedp.Call(tab, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn domain: %v", err)
	}
	_, err := chromedp.Call(tab, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21,
			Transport: cdpwebauthn.AuthenticatorTransportInternal, HasResidentKey: true,
			HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		}})
	if err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
}

// auditCount is how many events of action the node's audit log holds.
func (n *node) auditCount(t *testing.T, action string) int {
	t.Helper()
	var count int
	if err := pgtest.Conn(t, n.dbURL).QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = $1`, action).Scan(&count); err != nil {
		t.Fatal(err)
	}
	return count
}

// A user adds a passkey on their account page (proving who they are
// first), signs in to an app that requires a second factor with their
// password and the passkey, and the app's ID token says how (RFC 8176:
// hwk, user, mfa; the phishing-resistant level); then they remove the
// passkey, proving who they are again with it.
func TestBrowserAddsAPasskeySignsInWithItAndRemovesIt(t *testing.T) {
	t.Parallel()
	// Long enough that the proof given before adding the passkey still
	// counts when the browser posts it back on a loaded machine, short
	// enough to wait out twice.
	const window = 4 * time.Second
	n := startLocalhostNode(t, "LATCHKEY_REAUTH_WINDOW", window.String())
	n.user(t, "ada@example.com")
	notes := newWebApp(t, n)
	vault := newWebApp(t, n, func(c *client.Client) { c.RequireMFA = true })
	tab := chromiumtest.Tab(t)
	virtualAuthenticator(t, tab)
	// Else the sign-in page's passkey autofill would sign Ada in with the
	// passkey alone, before she gives her password.
	withoutPasskeyAutofill(t, tab)

	if err := chromedp.Do(tab, signInTo(notes, "ada@example.com")); err != nil {
		t.Fatalf("signing in with the password: %v", err)
	}
	time.Sleep(window + 100*time.Millisecond) // the sign-in is no longer recent
	err := chromedp.Do(tab,
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("add-passkey")),
		chromedp.Click(chromedp.ID("add-passkey")),
		chromedp.WaitVisible(chromedp.ID("reauth-password")),
		chromedp.SendKeys(chromedp.ID("reauth-password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("passkey-name")),
		chromiumtest.Screenshot(t, "passkey-add"),
		createPasskey("Work laptop"),
		chromiumtest.Screenshot(t, "passkey-added"),
	)
	if err != nil {
		t.Fatalf("adding a passkey on the account page: %v", err)
	}
	listed, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("#passkeys li")))
	if err != nil || !hasAll(listed, "Work laptop", "never used") {
		t.Fatalf("the account page lists %q (%v), want the new passkey, never used", listed, err)
	}
	if got := n.auditCount(t, "passkey.registered"); got != 1 {
		t.Errorf("%d passkey.registered events, want 1", got)
	}

	// Signed out, then in again to an app that requires a second factor:
	// the passkey is asked for, not a code, and no enrolment follows.
	err = chromedp.Do(tab,
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.Click(chromedp.CSS(`#sessions button`)),
		chromedp.WaitVisible(chromedp.ID("email")),
		startSignIn(vault, "ada@example.com"),
		chromedp.WaitVisible(chromedp.ID("passkey-go")),
		chromiumtest.Screenshot(t, "passkey-sign-in"),
		chromedp.Click(chromedp.ID("passkey-go")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("signing in with password and passkey: %v", err)
	}
	id, err := vault.rp.verifier.Verify(tab, vault.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	got := authOf(t, id)
	for _, m := range []string{"pwd", "hwk", "user", "mfa"} {
		if !slices.Contains(got.AMR, m) {
			t.Errorf("amr %v lacks %s", got.AMR, m)
		}
	}
	if slices.Contains(got.AMR, "otp") {
		t.Errorf("amr %v claims a code", got.AMR)
	}
	if got.ACR != identity.ACRPhishingResistant {
		t.Errorf("acr %q, want %q", got.ACR, identity.ACRPhishingResistant)
	}

	time.Sleep(window + 100*time.Millisecond)
	err = chromedp.Do(tab,
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.CSS("#passkeys li")),
	)
	if err != nil {
		t.Fatal(err)
	}
	listed, err = chromedp.Run(tab, chromedp.Text(chromedp.CSS("#passkeys li")))
	if err != nil || !hasAll(listed, "Work laptop", "last used") {
		t.Errorf("after signing in with it, the account page lists %q (%v), want its last use", listed, err)
	}
	// Asked to prove who she is again, she uses the passkey itself.
	err = chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(`#passkeys form[action$="/remove"] button`)),
		chromedp.WaitVisible(chromedp.ID("reauth-passkey")),
		chromiumtest.Screenshot(t, "passkey-reauth"),
		chromedp.Click(chromedp.ID("reauth-passkey")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
	)
	if err != nil {
		t.Fatalf("removing the passkey, proving it is them with it: %v", err)
	}
	if notice, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("p.notice"))); notice != "Your passkey is removed." {
		t.Errorf("after removal the page says %q", notice)
	}
	var left int
	if err := pgtest.Conn(t, n.dbURL).QueryRow(t.Context(), `SELECT count(*) FROM passkeys`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d passkeys stored after removal (%v)", left, err)
	}
	if got := n.auditCount(t, "passkey.removed"); got != 1 {
		t.Errorf("%d passkey.removed events, want 1", got)
	}
}

// createPasskey names the passkey on the page that adds one and has the
// authenticator make it, ending on the account page that lists it.
func createPasskey(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("passkey-name"), name),
		chromedp.Click(chromedp.ID("passkey-go")),
		chromedp.WaitVisible(chromedp.CSS("#passkeys li")),
	)
}

// A user signed in with their password alone, who has since added a
// passkey, is sent back by an app that wants the phishing-resistant level
// (as after a resource server's insufficient_user_authentication, RFC
// 9470): Latchkey asks for the passkey alone, offers no code instead, and
// the app's new ID token says phr.
func TestBrowserStepsUpFromAPasswordToThePhishingResistantLevel(t *testing.T) {
	t.Parallel()
	n := startLocalhostNode(t)
	ada := n.user(t, "ada@example.com")
	notes := newWebApp(t, n, func(c *client.Client) { c.SkipConsent = true })
	tab := chromiumtest.Tab(t)
	virtualAuthenticator(t, tab)

	// Her first sign-in, before she had a code or a passkey, needs only
	// the password; it is still the sign-in this browser holds.
	err := chromedp.Do(tab,
		chromedp.Navigate(n.issuer+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("add-passkey")),
	)
	if err != nil {
		t.Fatalf("signing in with the password: %v", err)
	}
	n.enrol(t, ada) // she has a code too now, which must not be offered
	err = chromedp.Do(tab,
		chromedp.Click(chromedp.ID("add-passkey")),
		chromedp.WaitVisible(chromedp.ID("passkey-name")),
		createPasskey("Phone"),
		chromedp.Navigate(notes.url+"/start?acr_values="+identity.ACRPhishingResistant),
		chromedp.WaitVisible(chromedp.ID("passkey-go")),
		chromiumtest.Screenshot(t, "passkey-step-up"),
	)
	if err != nil {
		t.Fatalf("adding a passkey, then asking for phr: %v", err)
	}
	codeLinks, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("#use-code").length`))
	if err != nil || codeLinks != 0 {
		t.Errorf("the step-up page offers a code instead (%d links, %v)", codeLinks, err)
	}
	if err := chromedp.Do(tab, chromedp.Click(chromedp.ID("passkey-go")), chromedp.WaitVisible(chromedp.ID("verified"))); err != nil {
		t.Fatalf("stepping up with the passkey: %v", err)
	}
	id, err := notes.rp.verifier.Verify(tab, notes.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	if got := authOf(t, id); got.ACR != identity.ACRPhishingResistant || !hasAll(strings.Join(got.AMR, " "), "pwd", "hwk", "user", "mfa") {
		t.Errorf("after the step-up: acr %q amr %v, want phr by pwd, hwk, user, mfa", got.ACR, got.AMR)
	}
}

// hasAll reports whether s contains every one of parts.
func hasAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
