package main

import (
	"context"
	"slices"
	"testing"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
)

// withoutPasskeyAutofill makes the tab a browser without passkey
// autofill (conditional mediation), as older browsers are, until the
// returned func is called: the sign-in page then offers its passkey
// button alone. Chromium's virtual authenticator answers a conditional
// request at once, as a user picking the passkey from the email field's
// suggestions would, so a test of anything else on the sign-in page needs
// this.
func withoutPasskeyAutofill(t *testing.T, tab context.Context) (restore func()) {
	t.Helper()
	res, err := chromedp.Call(tab, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `if (window.PublicKeyCredential) {
  PublicKeyCredential.isConditionalMediationAvailable = function () { return Promise.resolve(false); };
}`})
	if err != nil {
		t.Fatalf("turning passkey autofill off: %v", err)
	}
	return func() {
		_, err := chromedp.Call(tab, cdppage.RemoveScriptToEvaluateOnNewDocument,
			cdppage.RemoveScriptToEvaluateOnNewDocumentParams(res))
		if err != nil {
			t.Fatalf("turning passkey autofill on: %v", err)
		}
	}
}

// passkeyAdded is Ada in a tab with a platform authenticator: she signed
// in to Notes with her password, added a passkey on her account page, and
// signed out, which left her on the sign-in page. The tab has no passkey
// autofill until restore is called.
func passkeyAdded(t *testing.T) (n *node, notes *webApp, tab context.Context, restore func()) {
	t.Helper()
	n = startLocalhostNode(t, "LATCHKEY_REAUTH_WINDOW", "1h")
	n.user(t, "ada@example.com")
	notes = newWebApp(t, n)
	tab = chromiumtest.Tab(t)
	virtualAuthenticator(t, tab)
	restore = withoutPasskeyAutofill(t, tab)
	err := chromedp.Do(tab,
		signInTo(notes, "ada@example.com"),
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("add-passkey")),
		chromedp.Click(chromedp.ID("add-passkey")),
		chromedp.WaitVisible(chromedp.ID("passkey-name")),
		chromedp.SendKeys(chromedp.ID("passkey-name"), "Work laptop"),
		chromedp.Click(chromedp.ID("passkey-go")),
		chromedp.WaitVisible(chromedp.CSS("#passkeys li")),
		chromedp.Click(chromedp.CSS(`#sessions button`)),
		chromedp.WaitVisible(chromedp.ID("passkey-signin")),
	)
	if err != nil {
		t.Fatalf("adding a passkey and signing out: %v", err)
	}
	return n, notes, tab, restore
}

// passwordlessAMR checks that the app's last ID token says a passkey
// signed in alone, with the user verified, as two factors.
func passwordlessAMR(t *testing.T, tab context.Context, app *webApp) {
	t.Helper()
	id, err := app.rp.verifier.Verify(tab, app.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	got := authOf(t, id)
	if !slices.Contains(got.AMR, "hwk") && !slices.Contains(got.AMR, "swk") {
		t.Errorf("amr %v names no key", got.AMR)
	}
	for _, m := range []string{"user", "mfa"} {
		if !slices.Contains(got.AMR, m) {
			t.Errorf("amr %v lacks %s", got.AMR, m)
		}
	}
	if slices.Contains(got.AMR, "pwd") {
		t.Errorf("amr %v claims a password", got.AMR)
	}
}

// A user with a passkey presses "Sign in with a passkey" at an app's
// sign-in, gives no email or password, and is back at the app signed in
// by the passkey alone.
func TestBrowserSignsInWithAPasskeyAlone(t *testing.T) {
	t.Parallel()
	_, notes, tab, _ := passkeyAdded(t)
	err := chromedp.Do(tab,
		chromedp.Navigate(notes.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("passkey-signin")),
		chromiumtest.Screenshot(t, "passwordless-sign-in"),
		chromedp.Click(chromedp.ID("passkey-signin")),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("signing in with the passkey button: %v", err)
	}
	passwordlessAMR(t, tab, notes)
}

// On a browser with passkey autofill, the sign-in page asks for a passkey
// as it loads (conditional mediation), and the email field offers it:
// picking it, which Chromium's virtual authenticator does for the user as
// soon as the field has focus, signs in with no button pressed.
func TestBrowserPasskeyAutofillSignsIn(t *testing.T) {
	t.Parallel()
	_, notes, tab, restore := passkeyAdded(t)
	restore()
	err := chromedp.Do(tab,
		chromedp.Navigate(notes.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("signing in by passkey autofill: %v", err)
	}
	passwordlessAMR(t, tab, notes)
}
