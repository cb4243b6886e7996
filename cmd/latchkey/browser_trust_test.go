package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/pkg/identity"
)

// signOutOf is the user signing out of app, and so of Latchkey.
func signOutOf(app *webApp) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Navigate(app.url+"/logout"), chromedp.WaitVisible(chromedp.ID("bye")))
}

func TestBrowserTrustedAtTheCodeStepSkipsItUntilThePasswordChanges(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	secret := n.enrol(t, n.user(t, "ada@example.com"))
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)

	err := chromedp.Do(tab,
		startSignIn(app, "ada@example.com"),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, 1)),
		chromedp.Click(chromedp.ID("trust")),
		chromiumtest.Screenshot(t, "trust-this-browser"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("password, code with the box ticked, consent: %v", err)
	}
	id, err := app.rp.verifier.Verify(tab, app.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	if got := authOf(t, id); got.ACR != identity.ACRMFA {
		t.Fatalf("the sign-in with the code says %+v", got)
	}

	// Signed out and back: the password alone, no code page.
	err = chromedp.Do(tab,
		signOutOf(app),
		startSignIn(app, "ada@example.com"),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("signing in again on the trusted browser: %v", err)
	}
	id, err = app.rp.verifier.Verify(tab, app.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	// The app learns the truth: a password, not two factors.
	if got := authOf(t, id); got.ACR != identity.ACRPassword || !slices.Equal(got.AMR, []string{"pwd"}) {
		t.Fatalf("a sign-in on a trusted browser says acr %q, amr %v; want the password level and [pwd]", got.ACR, got.AMR)
	}

	// The account page lists the browser by name.
	err = chromedp.Do(tab,
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("trusted-browsers")),
		chromiumtest.Screenshot(t, "trusted-browsers"),
	)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("trusted")))
	if err != nil || !strings.Contains(listed, "Chrome") || !strings.Contains(listed, "trusted until") {
		t.Fatalf("the account page lists %q (%v), want the Chrome browser with its expiry", listed, err)
	}

	// A new password ends the trust: the code is asked for again.
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("current-password"), testPassword),
		chromedp.SendKeys(chromedp.ID("new-password"), brandNewPassword),
		chromedp.SendKeys(chromedp.ID("confirm-password"), brandNewPassword),
		chromedp.Click(chromedp.CSS("#change-password button")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
		signOutOf(app),
		signInWith(app, "ada@example.com", brandNewPassword),
		chromedp.WaitVisible(chromedp.ID("code")),
	)
	if err != nil {
		t.Fatalf("after a password change, want the code page: %v", err)
	}
}
