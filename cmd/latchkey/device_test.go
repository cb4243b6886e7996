package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/internal/openidclient"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// This file tests the device authorization grant (RFC 8628) as a device
// uses it, through golang.org/x/oauth2's DeviceAuth and
// DeviceAccessToken, with its user approving in a browser: Chromium, or
// the plain browser of node_test.go where many requests must run at once.

// deviceOn is the settings of a node that offers the device grant, with a
// one-second polling interval so that tests wait little.
var deviceOn = []string{"LATCHKEY_DEVICE_FLOW", "true", "LATCHKEY_DEVICE_POLL_INTERVAL", "1s"}

// tvApp is an app on a TV: a public client registered for the device
// grant, driven by x/oauth2, whose endpoints come from discovery through
// go-oidc as any app's would.
type tvApp struct {
	client   *client.Client
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func (n *node) tvApp(t *testing.T, edit ...func(*client.Client)) *tvApp {
	t.Helper()
	c := client.Client{
		Name:                    "Living-room TV",
		GrantTypes:              []string{client.GrantDeviceCode, client.GrantRefreshToken},
		TokenEndpointAuthMethod: client.AuthNone,
		Scope:                   "openid profile email offline_access",
	}
	for _, e := range edit {
		e(&c)
	}
	created, secret, err := n.clients.Create(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(t.Context(), n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := provider.Endpoint()
	if endpoint.DeviceAuthURL == "" {
		t.Fatal("discovery names no device_authorization_endpoint")
	}
	endpoint.AuthStyle = oauth2.AuthStyleInParams
	return &tvApp{
		client: created,
		oauth: &oauth2.Config{ClientID: created.ID, ClientSecret: secret, Endpoint: endpoint,
			Scopes: strings.Fields(created.Scope)},
		verifier: provider.Verifier(&oidc.Config{ClientID: created.ID}),
	}
}

// poll runs x/oauth2's polling loop for da in the background; wait
// returns how it ended.
func (d *tvApp) poll(t *testing.T, da *oauth2.DeviceAuthResponse) (wait func() (*oauth2.Token, error)) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	done := make(chan struct{})
	var (
		tok *oauth2.Token
		err error
	)
	go func() {
		defer close(done)
		tok, err = d.oauth.DeviceAccessToken(ctx, da)
	}()
	return func() (*oauth2.Token, error) {
		<-done
		cancel()
		return tok, err
	}
}

// approveDevice is a user without JavaScript typing userCode at /device,
// signing in as email if asked, and answering the consent page with
// decision; it returns the page it ends on.
func (b *browser) approveDevice(userCode, email, decision string) page {
	b.t.Helper()
	p := b.submit("/device", url.Values{"user_code": {userCode}})
	if p.isLogin() {
		p = b.signIn(p, email, testPassword)
	}
	if !strings.Contains(p.body, `id="device-warning"`) {
		b.t.Fatalf("%s (%d) is not the device's consent page:\n%s", p.url, p.status, p.body)
	}
	return b.decide(p, decision)
}

// poll posts one device_code grant request for clientID from ip.
func (n *node) poll(t *testing.T, ip, clientID, deviceCode string) (int, map[string]any) {
	return pollAt(t, n.issuer, ip, clientID, deviceCode)
}

// pollAt is poll to the node at base.
func pollAt(t *testing.T, base, ip, clientID, deviceCode string) (int, map[string]any) {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/oauth2/token", strings.NewReader(url.Values{
		"grant_type": {client.GrantDeviceCode}, "client_id": {clientID}, "device_code": {deviceCode}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := clientFrom(ip).Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// errorCode is the RFC 6749 error x/oauth2 reports, "" for none.
func errorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestDeviceSignsInThroughChromiumWithASecondFactorAndGetsVerifiedTokens(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	ada := n.user(t, "ada@example.com")
	secret := n.enrol(t, ada)
	tv := n.tvApp(t)

	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatalf("x/oauth2 DeviceAuth: %v", err)
	}
	if len(da.UserCode) != 9 || strings.Trim(da.UserCode, "BCDFGHJKLMNPQRSTVWXZ-") != "" || da.UserCode[4] != '-' {
		t.Errorf("user code %q, want XXXX-XXXX of RFC 8628's consonants", da.UserCode)
	}
	if da.VerificationURI != n.issuer+"/device" || !strings.HasPrefix(da.VerificationURIComplete, da.VerificationURI+"?user_code=") {
		t.Errorf("verification URIs %q, %q", da.VerificationURI, da.VerificationURIComplete)
	}
	wait := tv.poll(t, da)

	tab := chromiumtest.Tab(t)
	// The link prefills the code, but the user still confirms it (RFC
	// 8628 §5.4): nothing happens until they press Continue.
	err = chromedp.Do(tab,
		chromedp.Navigate(da.VerificationURIComplete),
		chromedp.WaitVisible(chromedp.ID("user_code")),
	)
	if err != nil {
		t.Fatal(err)
	}
	prefilled, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("user_code").value`))
	if err != nil || prefilled != da.UserCode {
		t.Fatalf("the code field holds %q (%v), want %q", prefilled, err, da.UserCode)
	}
	// The user types it again, in lower case and without the dash, as
	// people do.
	err = chromedp.Do(tab,
		chromedp.SetValue(chromedp.ID("user_code"), strings.ToLower(strings.ReplaceAll(da.UserCode, "-", ""))),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, 1)),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("device-warning")),
		chromiumtest.Screenshot(t, "device-consent"),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitNotPresent(chromedp.ID("device-warning")),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	)
	if err != nil {
		t.Fatalf("sign-in at /device: %v", err)
	}
	heading, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("h1")))
	if heading != "Device connected" {
		t.Errorf("after allowing, the page says %q", heading)
	}

	tok, err := wait()
	if err != nil {
		t.Fatalf("x/oauth2 DeviceAccessToken: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token for offline_access")
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := tv.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	got := authOf(t, id)
	if id.Subject != ada.ID || !slices.Contains(got.AMR, "otp") {
		t.Errorf("ID token sub %q amr %v; want Ada's, with otp", id.Subject, got.AMR)
	}
	if !n.introspect(t, tok.AccessToken) {
		t.Error("the access token is not active")
	}
	// The refresh token works like one from a sign-in.
	fresh, err := tv.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || fresh.AccessToken == "" || fresh.AccessToken == tok.AccessToken {
		t.Errorf("refresh: %v", err)
	}
	if len(n.events(t, "device.approved")) != 1 {
		t.Error("no device.approved audit event")
	}
}

func TestDeviceDeniedInChromiumGetsAccessDenied(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wait := tv.poll(t, da)
	tab := chromiumtest.Tab(t)
	err = chromedp.Do(tab,
		chromedp.Navigate(da.VerificationURI),
		chromedp.WaitVisible(chromedp.ID("user_code")),
		chromedp.SendKeys(chromedp.ID("user_code"), da.UserCode),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="deny"]`)),
		chromedp.Click(chromedp.CSS(`button[value="deny"]`)),
		chromedp.WaitNotPresent(chromedp.ID("device-warning")),
		chromedp.WaitVisible(chromedp.CSS("h1")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if heading, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("h1"))); heading != "Device not connected" {
		t.Errorf("after denying, the page says %q", heading)
	}
	if _, err := wait(); errorCode(err) != "access_denied" {
		t.Fatalf("DeviceAccessToken after deny: %v, want access_denied", err)
	}
	if len(n.events(t, "device.denied")) != 1 {
		t.Error("no device.denied audit event")
	}
}

func TestDevicePollingTooFastGetsSlowDownAndALongerIntervalOnEveryNode(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_DEVICE_FLOW", "true", "LATCHKEY_DEVICE_POLL_INTERVAL", "5s")
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if da.Interval != 5 {
		t.Fatalf("interval %d, want 5", da.Interval)
	}
	from := attackers(2)
	if status, body := n.poll(t, from[0], tv.client.ID, da.DeviceCode); status != http.StatusBadRequest || body["error"] != "authorization_pending" {
		t.Fatalf("first poll: %d %v, want authorization_pending", status, body)
	}
	// Another address (another node would see the same row): too soon.
	if _, body := n.poll(t, from[1], tv.client.ID, da.DeviceCode); body["error"] != "slow_down" {
		t.Fatalf("second poll at once: %v, want slow_down", body)
	}
	var secs int
	n.query(t, &secs, `SELECT interval_seconds FROM device_codes`)
	if secs != 10 {
		t.Fatalf("interval after slow_down: %ds, want 10 (RFC 8628 §3.5: 5 more)", secs)
	}
	// Still too soon for the new interval six seconds on; not after it.
	n.exec(t, `UPDATE device_codes SET last_polled_at = now() - interval '6 seconds'`)
	if _, body := n.poll(t, from[0], tv.client.ID, da.DeviceCode); body["error"] != "slow_down" {
		t.Fatalf("poll 6s after, interval 10s: %v, want slow_down", body)
	}
	n.exec(t, `UPDATE device_codes SET last_polled_at = now() - interval '16 seconds'`)
	if _, body := n.poll(t, from[0], tv.client.ID, da.DeviceCode); body["error"] != "authorization_pending" {
		t.Fatalf("poll after the interval: %v, want authorization_pending", body)
	}
}

func TestAnExpiredDeviceCodeGetsExpiredTokenAndCannotBeApproved(t *testing.T) {
	t.Parallel()
	n := startNode(t, append(deviceOn, "LATCHKEY_DEVICE_CODE_LIFESPAN", "1s")...)
	n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, body := n.poll(t, "127.0.0.2", tv.client.ID, da.DeviceCode); body["error"] != "expired_token" {
		t.Fatalf("poll after expiry: %v, want expired_token", body)
	}
	b := newBrowser(t, n.issuer)
	p := b.submit("/device", url.Values{"user_code": {da.UserCode}})
	if p.isLogin() || !strings.Contains(p.body, "not valid, or it has expired") {
		t.Fatalf("an expired user code: %d\n%s", p.status, p.body)
	}
	// The janitor deletes it.
	a := newJanitor(n.store, testConfig(t, vars{"LATCHKEY_DATABASE_URL": n.dbURL, "LATCHKEY_ISSUER": n.issuer, "LATCHKEY_SECRETS": testSecret}), quietLogger())
	if _, err := a.sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n.rows(t, "device_codes") != 0 {
		t.Error("the janitor left an expired device code")
	}
}

func TestAnApprovedDeviceCodeGivesTokensToExactlyOneOfABurstOfPolls(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if p := newBrowser(t, n.issuer).approveDevice(da.UserCode, "ada@example.com", "allow"); !strings.Contains(p.body, "Device connected") {
		t.Fatalf("approval: %d\n%s", p.status, p.body)
	}
	var (
		mu      sync.Mutex
		answers = map[string]int{}
		token   string
	)
	burst(t, 16, attackers(4), func(_ int, ip string) {
		_, body := n.poll(t, ip, tv.client.ID, da.DeviceCode)
		mu.Lock()
		defer mu.Unlock()
		if at, ok := body["access_token"].(string); ok {
			answers["tokens"]++
			token = at
		} else {
			answers[body["error"].(string)]++
		}
	})
	if answers["tokens"] != 1 || answers["invalid_grant"] != 15 {
		t.Fatalf("16 parallel polls after approval: %v; want one token response and 15 invalid_grant", answers)
	}
	if !n.introspect(t, token) {
		t.Error("the one token issued is not active")
	}
	if _, body := n.poll(t, "127.0.0.2", tv.client.ID, da.DeviceCode); body["error"] != "invalid_grant" {
		t.Errorf("a poll after the tokens: %v, want invalid_grant", body)
	}
}

func TestGuessingUserCodesIsLimitedPerAddressAndInAll(t *testing.T) {
	t.Parallel()
	n := startNode(t, append(deviceOn, "LATCHKEY_DEVICE_CODE_FAILURES", "3", "LATCHKEY_DEVICE_CODE_GLOBAL_FAILURES", "5")...)
	n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	from := attackers(3)
	guess := func(ip, code string) page {
		return newBrowser(t, n.issuer).from(ip).submit("/device", url.Values{"user_code": {code}})
	}
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	burst(t, 8, from[:1], func(_ int, ip string) {
		p := guess(ip, "BBBB-BBBB")
		mu.Lock()
		statuses[p.status]++
		mu.Unlock()
	})
	if statuses[http.StatusOK] != 3 || statuses[http.StatusTooManyRequests] != 5 {
		t.Fatalf("8 parallel wrong codes from one address: %v; want 3 checked and 5 refused", statuses)
	}
	// The right code from that address is not even looked at now.
	if p := guess(from[0], da.UserCode); p.status != http.StatusTooManyRequests || !strings.Contains(p.body, "Too many wrong") {
		t.Fatalf("the right code from a limited address: %d", p.status)
	}
	// Two more addresses use up the global limit of 5 between them.
	for _, ip := range from[1:] {
		if p := guess(ip, "CCCC-CCCC"); p.status != http.StatusOK {
			t.Fatalf("a first wrong code from %s: %d", ip, p.status)
		}
	}
	if p := guess(from[1], "DDDD-DDDD"); p.status != http.StatusTooManyRequests {
		t.Fatalf("a wrong code past the global limit: %d, want 429", p.status)
	}
	// Right codes are not failures: they give their reservations back.
	var failures int
	n.query(t, &failures, `SELECT count(*) FROM auth_failures WHERE kind = 'device-code-all'`)
	if failures != 5 {
		t.Errorf("%d global failures recorded, want 5", failures)
	}
}

func TestTamperedOrForeignDeviceCodesGetNoTokens(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	n.user(t, "ada@example.com")
	tv, other := n.tvApp(t), n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newBrowser(t, n.issuer).approveDevice(da.UserCode, "ada@example.com", "allow")
	flipped := []byte(da.DeviceCode)
	flipped[5] ^= 1
	for name, c := range map[string]struct{ client, code string }{
		"flipped character":     {tv.client.ID, string(flipped)},
		"truncated":             {tv.client.ID, da.DeviceCode[:len(da.DeviceCode)-1]},
		"extended":              {tv.client.ID, da.DeviceCode + "A"},
		"oversized":             {tv.client.ID, strings.Repeat(da.DeviceCode, 200)},
		"the user code instead": {tv.client.ID, da.UserCode},
		"another client's":      {other.client.ID, da.DeviceCode},
	} {
		if status, body := n.poll(t, "127.0.0.2", c.client, c.code); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v, want invalid_grant", name, status, body)
		}
	}
	// None of that spent it: the device itself still gets its tokens.
	if _, body := n.poll(t, "127.0.0.2", tv.client.ID, da.DeviceCode); body["access_token"] == nil {
		t.Fatalf("the real device code after the tampered ones: %v", body)
	}
}

func TestADeviceApprovedByAUserDisabledBeforeItPollsGetsNoTokens(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	ada := n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	approved := func() *oauth2.DeviceAuthResponse {
		da, err := tv.oauth.DeviceAuth(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		newBrowser(t, n.issuer).approveDevice(da.UserCode, "ada@example.com", "allow")
		return da
	}
	first, second := approved(), approved()
	// Disabling her takes back what she approved, as it revokes her
	// tokens and unused codes.
	if err := n.users.Disable(t.Context(), ada.ID); err != nil {
		t.Fatal(err)
	}
	if _, body := n.poll(t, "127.0.0.2", tv.client.ID, first.DeviceCode); body["error"] != "access_denied" {
		t.Fatalf("poll after the user was disabled: %v, want access_denied", body)
	}
	// And should an approval slip past that (made in the instant the
	// user was disabled), the poll itself checks the user.
	n.exec(t, `UPDATE device_codes SET status = 'approved' WHERE status = 'denied'`)
	if _, body := n.poll(t, "127.0.0.2", tv.client.ID, second.DeviceCode); body["error"] != "invalid_grant" {
		t.Fatalf("poll of an approval that slipped past the disable: %v, want invalid_grant", body)
	}
	var tokens int
	n.query(t, &tokens, `SELECT count(*) FROM oauth_access_tokens`)
	if tokens != 0 {
		t.Errorf("%d access tokens stored", tokens)
	}
}

func TestTheDeviceEndpointServesOnlyClientsRegisteredForTheGrant(t *testing.T) {
	t.Parallel()
	n := startNode(t, append(deviceOn, "LATCHKEY_DEVICE_PENDING_LIMIT", "3")...)
	rp := n.app(t) // a web app: code flow only
	tv := n.tvApp(t)
	post := func(ip string, form url.Values) (int, map[string]any) {
		status, _, body := n.formCallFrom(t, ip, "/oauth2/device_authorization", form)
		return status, body
	}
	if status, body := post("127.0.0.2", url.Values{"client_id": {"nobody"}}); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("an unknown client: %d %v", status, body)
	}
	if status, body := post("127.0.0.2", url.Values{"client_id": {rp.client.ID}, "client_secret": {rp.oauth.ClientSecret}}); body["error"] != "unauthorized_client" {
		t.Errorf("a client without the grant: %d %v", status, body)
	}
	if _, body := post("127.0.0.2", url.Values{"client_id": {tv.client.ID}, "scope": {"openid admin"}}); body["error"] != "invalid_scope" {
		t.Errorf("a scope the client lacks: %v", body)
	}
	// A client holds at most LATCHKEY_DEVICE_PENDING_LIMIT pending codes,
	// however many ask at once.
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	burst(t, 8, attackers(4), func(_ int, ip string) {
		status, _ := post(ip, url.Values{"client_id": {tv.client.ID}})
		mu.Lock()
		statuses[status]++
		mu.Unlock()
	})
	if statuses[http.StatusOK] != 3 || statuses[http.StatusTooManyRequests] != 5 {
		t.Fatalf("8 parallel device requests with a limit of 3: %v", statuses)
	}
	var hashed int
	n.query(t, &hashed, `SELECT count(*) FROM device_codes WHERE length(device_code_hash) = 32 AND length(user_code_hash) = 32`)
	if hashed != 3 {
		t.Errorf("%d rows with 32-byte digests, want 3", hashed)
	}
}

func TestDiscoveryNamesTheDeviceGrantExactlyWhenItIsOn(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		var settings []string
		if on {
			settings = deviceOn
		}
		n := startNode(t, settings...)
		_, body := httpGet(t, n.issuer+"/.well-known/openid-configuration")
		var doc struct {
			Device string   `json:"device_authorization_endpoint"`
			Grants []string `json:"grant_types_supported"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if (doc.Device != "") != on || slices.Contains(doc.Grants, client.GrantDeviceCode) != on {
			t.Errorf("device flow on=%v: discovery %+v", on, doc)
		}
		status, _ := httpGet(t, n.issuer+"/device")
		if (status == http.StatusOK) != on {
			t.Errorf("device flow on=%v: /device answers %d", on, status)
		}
		if !on {
			st, _, b := n.formCallFrom(t, "127.0.0.2", "/oauth2/token", url.Values{"grant_type": {client.GrantDeviceCode}, "client_id": {"x"}, "device_code": {"y"}})
			if b["error"] != "unsupported_grant_type" {
				t.Errorf("the device grant while off: %d %v", st, b)
			}
		}
	}
}

// formCallFrom posts form to path from ip, unauthenticated but for what
// the form carries.
func (n *node) formCallFrom(t *testing.T, ip, path string, form url.Values) (int, http.Header, map[string]any) {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, n.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := clientFrom(ip).Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header, body
}

func TestOpenIDClientDeviceFlowPollsUntilTheUserApproves(t *testing.T) {
	t.Parallel()
	openidclient.Need(t)
	n := startNode(t, deviceOn...)
	ada := n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	var started map[string]any
	openidclient.Run(t, "device-start.mjs", map[string]any{"issuer": n.issuer, "client_id": tv.client.ID, "scope": "openid offline_access"}, &started)
	userCode, _ := started["user_code"].(string)
	if userCode == "" || started["verification_uri"] != n.issuer+"/device" {
		t.Fatalf("openid-client's device authorization response: %v", started)
	}
	var (
		got struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
			Sub          string `json:"sub"`
		}
		pollErr error
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		pollErr = openidclient.Try(t, "device-poll.mjs", map[string]any{"issuer": n.issuer, "client_id": tv.client.ID, "response": started}, &got)
	}()
	// The library is polling, and told authorization_pending, while the
	// user signs in and approves.
	time.Sleep(1500 * time.Millisecond)
	newBrowser(t, n.issuer).approveDevice(userCode, "ada@example.com", "allow")
	<-done
	if pollErr != nil {
		t.Fatalf("openid-client pollDeviceAuthorizationGrant: %v", pollErr)
	}
	if got.Sub != ada.ID || got.RefreshToken == "" || !n.introspect(t, got.AccessToken) {
		t.Fatalf("openid-client got sub %q, refresh token %t; want Ada's, with one", got.Sub, got.RefreshToken != "")
	}
}

// A device whose app requires the phishing-resistant level is approved
// only after a passkey: the /device sign-in takes the same passkey step an
// app's sign-in does, and the device's ID token says so.
func TestADeviceThatRequiresAPasskeyIsApprovedAfterOne(t *testing.T) {
	t.Parallel()
	n := startLocalhostNode(t, deviceOn...)
	n.user(t, "ada@example.com")
	tv := n.tvApp(t, func(c *client.Client) { c.RequirePhishingResistant = true })
	tab := chromiumtest.Tab(t)
	virtualAuthenticator(t, tab)
	// Ada signed in with her password before and added a passkey.
	err := chromedp.Do(tab,
		chromedp.Navigate(n.issuer+"/login"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("add-passkey")),
		chromedp.Click(chromedp.ID("add-passkey")),
		chromedp.WaitVisible(chromedp.ID("passkey-name")),
		createPasskey("Phone"),
	)
	if err != nil {
		t.Fatalf("adding a passkey: %v", err)
	}
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wait := tv.poll(t, da)
	err = chromedp.Do(tab,
		chromedp.Navigate(da.VerificationURIComplete),
		chromedp.WaitVisible(chromedp.ID("user_code")),
		chromedp.Click(chromedp.CSS("button.primary")),
		// Signed in with a password only: the passkey, before the device.
		chromedp.WaitVisible(chromedp.ID("passkey-go")),
		chromedp.Click(chromedp.ID("passkey-go")),
		chromedp.WaitVisible(chromedp.ID("device-warning")),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitNotPresent(chromedp.ID("device-warning")),
	)
	if err != nil {
		t.Fatalf("approving the device with a passkey: %v", err)
	}
	tok, err := wait()
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := tv.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := authOf(t, id); got.ACR != identity.ACRPhishingResistant {
		t.Errorf("the device's ID token: acr %q amr %v, want %s", got.ACR, got.AMR, identity.ACRPhishingResistant)
	}
}

func TestTheDevicePageRefusesCrossSiteFormsAndFraming(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, n.issuer)
	p := b.visit(n.issuer + "/device")
	if csp := p.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("/device may be framed: CSP %q", csp)
	}
	// A page on another site posting the code for the user's browser.
	p = b.submit("/device", url.Values{"user_code": {da.UserCode}}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if p.status != http.StatusForbidden {
		t.Fatalf("a cross-site post to /device: %d, want 403", p.status)
	}
	var failures int
	n.query(t, &failures, `SELECT count(*) FROM auth_failures`)
	if failures != 0 {
		t.Errorf("a refused cross-site post counted %d guesses", failures)
	}
}

// A confidential device client authenticates at the device endpoint too
// (RFC 8628 §3.1). x/oauth2's DeviceAuth sends no secret of its own
// accord, so such a device passes it as a parameter.
func TestAConfidentialDeviceClientMustAuthenticateAtTheDeviceEndpoint(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	n.user(t, "ada@example.com")
	tv := n.tvApp(t, func(c *client.Client) { c.TokenEndpointAuthMethod = client.AuthSecretBasic })
	if tv.oauth.ClientSecret == "" {
		t.Fatal("the confidential client has no secret")
	}
	if _, err := tv.oauth.DeviceAuth(t.Context()); errorCode(err) != "invalid_client" {
		t.Fatalf("DeviceAuth without the secret: %v, want invalid_client", err)
	}
	if _, err := tv.oauth.DeviceAuth(t.Context(), oauth2.SetAuthURLParam("client_secret", "wrong")); errorCode(err) != "invalid_client" {
		t.Fatalf("DeviceAuth with a wrong secret: %v, want invalid_client", err)
	}
	da, err := tv.oauth.DeviceAuth(t.Context(), oauth2.SetAuthURLParam("client_secret", tv.oauth.ClientSecret))
	if err != nil {
		t.Fatalf("DeviceAuth with the secret: %v", err)
	}
	newBrowser(t, n.issuer).approveDevice(da.UserCode, "ada@example.com", "allow")
	if tok, err := tv.oauth.DeviceAccessToken(t.Context(), da); err != nil || tok.AccessToken == "" {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	// Polling without the secret is refused like any token request.
	if status, body := n.poll(t, "127.0.0.2", tv.client.ID, da.DeviceCode); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Errorf("a poll without the secret: %d %v", status, body)
	}
}

func TestADeviceCodeThatExpiresWhileItsUserSignsInEndsOnAPageThatSaysSo(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, n.issuer)
	login := b.submit("/device", url.Values{"user_code": {da.UserCode}})
	if !login.isLogin() {
		t.Fatalf("a right code: %d\n%s", login.status, login.body)
	}
	n.exec(t, `UPDATE device_codes SET expires_at = now() - interval '1 second'`)
	p := b.signIn(login, "ada@example.com", testPassword)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Cannot connect the device") || !strings.Contains(p.body, "expired") {
		t.Fatalf("signing in for an expired device code: %d\n%s", p.status, p.body)
	}
	if _, body := n.poll(t, "127.0.0.2", tv.client.ID, da.DeviceCode); body["error"] != "expired_token" {
		t.Errorf("the device's poll: %v, want expired_token", body)
	}
}

// Signing out everywhere (as a new password also does) takes back a
// device approval the device has not redeemed yet, as it revokes unused
// authorization codes.
func TestSigningOutEverywhereTakesBackAnUnredeemedDeviceApproval(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	ada := n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	newBrowser(t, n.issuer).approveDevice(da.UserCode, "ada@example.com", "allow")
	if err := n.users.SignOutEverywhere(t.Context(), ada.ID); err != nil {
		t.Fatal(err)
	}
	if _, body := n.poll(t, "127.0.0.2", tv.client.ID, da.DeviceCode); body["error"] != "access_denied" {
		t.Fatalf("poll after signing out everywhere: %v, want access_denied", body)
	}
}

func TestScreenshotDevicePageFitsAPhoneWithTheCursorInTheCode(t *testing.T) {
	t.Parallel()
	n := startNode(t, deviceOn...)
	n.user(t, "ada@example.com")
	tv := n.tvApp(t)
	da, err := tv.oauth.DeviceAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tab := chromiumtest.Tab(t)
	if err := chromedp.Do(tab, chromedp.Navigate(n.issuer+"/device"), chromedp.WaitVisible(chromedp.ID("user_code")), awaitFocus("user_code")); err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "device", func(v viewport) {
		if f := focusOf(t, tab); f.ID != "user_code" {
			t.Errorf("/device at %d px: focus on %q, want the code field", v.width, f.ID)
		}
	})
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("user_code"), "BBBB-BBBB"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS("p.error")),
	)
	if err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "device-wrong-code", nil)
	err = chromedp.Do(tab,
		chromedp.SetValue(chromedp.ID("user_code"), da.UserCode),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("device-warning")),
	)
	if err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "device-consent", nil)
}

// Two nodes on one database: a device starts on one, polls both, and its
// user approves on either; the interval, the approval and the single use
// hold across them.
func TestTheDeviceGrantHoldsAcrossTheNodesOfACluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t, "LATCHKEY_DEVICE_FLOW", "true", "LATCHKEY_DEVICE_POLL_INTERVAL", "5s")
	n := c.node
	a, b := c.a.public, c.b.public
	n.user(t, "ada@example.com")
	tv, _, err := n.clients.Create(t.Context(), client.Client{Name: "TV", GrantTypes: []string{client.GrantDeviceCode},
		TokenEndpointAuthMethod: client.AuthNone, Scope: "openid"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: tv.ID, Scopes: []string{"openid"}, Endpoint: oauth2.Endpoint{
		DeviceAuthURL: a + "/oauth2/device_authorization", TokenURL: a + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	da, err := cfg.DeviceAuth(t.Context())
	if err != nil {
		t.Fatalf("DeviceAuth on A: %v", err)
	}
	if _, body := pollAt(t, a, "127.0.0.2", tv.ID, da.DeviceCode); body["error"] != "authorization_pending" {
		t.Fatalf("poll on A: %v", body)
	}
	if _, body := pollAt(t, b, "127.0.0.3", tv.ID, da.DeviceCode); body["error"] != "slow_down" {
		t.Fatalf("poll on B at once after A: %v, want slow_down", body)
	}
	if p := newBrowser(t, n.issuer).at(b).approveDevice(da.UserCode, "ada@example.com", "allow"); !strings.Contains(p.body, "Device connected") {
		t.Fatalf("approval on B: %d\n%s", p.status, p.body)
	}
	var (
		mu     sync.Mutex
		tokens int
	)
	burst(t, 16, attackers(4), func(i int, ip string) {
		base := a
		if i%2 == 1 {
			base = b
		}
		if _, body := pollAt(t, base, ip, tv.ID, da.DeviceCode); body["access_token"] != nil {
			mu.Lock()
			tokens++
			mu.Unlock()
		}
	})
	if tokens != 1 {
		t.Fatalf("16 polls across both nodes after approval: %d token responses, want 1", tokens)
	}
}
