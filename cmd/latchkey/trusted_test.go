package main

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/signin"
)

// trustScene is where trusted-device tests start: a node with the user
// ada@example.com, who has a second factor (its secret is returned), the
// app Notes, and a browser that has not been there.
func trustScene(t *testing.T, settings ...string) (*node, *relyingParty, *browser, string) {
	t.Helper()
	n := startNode(t, settings...)
	secret := n.enrol(t, n.user(t, "ada@example.com"))
	return n, n.app(t), newBrowser(t, n.issuer), secret
}

// offersTrust says the code page has the "Don't ask again" box.
func (p page) offersTrust() bool { return strings.Contains(p.body, `name="trust"`) }

// signInTrusting signs email in to rp with the password and a code,
// ticking "Don't ask again on this browser", and returns the ID token.
func (b *browser) signInTrusting(rp *relyingParty, email, secret string) *oidc.IDToken {
	b.t.Helper()
	ar := rp.start()
	p := b.signIn(b.visit(ar.url), email, testPassword)
	if !p.isSecondFactor() || !p.offersTrust() {
		b.t.Fatalf("after the password: want the code page with the trust box, got %d:\n%s", p.status, p.body)
	}
	p = b.submit("/login/otp", url.Values{"request": {p.handle(b.t)}, "code": {totpCode(b.t, secret, 1)}, "trust": {"on"}})
	if p.isConsent() {
		p = b.decide(p, "allow")
	}
	_, id := rp.finish(b.t, ar, p.callback(b.t))
	return id
}

// leave forgets the browser's session, as closing a private window
// would, and keeps every other cookie: the device and trust cookies.
func (b *browser) leave() {
	b.t.Helper()
	c := b.sessionCookie()
	u, _ := url.Parse(b.issuer)
	b.http.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Path: "/", MaxAge: -1}})
}

// trustCookie returns the browser's trusted-device cookie, or nil.
func (b *browser) trustCookie() *http.Cookie {
	u, _ := url.Parse(b.issuer)
	for _, c := range b.http.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "latchkey_trusted") {
			return c
		}
	}
	return nil
}

// withCookie puts c in the browser, as someone who copied it would.
func (b *browser) withCookie(c *http.Cookie) *browser {
	u, _ := url.Parse(b.issuer)
	b.http.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/"}})
	return b
}

// afterPassword is the page a sign-in to rp reaches once email gave the
// password, with the request's extra parameters.
func (b *browser) afterPassword(rp *relyingParty, email string, extra ...string) page {
	b.t.Helper()
	return b.signIn(b.visit(rp.start(extra...).url), email, testPassword)
}

// trustedDevices lists the user's trusted browsers, straight from the
// store.
func (n *node) trustedDevices(t *testing.T, email string) int {
	t.Helper()
	u, err := n.users.GetByEmail(t.Context(), email)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := n.store.TrustedDevices(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return len(ds)
}

func TestATrustedBrowserSkipsTheSecondFactorAndTheAppLearnsItWasThePasswordAlone(t *testing.T) {
	t.Parallel()
	n, rp, b, secret := trustScene(t)
	first := authOf(t, b.signInTrusting(rp, "ada@example.com", secret))
	if first.ACR != identity.ACRMFA {
		t.Fatalf("the sign-in that trusted the browser says %+v, want the MFA level", first)
	}
	if b.trustCookie() == nil {
		t.Fatal("trusting the browser set no trusted-device cookie")
	}
	if ev := n.events(t, audit.DeviceTrusted); len(ev) != 1 || ev[0].Details["label"] == "" {
		t.Fatalf("device.trusted events: %+v", ev)
	}

	b.leave()
	ar := rp.start()
	p := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
	if p.isSecondFactor() {
		t.Fatal("a trusted browser was asked for the second factor")
	}
	_, id := rp.finish(t, ar, p.callback(t))
	// Truthful: nothing but the password was proven at this sign-in.
	if got := authOf(t, id); got.ACR != identity.ACRPassword || !slices.Equal(got.AMR, []string{"pwd"}) {
		t.Fatalf("a sign-in on a trusted browser says acr %q, amr %v; want the password level and [pwd]", got.ACR, got.AMR)
	}
	var marked bool
	for _, e := range n.events(t, audit.LoginSucceeded) {
		marked = marked || e.Details[signin.TrustedDevice] == true
	}
	if !marked {
		t.Error("the login.succeeded event does not say a trusted browser stood in for the second factor")
	}
	account := b.visit(n.issuer + "/account")
	if !strings.Contains(account.body, `id="trusted-browsers"`) || !strings.Contains(account.body, "trusted until") {
		t.Fatalf("the account page does not list the trusted browser:\n%s", account.body)
	}
}

func TestTheTrustedDeviceCookieIsHttpOnlyLaxAndSealed(t *testing.T) {
	t.Parallel()
	n, rp, _, secret := trustScene(t)
	ar := rp.start()
	b := newBrowser(t, n.issuer)
	p := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/login/otp", strings.NewReader(url.Values{
		"request": {p.handle(t)}, "code": {totpCode(t, secret, 1)}, "trust": {"on"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", n.issuer)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.HasSuffix(c.Name, "latchkey_trusted") {
			set = c
		}
	}
	if set == nil || !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/" || set.MaxAge != 30*24*3600 {
		t.Fatalf("the trusted-device cookie is %+v; want HttpOnly, SameSite=Lax, path /, 30 days", set)
	}
	// The user's ID is not readable in it: the cookie is sealed.
	raw, _ := base64.RawURLEncoding.DecodeString(set.Value)
	u, _ := n.users.GetByEmail(t.Context(), "ada@example.com")
	if strings.Contains(string(raw), u.ID) || strings.Contains(set.Value, u.ID) {
		t.Fatal("the trusted-device cookie shows whose it is")
	}
}

func TestTrustNeverAnswersPromptLoginMaxAgeOrAnAppThatAsksForMFAOrMore(t *testing.T) {
	t.Parallel()
	n, rp, b, secret := trustScene(t)
	b.signInTrusting(rp, "ada@example.com", secret)
	strict := n.app(t, func(c *client.Client) { c.RequireMFA = true })
	phishingResistant := n.app(t, func(c *client.Client) { c.RequirePhishingResistant = true })
	for _, tc := range []struct {
		name  string
		app   *relyingParty
		extra []string
	}{
		{"prompt=login", rp, []string{"prompt", "login"}},
		{"max_age=0", rp, []string{"max_age", "0"}},
		{"a max_age of a day", rp, []string{"max_age", "86400"}},
		{"acr_values naming the MFA level", rp, []string{"acr_values", identity.ACRMFA}},
		{"an essential acr of the MFA level", rp, []string{"claims", `{"id_token":{"acr":{"essential":true,"values":["` + identity.ACRMFA + `"]}}}`}},
		{"a require_mfa app", strict, nil},
		{"acr_values naming the phishing-resistant level", rp, []string{"acr_values", identity.ACRPhishingResistant}},
		{"a require_phishing_resistant app", phishingResistant, nil},
	} {
		b.leave()
		if p := b.afterPassword(tc.app, "ada@example.com", tc.extra...); !p.isSecondFactor() {
			t.Errorf("%s on a trusted browser: want the code page after the password, got %d:\n%s", tc.name, p.status, p.body)
		}
	}
}

func TestATrustedCookieDoesNothingForAnotherAccountOrWhenForged(t *testing.T) {
	t.Parallel()
	n, rp, ada, secret := trustScene(t)
	n.enrol(t, n.user(t, "bob@example.com"))
	ada.signInTrusting(rp, "ada@example.com", secret)
	stolen := ada.trustCookie()

	// Bob's browser, with Ada's cookie copied in.
	bob := newBrowser(t, n.issuer).withCookie(stolen)
	if p := bob.afterPassword(rp, "bob@example.com"); !p.isSecondFactor() {
		t.Fatalf("another account's trusted cookie let bob past the second factor: %d:\n%s", p.status, p.body)
	}
	// The cookie alone is no sign-in.
	if q := newBrowser(t, n.issuer).withCookie(stolen).visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "login_required" {
		t.Fatalf("a trusted cookie without a password: %v", q)
	}
	// Tampered with, or made up, it does nothing even for its own user.
	for name, value := range map[string]string{
		"tampered": stolen.Value[:len(stolen.Value)-4] + "AAAA",
		"forged":   base64.RawURLEncoding.EncodeToString([]byte(`[{"u":"` + "x" + `","s":"AAAA","e":9999999999}]`)),
	} {
		forger := newBrowser(t, n.issuer).withCookie(&http.Cookie{Name: stolen.Name, Value: value})
		if p := forger.afterPassword(rp, "ada@example.com"); !p.isSecondFactor() {
			t.Errorf("a %s trusted cookie skipped the second factor", name)
		}
	}
}

var deviceOnPage = regexp.MustCompile(`name="device" value="([^"]+)"`)

func TestTrustEndsWhenThePasswordOrFactorChangesOrTheUserForgetsIt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, n *node, b *browser)
	}{
		{"the password is changed", func(t *testing.T, n *node, b *browser) {
			if p := b.changePassword(testPassword, brandNewPassword); !strings.Contains(p.body, "password is changed") {
				t.Fatalf("changing the password: %d:\n%s", p.status, p.body)
			}
			if got := n.trustedDevices(t, "ada@example.com"); got != 0 {
				t.Fatalf("the password change left %d trusted browsers", got)
			}
			// Back to the old one, so the sign-in below can use it.
			if err := n.users.SetPassword(t.Context(), mustUser(t, n).ID, testPassword); err != nil {
				t.Fatal(err)
			}
		}},
		{"new recovery codes are made", func(t *testing.T, _ *node, b *browser) {
			if p := b.submit("/account/mfa/recovery-codes", nil); strings.Count(p.body, "<li><code>") != 10 {
				t.Fatalf("new recovery codes: %d:\n%s", p.status, p.body)
			}
		}},
		{"the user forgets it on the account page", func(t *testing.T, _ *node, b *browser) {
			m := deviceOnPage.FindStringSubmatch(b.visit(b.issuer + "/account").body)
			if m == nil {
				t.Fatal("the account page has no trusted browser to forget")
			}
			if p := b.submit("/account/devices/forget", url.Values{"device": {m[1]}}); !strings.Contains(p.body, "will ask for two-step verification again") {
				t.Fatalf("forgetting: %d:\n%s", p.status, p.body)
			}
		}},
		{"the user forgets them all", func(t *testing.T, _ *node, b *browser) {
			b.submit("/account/devices/forget", url.Values{"all": {"on"}})
		}},
		{"an admin forgets them (CLI)", func(t *testing.T, n *node, _ *browser) {
			if code, stdout, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL}, "users", "forget-devices", "ada@example.com"); code != 0 || !strings.Contains(stdout, "forgot 1 trusted browser") {
				t.Fatalf("forget-devices: exit %d, %q %q", code, stdout, stderr)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, rp, b, secret := trustScene(t)
			b.signInTrusting(rp, "ada@example.com", secret)
			tc.end(t, n, b)
			if got := n.trustedDevices(t, "ada@example.com"); got != 0 {
				t.Errorf("%d trusted browsers left", got)
			}
			b.leave()
			if p := b.afterPassword(rp, "ada@example.com"); !p.isSecondFactor() {
				t.Fatalf("after %s, the browser was not asked for the second factor: %d:\n%s", tc.name, p.status, p.body)
			}
			if forgotten := n.events(t, audit.DeviceForgotten); strings.Contains(tc.name, "forget") && len(forgotten) != 1 {
				t.Errorf("device.forgotten events: %+v", forgotten)
			}
		})
	}
}

// exec runs sql on the node's database, behind the store's back.
func (n *node) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), n.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// mustUser is ada@example.com as stored now.
func mustUser(t *testing.T, n *node) *identity.User {
	t.Helper()
	u, err := n.users.GetByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestResetMFAAndANewFactorForgetTrustedBrowsers(t *testing.T) {
	t.Parallel()
	n, rp, b, secret := trustScene(t)
	b.signInTrusting(rp, "ada@example.com", secret)
	if code, _, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL}, "users", "reset-mfa", "ada@example.com"); code != 0 {
		t.Fatalf("reset-mfa: exit %d, %q", code, stderr)
	}
	if got := n.trustedDevices(t, "ada@example.com"); got != 0 {
		t.Fatalf("reset-mfa left %d trusted browsers", got)
	}

	// Enrolling a factor forgets what was trusted before it, even a row
	// that outlived its factor some other way.
	u := mustUser(t, n)
	secret = n.enrol(t, u)
	b.leave()
	b.signInTrusting(rp, "ada@example.com", secret)
	n.exec(t, `DELETE FROM totp_factors WHERE user_id = $1`, u.ID)
	n.enrol(t, u)
	if got := n.trustedDevices(t, "ada@example.com"); got != 0 {
		t.Fatalf("enrolling a factor left %d trusted browsers", got)
	}
	b.leave()
	if p := b.afterPassword(rp, "ada@example.com"); !p.isSecondFactor() {
		t.Fatalf("after a new factor, the browser was not asked for it: %d", p.status)
	}
}

func TestWithTrustedDevicesOffThereIsNoBoxAndATickedOneTrustsNothing(t *testing.T) {
	t.Parallel()
	n, rp, b, secret := trustScene(t, "LATCHKEY_TRUSTED_DEVICE_LIFETIME", "0")
	ar := rp.start()
	p := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
	if !p.isSecondFactor() || p.offersTrust() {
		t.Fatalf("trusted devices off: want the code page without the box, got %d:\n%s", p.status, p.body)
	}
	p = b.submit("/login/otp", url.Values{"request": {p.handle(t)}, "code": {totpCode(t, secret, 1)}, "trust": {"on"}})
	if p.isConsent() {
		p = b.decide(p, "allow")
	}
	rp.finish(t, ar, p.callback(t))
	if b.trustCookie() != nil || n.trustedDevices(t, "ada@example.com") != 0 {
		t.Fatal("with trusted devices off, a ticked box trusted the browser")
	}
	if strings.Contains(b.visit(n.issuer+"/account").body, `id="trusted-browsers"`) {
		t.Error("with trusted devices off, the account page lists trusted browsers")
	}
}

func TestADisabledUsersTrustedBrowserGetsThemNowhere(t *testing.T) {
	t.Parallel()
	n, rp, b, secret := trustScene(t)
	b.signInTrusting(rp, "ada@example.com", secret)
	if err := n.users.Disable(t.Context(), mustUser(t, n).ID); err != nil {
		t.Fatal(err)
	}
	b.leave()
	if p := b.afterPassword(rp, "ada@example.com"); !p.isLogin() || p.location != nil {
		t.Fatalf("a disabled user on their trusted browser: want the sign-in page again, got %d (%v)", p.status, p.location)
	}
}

func TestTheAdminAPIListsAndForgetsTrustedBrowsersAndAReadOnlyTokenCannot(t *testing.T) {
	t.Parallel()
	n, rp, b, secret := trustScene(t)
	b.signInTrusting(rp, "ada@example.com", secret)
	u := mustUser(t, n)
	path := "/admin/users/" + u.ID + "/trusted-devices"

	reader := n.automation(t, "latchkey:admin:read")
	list := reader.call(http.MethodGet, path, nil)
	items, _ := list.body["items"].([]any)
	if list.status != http.StatusOK || len(items) != 1 {
		t.Fatalf("GET %s: %d %s", path, list.status, list.raw)
	}
	id, _ := items[0].(map[string]any)["id"].(string)
	for _, p := range []string{path, path + "/" + id} {
		if a := reader.call(http.MethodDelete, p, nil); a.status != http.StatusForbidden {
			t.Errorf("a read-only token: DELETE %s answered %d, want 403", p, a.status)
		}
	}
	if n.trustedDevices(t, "ada@example.com") != 1 {
		t.Fatal("a read-only token forgot a trusted browser")
	}

	admin := n.automation(t, "latchkey:admin")
	if a := admin.call(http.MethodDelete, path+"/"+u.ID, nil); a.status != http.StatusNotFound {
		t.Errorf("forgetting a device the user does not have: %d, want 404", a.status)
	}
	if a := admin.call(http.MethodDelete, path+"/"+id, nil); a.status != http.StatusNoContent {
		t.Fatalf("DELETE one: %d %s", a.status, a.raw)
	}
	ev := n.events(t, audit.DeviceForgotten, "device", id)
	if len(ev) != 1 || !strings.HasPrefix(ev[0].Actor, "client:") {
		t.Errorf("device.forgotten events for %s: %+v", id, ev)
	}
	b.leave()
	if p := b.afterPassword(rp, "ada@example.com"); !p.isSecondFactor() {
		t.Fatal("a browser the admin forgot skipped the second factor")
	}
	if a := admin.call(http.MethodDelete, path, nil); a.status != http.StatusNoContent {
		t.Fatalf("DELETE all: %d %s", a.status, a.raw)
	}
}

func TestTheCLIListsATrustedBrowserByItsName(t *testing.T) {
	t.Parallel()
	n, rp, b, secret := trustScene(t)
	b.as("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0").signInTrusting(rp, "ada@example.com", secret)
	code, stdout, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL}, "users", "trusted-devices", "ada@example.com")
	if code != 0 || !strings.Contains(stdout, "Firefox on Linux") {
		t.Fatalf("trusted-devices: exit %d, %q %q", code, stdout, stderr)
	}
}
