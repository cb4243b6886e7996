package signin_test

import (
	"bytes"
	"encoding/gob"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/signin"
)

func TestAFirstSignInTakesThePasswordThenConsentThenGoesStraightBack(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	b := sc.browser(t)

	login := b.toPage(b.get(sc.authorizeURL()))
	if !strings.Contains(login.body, `autocomplete="current-password"`) || !strings.Contains(login.body, "Notes") {
		t.Fatalf("want the login page naming the app, got %d:\n%s", login.status, login.body)
	}
	handle := login.handle(t)
	consent := b.toPage(b.post(signin.LoginPath, url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {password}}))
	if !strings.Contains(consent.body, `value="allow"`) || consent.handle(t) != handle {
		t.Fatalf("after the password: want the consent page for the same request, got %d:\n%s", consent.status, consent.body)
	}
	// The answer to the consent form is the answer to the app: no further
	// pass through the authorization endpoint.
	q := sc.backToApp(t, b.post(signin.ConsentPath, url.Values{"request": {handle}, "decision": {"allow"}}))
	if q.Get("code") == "" || q.Get("state") != "state-0f-the-app" || q.Get("iss") != sc.issuer {
		t.Fatalf("back at the app with %v: want a code, the state and iss", q)
	}
	// The request was answered: its handle is spent.
	if again := b.get(sc.issuer + signin.LoginPath + "?request=" + url.QueryEscape(handle)); again.status != http.StatusBadRequest {
		t.Fatalf("the answered request's page: %d, want it gone", again.status)
	}
	// Signed in and consented, the next request goes straight back.
	if q := sc.backToApp(t, b.get(sc.authorizeURL())); q.Get("code") == "" {
		t.Fatalf("second request: %v", q)
	}
}

func TestAUserWithASecondFactorGivesItBeforeTheyAreSignedIn(t *testing.T) {
	t.Parallel()
	sc := newScene(t, func(c *client.Client) { c.SkipConsent = true })
	secret := sc.enrol(t)
	b := sc.browser(t)
	handle := b.toPage(b.get(sc.authorizeURL())).handle(t)
	code := b.toPage(b.post(signin.LoginPath, url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {password}}))
	if !strings.Contains(code.body, `name="recovery"`) {
		t.Fatalf("after the password: want the code page, got %d:\n%s", code.status, code.body)
	}
	// The password alone is not a sign-in.
	if q := sc.backToApp(t, b.get(sc.authorizeURL("prompt", "none"))); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none between password and code: %v, want login_required", q)
	}
	q := sc.backToApp(t, b.post(signin.SecondFactorPath, url.Values{"request": {handle}, "code": {totpCode(t, secret, 1)}}))
	if q.Get("code") == "" {
		t.Fatalf("after the code: %v, want a code for the app", q)
	}
}

func TestAnAppThatRequiresMFAWalksAUserWithoutOneThroughEnrolment(t *testing.T) {
	t.Parallel()
	sc := newScene(t, func(c *client.Client) { c.RequireMFA, c.SkipConsent = true, true })
	b := sc.browser(t)
	handle := b.toPage(b.get(sc.authorizeURL())).handle(t)
	enrol := b.toPage(b.post(signin.LoginPath, url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {password}}))
	m := secretOnPage.FindStringSubmatch(enrol.body)
	if m == nil {
		t.Fatalf("want the enrolment page, got %d:\n%s", enrol.status, enrol.body)
	}
	codes := b.post(signin.EnrolPath, url.Values{"request": {handle}, "code": {totpCode(t, m[1], 0)}})
	if strings.Count(codes.body, "<li><code>") != 10 {
		t.Fatalf("want ten recovery codes, got %d:\n%s", codes.status, codes.body)
	}
	cont := continueLink.FindStringSubmatch(codes.body)
	if cont == nil {
		t.Fatal("the recovery codes page has no way on")
	}
	if q := sc.backToApp(t, b.get(sc.issuer+strings.ReplaceAll(cont[1], "&amp;", "&"))); q.Get("code") == "" {
		t.Fatalf("continuing after enrolment: %v", q)
	}
}

func TestPromptNoneGetsTheErrorOfTheStepItWouldNeed(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	b := sc.browser(t)
	if q := sc.backToApp(t, b.get(sc.authorizeURL("prompt", "none"))); q.Get("error") != "login_required" || q.Get("iss") != sc.issuer {
		t.Fatalf("nobody signed in: %v, want login_required with iss", q)
	}
	handle := b.toPage(b.get(sc.authorizeURL())).handle(t)
	b.post(signin.LoginPath, url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {password}})
	if q := sc.backToApp(t, b.get(sc.authorizeURL("prompt", "none"))); q.Get("error") != "consent_required" {
		t.Fatalf("signed in, never consented: %v, want consent_required", q)
	}
	sc.enrol(t)
	if q := sc.backToApp(t, b.get(sc.authorizeURL("prompt", "none", "acr_values", "urn:latchkey:acr:mfa"))); q.Get("error") != "interaction_required" {
		t.Fatalf("second factor wanted: %v, want interaction_required", q)
	}
}

func TestARefusalOnTheConsentPageIsAccessDenied(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	b := sc.browser(t)
	handle := b.toPage(b.get(sc.authorizeURL())).handle(t)
	b.post(signin.LoginPath, url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {password}})
	if q := sc.backToApp(t, b.post(signin.ConsentPath, url.Values{"request": {handle}, "decision": {"deny"}})); q.Get("error") != "access_denied" {
		t.Fatalf("after Deny: %v, want access_denied", q)
	}
}

func TestAParkedRequestMeansNothingInAnotherBrowser(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	victim, attacker := sc.browser(t), sc.browser(t)
	handle := victim.toPage(victim.get(sc.authorizeURL())).handle(t)
	a := attacker.post(signin.LoginPath, url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {password}})
	if a.status != http.StatusBadRequest || a.location != nil {
		t.Fatalf("another browser's handle: %d to %v, want the start-again page", a.status, a.location)
	}
}

func TestARequestThatCannotGoBackToTheAppShowsAPage(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	b := sc.browser(t)
	for name, u := range map[string]string{
		"unknown client":          strings.Replace(sc.authorizeURL(), "client_id="+sc.app.ID, "client_id=nobody", 1),
		"unregistered redirect":   sc.authorizeURL("redirect_uri", "https://evil.example.com/callback"),
		"redirect in other cases": sc.authorizeURL("redirect_uri", strings.ToUpper(sc.app.RedirectURIs[0])),
	} {
		if a := b.get(u); a.location != nil || a.status != http.StatusBadRequest {
			t.Errorf("%s: %d to %v; want a page and no redirect", name, a.status, a.location)
		}
	}
}

func TestIDTokenHintForAnotherUserAsksToSignIn(t *testing.T) {
	t.Parallel()
	sc := newScene(t, func(c *client.Client) { c.SkipConsent = true })
	b := sc.browser(t)
	handle := b.toPage(b.get(sc.authorizeURL())).handle(t)
	b.post(signin.LoginPath, url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {password}})
	// A hint that is not an ID token of this server is the app's mistake.
	if q := sc.backToApp(t, b.get(sc.authorizeURL("id_token_hint", "not.a.token"))); q.Get("error") != "invalid_request" {
		t.Fatalf("a forged hint: %v, want invalid_request", q)
	}
}

func TestSessionValuesKeepTheNamesEarlierReleasesStored(t *testing.T) {
	// scs stores session values with gob, which writes each value's
	// registered type name: sessions stored before the sign-in moved
	// packages must still load.
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(struct{ V any }{signin.Auth{UserID: "x"}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "github.com/latchkey/latchkey/pkg/session.Auth") {
		t.Fatalf("an Auth is stored under another name than earlier releases used:\n%q", buf.String())
	}
}
