package main

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/pkg/account"
)

// The tests in this file follow the links Latchkey mails in Chromium, as
// people do: from the sign-in page to the mail a real SMTP server
// received, through the link, and back to signing in to an app.

// signInWith is a user in the tab opening app and signing in with email
// and password, up to the page after the password.
func signInWith(app *webApp, email, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS("button.primary")),
	)
}

// allow is the user allowing the app on the consent page, back at the app
// signed in.
func allow() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
}

// forgotPassword is a user on the login page of app asking for a reset
// link for email.
func forgotPassword(app *webApp, email string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("forgot")),
		chromedp.Click(chromedp.ID("forgot")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("sent")),
	)
}

const brandNewPassword = "a brand new passphrase"

func TestBrowserResetsAForgottenPasswordFromTheMailAndSignsInWithIt(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)

	if err := chromedp.Do(tab, forgotPassword(app, "ada@example.com"), chromiumtest.Screenshot(t, "forgot-sent")); err != nil {
		t.Fatalf("asking for a reset: %v", err)
	}
	link := srv.Await(t, "ada@example.com").Link(t, account.Reset.Path())
	err := chromedp.Do(tab,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromiumtest.Screenshot(t, "reset"),
		chromedp.SendKeys(chromedp.ID("password"), brandNewPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("done")),
		signInWith(app, "ada@example.com", brandNewPassword),
		allow(),
	)
	if err != nil {
		t.Fatalf("following the link, then signing in with the new password: %v", err)
	}
	if n.signsIn(t, "ada@example.com", testPassword) {
		t.Error("the old password still signs in")
	}
}

func TestBrowserResetOfAUserWithTwoStepVerificationAsksForACode(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	u := n.user(t, "ada@example.com")
	e, err := n.mfa.Enrol(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	recovery, err := n.mfa.Confirm(t.Context(), u.ID, totpCode(t, e.Secret, 0))
	if err != nil {
		t.Fatal(err)
	}
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)

	if err := chromedp.Do(tab, forgotPassword(app, "ada@example.com")); err != nil {
		t.Fatalf("asking for a reset: %v", err)
	}
	link := srv.Await(t, "ada@example.com").Link(t, account.Reset.Path())
	err = chromedp.Do(tab,
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("code")),
		// Without the code, the password is not set.
		chromedp.SendKeys(chromedp.ID("password"), brandNewPassword),
		chromedp.SendKeys(chromedp.ID("code"), "000000"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("error")),
	)
	if err != nil {
		t.Fatalf("a wrong code: %v", err)
	}
	if n.signsIn(t, "ada@example.com", brandNewPassword) {
		t.Fatal("a wrong code let the reset through")
	}
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("password"), brandNewPassword),
		chromedp.SetValue(chromedp.ID("code"), recovery[0]),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("done")),
		signInWith(app, "ada@example.com", brandNewPassword),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, e.Secret, 1)),
		chromedp.Click(chromedp.CSS("button.primary")),
		allow(),
	)
	if err != nil {
		t.Fatalf("the reset with a recovery code, then signing in with the new password and a code: %v", err)
	}
}

func TestBrowserAcceptsAnInvitationFromTheCLIAndSignsIn(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	app := newWebApp(t, n)
	code, _, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL, "LATCHKEY_ISSUER": n.issuer, "LATCHKEY_SECRETS": testSecret},
		"users", "create", "--email", "grace@example.com", "--name", "Grace Hopper", "--invite")
	if code != 0 {
		t.Fatalf("latchkey users create --invite: exit %d: %s", code, stderr)
	}
	m := srv.Await(t, "grace@example.com")
	tab := chromiumtest.Tab(t)
	err := chromedp.Do(tab,
		chromedp.Navigate(m.Link(t, account.Invite.Path())),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromiumtest.Screenshot(t, "invitation"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("done")),
		signInTo(app, "grace@example.com"),
	)
	if err != nil {
		t.Fatalf("choosing a password from the invitation, then signing in: %v", err)
	}
	who, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("who")))
	if err != nil || who != "Grace Hopper <grace@example.com>" {
		t.Errorf("the app shows %q (%v), want Grace", who, err)
	}
	if u, err := n.users.GetByEmail(t.Context(), "grace@example.com"); err != nil || !u.EmailVerified {
		t.Errorf("after the invitation the address is not verified: %+v, %v", u, err)
	}
}

func TestBrowserSignsUpFromTheMailAndSignsIn(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t, "LATCHKEY_SIGNUP", "open")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)
	err := chromedp.Do(tab,
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("signup")),
		chromedp.Click(chromedp.ID("signup")),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromiumtest.Screenshot(t, "signup"),
		chromedp.SendKeys(chromedp.ID("email"), "hedy@example.com"),
		chromedp.SendKeys(chromedp.ID("name"), "Hedy Lamarr"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("sent")),
	)
	if err != nil {
		t.Fatalf("signing up: %v", err)
	}
	if _, err := n.users.GetByEmail(t.Context(), "hedy@example.com"); err == nil {
		t.Fatal("the account exists before the link is followed")
	}
	err = chromedp.Do(tab,
		chromedp.Navigate(srv.Await(t, "hedy@example.com").Link(t, account.SignUp.Path())),
		chromedp.WaitVisible(chromedp.CSS("button.primary")),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("done")),
		signInTo(app, "hedy@example.com"),
	)
	if err != nil {
		t.Fatalf("following the link, then signing in: %v", err)
	}
	id, err := app.rp.verifier.Verify(tab, app.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
		Name     string `json:"name"`
	}
	if err := id.Claims(&claims); err != nil || claims.Email != "hedy@example.com" || !claims.Verified || claims.Name != "Hedy Lamarr" {
		t.Errorf("ID token claims %+v (%v), want Hedy's verified address and name", claims, err)
	}
	if got := n.events(t, "user.signed_up", "email", "hedy@example.com"); len(got) != 1 {
		t.Errorf("%d user.signed_up events, want 1", len(got))
	}
}

func TestBrowserChangesTheEmailFromTheAccountPage(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)
	err := chromedp.Do(tab,
		signInTo(app, "ada@example.com"),
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("new-email")),
		chromedp.SendKeys(chromedp.ID("new-email"), "ada@new.example"),
		chromedp.SendKeys(chromedp.ID("email-password"), testPassword),
		chromedp.Click(chromedp.CSS("#change-email button")),
		chromedp.WaitVisible(chromedp.CSS("p.notice")),
		chromiumtest.Screenshot(t, "email-change-sent"),
	)
	if err != nil {
		t.Fatalf("asking for the change on the account page: %v", err)
	}
	if u, _ := n.users.GetByEmail(t.Context(), "ada@example.com"); u == nil {
		t.Fatal("the address changed before the new one was verified")
	}
	err = chromedp.Do(tab,
		chromedp.Navigate(srv.Await(t, "ada@new.example").Link(t, account.Verify.Path())),
		chromedp.WaitVisible(chromedp.CSS("button.primary")),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("done")),
		// Still signed in: back at the app at once.
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("following the link, then back to the app: %v", err)
	}
	who, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("who")))
	if err != nil || who != "Ada Lovelace <ada@new.example>" {
		t.Errorf("userinfo shows %q (%v), want the new address", who, err)
	}
	id, err := app.rp.verifier.Verify(tab, app.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
	}
	if err := id.Claims(&claims); err != nil || claims.Email != "ada@new.example" || !claims.Verified {
		t.Errorf("ID token claims %+v (%v), want the new address, verified", claims, err)
	}
	if got := n.events(t, "user.email_changed", "old_email", "ada@example.com", "new_email", "ada@new.example"); len(got) != 1 {
		t.Errorf("%d user.email_changed events with the old and new address, want 1", len(got))
	}
}
