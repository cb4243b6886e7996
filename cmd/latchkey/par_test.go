package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/internal/openidclient"
	"github.com/latchkey/latchkey/pkg/client"
)

// This file is pushed authorization requests (RFC 9126): openid-client
// pushing and signing in through Chromium, and the request_uri held to one
// use, a short life and its own client.

// callbackCatcher is an app's redirect URI that only remembers where the
// browser came back to.
type callbackCatcher struct {
	url  string
	mu   sync.Mutex
	last string
}

func newCallbackCatcher(t *testing.T) *callbackCatcher {
	c := &callbackCatcher{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/callback" {
			http.NotFound(w, r) // the browser's /favicon.ico
			return
		}
		c.mu.Lock()
		c.last = "http://" + r.Host + r.URL.String()
		c.mu.Unlock()
		fmt.Fprint(w, `<!doctype html><h1 id="back">Back at the app</h1>`)
	}))
	t.Cleanup(srv.Close)
	c.url = srv.URL + "/callback"
	return c
}

func (c *callbackCatcher) callback() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// parInput is what par.mjs needs of the app.
func parInput(n *node, rp *relyingParty, redirect string) map[string]any {
	return map[string]any{"issuer": n.issuer, "client_id": rp.client.ID, "client_secret": rp.oauth.ClientSecret,
		"redirect_uri": redirect, "scope": "openid profile email"}
}

func TestOpenIDClientPushesItsRequestAndSignsInThroughChromium(t *testing.T) {
	t.Parallel()
	openidclient.Need(t)
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	app := newCallbackCatcher(t)
	// The app must push: a request that went through the browser whole
	// would be refused, so the sign-in below is the pushed one.
	rp := n.app(t, func(c *client.Client) {
		c.RedirectURIs = []string{app.url}
		c.RequirePushedAuthorizationRequests = true
	})

	var meta struct {
		PAR     string `json:"pushed_authorization_request_endpoint"`
		Require bool   `json:"require_pushed_authorization_requests"`
	}
	openidclient.Run(t, "discover.mjs", map[string]any{"issuer": n.issuer}, &meta)
	if meta.PAR != n.issuer+"/oauth2/par" || meta.Require {
		t.Fatalf("discovery: %+v, want the PAR endpoint, not required server-wide", meta)
	}

	var started struct {
		URL          string `json:"url"`
		State        string `json:"state"`
		Nonce        string `json:"nonce"`
		CodeVerifier string `json:"code_verifier"`
	}
	in := parInput(n, rp, app.url)
	in["phase"] = "start"
	openidclient.Run(t, "par.mjs", in, &started)
	front, err := url.Parse(started.URL)
	if err != nil {
		t.Fatal(err)
	}
	if q := front.Query(); q.Get("request_uri") == "" || q.Has("redirect_uri") || q.Has("code_challenge") || q.Has("state") {
		t.Fatalf("openid-client sends the browser to %s; want client_id and request_uri only", started.URL)
	}

	tab := chromiumtest.Tab(t)
	err = chromedp.Do(tab,
		chromedp.Navigate(started.URL),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("back")),
	)
	if err != nil {
		t.Fatalf("sign-in with the pushed request: %v", err)
	}

	var finished struct {
		Claims map[string]any `json:"claims"`
	}
	in = parInput(n, rp, app.url)
	in["phase"], in["callback"], in["state"], in["nonce"], in["code_verifier"] =
		"finish", app.callback(), started.State, started.Nonce, started.CodeVerifier
	openidclient.Run(t, "par.mjs", in, &finished)
	if finished.Claims["sub"] != u.ID || finished.Claims["email"] != "ada@example.com" {
		t.Fatalf("ID token claims %v, want Ada's", finished.Claims)
	}

	// The request_uri was spent by the sign-in: the browser cannot use it
	// again, and is told so on a page rather than sent anywhere.
	again := newBrowser(t, n.issuer).visit(started.URL)
	if again.status != http.StatusBadRequest || !strings.Contains(again.body, "invalid_request_uri") {
		t.Fatalf("the spent request_uri again: %d %s", again.status, again.body)
	}
}

// push pushes an authorization request for rp, returning the status and
// the answer.
func (n *node) push(t *testing.T, rp *relyingParty, extra ...string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"response_type": {"code"}, "client_id": {rp.client.ID}, "redirect_uri": {rp.client.RedirectURIs[0]},
		"scope": {"openid"}, "state": {"st-" + t.Name()}, "nonce": {"n-0123456789"},
		"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	status, _, body := n.formCall(t, "/oauth2/par", rp.client.ID, rp.oauth.ClientSecret, form)
	return status, body
}

// pushed pushes a request for rp and returns its request_uri.
func (n *node) pushed(t *testing.T, rp *relyingParty) string {
	t.Helper()
	status, body := n.push(t, rp)
	uri, _ := body["request_uri"].(string)
	if status != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] == nil {
		t.Fatalf("push: %d %v; want 201 with a request_uri and expires_in (RFC 9126 §2.2)", status, body)
	}
	return uri
}

// redeem sends a fresh browser from ip to the authorization endpoint with
// a request_uri, and says where it ended: "login" for the login page (the
// request was taken), otherwise the status and body of the answer. It may
// run outside the test's goroutine.
func (n *node) redeem(ip, clientID, requestURI string) (string, error) {
	hc := clientFrom(ip)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	q := url.Values{"client_id": {clientID}, "request_uri": {requestURI}}
	resp, err := hc.Get(n.issuer + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		k, err := resp.Body.Read(buf)
		b.Write(buf[:k])
		if err != nil {
			break
		}
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && strings.Contains(loc, "/login") {
		return "login", nil
	}
	return fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Location"), b.String()), nil
}

func TestPushedRequestURIIsRedeemedOnceUnderAParallelBurst(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	rp := n.app(t)
	uri := n.pushed(t, rp)

	var (
		mu       sync.Mutex
		taken    int
		refusals []string
	)
	burst(t, 16, attackers(4), func(_ int, ip string) {
		got, err := n.redeem(ip, rp.client.ID, uri)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if got == "login" {
			taken++
		} else {
			refusals = append(refusals, got)
		}
	})
	if taken != 1 || len(refusals) != 15 {
		t.Fatalf("16 browsers at once with one request_uri: %d taken, %d refused; want exactly one taken", taken, len(refusals))
	}
	for _, r := range refusals {
		if !strings.HasPrefix(r, "400 ") || !strings.Contains(r, "invalid_request_uri") {
			t.Fatalf("a refused redemption: %s; want a 400 page naming invalid_request_uri, and no redirect", r)
		}
	}
	if rows := n.rows(t, "oauth_pushed_requests"); rows != 0 {
		t.Fatalf("%d pushed requests left after the one was used", rows)
	}
}

func TestPushedRequestURIIsRefusedWhenExpiredOrPresentedByAnotherClient(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_PAR_LIFESPAN", "1s")
	rp, other := n.app(t), n.app(t)

	// Stored hashed: the database holds nothing that redeems it.
	uri := n.pushed(t, rp)
	var stored string
	n.query(t, &stored, `SELECT signature || params::text FROM oauth_pushed_requests`)
	if strings.Contains(stored, strings.TrimPrefix(uri, "urn:ietf:params:oauth:request_uri:")) || strings.Contains(stored, rp.oauth.ClientSecret) {
		t.Fatalf("the stored pushed request holds the request_uri or the client's secret: %s", stored)
	}

	// Another client cannot use it, and trying does not spend it.
	if got, err := n.redeem("127.0.0.2", other.client.ID, uri); err != nil || !strings.HasPrefix(got, "400 ") || !strings.Contains(got, "invalid_request_uri") {
		t.Fatalf("another client's request_uri: %s %v; want a 400 page, no redirect", got, err)
	}
	if got, err := n.redeem("127.0.0.2", rp.client.ID, uri); err != nil || got != "login" {
		t.Fatalf("its own client after another tried it: %s %v; want the login page", got, err)
	}

	expiring := n.pushed(t, rp)
	time.Sleep(1500 * time.Millisecond)
	if got, err := n.redeem("127.0.0.2", rp.client.ID, expiring); err != nil || !strings.HasPrefix(got, "400 ") || !strings.Contains(got, "invalid_request_uri") {
		t.Fatalf("an expired request_uri: %s %v; want refused", got, err)
	}
}

func TestPushNeedsTheClientAuthenticatedAndStoresNothingOtherwise(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	rp := n.app(t)
	form := url.Values{"response_type": {"code"}, "client_id": {rp.client.ID}, "redirect_uri": {rp.client.RedirectURIs[0]},
		"scope": {"openid"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"state-0123456789"}}
	for _, secret := range []string{"", "wrong"} {
		req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/par", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if secret != "" {
			req.SetBasicAuth(rp.client.ID, secret)
		}
		status, body := doJSON(t, req)
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("push with secret %q: %d %v; want 401 invalid_client", secret, status, body)
		}
	}
	// A request the authorization endpoint would refuse is refused here,
	// before anything is stored.
	for _, bad := range [][]string{
		{"redirect_uri", "https://evil.example/cb"},
		{"code_challenge", ""},
		{"scope", "openid admin"},
		{"request", "eyJhbGciOiJub25lIn0.e30."},
		{"state", strings.Repeat("s", 600)},
	} {
		status, body := n.push(t, rp, bad...)
		if status != http.StatusBadRequest {
			t.Fatalf("push with %s=%.20q: %d %v; want 400", bad[0], bad[1], status, body)
		}
	}
	if rows := n.rows(t, "oauth_pushed_requests"); rows != 0 {
		t.Fatalf("%d pushed requests stored by refused pushes", rows)
	}
	// A body past the form limit is refused before anything reads it.
	status, _, _ := n.formCall(t, "/oauth2/par", rp.client.ID, rp.oauth.ClientSecret, url.Values{"state": {strings.Repeat("x", 2<<20)}})
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 2 MB push: %d, want 413", status)
	}
}

func TestClientThatMustPushIsRefusedARequestThroughTheBrowser(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	must := n.app(t, func(c *client.Client) { c.RequirePushedAuthorizationRequests = true })
	free := n.app(t)

	p := newBrowser(t, n.issuer).visit(must.start().url)
	if p.location == nil || p.location.Query().Get("error") != "invalid_request" || !strings.Contains(p.location.Query().Get("error_description"), "pushed") {
		t.Fatalf("a plain request of a client that must push: %d %v; want invalid_request back at the app", p.status, p.location)
	}
	if p := newBrowser(t, n.issuer).visit(free.start().url); !p.isLogin() {
		t.Fatalf("a plain request of another client: %d, want the login page", p.status)
	}
	// Pushed, it goes through.
	if got, err := n.redeem("127.0.0.2", must.client.ID, n.pushed(t, must)); err != nil || got != "login" {
		t.Fatalf("the pushed request: %s %v", got, err)
	}
}

func TestRequirePARRefusesEveryPlainRequestAndDiscoverySaysSo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		settings     []string
		endpoint     bool
		required     bool
		plainAllowed bool
	}{
		{[]string{"LATCHKEY_REQUIRE_PAR", "true"}, true, true, false},
		{nil, true, false, true},
		{[]string{"LATCHKEY_PAR", "false"}, false, false, true},
	} {
		t.Run(strings.Join(tc.settings, "="), func(t *testing.T) {
			t.Parallel()
			n := startNode(t, tc.settings...)
			_, raw := httpGet(t, n.issuer+"/.well-known/openid-configuration")
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			_, hasEndpoint := doc["pushed_authorization_request_endpoint"]
			_, hasRequire := doc["require_pushed_authorization_requests"]
			if hasEndpoint != tc.endpoint || hasRequire != tc.required || (tc.required && doc["require_pushed_authorization_requests"] != true) {
				t.Fatalf("discovery: endpoint %v, require %v; want %v, %v", doc["pushed_authorization_request_endpoint"], doc["require_pushed_authorization_requests"], tc.endpoint, tc.required)
			}
			rp := n.app(t)
			p := newBrowser(t, n.issuer).visit(rp.start().url)
			if p.isLogin() != tc.plainAllowed {
				t.Fatalf("a plain request: %d %v; want allowed %v", p.status, p.location, tc.plainAllowed)
			}
			status, _ := n.push(t, rp)
			if want := map[bool]int{true: http.StatusCreated, false: http.StatusNotFound}[tc.endpoint]; status != want {
				t.Fatalf("a push: %d, want %d", status, want)
			}
		})
	}
}

func TestPushAuthenticatesLikeTheTokenEndpointWithAnAssertionForThePAREndpoint(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	c, _, err := n.clients.Create(t.Context(), client.Client{
		GrantTypes: []string{client.GrantAuthorizationCode}, RedirectURIs: []string{"http://127.0.0.1:9/callback"}, Scope: "openid",
		TokenEndpointAuthMethod: client.AuthPrivateKeyJWT, TokenEndpointAuthSigningAlg: "ES256", JWKS: set,
	})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	push := func(aud string) (int, map[string]any) {
		assertion, err := josejwt.Signed(signer).Claims(josejwt.Claims{Issuer: c.ID, Subject: c.ID, Audience: josejwt.Audience{aud},
			ID: rand.Text(), Expiry: josejwt.NewNumericDate(time.Now().Add(time.Minute))}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]}, "scope": {"openid"},
			"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"state-0123456789"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
		req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/par", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return doJSON(t, req)
	}
	for _, aud := range []string{n.issuer + "/oauth2/par", n.issuer, n.issuer + "/oauth2/token"} {
		if status, body := push(aud); status != http.StatusCreated {
			t.Fatalf("an assertion for %s: %d %v; want 201", aud, status, body)
		}
	}
	if status, body := push(n.issuer + "/oauth2/introspect"); status != http.StatusUnauthorized {
		t.Fatalf("an assertion for another endpoint: %d %v; want 401", status, body)
	}
	if rows := n.rows(t, "oauth_pushed_requests"); rows != 3 {
		t.Fatalf("%d pushed requests stored, want 3", rows)
	}
}

func TestPublicClientMayPushWithoutASecret(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	spa := n.app(t, func(c *client.Client) { c.TokenEndpointAuthMethod = client.AuthNone })
	form := url.Values{"response_type": {"code"}, "client_id": {spa.client.ID}, "redirect_uri": {spa.client.RedirectURIs[0]},
		"scope": {"openid"}, "code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "state": {"state-0123456789"}}
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/par", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body := doJSON(t, req)
	if status != http.StatusCreated {
		t.Fatalf("a public client's push: %d %v; want 201 (RFC 9126 §2.1)", status, body)
	}
	// Without PKCE a public client's push is refused, as its request would be.
	form.Del("code_challenge")
	req, _ = http.NewRequest(http.MethodPost, n.issuer+"/oauth2/par", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, body := doJSON(t, req); status != http.StatusBadRequest {
		t.Fatalf("a public client's push without PKCE: %d %v; want 400", status, body)
	}
}
