package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/storage/pgcluster"
)

// While its database is down, a node answers every request that needs it
// at once (within LATCHKEY_DATABASE_TIMEOUT) with 503, in the shape each
// protocol uses, so that clients retry rather than give up or hang. When
// the database is back, the same process serves again by itself, and what
// clients tried during the outage spent nothing: codes and refresh tokens
// still work, once.
func TestADatabaseOutageAnswers503AndTheNodeRecoversOnItsOwn(t *testing.T) {
	// Not parallel: goleak must see this test's goroutines only.
	leaks := goleak.IgnoreCurrent()
	const dbTimeout = time.Second
	const margin = 500 * time.Millisecond
	pg := pgtest.NewCluster(t)
	n, stopNode := serveOn(t, pg.URL("postgres"), "LATCHKEY_DATABASE_TIMEOUT", dbTimeout.String())

	n.user(t, "ada@example.com")
	rp := n.app(t)
	app := credentials{id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret}
	svc := n.service(t, introspectAnyToken)
	adm := n.automation(t, client.AdminScope)
	b := newBrowser(t, n.issuer)
	tok, _ := b.signedIn(rp, "ada@example.com")
	// A code the app has not exchanged yet when the database goes.
	ar := rp.start("prompt", "none")
	back := b.visit(ar.url).callback(t)
	code := back.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", back)
	}

	if err := pg.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	// timed fails the test if what took longer than the database timeout
	// and a margin, and logs how long it took.
	timed := func(what string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		took := time.Since(start)
		t.Logf("%s during the outage: %v", what, took.Round(time.Millisecond))
		if took > dbTimeout+margin {
			t.Errorf("%s took %v during the outage, more than the database timeout %v and %v", what, took, dbTimeout, margin)
		}
	}
	bearer, _ := http.NewRequest(http.MethodGet, n.issuer+"/oauth2/userinfo", nil)
	bearer.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	for _, tt := range []struct {
		name string
		req  *http.Request
	}{
		{"token: client credentials", svc.tokenRequest(n.issuer)},
		{"token: refresh", app.form(n.issuer+"/oauth2/token", url.Values{
			"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})},
		{"token: code", app.form(n.issuer+"/oauth2/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rp.oauth.RedirectURL}, "code_verifier": {ar.verifier}})},
		{"introspection", svc.form(n.issuer+"/oauth2/introspect", url.Values{"token": {tok.AccessToken}})},
		{"revocation", app.form(n.issuer+"/oauth2/revoke", url.Values{"token": {tok.AccessToken}})},
		{"userinfo", bearer},
	} {
		timed(tt.name, func() {
			resp, err := http.DefaultClient.Do(tt.req)
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
				!strings.Contains(string(raw), `"error":"temporarily_unavailable"`) || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s: %d %s, Retry-After %q, %s; want 503 temporarily_unavailable with Retry-After",
					tt.name, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), raw)
			}
		})
	}

	// Latchkey cannot read the client, so it cannot trust the redirect URI
	// and must not send the browser there (RFC 6749 §4.1.2.1): the user
	// gets a page, which must say the server is unavailable (503), not that
	// the app's request was wrong. Had it read the client, the error would
	// go back to the app as temporarily_unavailable, the code §4.1.2.1 has
	// for this because a redirect cannot carry a 503.
	for name, who := range map[string]*browser{"a signed-in browser": b, "a new browser": newBrowser(t, n.issuer)} {
		timed("authorization endpoint, "+name, func() {
			req := rp.start()
			p := who.visit(req.url)
			if p.location != nil {
				q := p.location.Query()
				if !strings.HasPrefix(p.location.String(), rp.oauth.RedirectURL+"?") || q.Get("error") != "temporarily_unavailable" ||
					q.Get("state") != req.state || q.Get("iss") != n.issuer {
					t.Errorf("authorization endpoint, %s: redirected to %s, want the app's redirect URI with error=temporarily_unavailable, state and iss",
						name, p.location)
				}
				return
			}
			if p.status != http.StatusServiceUnavailable || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
				t.Errorf("authorization endpoint, %s: %d %s, want a 503 page:\n%s", name, p.status, p.header.Get("Content-Type"), p.body)
			}
		})
	}

	for _, base := range []string{n.issuer, n.admin} {
		timed("readiness at "+base, func() {
			status, body := httpGet(t, base+"/readyz")
			if status != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) {
				t.Errorf("%s/readyz: %d %s, want 503", base, status, body)
			}
		})
	}
	timed("admin API", func() {
		ans := adm.call(http.MethodGet, "/admin/clients", nil)
		ans.problem(t, http.StatusServiceUnavailable, "")
		if ans.header.Get("Retry-After") == "" {
			t.Error("the admin API's 503 has no Retry-After")
		}
	})

	// Back on the same directory and socket: the node's URL is good again.
	restarted, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: pg.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Stop(context.Background()) })
	if restarted.URL("postgres") != pg.URL("postgres") {
		t.Fatalf("the restarted cluster is at %s, not %s", restarted.URL("postgres"), pg.URL("postgres"))
	}
	waitFor(t, "the node to be ready again without a restart", func() bool {
		status, _ := httpGet(t, n.admin+"/readyz")
		return status == http.StatusOK
	})

	// First the access token, which refreshing revokes.
	if got := svc.introspect(t, n.issuer, tok.AccessToken); got["active"] != true {
		t.Errorf("the access token after the outage: %v, want active", got)
	}
	rp.finish(t, ar, back)
	if _, err := rp.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(ar.verifier)); !isInvalidGrant(err) {
		t.Errorf("the code a second time: %v, want invalid_grant", err)
	}
	refreshed(t, rp, tok)
	if _, err := rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); !isInvalidGrant(err) {
		t.Errorf("the refresh token a second time: %v, want invalid_grant", err)
	}
	svc.token(t, n.issuer)

	if err := stopNode(); err != nil {
		t.Fatalf("the node stopped with %v", err)
	}
	if err := restarted.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	goleak.VerifyNone(t, leaks,
		// Two libraries start a goroutine per node that nothing can stop,
		// holding no connection: scs's default in-memory store, replaced
		// at once by the Postgres one (its StopCleanup races with the
		// goroutine's start), and the ristretto cache fosite's JWKS fetcher
		// makes for itself even when given another.
		goleak.IgnoreTopFunction("github.com/alexedwards/scs/v2/memstore.(*MemStore).startCleanup"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto.(*Cache[...]).processItems"),
	)
}

func isInvalidGrant(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

// serveOn serves a node in-process as `latchkey serve --migrate` does, on
// the database at dbURL, with settings (name, value, ...), and waits until
// it is ready. stop ends it and returns what serving returned; the test's
// end stops it too.
func serveOn(t *testing.T, dbURL string, settings ...string) (n *node, stop func() error) {
	t.Helper()
	pub, issuer := loopback(t)
	adm, adminURL := loopback(t)
	env := vars{
		"LATCHKEY_DATABASE_URL": dbURL,
		"LATCHKEY_ISSUER":       issuer,
		"LATCHKEY_SECRETS":      testSecret,
	}
	for i := 0; i+1 < len(settings); i += 2 {
		env[settings[i]] = settings[i+1]
	}
	cfg := testConfig(t, env)
	store, err := openStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveNode(ctx, cfg, store, quietLogger(), nil, pub, adm) }()
	var stopped bool
	var result error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-served
			store.Close()
		}
		return result
	}
	t.Cleanup(func() { _ = stop() })
	waitFor(t, "the node to be ready", func() bool {
		status, _ := httpGet(t, adminURL+"/readyz")
		return status == http.StatusOK
	})
	return nodeOn(t, store, issuer, adminURL), stop
}
