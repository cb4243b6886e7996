package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
)

// zitadelRP is app registered at n, as zitadel/oidc's relying party: its
// discovery, code exchange and ID token verification.
func zitadelRP(t *testing.T, n *node, app *relyingParty) rp.RelyingParty {
	t.Helper()
	z, err := rp.NewRelyingPartyOIDC(t.Context(), n.issuer, app.client.ID, app.oauth.ClientSecret, app.client.RedirectURIs[0],
		app.oauth.Scopes, rp.WithAuthStyle(oauth2.AuthStyleInHeader))
	if err != nil {
		t.Fatalf("zitadel/oidc cannot use Latchkey's discovery: %v", err)
	}
	return z
}

// zitadelSignIn signs the browser in to the app through zitadel's code
// flow with PKCE and returns its tokens.
func zitadelSignIn(t *testing.T, b *browser, z rp.RelyingParty, email string) *zoidc.Tokens[*zoidc.IDTokenClaims] {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	p := b.visit(rp.AuthURL("zitadel-state", z, rp.WithCodeChallenge(zoidc.NewSHACodeChallenge(verifier))))
	if p.isLogin() {
		p = b.signIn(p, email, testPassword)
	}
	if p.isConsent() {
		p = b.decide(p, "allow")
	}
	code := p.callback(t).Query().Get("code")
	tokens, err := rp.CodeExchange[*zoidc.IDTokenClaims](t.Context(), code, z, rp.WithCodeVerifier(verifier))
	if err != nil {
		t.Fatalf("zitadel code exchange: %v", err)
	}
	return tokens
}

// The server-side logout zitadel/oidc offers (rp.EndSession) ends the
// sign-in the ID token names, with no browser cookie, so that the user
// must sign in again; the same call once the sign-in is over is refused,
// and zitadel reports it.
func TestZitadelEndSessionEndsTheSignInItsIDTokenNames(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	app := n.app(t)
	z := zitadelRP(t, n, app)
	b := newBrowser(t, n.issuer)
	tokens := zitadelSignIn(t, b, z, "ada@example.com")
	if tokens.IDTokenClaims.SessionID == "" {
		t.Fatal("the ID token zitadel verified has no sid")
	}
	// The browser's session stands: prompt=none gives a code.
	if q := b.visit(app.start("prompt", "none").url).callback(t).Query(); q.Get("code") == "" {
		t.Fatalf("before logout, prompt=none: %v", q)
	}

	back, err := rp.EndSession(t.Context(), z, tokens.IDToken, app.client.PostLogoutRedirectURIs[0], "s-123", "", nil)
	if err != nil {
		t.Fatalf("rp.EndSession: %v", err)
	}
	if back == nil || back.String() != app.client.PostLogoutRedirectURIs[0]+"?state=s-123" {
		t.Fatalf("rp.EndSession sent back to %v, want the registered URI with the state", back)
	}
	if q := b.visit(app.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "login_required" {
		t.Fatalf("after the server's logout, prompt=none gives %v; want login_required", q)
	}
	if p := b.visit(app.start().url); !p.isLogin() {
		t.Fatalf("after the server's logout, signing in shows %d, want the login page", p.status)
	}

	// Nothing is left to end: said, not pretended.
	if _, err := rp.EndSession(t.Context(), z, tokens.IDToken, "", "", "", nil); err == nil ||
		!strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "already ended") {
		t.Fatalf("ending an ended sign-in again: %v, want zitadel to report a 400 saying it already ended", err)
	}
}

// signedHint is an ID token signed with n's current key, with claims
// chosen by the test: a hint Latchkey would accept as its own, except
// for what the claims leave out.
func signedHint(t *testing.T, n *node, claims map[string]any) string {
	t.Helper()
	box, err := seal.New([][]byte{[]byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	m := keys.NewManager(n.store, box, quietLogger(), audit.New(n.store, quietLogger()))
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	k, err := m.Current(jose.RS256)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.Signer, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAServerLogoutThatEndsNoSignInIsRefusedAndSaysWhy(t *testing.T) {
	t.Parallel()
	n, app, b := signInScene(t)
	tok, id := b.signedIn(app, "ada@example.com")
	hint, _ := tok.Extra("id_token").(string)
	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": n.issuer, "sub": id.Subject, "aud": app.client.ID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		edit(c)
		return c
	}
	parts := strings.Split(hint, ".")
	sig := []byte(parts[2])
	sig[5] ^= 0x01
	tampered := parts[0] + "." + parts[1] + "." + string(sig)

	for _, tt := range []struct {
		name, hint, why string
	}{
		{"no hint", "", "send the user's ID token"},
		{"a tampered hint", tampered, "not a valid ID token"},
		{"a hint without sid", signedHint(t, n, claims(func(map[string]any) {})), "has no sid"},
		{"a hint with an unknown sid", signedHint(t, n, claims(func(c map[string]any) { c["sid"] = "NOSUCHSIGNIN" })), "already ended, or is unknown"},
		{"another user's sign-in", signedHint(t, n, claims(func(c map[string]any) {
			c["sid"], c["sub"] = sidOf(t, hint), "00000000-0000-4000-8000-000000000000"
		})), "already ended, or is unknown"},
	} {
		form := url.Values{"client_id": {app.client.ID}}
		if tt.hint != "" {
			form.Set("id_token_hint", tt.hint)
		}
		status, body := endSessionCall(t, n.issuer, form)
		if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_request" || !strings.Contains(desc, tt.why) {
			t.Errorf("%s: %d %v, want 400 invalid_request saying %q", tt.name, status, body, tt.why)
		}
	}
	// A hint for an app that is not registered is refused too.
	status, _ := endSessionCall(t, n.issuer, url.Values{"id_token_hint": {signedHint(t, n, claims(func(c map[string]any) {
		c["sid"], c["aud"] = sidOf(t, hint), "no-such-app"
	}))}})
	if status != http.StatusBadRequest {
		t.Errorf("a hint for an unregistered app: %d, want 400", status)
	}
	// None of them ended the sign-in.
	if q := b.visit(app.start("prompt", "none").url).callback(t).Query(); q.Get("code") == "" {
		t.Fatalf("a refused server logout ended the sign-in: %v", q)
	}
	// A browser with no sign-in still gets the page it always got.
	req, _ := http.NewRequest(http.MethodGet, n.issuer+"/oauth2/logout?client_id="+app.client.ID, nil)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Accept", "text/html")
	if p := newBrowser(t, n.issuer).do(req); p.status != http.StatusOK || !strings.Contains(p.body, "signed out") {
		t.Fatalf("a browser without a sign-in: %d, want the signed-out page", p.status)
	}
}

// One ID token, sent at once from several addresses, ends its sign-in
// once: every other call is told nothing was ended, and the app is told
// once.
func TestAServerLogoutBurstEndsTheSignInOnce(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	rcv := newLogoutReceiver(t, n.issuer)
	app := n.app(t, rcv.register)
	rcv.forApp(app.client.ID)
	tok, _ := newBrowser(t, n.issuer).signedIn(app, "ada@example.com")
	hint, _ := tok.Extra("id_token").(string)

	const callers = 6
	statuses := make([]int, callers)
	burst(t, callers, attackers(3), func(i int, ip string) {
		resp, err := clientFrom(ip).PostForm(n.issuer+"/oauth2/logout", url.Values{"id_token_hint": {hint}})
		if err != nil {
			t.Error(err)
			return
		}
		_ = resp.Body.Close()
		statuses[i] = resp.StatusCode
	})
	ended := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ended++
		case http.StatusBadRequest:
		default:
			t.Errorf("a concurrent logout answered %d", s)
		}
	}
	if ended != 1 {
		t.Fatalf("statuses %v: want exactly one call to end the sign-in", statuses)
	}
	rcv.await(t, sidOf(t, hint))
	time.Sleep(300 * time.Millisecond)
	if got := rcv.tokens(); len(got) != 1 {
		t.Fatalf("the app was told %d times, want once", len(got))
	}
}
