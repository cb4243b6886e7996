package main

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// authentication is what an ID token says about how the user signed in.
type authentication struct {
	AMR      []string `json:"amr"`
	ACR      string   `json:"acr"`
	AuthTime int64    `json:"auth_time"`
}

func authOf(t *testing.T, id *oidc.IDToken) authentication {
	t.Helper()
	var a authentication
	if err := id.Claims(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAPasswordIsNotEnoughForAUserWithASecondFactor(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	u, _ := n.users.GetByEmail(t.Context(), "ada@example.com")
	secret := n.enrol(t, u)

	ar := rp.start()
	codePage := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
	if !codePage.isSecondFactor() {
		t.Fatalf("after the password: want the code page, got %d:\n%s", codePage.status, codePage.body)
	}
	for _, want := range []string{`autocomplete="one-time-code"`, `inputmode="numeric"`} {
		if !strings.Contains(codePage.body, want) {
			t.Errorf("the code field lacks %s", want)
		}
	}
	// The password alone is not a sign-in: another app asking silently
	// finds nobody signed in.
	if q := b.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "login_required" {
		t.Fatalf("a password without its second factor signed the user in: %v", q)
	}
	_, id := rp.finish(t, ar, b.decide(b.secondFactor(codePage, totpCode(t, secret, 1)), "allow").callback(t))
	wantAssurance(t, authOf(t, id), identity.ACRMFA, "pwd", "otp", "mfa")
}

func TestStepUpAsksForTheCodeAloneAndTokensSayHowTheUserSignedIn(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	rp := n.app(t, func(c *client.Client) { c.AccessTokenFormat = client.FormatJWT })
	b := newBrowser(t, n.issuer)
	_, first := b.signedIn(rp, "ada@example.com")
	if a := authOf(t, first); a.ACR != identity.ACRPassword || slices.Contains(a.AMR, "otp") {
		t.Fatalf("a password sign-in says %+v", a)
	}
	secret := n.enrol(t, u)
	waitForNextSecond()

	// The app needs more, as a resource server told it (RFC 9470).
	ar := rp.start("acr_values", identity.ACRMFA)
	p := b.visit(ar.url)
	if !p.isSecondFactor() || p.isLogin() {
		t.Fatalf("step-up: want the code page alone, got %d:\n%s", p.status, p.body)
	}
	tok, second := rp.finish(t, ar, b.secondFactor(p, totpCode(t, secret, 1)).callback(t))
	got := authOf(t, second)
	if got.ACR != identity.ACRMFA || !slices.Contains(got.AMR, "otp") || got.AuthTime <= authOf(t, first).AuthTime {
		t.Fatalf("after step-up the ID token says %+v; want acr mfa, otp, and a later auth_time than %d", got, authOf(t, first).AuthTime)
	}

	// RFC 9470 §6: the access token and its introspection say so too.
	claims := decodeSegment(t, strings.Split(tok.AccessToken, ".")[1])
	if claims["acr"] != identity.ACRMFA || int64(claims["auth_time"].(float64)) != got.AuthTime {
		t.Fatalf("JWT access token acr %v, auth_time %v; want %s and %d", claims["acr"], claims["auth_time"], identity.ACRMFA, got.AuthTime)
	}
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(rp.oauth.ClientID, rp.oauth.ClientSecret)
	_, intro := doJSON(t, req)
	if intro["acr"] != identity.ACRMFA || int64(intro["auth_time"].(float64)) != got.AuthTime {
		t.Fatalf("introspection %v lacks the acr and auth_time of the sign-in", intro)
	}
}

func TestMaxAgeReauthenticatesWithTheCodeAlone(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	u, _ := n.users.GetByEmail(t.Context(), "ada@example.com")
	secret := n.enrol(t, u)
	ar := rp.start()
	rp.finish(t, ar, b.decide(b.secondFactor(b.signIn(b.visit(ar.url), "ada@example.com", testPassword), totpCode(t, secret, 1)), "allow").callback(t))
	waitForNextSecond()
	if p := b.visit(rp.start("max_age", "0").url); !p.isSecondFactor() || p.isLogin() {
		t.Fatalf("max_age=0 for a user with a second factor: want the code page alone, got %d:\n%s", p.status, p.body)
	}
}

func TestPreferringMFAWithoutAFactorGivesThePasswordLevel(t *testing.T) {
	t.Parallel()
	_, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	ar := rp.start("acr_values", identity.ACRMFA)
	p := b.visit(ar.url)
	_, id := rp.finish(t, ar, p.callback(t))
	if a := authOf(t, id); a.ACR != identity.ACRPassword {
		t.Fatalf("acr %q, want %q: the app asked, it did not require", a.ACR, identity.ACRPassword)
	}
}

func TestPromptNoneWhenTheSecondFactorIsNeededIsInteractionRequired(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	u, _ := n.users.GetByEmail(t.Context(), "ada@example.com")
	n.enrol(t, u)
	q := b.visit(rp.start("prompt", "none", "acr_values", identity.ACRMFA).url).callback(t).Query()
	if q.Get("error") != "interaction_required" || q.Get("iss") != n.issuer {
		t.Fatalf("%v, want interaction_required with iss", q)
	}
}

func TestWrongCodesAtSignInAreThrottled(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_MFA_MAX_FAILURES", "3")
	u := n.user(t, "ada@example.com")
	secret := n.enrol(t, u)
	rp := n.app(t)
	b := newBrowser(t, n.issuer)
	p := b.signIn(b.visit(rp.start().url), "ada@example.com", testPassword)
	for i := range 3 {
		p = b.secondFactor(p, "000000")
		if p.status != http.StatusOK || !strings.Contains(p.body, "That code is not valid") {
			t.Fatalf("wrong code %d: %d", i+1, p.status)
		}
	}
	p = b.secondFactor(p, totpCode(t, secret, 1))
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many wrong codes") {
		t.Fatalf("the right code after the limit: %d, Retry-After %q; want 429 before the code is even checked", p.status, p.header.Get("Retry-After"))
	}
}

func TestARecoveryCodeSignsInOnce(t *testing.T) {
	t.Parallel()
	n, rp, _ := signInScene(t)
	u, _ := n.users.GetByEmail(t.Context(), "ada@example.com")
	e, err := n.mfa.Enrol(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := n.mfa.Confirm(t.Context(), u.ID, totpCode(t, e.Secret, 0))
	if err != nil {
		t.Fatal(err)
	}
	first := newBrowser(t, n.issuer)
	ar := rp.start()
	rp.finish(t, ar, first.decide(first.secondFactor(first.signIn(first.visit(ar.url), "ada@example.com", testPassword), codes[0]), "allow").callback(t))

	second := newBrowser(t, n.issuer)
	p := second.secondFactor(second.signIn(second.visit(rp.start().url), "ada@example.com", testPassword), codes[0])
	if !p.isSecondFactor() || !strings.Contains(p.body, "That code is not valid") {
		t.Fatalf("a used recovery code: %d:\n%s", p.status, p.body)
	}
}

var secretOnPage = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)

func TestRequireMFAWalksAUserWithoutAFactorThroughEnrolment(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	rp := n.app(t, func(c *client.Client) { c.RequireMFA = true })
	b := newBrowser(t, n.issuer)
	ar := rp.start()
	enrol := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
	m := secretOnPage.FindStringSubmatch(enrol.body)
	if !enrol.isEnrol() || m == nil || !strings.Contains(enrol.body, `href="otpauth://totp/`) || !strings.Contains(enrol.body, `src="data:image/png;base64,`) {
		t.Fatalf("want the enrolment page with a QR code, the secret and an otpauth link, got %d:\n%s", enrol.status, enrol.body)
	}
	// A wrong code keeps the same secret on the page.
	again := b.submit("/login/enrol", url.Values{"request": {enrol.handle(t)}, "code": {"000000"}})
	if got := secretOnPage.FindStringSubmatch(again.body); got == nil || got[1] != m[1] || !strings.Contains(again.body, "That code is not valid") {
		t.Fatalf("after a wrong code: %d:\n%s", again.status, again.body)
	}
	recovery := b.submit("/login/enrol", url.Values{"request": {enrol.handle(t)}, "code": {totpCode(t, m[1], 0)}})
	if n := strings.Count(recovery.body, "<li><code>"); n != 10 {
		t.Fatalf("want ten recovery codes shown once, got %d:\n%s", n, recovery.body)
	}
	_, id := rp.finish(t, ar, b.decide(b.visit(n.issuer+"/oauth2/authorize/resume?request="+url.QueryEscape(enrol.handle(t))), "allow").callback(t))
	if a := authOf(t, id); a.ACR != identity.ACRMFA || !slices.Contains(a.AMR, "otp") {
		t.Fatalf("after enrolling, the ID token says %+v", a)
	}
}

func TestResetMFAMakesTheUserEnrolAgain(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	n.enrol(t, u)
	code, stdout, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL}, "users", "reset-mfa", "ada@example.com")
	if code != 0 || !strings.Contains(stdout, "ada@example.com") {
		t.Fatalf("reset-mfa: exit %d, %q %q", code, stdout, stderr)
	}
	if on, _ := n.mfa.Enabled(t.Context(), u.ID); on {
		t.Fatal("the factor survived reset-mfa")
	}
	if code, _, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL}, "users", "reset-mfa", "ada@example.com"); code != 1 || !strings.Contains(stderr, "no second factor") {
		t.Fatalf("resetting twice: exit %d, %q", code, stderr)
	}
	rp := n.app(t, func(c *client.Client) { c.RequireMFA = true })
	b := newBrowser(t, n.issuer)
	if p := b.signIn(b.visit(rp.start().url), "ada@example.com", testPassword); !p.isEnrol() {
		t.Fatalf("after reset-mfa, a require_mfa app: want enrolment, got %d", p.status)
	}
}

func TestRevokingAnAppOnTheAccountPageRevokesItsTokens(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	tok, _ := b.signedIn(rp, "ada@example.com")
	account := b.visit(n.issuer + "/account")
	if account.status != http.StatusOK || !strings.Contains(account.body, "Notes") || !strings.Contains(account.body, "ada@example.com") {
		t.Fatalf("account page: %d:\n%s", account.status, account.body)
	}
	done := b.submit("/account/apps/revoke", url.Values{"client_id": {rp.client.ID}})
	if !strings.Contains(done.body, "no longer has access") {
		t.Fatalf("after revoking: %d:\n%s", done.status, done.body)
	}
	if _, err := rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("the app's refresh token still works after the user revoked it")
	}
	if _, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("the app's access token still works after the user revoked it")
	}
	if p := b.visit(rp.start().url); !p.isConsent() {
		t.Fatalf("signing in to the revoked app again: want the consent page, got %d", p.status)
	}
}

var sidOnPage = regexp.MustCompile(`name="sid" value="([^"]+)"`)

func TestAccountPageSignsOutAnotherBrowser(t *testing.T) {
	t.Parallel()
	n, rp, laptop := signInScene(t)
	phone := newBrowser(t, n.issuer)
	laptop.signedIn(rp, "ada@example.com")
	phone.signedIn(rp, "ada@example.com")
	account := laptop.visit(n.issuer + "/account")
	sids := sidOnPage.FindAllStringSubmatch(account.body, -1)
	if len(sids) != 2 || !strings.Contains(account.body, "(this browser)") {
		t.Fatalf("want two sign-ins listed, this one marked, got %d:\n%s", len(sids), account.body)
	}
	// The listing is newest first: the phone signed in last.
	laptop.submit("/account/sessions/revoke", url.Values{"sid": {sids[0][1]}})
	if q := phone.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "login_required" {
		t.Fatalf("the phone is still signed in: %v", q)
	}
	if q := laptop.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("code") == "" {
		t.Fatalf("the laptop was signed out too: %v", q)
	}
}

func TestAccountPageTurnsTwoStepVerificationOnAndOff(t *testing.T) {
	t.Parallel()
	_, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	enrol := b.submit("/account/mfa/enrol", nil)
	m := secretOnPage.FindStringSubmatch(enrol.body)
	if m == nil {
		t.Fatalf("turning on: want the enrolment page, got %d:\n%s", enrol.status, enrol.body)
	}
	if codes := b.submit("/account/mfa/confirm", url.Values{"code": {totpCode(t, m[1], 0)}}); strings.Count(codes.body, "<li><code>") != 10 {
		t.Fatalf("want ten recovery codes, got:\n%s", codes.body)
	}
	on := b.visit(b.issuer + "/account")
	if !strings.Contains(on.body, "10 recovery codes left") {
		t.Fatalf("account page after turning on:\n%s", on.body)
	}
	if p := b.submit("/account/mfa/disable", url.Values{"code": {"000000"}}); p.status != http.StatusBadRequest || !strings.Contains(p.body, "not valid") {
		t.Fatalf("turning off with a wrong code: %d", p.status)
	}
	off := b.submit("/account/mfa/disable", url.Values{"code": {totpCode(t, m[1], 1)}})
	if !strings.Contains(off.body, "Two-step verification is off") {
		t.Fatalf("turning off with a right code: %d:\n%s", off.status, off.body)
	}
}
