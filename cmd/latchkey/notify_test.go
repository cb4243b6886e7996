package main

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/mail"
)

// Security notices (pkg/notify), end to end: a node that mails through a
// real SMTP server, and the changes made as users and admins make them.

// firefox is the User-Agent of a browser the notices can name.
const firefox = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

// userAgent sets a User-Agent header on every request it carries.
type userAgent struct {
	agent string
	next  http.RoundTripper
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.agent)
	return u.next.RoundTrip(r)
}

// as makes the browser present itself as agent, over the connections it
// makes now (from sets them).
func (b *browser) as(agent string) *browser {
	next := b.http.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	b.http.Transport = userAgent{agent: agent, next: next}
	return b
}

// notices lists the templates of every message n wrote to its outbox,
// oldest first, sent or not: what a test may count, where mail on its way
// over SMTP could still arrive.
func (n *node) notices(t *testing.T) []string {
	t.Helper()
	ms, err := n.store.Mail(t.Context(), mail.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range slices.Backward(ms) {
		out = append(out, m.Template)
	}
	return out
}

var recoveryCodeOnPage = regexp.MustCompile(`<li><code>([a-z2-7-]+)</code>`)

// accountLife is a user's account as it is lived, from sign-ins on two
// browsers to two-step verification and back off, to an admin's new
// password, each change made the way people make it.
func accountLife(t *testing.T, n *node) {
	t.Helper()
	u := n.user(t, "ada@example.com")
	// The first sign-in on a browser is news; signing in on it again is
	// not.
	laptop := newBrowser(t, n.issuer).from("127.0.0.2").as(firefox)
	laptop.signIn(laptop.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	again := n.signedOutBrowser(t, "ada@example.com", "127.0.0.3") // news once, in signing in first
	if p := again.signIn(again.visit(n.issuer+"/login"), "ada@example.com", testPassword); !strings.Contains(p.body, "Your account") {
		t.Fatalf("signing in again on a known browser: %d", p.status)
	}
	if p := laptop.changePassword(testPassword, brandNewPassword); !strings.Contains(p.body, "Your password is changed") {
		t.Fatalf("changing the password: %d", p.status)
	}
	enrol := laptop.submit("/account/mfa/enrol", nil)
	m := secretOnPage.FindStringSubmatch(enrol.body)
	if m == nil {
		t.Fatalf("turning two-step verification on: %d", enrol.status)
	}
	laptop.submit("/account/mfa/confirm", url.Values{"code": {totpCode(t, m[1], 0)}})
	codes := recoveryCodeOnPage.FindAllStringSubmatch(laptop.submit("/account/mfa/recovery-codes", nil).body, -1)
	if len(codes) != 10 {
		t.Fatalf("new recovery codes: %d on the page", len(codes))
	}
	phone := newBrowser(t, n.issuer).from("127.0.0.4")
	if p := phone.secondFactor(phone.signIn(phone.visit(n.issuer+"/login"), "ada@example.com", brandNewPassword), codes[0][1]); !strings.Contains(p.body, "Your account") {
		t.Fatalf("signing in with a recovery code: %d", p.status)
	}
	if p := laptop.submit("/account/mfa/disable", url.Values{"code": {totpCode(t, m[1], 1)}}); !strings.Contains(p.body, "Two-step verification is off") {
		t.Fatalf("turning two-step verification off: %d", p.status)
	}
	n.automation(t, client.AdminScope).call(http.MethodPut, "/admin/users/"+u.ID+"/password",
		map[string]string{"password": "an admin's passphrase"}).must(t, http.StatusNoContent)
}

func TestEachChangeToAnAccountIsMailedToItsOwnerOverSMTP(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	n := startNode(t, "LATCHKEY_SMTP_URL", srv.URL())
	accountLife(t, n)

	want := []string{"new-browser", "new-browser", "password-changed", "mfa-enabled", "recovery-codes-renewed",
		"recovery-code-used", "new-browser", "mfa-disabled", "password-changed"}
	if got := n.notices(t); !slices.Equal(got, want) {
		t.Fatalf("the outbox holds %v;\nwant %v\n(a known browser signing in again, or this browser after its own password change, is no news)", got, want)
	}
	arrived := srv.AwaitN(t, "ada@example.com", len(want))
	bySubject := map[string]smtptest.Message{}
	for _, m := range arrived {
		bySubject[m.Subject] = m
	}
	host := strings.TrimPrefix(n.issuer, "http://")
	var laptop *smtptest.Message
	for _, m := range arrived {
		if m.Subject == "New sign-in to your account at "+host && strings.Contains(m.Text, "127.0.0.2") {
			laptop = &m
		}
	}
	if laptop == nil {
		t.Fatalf("no new sign-in notice names the laptop's address among %d messages", len(arrived))
	}
	for _, want := range []string{"Firefox on Linux", n.issuer + "/account"} {
		if !strings.Contains(laptop.Text, want) {
			t.Errorf("the laptop's new sign-in notice lacks %q:\n%s", want, laptop.Text)
		}
	}
	var changed []smtptest.Message
	for _, m := range arrived {
		if m.Subject == "Your password at "+host+" was changed" {
			changed = append(changed, m)
		}
	}
	if len(changed) != 2 {
		t.Fatalf("%d password notices arrived, want 2", len(changed))
	}
	// Mail may arrive in any order; tell them apart by who changed it.
	byUser, byAdmin := changed[0], changed[1]
	if strings.Contains(byUser.Text, "An administrator") {
		byUser, byAdmin = byAdmin, byUser
	}
	if !strings.Contains(byUser.Text, "Firefox on Linux") || !strings.Contains(byUser.Text, "127.0.0.2") {
		t.Errorf("the notice of the user's own change does not say where it came from:\n%s", byUser.Text)
	}
	if !strings.Contains(byAdmin.Text, "An administrator set a new password") || strings.Contains(byAdmin.Text, "IP address") {
		t.Errorf("the notice of an admin's change should say so, and not give the admin's address:\n%s", byAdmin.Text)
	}
	for _, m := range arrived {
		for _, secret := range []string{testPassword, brandNewPassword, "an admin's passphrase"} {
			if strings.Contains(m.Text+m.HTML, secret) {
				t.Fatalf("%q carries a password", m.Subject)
			}
		}
		if !strings.Contains(m.HTML, `<a href="`+n.issuer+`/`) {
			t.Errorf("%q has no link to act on it", m.Subject)
		}
	}
	if used := bySubject["A recovery code was used for your account at "+host]; !strings.Contains(used.Text, "you have 9 left") {
		t.Errorf("the recovery-code notice does not say how many are left:\n%s", used.Text)
	}
}

func TestNoNoticeIsMailedWhileTheOperatorHasThemOff(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	n := startNode(t, "LATCHKEY_SMTP_URL", srv.URL(), "LATCHKEY_NOTIFICATIONS", "none")
	accountLife(t, n)
	if got := n.notices(t); len(got) != 0 {
		t.Fatalf("with LATCHKEY_NOTIFICATIONS=none the outbox holds %v", got)
	}
	if got := srv.Messages(); len(got) != 0 {
		t.Fatalf("with LATCHKEY_NOTIFICATIONS=none %d messages arrived", len(got))
	}
}

func TestTurningOneNoticeOffLeavesTheOthers(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_NOTIFICATIONS", "password,email,mfa,recovery-codes")
	accountLife(t, n)
	want := []string{"password-changed", "mfa-enabled", "recovery-codes-renewed", "recovery-code-used", "mfa-disabled", "password-changed"}
	if got := n.notices(t); !slices.Equal(got, want) {
		t.Fatalf("with new-browser off the outbox holds %v, want %v", got, want)
	}
}
