package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

func TestSignInIssuesAVerifiableIDTokenAndUserinfo(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	rp := n.app(t)
	b := newBrowser(t, n.issuer)

	ar := rp.start()
	login := b.visit(ar.url)
	if !login.isLogin() || !strings.Contains(login.body, "Notes") {
		t.Fatalf("first visit: want the login page naming the app, got %d:\n%s", login.status, login.body)
	}
	consent := b.signIn(login, "ada@example.com", testPassword)
	for _, words := range []string{"Notes", "See your email address", "See your name", "ada@example.com"} {
		if !strings.Contains(consent.body, words) {
			t.Errorf("consent page lacks %q", words)
		}
	}
	back := b.decide(consent, "allow").callback(t)
	if back.Query().Get("iss") != n.issuer {
		t.Errorf("callback iss = %q, want %q (RFC 9207)", back.Query().Get("iss"), n.issuer)
	}
	tok, id := rp.finish(t, ar, back)

	var claims struct {
		Sub      string   `json:"sub"`
		Email    string   `json:"email"`
		AuthTime int64    `json:"auth_time"`
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		SID      string   `json:"sid"`
		AtHash   string   `json:"at_hash"`
		Name     string   `json:"name"`
	}
	if err := id.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != u.ID || claims.Email != "ada@example.com" || claims.Name != "Ada Lovelace" ||
		claims.AuthTime == 0 || !slices.Equal(claims.AMR, []string{"pwd"}) || claims.ACR == "" || claims.SID == "" || claims.AtHash == "" {
		t.Fatalf("ID token claims %+v", claims)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash does not match the access token: %v", err)
	}
	info, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var profile map[string]any
	if err := info.Claims(&profile); err != nil {
		t.Fatal(err)
	}
	if profile["sub"] != u.ID || profile["email"] != "ada@example.com" || profile["email_verified"] != true ||
		profile["name"] != "Ada Lovelace" || profile["locale"] != "en-GB" {
		t.Fatalf("userinfo = %v, want the profile and email claims", profile)
	}
	if _, ok := profile["phone_number"]; ok {
		t.Fatal("userinfo returned a claim of a scope that was not granted")
	}
}

func TestSecondSignInUsesTheSessionAndTheRememberedConsent(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	_, first := b.signedIn(rp, "ada@example.com")

	ar := rp.start()
	p := b.visit(ar.url)
	if p.location == nil {
		t.Fatalf("second sign-in showed a page (%d) instead of going straight back:\n%s", p.status, p.body)
	}
	_, second := rp.finish(t, ar, p.callback(t))
	if second.Subject != first.Subject {
		t.Fatal("the second sign-in is someone else")
	}

	// Another app's scopes were never allowed: the user is asked.
	more := n.app(t, func(c *client.Client) { c.Scope = "openid email phone" })
	p = b.visit(more.start().url)
	if !p.isConsent() || !strings.Contains(p.body, "phone number") {
		t.Fatalf("a new app's scopes did not ask for consent:\n%s", p.body)
	}
}

func TestPromptNoneWithoutASessionIsLoginRequired(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	rp := n.app(t)
	ar := rp.start("prompt", "none")
	back := newBrowser(t, n.issuer).visit(ar.url).callback(t)
	q := back.Query()
	if q.Get("error") != "login_required" || q.Get("iss") != n.issuer || q.Get("state") != ar.state {
		t.Fatalf("callback %s: want error login_required with iss and state", back)
	}
}

func TestPromptNoneWithoutConsentIsConsentRequired(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	other := n.app(t)
	q := b.visit(other.start("prompt", "none").url).callback(t).Query()
	if q.Get("error") != "consent_required" || q.Get("iss") != n.issuer {
		t.Fatalf("callback %v: want consent_required with iss", q)
	}
}

func authTime(t *testing.T, id *oidc.IDToken) int64 {
	t.Helper()
	var c struct {
		AuthTime int64 `json:"auth_time"`
	}
	if err := id.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c.AuthTime
}

func TestPromptLoginAndMaxAgeForceSigningInAgain(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		extra []string
		wait  time.Duration
	}{
		{"prompt=login", []string{"prompt", "login"}, 0},
		{"max_age=1 two seconds later", []string{"max_age", "1"}, 2 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, rp, b := signInScene(t)
			_, first := b.signedIn(rp, "ada@example.com")
			time.Sleep(tt.wait)
			waitForNextSecond()

			ar := rp.start(tt.extra...)
			p := b.visit(ar.url)
			if !p.isLogin() {
				t.Fatalf("want the login page again, got %d:\n%s", p.status, p.body)
			}
			_, again := rp.finish(t, ar, b.signIn(p, "ada@example.com", testPassword).callback(t))
			if authTime(t, again) <= authTime(t, first) {
				t.Fatalf("auth_time %d did not move forward from %d", authTime(t, again), authTime(t, first))
			}
		})
	}
}

func TestRequestsThatCannotRedirectShowAPage(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	rp := n.app(t)
	for name, change := range map[string]func(q url.Values){
		"unregistered redirect_uri": func(q url.Values) { q.Set("redirect_uri", "https://evil.example.com/callback") },
		"redirect_uri differing in case": func(q url.Values) {
			q.Set("redirect_uri", strings.Replace(rp.client.RedirectURIs[0], "callback", "Callback", 1))
		},
		"unknown client": func(q url.Values) { q.Set("client_id", "nobody") },
	} {
		u, _ := url.Parse(rp.start().url)
		q := u.Query()
		change(q)
		u.RawQuery = q.Encode()
		p := newBrowser(t, n.issuer).visit(u.String())
		if p.location != nil || p.status != http.StatusBadRequest || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: got %d, Location %v; want an HTML error page and no redirect", name, p.status, p.location)
		}
	}
}

func TestBadAuthorizationRequestsGoBackWithAnError(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	rp := n.app(t)
	public := n.app(t, func(c *client.Client) { c.TokenEndpointAuthMethod = client.AuthNone })
	for _, tt := range []struct {
		name   string
		rp     *relyingParty
		change func(q url.Values)
		want   string
	}{
		{"missing response_type", rp, func(q url.Values) { q.Del("response_type") }, "unsupported_response_type"},
		{"token response type", rp, func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"public client without PKCE", public, func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"plain PKCE", public, func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		// RFC 7636 §4.2: an S256 challenge is 43 base64url characters; no
		// verifier matches anything else, so the user would sign in for
		// nothing.
		{"code_challenge too short", public, func(q url.Values) { q.Set("code_challenge", "abc") }, "invalid_request"},
		{"code_challenge too long", public, func(q url.Values) { q.Set("code_challenge", strings.Repeat("a", 129)) }, "invalid_request"},
		{"code_challenge outside base64url", public, func(q url.Values) {
			q.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM=")
		}, "invalid_request"},
		{"scope the client may not ask for", rp, func(q url.Values) { q.Set("scope", "openid admin") }, "invalid_scope"},
		{"fragment response mode", rp, func(q url.Values) { q.Set("response_mode", "fragment") }, "unsupported_response_mode"},
		{"request object", rp, func(q url.Values) { q.Set("request", "eyJhbGciOiJub25lIn0.e30.") }, "request_not_supported"},
		{"unknown prompt", rp, func(q url.Values) { q.Set("prompt", "select_account") }, "invalid_request"},
	} {
		u, _ := url.Parse(tt.rp.start().url)
		q := u.Query()
		tt.change(q)
		u.RawQuery = q.Encode()
		p := newBrowser(t, n.issuer).visit(u.String())
		if p.location == nil {
			t.Errorf("%s: no redirect (%d)", tt.name, p.status)
			continue
		}
		got := p.location.Query()
		if got.Get("error") != tt.want || got.Get("iss") != n.issuer || got.Get("state") == "" {
			t.Errorf("%s: back with %v, want error %s with iss and state", tt.name, got, tt.want)
		}
	}
}

func TestUnknownParametersAreIgnoredAndPOSTWorks(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	ar := rp.start("x-tracking", "ignored", "ui_locales", "fr en", "login_hint", "ada@example.com")
	u, _ := url.Parse(ar.url)
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/authorize", strings.NewReader(u.RawQuery))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	login := b.do(req)
	if !login.isLogin() || !strings.Contains(login.body, `value="ada@example.com"`) {
		t.Fatalf("POST with unknown parameters and login_hint: want the login page with the email filled in, got %d:\n%s", login.status, login.body)
	}
	rp.finish(t, ar, b.decide(b.signIn(login, "ada@example.com", testPassword), "allow").callback(t))
}

func TestDenyGivesAccessDenied(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	ar := rp.start()
	q := b.decide(b.signIn(b.visit(ar.url), "ada@example.com", testPassword), "deny").callback(t).Query()
	if q.Get("error") != "access_denied" || q.Get("iss") != n.issuer || q.Get("state") != ar.state {
		t.Fatalf("after Deny: %v, want access_denied with iss and state", q)
	}
}

func TestUnknownEmailAndWrongPasswordGetTheSameAnswer(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	rp := n.app(t)
	answer := func(email, password string) page {
		b := newBrowser(t, n.issuer)
		p := b.signIn(b.visit(rp.start().url), email, password)
		// The page echoes the email typed, so that a typo can be fixed.
		p.body = strings.ReplaceAll(p.body, email, "EMAIL")
		p.body = requestField.ReplaceAllString(p.body, "HANDLE")
		return p
	}
	unknown := answer("nobody@example.com", testPassword)
	wrong := answer("ada@example.com", "not the password at all")
	if unknown.status != wrong.status || unknown.body != wrong.body {
		t.Fatalf("unknown email (%d) and wrong password (%d) answer differently:\n%s\n---\n%s", unknown.status, wrong.status, unknown.body, wrong.body)
	}
	if !strings.Contains(wrong.body, "Email or password is incorrect") || !wrong.isLogin() {
		t.Fatalf("a failed sign-in must show the login page again with one message:\n%s", wrong.body)
	}
}

func TestCrossSitePostsAreRefused(t *testing.T) {
	t.Parallel()
	_, rp, b := signInScene(t)
	login := b.visit(rp.start().url)
	handle := login.handle(t)
	for _, headers := range [][]string{
		{"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example.com"},
		{"Sec-Fetch-Site", "", "Origin", "https://evil.example.com"},
	} {
		p := b.submit("/login", url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {testPassword}}, headers...)
		if p.status != http.StatusForbidden {
			t.Errorf("cross-site login POST %v: %d, want 403", headers, p.status)
		}
	}
	consent := b.signIn(login, "ada@example.com", testPassword)
	p := b.submit("/consent", url.Values{"request": {consent.handle(t)}, "decision": {"allow"}},
		"Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example.com")
	if p.status != http.StatusForbidden {
		t.Errorf("cross-site consent POST: %d, want 403", p.status)
	}
}

func TestPagesCannotBeFramedAndRunNoScript(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	rp := n.app(t)
	p := newBrowser(t, n.issuer).visit(rp.start().url)
	csp := p.header.Get("Content-Security-Policy")
	for _, want := range []string{"frame-ancestors 'none'", "default-src 'none'", "form-action 'self' http://127.0.0.1:9"} {
		if !strings.Contains(csp, want) {
			t.Errorf("login page CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(p.body, "<script") {
		t.Error("the login page runs scripts")
	}
	for _, want := range []string{`autocomplete="username"`, `autocomplete="current-password"`, `<label for="email">`, `<label for="password">`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("login page lacks %s", want)
		}
	}
}

func TestPublicClientNeedsTheRightVerifier(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	rp := n.app(t, func(c *client.Client) { c.TokenEndpointAuthMethod = client.AuthNone })
	rp.oauth.ClientSecret = ""
	b := newBrowser(t, n.issuer)
	ar := rp.start()
	back := b.decide(b.signIn(b.visit(ar.url), "ada@example.com", testPassword), "allow").callback(t)
	_, err := rp.oauth.Exchange(t.Context(), back.Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("exchange with a wrong code_verifier: %v, want invalid_grant", err)
	}
}

func TestCodeIsSingleUseAndRevokesItsTokensWhenReused(t *testing.T) {
	t.Parallel()
	_, rp, b := signInScene(t)
	ar := rp.start()
	back := b.decide(b.signIn(b.visit(ar.url), "ada@example.com", testPassword), "allow").callback(t)
	code := back.Query().Get("code")

	var (
		mu     sync.Mutex
		tokens []*oauth2.Token
		wins   int
	)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-start
			tok, err := rp.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(ar.verifier))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
				tokens = append(tokens, tok)
				return
			}
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Errorf("a losing exchange failed with %v, want invalid_grant", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d of 20 concurrent exchanges of one code succeeded, want 1", wins)
	}
	// One more use: the code is known to be compromised, so what it issued
	// is revoked (RFC 6749 §4.1.2).
	if _, err := rp.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(ar.verifier)); err == nil {
		t.Fatal("a used code was accepted again")
	}
	if _, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tokens[0])); err == nil {
		t.Fatal("the access token from a reused code still works at userinfo")
	}
}

func TestUserinfoAcceptsTheTokenInHeaderOrBody(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	rp := n.app(t)
	tok, _ := newBrowser(t, n.issuer).signedIn(rp, "ada@example.com")
	endpoint := n.issuer + "/oauth2/userinfo"
	bearer := func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+tok.AccessToken) }
	for _, tt := range []struct {
		name   string
		method string
		body   string
		auth   func(*http.Request)
	}{
		{"GET with the header", http.MethodGet, "", bearer},
		{"POST with the header", http.MethodPost, "", bearer},
		{"POST with the body", http.MethodPost, url.Values{"access_token": {tok.AccessToken}}.Encode(), func(*http.Request) {}},
	} {
		req, _ := http.NewRequest(tt.method, endpoint, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		tt.auth(req)
		status, body := doJSON(t, req)
		if status != http.StatusOK || body["sub"] != u.ID || body["email"] != "ada@example.com" {
			t.Errorf("%s: %d %v", tt.name, status, body)
		}
	}
	for name, token := range map[string]string{"bad token": "lk_at_nope.nope", "query parameter": ""} {
		target := endpoint
		if token == "" {
			target += "?access_token=" + url.QueryEscape(tok.AccessToken)
		}
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		challenge := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(challenge, "Bearer") {
			t.Errorf("%s: %d %q, want 401 with a Bearer challenge", name, resp.StatusCode, challenge)
		}
		if token != "" && !strings.Contains(challenge, `error="invalid_token"`) {
			t.Errorf("%s: challenge %q lacks invalid_token", name, challenge)
		}
	}
}

func TestLogoutWithAHintEndsTheSessionAndGoesBack(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	tok, _ := b.signedIn(rp, "ada@example.com")
	hint, _ := tok.Extra("id_token").(string)

	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {rp.client.PostLogoutRedirectURIs[0]}, "state": {"bye-123456"}}
	p := b.visit(n.issuer + "/oauth2/logout?" + q.Encode())
	if p.location == nil || p.location.String() != rp.client.PostLogoutRedirectURIs[0]+"?state=bye-123456" {
		t.Fatalf("logout: %d to %v, want the registered URI with state", p.status, p.location)
	}
	if q := b.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "login_required" {
		t.Fatalf("after logout, prompt=none gives %v; want login_required (the session ended)", q)
	}
}

func TestLogoutWithoutAHintAsksFirst(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")

	confirm := b.visit(n.issuer + "/oauth2/logout?client_id=" + rp.client.ID)
	if confirm.status != http.StatusOK || !strings.Contains(confirm.body, `value="logout"`) {
		t.Fatalf("logout without a hint: want a confirmation page, got %d:\n%s", confirm.status, confirm.body)
	}
	if q := b.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("code") == "" {
		t.Fatalf("merely showing the confirmation signed the user out: %v", q)
	}
	if p := b.submit("/oauth2/logout", url.Values{"decision": {"logout"}}, "Sec-Fetch-Site", "cross-site", "Origin", "https://evil.example.com"); p.status != http.StatusForbidden {
		t.Fatalf("cross-site confirmation: %d, want 403", p.status)
	}
	done := b.submit("/oauth2/logout", url.Values{"decision": {"logout"}, "client_id": {rp.client.ID}})
	if done.status != http.StatusOK || !strings.Contains(done.body, "signed out") {
		t.Fatalf("confirmed logout: %d:\n%s", done.status, done.body)
	}
	if q := b.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "login_required" {
		t.Fatalf("after confirmed logout: %v, want login_required", q)
	}
	// An unregistered return address is never followed.
	p := b.visit(n.issuer + "/oauth2/logout?client_id=" + rp.client.ID + "&post_logout_redirect_uri=https://evil.example.com/")
	if p.location != nil || p.status != http.StatusBadRequest {
		t.Fatalf("unregistered post_logout_redirect_uri: %d to %v, want an error page", p.status, p.location)
	}
}

func TestDisablingOrResettingAUserSignsThemOutEverywhere(t *testing.T) {
	t.Parallel()
	for name, act := range map[string]func(n *node, id string) error{
		"disable": func(n *node, id string) error { return n.users.Disable(context.Background(), id) },
		"reset the password": func(n *node, id string) error {
			return n.users.SetPassword(context.Background(), id, "a brand new passphrase")
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t)
			u := n.user(t, "ada@example.com")
			rp := n.app(t)
			b := newBrowser(t, n.issuer)
			tok, _ := b.signedIn(rp, "ada@example.com")
			if err := act(n, u.ID); err != nil {
				t.Fatal(err)
			}
			if q := b.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "login_required" {
				t.Fatalf("the browser session still signs in: %v", q)
			}
			if _, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err == nil {
				t.Fatal("the access token still works at userinfo")
			}
			if _, err := rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
				t.Fatal("the refresh token still works")
			}
		})
	}
}

func doJSON(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body
}

func TestIDTokenHintMustNameTheSignedInUser(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	n.user(t, "grace@example.com")
	rp := n.app(t)
	ada, grace := newBrowser(t, n.issuer), newBrowser(t, n.issuer)
	adaTok, _ := ada.signedIn(rp, "ada@example.com")
	graceTok, _ := grace.signedIn(rp, "grace@example.com")
	adaHint, _ := adaTok.Extra("id_token").(string)
	graceHint, _ := graceTok.Extra("id_token").(string)

	if q := ada.visit(rp.start("prompt", "none", "id_token_hint", adaHint).url).callback(t).Query(); q.Get("code") == "" {
		t.Fatalf("a hint naming the signed-in user: %v, want a code", q)
	}
	if q := ada.visit(rp.start("prompt", "none", "id_token_hint", graceHint).url).callback(t).Query(); q.Get("error") != "login_required" {
		t.Fatalf("a hint naming someone else with prompt=none: %v, want login_required", q)
	}
	if p := ada.visit(rp.start("id_token_hint", graceHint).url); !p.isLogin() {
		t.Fatalf("a hint naming someone else: want the login page, got %d", p.status)
	}
	if q := ada.visit(rp.start("id_token_hint", "not.a.token").url).callback(t).Query(); q.Get("error") != "invalid_request" {
		t.Fatalf("a hint that is not our ID token: %v, want invalid_request", q)
	}
}

// The claims parameter must be as OpenID Connect Core §5.5 describes, and
// an essential acr in it is honoured; the claims it names are released only
// as the granted scopes allow (attack_privilege_test.go).
func TestClaimsParameterIsCheckedAndItsEssentialACRHonoured(t *testing.T) {
	t.Parallel()
	_, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	if q := b.visit(rp.start("claims", "{not json").url).callback(t).Query(); q.Get("error") != "invalid_request" {
		t.Fatalf("malformed claims parameter: %v, want invalid_request", q)
	}
	acr := `{"id_token":{"acr":{"essential":true,"values":["urn:example:acr:hardware-key"]}}}`
	if q := b.visit(rp.start("claims", acr).url).callback(t).Query(); q.Get("error") != "access_denied" {
		t.Fatalf("an essential acr that cannot be met: %v, want access_denied", q)
	}
	met := `{"id_token":{"acr":{"essential":true,"values":["` + identity.ACRPassword + `"]}}}`
	ar := rp.start("claims", met)
	_, id := rp.finish(t, ar, b.visit(ar.url).callback(t))
	if got := authOf(t, id).ACR; got != identity.ACRPassword {
		t.Fatalf("an essential acr the sign-in meets: acr %q, want %s", got, identity.ACRPassword)
	}
}

// updated_at is a number of seconds (OpenID Connect Core §5.1), written as
// an integer: 1796410335, never 1.796410335e+09, in the ID token at sign-in
// and at refresh (both made from the session stored with the grant) and at
// userinfo.
func TestUpdatedAtIsAnIntegerInIDTokensAndUserinfo(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	tok, _ := b.signedIn(rp, "ada@example.com")
	integer := regexp.MustCompile(`"updated_at":[0-9]+[,}]`)
	payload := func(tok *oauth2.Token) string {
		raw, _ := tok.Extra("id_token").(string)
		parts := strings.Split(raw, ".")
		if len(parts) != 3 {
			t.Fatalf("ID token %q", raw)
		}
		text, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		return string(text)
	}
	next := refreshed(t, rp, tok)
	for name, text := range map[string]string{"sign-in": payload(tok), "refresh": payload(next)} {
		if !integer.MatchString(text) {
			t.Errorf("the ID token of the %s writes updated_at other than as an integer: %s", name, text)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, n.issuer+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+next.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !integer.Match(body) {
		t.Errorf("userinfo writes updated_at other than as an integer: %d %s", resp.StatusCode, body)
	}
}

func TestClientCanAskForES256IDTokens(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	rp := n.app(t, func(c *client.Client) { c.IDTokenSignedResponseAlg = "ES256" })
	tok, _ := newBrowser(t, n.issuer).signedIn(rp, "ada@example.com")
	for _, tt := range []struct {
		name string
		tok  *oauth2.Token
	}{{"sign-in", tok}, {"refresh", refreshed(t, rp, tok)}} {
		raw, _ := tt.tok.Extra("id_token").(string)
		header, _, _ := strings.Cut(raw, ".")
		if got := decodeSegment(t, header)["alg"]; got != "ES256" {
			t.Errorf("%s: ID token alg %v, want ES256", tt.name, got)
		}
		if _, err := rp.verifier.Verify(t.Context(), raw); err != nil {
			t.Errorf("%s: go-oidc rejects the ES256 ID token: %v", tt.name, err)
		}
	}
}

func refreshed(t *testing.T, rp *relyingParty, tok *oauth2.Token) *oauth2.Token {
	t.Helper()
	next, err := rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func decodeSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
