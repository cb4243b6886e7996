package main

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/audit"
)

// The account page's own changes: the password, the profile and deleting
// the account (pkg/signin's password_change.go, profile.go, deletion.go).

// changePassword posts the change-password form as the account page does.
func (b *browser) changePassword(current, next string) page {
	b.t.Helper()
	return b.submit("/account/password", url.Values{"current_password": {current}, "new_password": {next}, "confirm_password": {next}})
}

func TestChangingThePasswordSignsOutEverythingElseButKeepsThisBrowser(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	tok, _ := b.signedIn(rp, "ada@example.com")
	other := newBrowser(t, n.issuer)
	other.signIn(other.visit(n.issuer+"/login"), "ada@example.com", testPassword)

	p := b.changePassword(testPassword, brandNewPassword)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Your password is changed") {
		t.Fatalf("changing the password: %d:\n%s", p.status, p.body)
	}
	if p := b.visit(n.issuer + "/account"); !strings.Contains(p.body, "ada@example.com") {
		t.Fatalf("the browser that changed the password was signed out (%d)", p.status)
	}
	if p := other.visit(n.issuer + "/account"); !p.isLogin() || strings.Contains(p.body, "ada@example.com") {
		t.Fatalf("another browser is still signed in after the password changed (%d)", p.status)
	}
	if err := rp.refresh(t.Context(), tok.RefreshToken); !isInvalidGrant(err) {
		t.Fatalf("the app's refresh token from before: %v, want invalid_grant", err)
	}
	if n.signsIn(t, "ada@example.com", testPassword) {
		t.Fatal("the old password still signs in")
	}
	if !n.signsIn(t, "ada@example.com", brandNewPassword) {
		t.Fatal("the new password does not sign in")
	}
}

func TestANewPasswordOutsideThePolicyOrMistypedIsRefusedWithoutCostingAnAttempt(t *testing.T) {
	t.Parallel()
	n, _, b := signInScene(t)
	b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	for _, tt := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"current_password": {testPassword}, "new_password": {"short"}, "confirm_password": {"short"}}, "at least 8 characters"},
		{url.Values{"current_password": {testPassword}, "new_password": {"password1"}, "confirm_password": {"password1"}}, "most common passwords"},
		{url.Values{"current_password": {testPassword}, "new_password": {brandNewPassword}, "confirm_password": {brandNewPassword + "!"}}, "differ"},
		{url.Values{"current_password": {testPassword}, "new_password": {testPassword}, "confirm_password": {testPassword}}, "is your current one"},
	} {
		p := b.submit("/account/password", tt.form)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, tt.want) {
			t.Errorf("new password %q: %d, want 400 saying %q:\n%s", tt.form.Get("new_password"), p.status, tt.want, p.body)
		}
	}
	if got := len(n.events(t, audit.LoginFailed)); got != 0 {
		t.Fatalf("%d password checks failed; a refused new password must not check, nor count against, the current one", got)
	}
	if !n.signsIn(t, "ada@example.com", testPassword) {
		t.Fatal("the password changed")
	}
}

func TestAWrongCurrentPasswordCountsAgainstTheAccountLikeAWrongSignIn(t *testing.T) {
	t.Parallel()
	n := startNode(t) // five wrong passwords per account (and device) before the pauses
	n.user(t, "ada@example.com")
	// The attacker holds Ada's session, stolen with its device cookie,
	// and guesses her password on the account page from four addresses
	// at once, to take the account over.
	b := newBrowser(t, n.issuer)
	b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	jar := b.http.Jar.(*cookiejar.Jar)
	burst(t, 60, attackers(4), func(i int, ip string) {
		c := clientFrom(ip)
		c.Jar = jar
		guess := fmt.Sprintf("guess number %d", i)
		status, _, err := n.postForm(c, "/account/password", url.Values{"current_password": {guess},
			"new_password": {brandNewPassword}, "confirm_password": {brandNewPassword}})
		if err != nil || status != http.StatusUnauthorized {
			t.Errorf("guess %d from %s: %d %v, want 401", i, ip, status, err)
		}
	})
	if checked := len(n.events(t, audit.LoginFailed, "reason", "wrong password")); checked != 5 {
		t.Fatalf("60 parallel guesses from 4 addresses had %d passwords checked; want the limit of 5", checked)
	}
	if refused := len(n.events(t, audit.LoginFailed, "reason", "throttled")); refused != 55 {
		t.Fatalf("%d guesses were refused unchecked; want the other 55", refused)
	}
	if p := b.changePassword(testPassword, brandNewPassword); p.status != http.StatusUnauthorized {
		t.Fatalf("the right current password right after the burst: %d, want the pause", p.status)
	}
	if n.signsIn(t, "ada@example.com", brandNewPassword) {
		t.Fatal("the password was changed")
	}
}

func TestTheAccountPagesFormsRefuseCrossOriginPosts(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_ACCOUNT_DELETION", "true")
	n.user(t, "ada@example.com")
	b := newBrowser(t, n.issuer)
	b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	for _, tt := range []struct {
		path string
		form url.Values
	}{
		{"/account/password", url.Values{"current_password": {testPassword}, "new_password": {brandNewPassword}, "confirm_password": {brandNewPassword}}},
		{"/account/profile", url.Values{"name": {"Mallory"}}},
		{"/account/delete", url.Values{"confirm": {"ada@example.com"}}},
	} {
		for _, headers := range [][]string{
			{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"},
			{"Origin", "https://evil.example", "Sec-Fetch-Site", ""},
		} {
			if p := b.submit(tt.path, tt.form, headers...); p.status != http.StatusForbidden {
				t.Errorf("%s from another site (%v): %d, want 403", tt.path, headers, p.status)
			}
		}
	}
	u, err := n.users.GetByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatalf("the account was deleted from another site: %v", err)
	}
	if u.Name != "Ada Lovelace" {
		t.Errorf("the profile was changed from another site: %q", u.Name)
	}
	if !n.signsIn(t, "ada@example.com", testPassword) {
		t.Error("the password was changed from another site")
	}
}

func TestTheProfileFormChangesWhatAppsAreToldAndNotTheEmail(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	p := b.submit("/account/profile", url.Values{"name": {"  Ada King  "}, "given_name": {"Ada"}, "family_name": {"King"},
		"nickname": {"Countess"}, "zoneinfo": {"Europe/London"}, "locale": {""}, "website": {"https://ada.example"},
		"email": {"mallory@example.com"}, "phone_number": {"+441632960000"}})
	if !strings.Contains(p.body, "Your profile is saved") || !strings.Contains(p.body, `value="Countess"`) {
		t.Fatalf("saving the profile: %d:\n%s", p.status, p.body)
	}
	u, err := n.users.GetByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatalf("the email changed through the profile form: %v", err)
	}
	want := map[string]any{"nickname": "Countess", "zoneinfo": "Europe/London", "website": "https://ada.example"}
	if u.Name != "Ada King" || u.FamilyName != "King" || fmt.Sprint(u.Claims) != fmt.Sprint(want) {
		t.Fatalf("stored %q %q %v; want Ada King, King and %v (locale removed, no phone number)", u.Name, u.FamilyName, u.Claims, want)
	}
	ar := rp.start() // signed in and allowed: straight back to the app
	tok, _ := rp.finish(t, ar, b.visit(ar.url).callback(t))
	status, _, body := n.userinfoAs(t, tok.AccessToken)
	if status != http.StatusOK || !strings.Contains(body, `"name":"Ada King"`) || !strings.Contains(body, `"nickname":"Countess"`) {
		t.Fatalf("userinfo after the edit: %d %s", status, body)
	}
}

func TestOversizedOrMultiLineProfileValuesAreRefusedByName(t *testing.T) {
	t.Parallel()
	n, _, b := signInScene(t)
	b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	long := strings.Repeat("x", 201)
	p := b.submit("/account/profile", url.Values{"name": {long}, "nickname": {"two\nlines"}, "website": {"https://" + strings.Repeat("a", 500)}})
	if p.status != http.StatusBadRequest {
		t.Fatalf("an oversized profile: %d, want 400", p.status)
	}
	for _, want := range []string{"Your profile was not saved", "Full name must be at most 200 characters", "Nickname must be a string of at most 500 characters on one line", "Website must be"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the page does not say %q:\n%s", want, p.body)
		}
	}
	if !strings.Contains(p.body, `value="`+long+`"`) {
		t.Error("what was typed is lost")
	}
	if u, _ := n.users.GetByEmail(t.Context(), "ada@example.com"); u.Name != "Ada Lovelace" || len(u.Claims) != 1 {
		t.Fatalf("a refused profile was stored in part: %q %v", u.Name, u.Claims)
	}
}

func TestADisabledUsersSessionChangesNothing(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_ACCOUNT_DELETION", "true")
	u := n.user(t, "ada@example.com")
	b := newBrowser(t, n.issuer)
	b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	if err := n.users.Disable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path string
		form url.Values
	}{
		{"/account/password", url.Values{"current_password": {testPassword}, "new_password": {brandNewPassword}, "confirm_password": {brandNewPassword}}},
		{"/account/profile", url.Values{"name": {"Mallory"}}},
		{"/account/delete", url.Values{"confirm": {"ada@example.com"}}},
	} {
		if p := b.submit(tt.path, tt.form); !p.isLogin() || strings.Contains(p.body, "Your account") {
			t.Errorf("%s by a disabled user: %d, want the sign-in page", tt.path, p.status)
		}
	}
	after, err := n.users.Get(t.Context(), u.ID)
	if err != nil || after.Name != "Ada Lovelace" || after.PasswordHash != u.PasswordHash {
		t.Fatalf("a disabled user changed their account: %v %+v", err, after)
	}
}

func TestDeletingTheAccountNeedsTheOperatorTheTypedEmailAndARecentSignIn(t *testing.T) {
	t.Parallel()
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		n, _, b := signInScene(t)
		b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword)
		if p := b.visit(n.issuer + "/account"); strings.Contains(p.body, "/account/delete") {
			t.Error("the account page offers deletion while the operator has it off")
		}
		if p := b.submit("/account/delete", url.Values{"confirm": {"ada@example.com"}}); p.status != http.StatusForbidden {
			t.Errorf("deletion while the operator has it off: %d, want 403", p.status)
		}
		if _, err := n.users.GetByEmail(t.Context(), "ada@example.com"); err != nil {
			t.Fatalf("the account was deleted while deletion is off: %v", err)
		}
	})
	t.Run("on", func(t *testing.T) {
		t.Parallel()
		n, b := reauthScene(t, "LATCHKEY_ACCOUNT_DELETION", "true")
		rp := n.app(t)
		// The app gets its tokens through the sign-in that is no longer
		// recent.
		ar := rp.start()
		tok, _ := rp.finish(t, ar, b.decide(b.visit(ar.url), "allow").callback(t))
		if p := b.visit(n.issuer + "/account"); !strings.Contains(p.body, "/account/delete") {
			t.Fatal("the account page does not offer deletion while the operator has it on")
		}
		if p := b.submit("/account/delete", url.Values{"confirm": {"ada@exmaple.com"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "type your email address") {
			t.Fatalf("deletion with a mistyped email: %d, want 400 asking for it", p.status)
		}
		p := b.submit("/account/delete", url.Values{"confirm": {"ada@example.com"}})
		if !p.isReauth() {
			t.Fatalf("deletion without a recent sign-in: %d, want the page asking for the password:\n%s", p.status, p.body)
		}
		if p := b.submit("/account/delete", url.Values{"confirm": {"ada@example.com"}, "reauth_password": {"a guess"}}); p.status != http.StatusUnauthorized {
			t.Fatalf("deletion with a wrong password: %d, want 401", p.status)
		}
		if _, err := n.users.GetByEmail(t.Context(), "ada@example.com"); err != nil {
			t.Fatalf("the account was deleted without the password: %v", err)
		}
		form := url.Values{"reauth_password": {testPassword}}
		for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
			form.Set(m[1], m[2])
		}
		if done := b.submit("/account/delete", form); !strings.Contains(done.body, "Your account is deleted") {
			t.Fatalf("deletion with the password: %d:\n%s", done.status, done.body)
		}
		if _, err := n.users.GetByEmail(t.Context(), "ada@example.com"); err == nil {
			t.Fatal("the account still exists")
		}
		if p := b.visit(n.issuer + "/account"); !p.isLogin() {
			t.Fatalf("the browser is still signed in after deleting its account (%d)", p.status)
		}
		if n.signsIn(t, "ada@example.com", testPassword) {
			t.Fatal("the deleted account still signs in")
		}
		if n.introspect(t, tok.AccessToken) {
			t.Fatal("the app's access token is still active")
		}
		if err := rp.refresh(t.Context(), tok.RefreshToken); !isInvalidGrant(err) {
			t.Fatalf("the app's refresh token: %v, want invalid_grant", err)
		}
		if got := n.events(t, audit.UserDeleted, "email", "ada@example.com"); len(got) != 1 || !strings.HasPrefix(got[0].Actor, "user:") {
			t.Fatalf("the deletion's audit events: %+v, want one by the user", got)
		}
	})
}
