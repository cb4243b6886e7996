package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/roles"
	"github.com/latchkey/latchkey/pkg/seal"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var testSecret = []byte("test-secret-test-secret-test-secret-0123")

// fixtureStore is the store as the fixture uses it: the protocol's, and
// the consents the token endpoint checks.
type fixtureStore interface {
	Store
	GrantConsent(ctx context.Context, userID, clientID string, scopes []string) error
}

// fixture is one Latchkey node on its own database, served over real HTTP.
type fixture struct {
	// dbURL lets a test reach into the database the way an operator (or a
	// failing disk) would.
	dbURL    string
	store    fixtureStore
	keys     *keys.Manager
	provider *Provider
	clients  *client.Manager
	issuer   string
	server   *httptest.Server
	// user is who signIn signs in: a real user, whom the token endpoint
	// checks is still allowed each time a code or refresh token is used.
	user *identity.User
	// logs is what the node logged.
	logs *lockedBuffer
}

// newFixture starts a node. opts may adjust the configuration.
func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	return newFixtureOn(t, pgtest.URL(t), opts...)
}

// newFixtureOn starts a node on the database at dbURL.
func newFixtureOn(t *testing.T, dbURL string, opts ...func(*Config)) *fixture {
	t.Helper()
	store := pgtest.OpenWithin(t, dbURL, 2*time.Second)
	// As serve does: the client cache is on, and every test exercises it.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.ListenForChanges(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), func() {}, nil, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
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
	cfg := Config{
		Issuer:                    issuer,
		Secrets:                   [][]byte{testSecret},
		AccessTokenLifespan:       15 * time.Minute,
		RefreshTokenLifespan:      24 * time.Hour,
		IDTokenLifespan:           time.Hour,
		AuthorizationCodeLifespan: 5 * time.Minute,
		EnforcePKCE:               true,
		AccessTokenSigningAlg:     jose.RS256,
	}
	for _, o := range opts {
		o(&cfg)
	}
	users := identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{})
	p, err := New(cfg, Deps{Store: store, Keys: km, Logger: logger, Audit: auditLog, Users: users,
		Roles: roles.NewManager(store, auditLog)})
	if err != nil {
		t.Fatal(err)
	}
	// Several fixtures may share a database: each has a user of its own.
	user, err := users.Create(t.Context(), identity.User{Email: strings.ToLower(rand.Text()) + "@example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(discovery.TokenPath, p.Token)
	mux.HandleFunc(discovery.IntrospectionPath, p.Introspect)
	mux.HandleFunc(discovery.RevocationPath, p.Revoke)
	mux.HandleFunc(discovery.JWKSPath, km.ServeJWKS)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return &fixture{dbURL: dbURL, store: store, keys: km, provider: p, clients: client.NewManager(store, auditLog, 24*time.Hour),
		issuer: issuer, server: srv, user: user, logs: logs}
}

// lockedBuffer is a log sink the node's goroutines may write to at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sql runs statements on the fixture's database.
func (f *fixture) sql(t *testing.T, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

// count runs a query that returns one number.
func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// register creates a client and returns it with its secret.
func (f *fixture) register(t *testing.T, c client.Client) (*client.Client, string) {
	t.Helper()
	created, secret, err := f.clients.Create(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return created, secret
}

// resourceServer registers the client of a resource server that an admin
// allowed to introspect every access token (introspect_any_token), and
// returns it with its secret.
func (f *fixture) resourceServer(t *testing.T) (*client.Client, string) {
	t.Helper()
	return f.backend(t, "", func(c *client.Client) { c.IntrospectAnyToken = true })
}

// backend registers a client-credentials client allowed scope.
func (f *fixture) backend(t *testing.T, scope string, edit ...func(*client.Client)) (*client.Client, string) {
	t.Helper()
	c := client.Client{Name: "backend", GrantTypes: []string{client.GrantClientCredentials}, Scope: scope}
	for _, e := range edit {
		e(&c)
	}
	return f.register(t, c)
}

// webApp registers a client for the code flow that may get refresh tokens.
func (f *fixture) webApp(t *testing.T) (*client.Client, string) {
	t.Helper()
	return f.register(t, client.Client{
		Name:         "web app",
		GrantTypes:   []string{client.GrantAuthorizationCode, client.GrantRefreshToken},
		RedirectURIs: []string{"https://app.example.com/callback"},
		Scope:        "openid offline_access profile",
	})
}

// cc is a golang.org/x/oauth2 client-credentials configuration for a client.
func (f *fixture) cc(id, secret string, style oauth2.AuthStyle, scopes ...string) *clientcredentials.Config {
	return &clientcredentials.Config{
		ClientID:     id,
		ClientSecret: secret,
		TokenURL:     f.issuer + discovery.TokenPath,
		Scopes:       scopes,
		AuthStyle:    style,
	}
}

// token gets a client-credentials token as a backend would.
func (f *fixture) token(t *testing.T, id, secret string, scopes ...string) *oauth2.Token {
	t.Helper()
	tok, err := f.cc(id, secret, oauth2.AuthStyleInHeader, scopes...).Token(t.Context())
	if err != nil {
		t.Fatalf("client credentials for %s: %v", id, err)
	}
	return tok
}

// post sends a form to an endpoint with Basic credentials, as a resource
// server does, and decodes the JSON answer.
func (f *fixture) post(t *testing.T, path, id, secret string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("POST %s: %d with a body that is not JSON: %q", path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, resp.Header, body
}

// introspect asks whether token is active, as resource server rs.
func (f *fixture) introspect(t *testing.T, rsID, rsSecret, token string) map[string]any {
	t.Helper()
	status, _, body := f.post(t, discovery.IntrospectionPath, rsID, rsSecret, url.Values{"token": {token}})
	if status != http.StatusOK {
		t.Fatalf("introspection answered %d: %v", status, body)
	}
	return body
}

// revoke revokes token as the client it belongs to and returns the status.
func (f *fixture) revoke(t *testing.T, id, secret, token, hint string) int {
	t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	status, _, _ := f.post(t, discovery.RevocationPath, id, secret, form)
	return status
}

// signIn runs the authorization step of the code flow for c as fosite's
// handlers do it once the fixture's user has signed in and consented to
// scopes, and returns the code with its PKCE verifier. (The browser journey
// that leads here is the UI's business; this is the protocol's half.)
func (f *fixture) signIn(t *testing.T, c *client.Client, scopes ...string) (code, verifier string) {
	t.Helper()
	if err := f.store.GrantConsent(t.Context(), f.user.ID, c.ID, scopes); err != nil {
		t.Fatal(err)
	}
	subject := f.user.ID
	verifier = oauth2.GenerateVerifier()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {c.RedirectURIs[0]},
		"scope":                 {strings.Join(scopes, " ")},
		"state":                 {"state-0123456789"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(verifier)},
		"code_challenge_method": {"S256"},
	}
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, f.issuer+"/oauth2/authorize?"+q.Encode(), nil)
	ar, err := f.provider.fosite.NewAuthorizeRequest(t.Context(), req)
	if err != nil {
		t.Fatalf("authorize request: %v", err)
	}
	for _, s := range scopes {
		ar.GrantScope(s)
	}
	session := NewSession()
	session.Subject = subject
	session.Claims.Subject = subject
	session.Claims.AuthTime = time.Now()
	session.Claims.RequestedAt = session.Claims.AuthTime
	resp, err := f.provider.fosite.NewAuthorizeResponse(t.Context(), ar, session)
	if err != nil {
		t.Fatalf("authorize response: %v", err)
	}
	return resp.GetCode(), verifier
}

// signedIn registers a web app, signs the fixture's user in to it with
// refresh tokens allowed, and returns the app, its secret and its first
// tokens.
func (f *fixture) signedIn(t *testing.T) (*client.Client, string, *oauth2.Token) {
	t.Helper()
	app, secret := f.webApp(t)
	code, verifier := f.signIn(t, app, "openid", "offline_access")
	tok, err := f.exchange(t.Context(), app, secret, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	return app, secret, tok
}

// web is a golang.org/x/oauth2 code-flow configuration for a client.
func (f *fixture) web(c *client.Client, secret string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.ID,
		ClientSecret: secret,
		RedirectURL:  c.RedirectURIs[0],
		Endpoint: oauth2.Endpoint{
			TokenURL:  f.issuer + discovery.TokenPath,
			AuthStyle: oauth2.AuthStyleInHeader,
		},
	}
}

// exchange trades a code for tokens as a web app does.
func (f *fixture) exchange(ctx context.Context, c *client.Client, secret, code, verifier string) (*oauth2.Token, error) {
	return f.web(c, secret).Exchange(ctx, code, oauth2.VerifierOption(verifier))
}

// refresh redeems a refresh token once, bypassing x/oauth2's caching.
func (f *fixture) refresh(ctx context.Context, c *client.Client, secret, refreshToken string) (*oauth2.Token, error) {
	expired := &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)}
	return f.web(c, secret).TokenSource(ctx, expired).Token()
}

// errorCode returns the RFC 6749 error code an x/oauth2 call failed with.
func errorCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}
