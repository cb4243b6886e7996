package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
)

// The account page's own changes in Chromium, as a user makes them: the
// password, the profile, and deleting the account.

func TestBrowserChangesThePasswordThenSignsInWithTheNewOne(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)
	if err := chromedp.Do(tab, signInTo(app, "ada@example.com")); err != nil {
		t.Fatal(err)
	}
	// The app also holds a refresh token from a sign-in elsewhere.
	elsewhere, _ := newBrowser(t, n.issuer).signedIn(app.rp, "ada@example.com")

	err := chromedp.Do(tab,
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("current-password")),
		chromedp.SendKeys(chromedp.ID("current-password"), testPassword),
		chromedp.SendKeys(chromedp.ID("new-password"), brandNewPassword),
		chromedp.SendKeys(chromedp.ID("confirm-password"), brandNewPassword),
		chromedp.Click(chromedp.CSS("#change-password button")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
		chromiumtest.Screenshot(t, "password-changed"),
	)
	if err != nil {
		t.Fatalf("changing the password on the account page: %v", err)
	}
	notice, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("p.notice")))
	if err != nil || !strings.Contains(notice, "Your password is changed") {
		t.Fatalf("the account page says %q (%v)", notice, err)
	}
	// This browser stays signed in: the app signs in again without a page.
	if err := chromedp.Do(tab, chromedp.Navigate(app.url+"/start"), chromedp.WaitVisible(chromedp.ID("verified"))); err != nil {
		t.Fatalf("single sign-on after the change: %v", err)
	}
	if err := app.rp.refresh(t.Context(), elsewhere.RefreshToken); !isInvalidGrant(err) {
		t.Fatalf("the refresh token from before the change: %v, want invalid_grant", err)
	}

	other := chromiumtest.Tab(t)
	err = chromedp.Do(other,
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS("p.error")),
	)
	if err != nil {
		t.Fatalf("the old password in another browser: %v, want the sign-in page's error", err)
	}
	// Allowed before, the app gets the user straight back.
	if err := chromedp.Do(other, signInWith(app, "ada@example.com", brandNewPassword), chromedp.WaitVisible(chromedp.ID("verified"))); err != nil {
		t.Fatalf("signing in with the new password: %v", err)
	}
}

func TestBrowserEditsTheProfileAndTheAppSeesIt(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)
	err := chromedp.Do(tab,
		signInTo(app, "ada@example.com"),
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("profile-name")),
		chromedp.SetValue(chromedp.ID("profile-name"), "Ada King"),
		chromedp.SetValue(chromedp.ID("profile-family-name"), "King"),
		chromedp.SendKeys(chromedp.ID("profile-nickname"), "Countess"),
		chromedp.Click(chromedp.CSS("#edit-profile button")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
		chromiumtest.Screenshot(t, "profile-saved"),
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("editing the profile, then back to the app: %v", err)
	}
	who, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("who")))
	if err != nil || who != "Ada King <ada@example.com>" {
		t.Fatalf("the app's userinfo shows %q (%v), want the new name", who, err)
	}
	id, err := app.rp.verifier.Verify(t.Context(), app.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Name       string `json:"name"`
		FamilyName string `json:"family_name"`
		Nickname   string `json:"nickname"`
	}
	if err := id.Claims(&claims); err != nil || claims.Name != "Ada King" || claims.FamilyName != "King" || claims.Nickname != "Countess" {
		t.Fatalf("the new ID token has %+v (%v), want the edited profile", claims, err)
	}
}

func TestBrowserDeletesTheAccountAfterProvingItIsThem(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_ACCOUNT_DELETION", "true", "LATCHKEY_REAUTH_WINDOW", "1s")
	n.user(t, "ada@example.com")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)
	if err := chromedp.Do(tab, signInTo(app, "ada@example.com")); err != nil {
		t.Fatal(err)
	}
	elsewhere, _ := newBrowser(t, n.issuer).signedIn(app.rp, "ada@example.com")
	time.Sleep(1100 * time.Millisecond) // the sign-in is no longer recent
	err := chromedp.Do(tab,
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("delete-confirm")),
		chromedp.SendKeys(chromedp.ID("delete-confirm"), "ada@example.com"),
		chromedp.Click(chromedp.CSS("#delete-account button")),
		chromedp.WaitVisible(chromedp.ID("reauth-password")),
		chromedp.SendKeys(chromedp.ID("reauth-password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS("ul.ways")),
		chromiumtest.Screenshot(t, "account-deleted"),
	)
	if err != nil {
		t.Fatalf("deleting the account, proving it is them: %v", err)
	}
	if h1, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("h1"))); err != nil || h1 != "Your account is deleted" {
		t.Fatalf("the page after deletion says %q (%v)", h1, err)
	}
	err = chromedp.Do(tab,
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS("p.error")),
	)
	if err != nil {
		t.Fatalf("signing in to the deleted account: %v, want the sign-in page's error", err)
	}
	if n.introspect(t, elsewhere.AccessToken) || n.introspect(t, elsewhere.RefreshToken) {
		t.Fatal("the app's tokens are still active at introspection")
	}
}
