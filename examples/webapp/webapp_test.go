package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/examples/internal/latchkeytest"
	"github.com/latchkey/latchkey/examples/resourceserver/notes"
	"github.com/latchkey/latchkey/internal/chromiumtest"
)

func TestMain(m *testing.M) { latchkeytest.Main(m, chromiumtest.Stop) }

const password = "correct horse battery staple"

// scene is where the tests start: a live Latchkey with the user Ada, the
// Notes API, and the app, registered as README.md says and served on
// loopback.
type scene struct {
	srv *latchkeytest.Server
	ada *latchkeytest.User
	app *App
	// url is the app's base URL.
	url string
}

func newScene(t *testing.T) *scene {
	t.Helper()
	srv := latchkeytest.Start(t)
	api := srv.NotesAPI(t, 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	c := srv.CreateClient(t, "--name", "Notes", "--grant-type", "authorization_code",
		"--redirect-uri", base+"/callback", "--post-logout-redirect-uri", base+"/",
		"--scope", "openid profile email "+notes.ScopeRead, "--audience", notes.DefaultAudience)
	app, err := New(t.Context(), Config{Issuer: srv.Issuer, ClientID: c.ID, ClientSecret: c.Secret, BaseURL: base, APIURL: api})
	if err != nil {
		t.Fatal(err)
	}
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: app.Handler()}}
	hs.Start()
	t.Cleanup(hs.Close)
	return &scene{srv: srv, app: app, url: base,
		ada: srv.CreateUser(t, "ada@example.com", password, "--name", "Ada Lovelace")}
}

// Ada signs in with her password and sees who the app thinks she is. The
// vault's API wants a second factor: the app sends her back to Latchkey,
// where she turns one on, and the retried call opens the vault. Signing
// out ends her session at Latchkey too.
func TestABrowserSignsInStepsUpToASecondFactorAndSignsOut(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	tab := chromiumtest.Tab(t)
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("reading #%s: %v", id, err)
		}
		return strings.TrimSpace(v)
	}
	location := func() string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	err := chromedp.Do(tab,
		chromedp.Navigate(s.url+"/"),
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("email"), s.ada.Email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromiumtest.Screenshot(t, "consent"),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("claims")),
		chromiumtest.Screenshot(t, "signed-in"),
	)
	if err != nil {
		t.Fatalf("signing in: %v", err)
	}
	if got := location(); got != s.url+"/" {
		t.Errorf("after sign-in the browser is at %s, want the start page without the code", got)
	}
	if got := text("who"); got != "Ada Lovelace <ada@example.com>" {
		t.Errorf("the app shows %q, want Ada's name and email", got)
	}
	if got := text("claim-sub"); got != `"`+s.ada.Sub+`"` {
		t.Errorf("sub %s, want Ada's %s", got, s.ada.Sub)
	}
	if got := text("claim-acr"); got != `"urn:latchkey:acr:pwd"` {
		t.Errorf("acr %s after a password sign-in", got)
	}

	err = chromedp.Do(tab,
		chromedp.Click(chromedp.ID("vault")),
		chromedp.WaitVisible(chromedp.ID("secret")),
		chromiumtest.Screenshot(t, "step-up-enrol"),
	)
	if err != nil {
		t.Fatalf("the vault did not lead to turning on a second factor: %v", err)
	}
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("code"), latchkeytest.TOTP(t, text("secret"))),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")),
		chromedp.Click(chromedp.CSS("a.button.primary")),
		chromedp.WaitVisible(chromedp.ID("secrets")),
		chromiumtest.Screenshot(t, "vault"),
	)
	if err != nil {
		t.Fatalf("stepping up: %v", err)
	}
	if got := location(); got != s.url+"/vault" {
		t.Errorf("after stepping up the browser is at %s, want the vault", got)
	}
	if got := text("acr"); got != notes.ACRMFA {
		t.Errorf("the API opened the vault for acr %q, want %q", got, notes.ACRMFA)
	}

	err = chromedp.Do(tab,
		chromedp.Click(chromedp.ID("sign-out")),
		chromedp.WaitVisible(chromedp.ID("signed-out")),
	)
	if err != nil {
		t.Fatalf("signing out: %v", err)
	}
	if got := location(); got != s.url+"/" {
		t.Errorf("after sign-out the browser is at %s, want the app's start page", got)
	}
	// Latchkey's session ended too: signing in starts from the password.
	err = chromedp.Do(tab,
		chromedp.Click(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	if err != nil {
		t.Fatalf("signing in again after signing out: %v", err)
	}
}

// browser is an app-side cookie jar over plain HTTP that stops at every
// redirect, to look at each answer.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, hc *http.Client, u string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// The session cookie is out of scripts' reach and other sites' forms, and
// signing in replaces it, so that an ID planted before sign-in is useless.
func TestSignInReplacesAnHttpOnlyLaxSessionCookie(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	hc := browser(t)

	start := get(t, hc, s.url+"/login")
	before := sessionCookie(t, start)
	if !before.HttpOnly || before.SameSite != http.SameSiteLaxMode || before.Path != "/" {
		t.Fatalf("the session cookie is %s, want HttpOnly, SameSite=Lax, Path=/", before)
	}
	back := s.srv.Agent(t, s.ada).Authorize(t, start.Header.Get("Location"))
	done := get(t, hc, back.String())
	if done.StatusCode != http.StatusSeeOther || done.Header.Get("Location") != "/" {
		t.Fatalf("the callback answered %d to %q, want 303 to /", done.StatusCode, done.Header.Get("Location"))
	}
	after := sessionCookie(t, done)
	if after.Value == before.Value {
		t.Fatal("signing in kept the session ID from before sign-in")
	}

	// The old ID is signed out; the new one is Ada.
	for _, c := range []struct {
		id   string
		want string
	}{{before.Value, `id="signed-out"`}, {after.Value, s.ada.Sub}} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.url+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: after.Name, Value: c.id})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), c.want) {
			t.Errorf("the start page for session %s… does not show %s", c.id[:4], c.want)
		}
	}
}

// Signing out revokes the app's access token at Latchkey, so that it dies
// with the session rather than living on until it expires.
func TestSigningOutRevokesTheAccessToken(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	hc := browser(t)
	back := s.srv.Agent(t, s.ada).Authorize(t, get(t, hc, s.url+"/login").Header.Get("Location"))
	get(t, hc, back.String())
	var token string
	s.app.sessions.mu.Lock()
	for _, sess := range s.app.sessions.byID {
		if sess.user != nil {
			token = sess.user.token.AccessToken
		}
	}
	s.app.sessions.mu.Unlock()
	introspector := s.srv.CreateClient(t, "--name", "auditor", "--grant-type", "client_credentials", "--introspect-any-token")
	if !active(t, s.srv, introspector, token) {
		t.Fatal("the access token is not active after sign-in")
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.url+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	end, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(end.String(), s.srv.Issuer+"/") ||
		end.Query().Get("id_token_hint") == "" || end.Query().Get("post_logout_redirect_uri") != s.url+"/" {
		t.Fatalf("sign-out answered %d to %q, want 303 to Latchkey's end_session_endpoint with the hint and the app's URI", resp.StatusCode, end)
	}
	if active(t, s.srv, introspector, token) {
		t.Fatal("the access token is still active after sign-out")
	}
}

// active asks Latchkey, as client c, whether token is active.
func active(t *testing.T, srv *latchkeytest.Server, c latchkeytest.Client, token string) bool {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.Issuer+"/oauth2/introspect",
		strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		t.Fatal(err)
	}
	return answer.Active
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "notes_session" {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", resp.Header.Values("Set-Cookie"))
	return nil
}

// The callback takes only answers to sign-ins this browser started, from
// this issuer: everything else is an attack (login CSRF, code injection,
// mix-up), refused before any code is exchanged.
func TestTheCallbackRefusesAnswersItDidNotAskFor(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	hc := browser(t)
	auth, err := url.Parse(get(t, hc, s.url+"/login").Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	state := auth.Query().Get("state")
	if q := auth.Query(); q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || state == "" {
		t.Fatalf("the authorization request %s lacks PKCE (S256), nonce or state", auth)
	}
	callback := func(state, iss string) string {
		return s.url + "/callback?" + url.Values{"code": {"a-code"}, "state": {state}, "iss": {iss}}.Encode()
	}

	tests := []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"an answer from another issuer", hc, callback(state, "https://evil.example")},
		{"an answer without iss", hc, s.url + "/callback?" + url.Values{"code": {"a-code"}, "state": {state}}.Encode()},
		{"a state this browser never sent", hc, callback("made-up", s.srv.Issuer)},
		{"another browser's state", browser(t), callback(state, s.srv.Issuer)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp := get(t, tt.client, tt.url); resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("answered %d, want 400", resp.StatusCode)
			}
		})
	}
}

func TestBearerChallengesAreReadAsRFC9470Says(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header string
		want   *stepUp
	}{
		{`Bearer error="insufficient_user_authentication", error_description="A stronger sign-in is required", acr_values="urn:latchkey:acr:mfa", max_age="600"`,
			&stepUp{acrValues: []string{"urn:latchkey:acr:mfa"}, maxAge: 600}},
		{`Bearer realm="notes",error="insufficient_user_authentication",max_age=5`,
			&stepUp{maxAge: 5}},
		{`DPoP algs="ES256", bearer error="insufficient_user_authentication", acr_values="a b"`,
			&stepUp{acrValues: []string{"a", "b"}, maxAge: -1}},
		{`Bearer error="insufficient_user_authentication", error_description="say \"please\"", acr_values="x"`,
			&stepUp{acrValues: []string{"x"}, maxAge: -1}},
		{`Bearer realm="notes", error="invalid_token"`, nil},
		{`Basic realm="x", error="insufficient_user_authentication"`, nil},
		{`Bearer error="insufficient_user_authentication`, nil}, // no closing quote
		{``, nil},
	}
	for _, tt := range tests {
		got, ok := stepUpFrom(bearerParams(tt.header))
		switch {
		case tt.want == nil && ok:
			t.Errorf("%s: read as a step-up %+v", tt.header, got)
		case tt.want != nil && (!ok || strings.Join(got.acrValues, " ") != strings.Join(tt.want.acrValues, " ") || got.maxAge != tt.want.maxAge):
			t.Errorf("%s: got %+v (%v), want %+v", tt.header, got, ok, *tt.want)
		}
	}
}
