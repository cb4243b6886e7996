package signin_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/device"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/oauth"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/roles"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/signin"
	"github.com/latchkey/latchkey/pkg/ui"
)

// scene is the browser sign-in served over real HTTP with what it works
// with in a node: the protocol (pkg/oauth), the users and their second
// factors, on a database of its own. It has the user ada@example.com and
// an app, Notes, registered for a loopback redirect URI nothing listens
// on: the tests read the redirect.
type scene struct {
	issuer   string
	users    *identity.Manager
	mfa      *identity.MFA
	passkeys *passkey.Manager
	clients  *client.Manager
	provider *oauth.Provider
	ada      *identity.User
	app      *client.Client
	secret   string
}

const password = "correct horse battery staple"

var testSecret = []byte("test-secret-test-secret-test-secret-0123")

func newScene(t *testing.T, edit ...func(*client.Client)) *scene {
	t.Helper()
	store := pgtest.Store(t)
	logger := slog.New(slog.DiscardHandler)
	auditLog := audit.New(store, logger)
	box, err := seal.New([][]byte{testSecret})
	if err != nil {
		t.Fatal(err)
	}
	km := keys.NewManager(store, box, logger, auditLog)
	if err := km.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	users := identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{MaxFailures: 5, Window: 15 * time.Minute, LockoutFailures: 20})
	mfa := identity.NewMFA(store, box, "test", identity.Throttle{MaxFailures: 5, Window: 15 * time.Minute}, auditLog)
	provider, err := oauth.New(oauth.Config{
		Issuer: issuer, Secrets: [][]byte{testSecret},
		AccessTokenLifespan: 15 * time.Minute, RefreshTokenLifespan: time.Hour, IDTokenLifespan: time.Hour,
		AuthorizationCodeLifespan: 5 * time.Minute, EnforcePKCE: true, AccessTokenSigningAlg: jose.RS256,
	}, oauth.Deps{Store: store, Keys: km, Logger: logger, Users: users, Roles: roles.NewManager(store, auditLog), Audit: auditLog})
	if err != nil {
		t.Fatal(err)
	}
	clients := client.NewManager(store, auditLog, time.Hour)
	pages, err := ui.NewPages("")
	if err != nil {
		t.Fatal(err)
	}
	passkeys, err := passkey.New(issuer, "test", store, auditLog)
	if err != nil {
		t.Fatal(err)
	}
	svc := &signin.Service{
		Protocol: provider, Users: users, MFA: mfa, Passkeys: passkeys, Clients: clients,
		Sessions:     signin.NewSessions(store, auditLog, signin.SessionConfig{IdleTimeout: time.Hour, Lifetime: time.Hour}),
		Devices:      device.New(box, false),
		Pages:        pages,
		ReauthWindow: 10 * time.Minute,
		Logger:       logger,
	}
	r := chi.NewRouter()
	r.HandleFunc(discovery.TokenPath, provider.Token)
	svc.Mount(r)
	srv.Config.Handler = r
	srv.Start()
	t.Cleanup(srv.Close)

	ada, err := users.Create(t.Context(), identity.User{Email: "ada@example.com", Name: "Ada Lovelace"}, password)
	if err != nil {
		t.Fatal(err)
	}
	c := client.Client{
		Name: "Notes", GrantTypes: []string{client.GrantAuthorizationCode},
		RedirectURIs:           []string{"http://127.0.0.1:9/callback"},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:9/signed-out"},
		Scope:                  "openid profile email",
	}
	for _, e := range edit {
		e(&c)
	}
	app, secret, err := clients.Create(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return &scene{issuer: issuer, users: users, mfa: mfa, passkeys: passkeys, clients: clients, provider: provider, ada: ada, app: app, secret: secret}
}

// authorizeURL is an authorization request from the app, with PKCE and
// extra parameters (name, value, ...).
func (sc *scene) authorizeURL(extra ...string) string {
	u, _ := sc.authorizeWithVerifier(extra...)
	return u
}

// authorizeWithVerifier is authorizeURL, also returning the PKCE verifier
// that redeems its code.
func (sc *scene) authorizeWithVerifier(extra ...string) (string, string) {
	verifier := rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {sc.app.ID}, "response_type": {"code"}, "redirect_uri": {sc.app.RedirectURIs[0]},
		"scope": {sc.app.Scope}, "state": {"state-0f-the-app"}, "nonce": {"nonce-0f-the-app"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return sc.issuer + discovery.AuthorizationPath + "?" + q.Encode(), verifier
}

// signIn signs ada in on b through a whole authorization request, allowing
// the app, and returns the ID token the app gets for the code.
func (sc *scene) signIn(t *testing.T, b *browser) string {
	t.Helper()
	u, verifier := sc.authorizeWithVerifier()
	a := b.get(u)
	for a.location != nil && strings.HasPrefix(a.location.String(), sc.issuer) {
		page := b.get(a.location.String())
		switch {
		case strings.Contains(page.body, `autocomplete="current-password"`):
			a = b.post(signin.LoginPath, url.Values{"request": {page.handle(t)}, "email": {"ada@example.com"}, "password": {password}})
		case strings.Contains(page.body, `value="allow"`):
			a = b.post(signin.ConsentPath, url.Values{"request": {page.handle(t)}, "decision": {"allow"}})
		default:
			t.Fatalf("signing in: an unexpected page (%d):\n%s", page.status, page.body)
		}
	}
	q := sc.backToApp(t, a)
	return sc.exchange(t, q.Get("code"), verifier)
}

// exchange redeems a code as the app does and returns the ID token.
func (sc *scene) exchange(t *testing.T, code, verifier string) string {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {sc.app.RedirectURIs[0]}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, sc.issuer+discovery.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sc.app.ID, sc.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.IDToken == "" {
		t.Fatalf("exchanging the code: %d, %v", resp.StatusCode, err)
	}
	return tok.IDToken
}

// browser keeps cookies and follows no redirect, so that a test sees
// every hop.
type browser struct {
	t      *testing.T
	issuer string
	http   *http.Client
}

func (sc *scene) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, issuer: sc.issuer, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// answer is one response the browser got.
type answer struct {
	status   int
	location *url.URL
	body     string
}

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" {
		a.location, _ = resp.Request.URL.Parse(loc)
	}
	return a
}

func (b *browser) get(u string) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

// post submits one of Latchkey's forms, as a browser does from its page.
func (b *browser) post(path string, form url.Values) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.issuer)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

// toPage follows an answer that is a redirect within Latchkey and returns
// the page it leads to.
func (b *browser) toPage(a answer) answer {
	b.t.Helper()
	if a.location == nil || !strings.HasPrefix(a.location.String(), b.issuer) {
		b.t.Fatalf("want a redirect to one of Latchkey's pages, got %d to %v:\n%s", a.status, a.location, a.body)
	}
	return b.get(a.location.String())
}

var handleField = regexp.MustCompile(`name="request" value="([^"]*)"`)

// handle is the parked-request handle a page's form carries.
func (a answer) handle(t *testing.T) string {
	t.Helper()
	m := handleField.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no request handle on the page (%d):\n%s", a.status, a.body)
	}
	return m[1]
}

// backToApp checks a is the answer that sends the browser to the app's
// redirect URI, and returns its query.
func (sc *scene) backToApp(t *testing.T, a answer) url.Values {
	t.Helper()
	if a.location == nil || !strings.HasPrefix(a.location.String(), sc.app.RedirectURIs[0]) {
		t.Fatalf("want the browser sent back to the app, got %d to %v:\n%s", a.status, a.location, a.body)
	}
	return a.location.Query()
}

// totpCode is the code of an authenticator app, steps time steps away.
func totpCode(t *testing.T, secret string, steps int) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, time.Now().Add(time.Duration(steps)*30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrol gives ada a confirmed second factor and returns its secret; the
// current time step is spent.
func (sc *scene) enrol(t *testing.T) string {
	t.Helper()
	e, err := sc.mfa.Enrol(t.Context(), sc.ada)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.mfa.Confirm(t.Context(), sc.ada.ID, totpCode(t, e.Secret, 0)); err != nil {
		t.Fatal(err)
	}
	return e.Secret
}

// secretOnPage is the secret an enrolment page shows; continueLink the way
// on from the recovery codes page.
var (
	secretOnPage = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)
	continueLink = regexp.MustCompile(`<a [^>]*href="([^"]+)"`)
)
