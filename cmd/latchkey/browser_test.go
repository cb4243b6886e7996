package main

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// webApp is a small web application that signs its users in with
// Latchkey, as an app developer would write one: it starts the code flow
// with PKCE, state and nonce, verifies the ID token with go-oidc, reads
// userinfo, and signs out with RP-initiated logout.
type webApp struct {
	url string
	rp  *relyingParty

	mu      sync.Mutex
	pending map[string]authRequest
	idToken string
}

func newWebApp(t *testing.T, n *node, edit ...func(*client.Client)) *webApp {
	t.Helper()
	a := &webApp{pending: map[string]authRequest{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/start", a.start)
	mux.HandleFunc("/callback", a.callback)
	mux.HandleFunc("/logout", a.logout)
	mux.HandleFunc("/bye", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `<!doctype html><h1 id="bye">Signed out of Notes</h1>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.url = srv.URL
	a.rp = n.app(t, append([]func(*client.Client){func(c *client.Client) {
		c.RedirectURIs = []string{srv.URL + "/callback"}
		c.PostLogoutRedirectURIs = []string{srv.URL + "/bye"}
	}}, edit...)...)
	return a
}

// lastIDToken is the ID token of the latest sign-in.
func (a *webApp) lastIDToken() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.idToken
}

// start sends the browser to sign in; /start?acr_values=... asks for a
// level, as an app does when a resource server wants more (RFC 9470).
func (a *webApp) start(w http.ResponseWriter, r *http.Request) {
	var extra []string
	if acr := r.URL.Query().Get("acr_values"); acr != "" {
		extra = append(extra, "acr_values", acr)
	}
	ar := a.rp.start(extra...)
	a.mu.Lock()
	a.pending[ar.state] = ar
	a.mu.Unlock()
	http.Redirect(w, r, ar.url, http.StatusFound)
}

func (a *webApp) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	a.mu.Lock()
	ar, ok := a.pending[q.Get("state")]
	delete(a.pending, q.Get("state"))
	a.mu.Unlock()
	fail := func(format string, args ...any) {
		http.Error(w, fmt.Sprintf(format, args...), http.StatusBadRequest)
	}
	if !ok {
		fail("unknown state")
		return
	}
	tok, err := a.rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(ar.verifier))
	if err != nil {
		fail("exchange: %v", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := a.rp.verifier.Verify(ctx, raw)
	if err != nil || id.Nonce != ar.nonce {
		fail("ID token rejected: %v (nonce %q, want %q)", err, id.Nonce, ar.nonce)
		return
	}
	info, err := a.rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		fail("userinfo: %v", err)
		return
	}
	var profile struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	if err := info.Claims(&profile); err != nil || info.Subject != id.Subject {
		fail("userinfo claims: %v", err)
		return
	}
	a.mu.Lock()
	a.idToken = raw
	a.mu.Unlock()
	fmt.Fprintf(w, `<!doctype html><h1>Notes</h1><p id="who">%s &lt;%s&gt;</p><p id="verified">ID token verified</p>`,
		html.EscapeString(profile.Name), html.EscapeString(profile.Email))
}

func (a *webApp) logout(w http.ResponseWriter, r *http.Request) {
	hint := a.lastIDToken()
	// The end-session endpoint comes from discovery, as for any app.
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := a.rp.provider.Claims(&meta); err != nil || meta.EndSession == "" {
		http.Error(w, "no end_session_endpoint in discovery", http.StatusInternalServerError)
		return
	}
	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {a.url + "/bye"}, "state": {"signing-out"}}
	http.Redirect(w, r, meta.EndSession+"?"+q.Encode(), http.StatusFound)
}

// startSignIn is a user in the tab opening app and giving their email and
// password on Latchkey's login page.
func startSignIn(app *webApp, email string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
	)
}

// signInTo is startSignIn through the consent page, back to app signed in.
func signInTo(app *webApp, email string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		startSignIn(app, email),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
}

func TestBrowserSignsInWithConsentThenSingleSignOnThenSignsOut(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)

	err := chromedp.Do(tab,
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromiumtest.Screenshot(t, "login"),
		chromedp.EmulateViewport(390, 844),
		chromiumtest.Screenshot(t, "login-phone"),
		chromedp.EmulateViewport(1280, 900),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromiumtest.Screenshot(t, "consent"),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("first sign-in: %v", err)
	}
	who, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("who")))
	if err != nil {
		t.Fatal(err)
	}
	if who != "Ada Lovelace <ada@example.com>" {
		t.Fatalf("the app shows %q, want the name and email from userinfo", who)
	}

	// A second sign-in in the same browser goes straight through.
	err = chromedp.Do(tab,
		chromedp.Navigate(app.url+"/start"),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	location, _ := chromedp.Run(tab, chromedp.Location())
	if err != nil || !strings.HasPrefix(location, app.url+"/callback") {
		t.Fatalf("single sign-on: ended at %q (%v), want the app's callback without a login page", location, err)
	}

	// Signing out ends the session: the next sign-in asks for the password.
	err = chromedp.Do(tab,
		chromedp.Navigate(app.url+"/logout"),
		chromedp.WaitVisible(chromedp.ID("bye")),
	)
	if err != nil {
		t.Fatalf("sign-out: %v", err)
	}
	location, _ = chromedp.Run(tab, chromedp.Location())
	if err := chromedp.Do(tab, chromedp.Navigate(app.url+"/start"), chromedp.WaitVisible(chromedp.ID("password"))); err != nil {
		t.Fatalf("sign-in after sign-out: %v", err)
	}
	if !strings.Contains(location, "state=signing-out") {
		t.Fatalf("after sign-out the browser is at %q, want the app's page with its state", location)
	}
}

func TestBrowserEnrolsASecondFactorForAnAppThatRequiresIt(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n, func(c *client.Client) { c.RequireMFA = true })
	tab := chromiumtest.Tab(t)

	err := chromedp.Do(tab,
		startSignIn(app, "ada@example.com"),
		chromedp.WaitVisible(chromedp.ID("secret")),
		chromiumtest.Screenshot(t, "enrol"),
	)
	if err != nil {
		t.Fatalf("password, then enrolment: %v", err)
	}
	secret, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("secret")))
	if err != nil {
		t.Fatal(err)
	}
	// The QR code is an image the server drew, not a link to a third-party
	// service that would learn the secret.
	qrLoaded, err := chromedp.Run(tab, chromedp.Evaluate[bool](`(() => {
		const i = document.querySelector("p.qr img");
		return i.complete && i.naturalWidth > 0 && i.src.startsWith("data:image/png;base64,");
	})()`))
	if err != nil || !qrLoaded {
		t.Error("the enrolment page has no locally drawn QR code")
	}
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, strings.TrimSpace(secret), 0)),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")),
		chromiumtest.Screenshot(t, "recovery-codes"),
		chromedp.Click(chromedp.CSS("a.button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("verified")),
	)
	if err != nil {
		t.Fatalf("confirming the factor, then consent: %v", err)
	}

	id, err := app.rp.verifier.Verify(tab, app.lastIDToken())
	if err != nil {
		t.Fatal(err)
	}
	got := authOf(t, id)
	if !slices.Contains(got.AMR, "pwd") || !slices.Contains(got.AMR, "otp") {
		t.Errorf("amr = %v, want pwd and otp", got.AMR)
	}
	if got.ACR != identity.ACRMFA {
		t.Errorf("acr = %q, want %q", got.ACR, identity.ACRMFA)
	}
}
