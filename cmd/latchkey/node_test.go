package main

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp/totp"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/postgres"
)

// node is a complete Latchkey node, wired as serve wires it, on a database
// of its own, served over loopback HTTP.
type node struct {
	issuer string
	// host is the issuer without its path: where the node answers what
	// browsers ask any host for (/favicon.ico, RFC 8414 metadata).
	host string
	// admin is the admin listener's base URL.
	admin   string
	dbURL   string
	store   *postgres.Store
	users   *identity.Manager
	mfa     *identity.MFA
	clients *client.Manager
}

func startNode(t *testing.T, settings ...string) *node {
	t.Helper()
	return startNodeUnder(t, nil, "", settings...)
}

// startTracedNode is startNode with the node's requests, and its database
// calls within them, traced by tracer (nil: not traced).
func startTracedNode(t *testing.T, tracer trace.TracerProvider, settings ...string) *node {
	t.Helper()
	return startNodeUnder(t, tracer, "", settings...)
}

// startNodeUnder is startTracedNode with an issuer that has a path, such
// as http://127.0.0.1:PORT/tenant-a ("" for none).
func startNodeUnder(t *testing.T, tracer trace.TracerProvider, path string, settings ...string) *node {
	t.Helper()
	return startNodeAt(t, tracer, func(host string) string { return host + path }, settings...)
}

// startLocalhostNode is startNode with the issuer named
// http://localhost:PORT rather than by its IP address: WebAuthn's
// relying party ID must be a domain, so passkeys need one.
func startLocalhostNode(t *testing.T, settings ...string) *node {
	t.Helper()
	return startNodeAt(t, nil, func(host string) string { return strings.Replace(host, "127.0.0.1", "localhost", 1) }, settings...)
}

// startNodeAt starts a node whose issuer is issuerAt its loopback
// listener's http://127.0.0.1:PORT.
func startNodeAt(t *testing.T, tracer trace.TracerProvider, issuerAt func(host string) string, settings ...string) *node {
	t.Helper()
	ln, host := loopback(t)
	issuer := issuerAt(host)
	env := vars{
		"LATCHKEY_DATABASE_URL": pgtest.URL(t),
		"LATCHKEY_ISSUER":       issuer,
		"LATCHKEY_SECRETS":      testSecret,
	}
	for i := 0; i+1 < len(settings); i += 2 {
		env[settings[i]] = settings[i+1]
	}
	cfg := testConfig(t, env)
	store, err := openStore(cfg, tracer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	a, err := wire(t.Context(), cfg, store, quietLogger(), tracer)
	if err != nil {
		t.Fatal(err)
	}
	if a.sender.Transport != nil {
		// Given LATCHKEY_SMTP_URL, the node delivers its outbox, woken by
		// each new message, as serveNode's does; it also looks often, in
		// case a message came before its listener.
		a.sender.Poll = 200 * time.Millisecond
		ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
		var wg sync.WaitGroup
		wg.Go(func() { a.sender.Run(ctx) })
		wg.Go(func() { store.ListenForChanges(ctx, quietLogger(), a.keys.Changed, a.sender.Wake, nil) })
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	// Every node delivers the event outbox, as serveNode's does, looking
	// often rather than listening, and with retries shrunk from seconds
	// to milliseconds, so that an outage in a test is over in a second.
	// Subscriptions are disabled after an hour of failures: the tests
	// that need it back-date failing_since, as a day passing would.
	a.deliverer.Poll = 100 * time.Millisecond
	a.deliverer.Backoff = 50 * time.Millisecond
	a.deliverer.MaxBackoff = 300 * time.Millisecond
	a.deliverer.DisableAfter = time.Hour
	{
		ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
		done := make(chan struct{})
		go func() { defer close(done); a.deliverer.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	// And the logout outbox likewise (pkg/logout).
	a.logouts.Poll = 100 * time.Millisecond
	a.logouts.Backoff = 50 * time.Millisecond
	a.logouts.MaxBackoff = 300 * time.Millisecond
	{
		ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
		done := make(chan struct{})
		go func() { defer close(done); a.logouts.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	// The meter runs as serveNode's does, giving back its quota budget
	// when the test ends.
	{
		ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
		done := make(chan struct{})
		go func() { defer close(done); a.meter.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	srv := httptest.NewUnstartedServer(a.public)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	adminSrv := httptest.NewServer(a.admin)
	t.Cleanup(adminSrv.Close)
	box, err := seal.New(cfg.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	auditLog := audit.New(store, quietLogger())
	return &node{
		issuer:  issuer,
		host:    host,
		admin:   adminSrv.URL,
		dbURL:   cfg.DatabaseURL,
		store:   store,
		users:   identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{}),
		mfa:     identity.NewMFA(store, box, "test", identity.Throttle{MaxFailures: 100, Window: time.Hour}, auditLog),
		clients: client.NewManager(store, auditLog, time.Hour),
	}
}

// enrol gives u a confirmed TOTP factor, as if they had set it up on their
// account page, and returns its secret. The confirming code spends the
// current time step: the next code to use is totpCode(t, secret, 1).
func (n *node) enrol(t *testing.T, u *identity.User) string {
	t.Helper()
	e, err := n.mfa.Enrol(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.mfa.Confirm(t.Context(), u.ID, totpCode(t, e.Secret, 0)); err != nil {
		t.Fatal(err)
	}
	return e.Secret
}

// totpCode is what an authenticator app shows for the time step steps away
// from now.
func totpCode(t *testing.T, secret string, steps int) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, time.Now().Add(time.Duration(steps)*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const testPassword = "correct horse battery staple"

// identityUser is a user with a full profile and the given claims.
func identityUser(email string, claims map[string]any) identity.User {
	return identity.User{
		Email: email, EmailVerified: true, Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace",
		Claims: claims,
	}
}

// user registers a user with testPassword.
func (n *node) user(t *testing.T, email string) *identity.User {
	t.Helper()
	u, err := n.users.Create(t.Context(), identityUser(email, map[string]any{"locale": "en-GB"}), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// relyingParty is an app that signs users in with Latchkey, built the way
// an app developer would build it: golang.org/x/oauth2 for the protocol and
// github.com/coreos/go-oidc/v3 to verify ID tokens.
type relyingParty struct {
	client   *client.Client
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
}

// app registers a web app whose redirect URI is on loopback (nothing need
// listen there for HTTP-level tests) and returns it as a relying party.
func (n *node) app(t *testing.T, edit ...func(*client.Client)) *relyingParty {
	t.Helper()
	c := client.Client{
		Name:                   "Notes",
		GrantTypes:             []string{client.GrantAuthorizationCode, client.GrantRefreshToken},
		RedirectURIs:           []string{"http://127.0.0.1:9/callback"},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:9/signed-out"},
		Scope:                  "openid profile email offline_access",
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
		t.Fatalf("go-oidc cannot use the discovery document: %v", err)
	}
	// Say how the client authenticates rather than let x/oauth2 guess: it
	// retries a failed exchange the other way, which muddles the answer.
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if created.TokenEndpointAuthMethod == client.AuthNone {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return &relyingParty{
		client: created,
		oauth: &oauth2.Config{
			ClientID:     created.ID,
			ClientSecret: secret,
			RedirectURL:  created.RedirectURIs[0],
			Endpoint:     endpoint,
			Scopes:       strings.Fields(created.Scope),
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: created.ID}),
		provider: provider,
	}
}

// authRequest is one sign-in attempt as an app starts it.
type authRequest struct {
	url, state, nonce, verifier string
}

// start builds an authorization URL with PKCE, state and nonce, plus any
// extra parameters (name, value, ...).
func (rp *relyingParty) start(extra ...string) authRequest {
	ar := authRequest{state: rand.Text(), nonce: rand.Text(), verifier: oauth2.GenerateVerifier()}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(ar.verifier), oidc.Nonce(ar.nonce)}
	for i := 0; i+1 < len(extra); i += 2 {
		opts = append(opts, oauth2.SetAuthURLParam(extra[i], extra[i+1]))
	}
	ar.url = rp.oauth.AuthCodeURL(ar.state, opts...)
	return ar
}

// finish exchanges the code of a callback and verifies the ID token as an
// app must, nonce included.
func (rp *relyingParty) finish(t *testing.T, ar authRequest, callback *url.URL) (*oauth2.Token, *oidc.IDToken) {
	t.Helper()
	q := callback.Query()
	if q.Get("state") != ar.state || q.Get("code") == "" {
		t.Fatalf("callback %s: want a code and state %s", callback, ar.state)
	}
	tok, err := rp.oauth.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(ar.verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := rp.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	if id.Nonce != ar.nonce {
		t.Fatalf("ID token nonce %q, want %q", id.Nonce, ar.nonce)
	}
	return tok, id
}

// browser is a user agent without JavaScript: it keeps cookies, follows
// redirects within Latchkey, and stops at the first one that leaves it (to
// the app) or at a page.
type browser struct {
	t      *testing.T
	issuer string
	http   *http.Client
}

// page is what the browser ended on.
type page struct {
	status   int
	url      *url.URL
	header   http.Header
	body     string
	location *url.URL // where a redirect out of Latchkey pointed
}

func newBrowser(t *testing.T, issuer string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, issuer: issuer}
	b.http = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), b.issuer+"/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := page{status: resp.StatusCode, url: resp.Request.URL, header: resp.Header, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
		p.location, err = resp.Request.URL.Parse(loc)
		if err != nil {
			b.t.Fatal(err)
		}
	}
	return p
}

// visit follows a link.
func (b *browser) visit(u string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// submit posts a form of the page at path as a browser does, with the
// headers browsers add; headers (name, value, ...) replace them.
func (b *browser) submit(path string, form url.Values, headers ...string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.issuer)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

var requestField = regexp.MustCompile(`name="request" value="([^"]*)"`)

// field returns the parked-request handle a login or consent page carries.
func (p page) handle(t *testing.T) string {
	t.Helper()
	m := requestField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s (%d) is not a login or consent page:\n%s", p.url, p.status, p.body)
	}
	return m[1]
}

// isLogin, isSecondFactor, isEnrol and isConsent tell the pages apart.
func (p page) isLogin() bool        { return strings.Contains(p.body, `autocomplete="current-password"`) }
func (p page) isSecondFactor() bool { return strings.Contains(p.body, `name="recovery"`) }
func (p page) isEnrol() bool        { return strings.Contains(p.body, `id="secret"`) }
func (p page) isConsent() bool      { return strings.Contains(p.body, `value="allow"`) }

// secondFactor answers the code page p with code (a TOTP code, or a
// recovery code if it has dashes).
func (b *browser) secondFactor(p page, code string) page {
	b.t.Helper()
	if !p.isSecondFactor() {
		b.t.Fatalf("%s (%d) is not the code page:\n%s", p.url, p.status, p.body)
	}
	field := "code"
	if strings.Contains(code, "-") {
		field = "recovery"
	}
	return b.submit("/login/otp", url.Values{"request": {p.handle(b.t)}, field: {code}})
}

// signIn fills in the login form on p.
func (b *browser) signIn(p page, email, password string) page {
	b.t.Helper()
	if !p.isLogin() {
		b.t.Fatalf("%s (%d) is not the login page:\n%s", p.url, p.status, p.body)
	}
	return b.submit("/login", url.Values{"request": {p.handle(b.t)}, "email": {email}, "password": {password}})
}

// decide answers the consent page p.
func (b *browser) decide(p page, decision string) page {
	b.t.Helper()
	if !p.isConsent() {
		b.t.Fatalf("%s (%d) is not the consent page:\n%s", p.url, p.status, p.body)
	}
	return b.submit("/consent", url.Values{"request": {p.handle(b.t)}, "decision": {decision}})
}

// callback returns where p sent the browser back to the app.
func (p page) callback(t *testing.T) *url.URL {
	t.Helper()
	if p.location == nil {
		t.Fatalf("%s (%d) did not send the browser back to the app:\n%s", p.url, p.status, p.body)
	}
	return p.location
}

// signInScene is where most sign-in tests start: a node with the user
// ada@example.com, the app Notes, and a browser that has not been there.
func signInScene(t *testing.T) (*node, *relyingParty, *browser) {
	t.Helper()
	n := startNode(t)
	n.user(t, "ada@example.com")
	return n, n.app(t), newBrowser(t, n.issuer)
}

// signedIn runs a whole first sign-in: login, consent, callback, exchange.
func (b *browser) signedIn(rp *relyingParty, email string) (*oauth2.Token, *oidc.IDToken) {
	b.t.Helper()
	ar := rp.start()
	p := b.signIn(b.visit(ar.url), email, testPassword)
	if p.isConsent() {
		p = b.decide(p, "allow")
	}
	return rp.finish(b.t, ar, p.callback(b.t))
}

// waitForNextSecond sleeps into the next whole second, so that a new
// sign-in has a later auth_time (a number of seconds) than the last.
func waitForNextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}
