package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/proctest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/postgres"
)

// Several nodes share one database behind one issuer name, as behind a load
// balancer. Nothing a node keeps in memory may make them disagree: tokens,
// browser sessions, signing keys, clients and second-factor throttles are
// the same on every node, at once.
func TestNodesOfAClusterAgree(t *testing.T) {
	t.Parallel()
	c := startCluster(t, "LATCHKEY_MFA_MAX_FAILURES", "2", "LATCHKEY_KEYS_RELOAD_INTERVAL", "1h")
	n := c.node
	a, b := c.a.public, c.b.public

	// The subtests run one after another: a key rotation (below) makes
	// tokens that the other node can verify only once it has heard of the
	// new key, which would race with the token checks.
	t.Run("a token issued on one node is valid and revocable on the other", func(t *testing.T) {
		rs := n.service(t, introspectAnyToken)
		for _, format := range []string{client.FormatOpaque, client.FormatJWT} {
			svc := n.service(t, func(c *client.Client) { c.AccessTokenFormat = format })
			token := svc.token(t, a)
			if got := rs.introspect(t, b, token); got["active"] != true || got["client_id"] != svc.id {
				t.Fatalf("%s token from A, introspected on B: %v, want active for %s", format, got, svc.id)
			}
			if status := svc.revoke(t, b, token); status != http.StatusOK {
				t.Fatalf("%s token: revocation on B answered %d", format, status)
			}
			if got := rs.introspect(t, a, token); got["active"] != false {
				t.Fatalf("%s token revoked on B is still active on A: %v", format, got)
			}
		}
	})

	t.Run("a browser signed in on one node is signed in on the other", func(t *testing.T) {
		n.user(t, "grace@example.com")
		rp := n.app(t)
		onA := newBrowser(t, a)
		_, first := onA.signedIn(rp, "grace@example.com")

		// Cookies belong to a host, not a port: the jar sends A's session
		// cookie to B, as a browser sends it to every node behind one name.
		viaB := rp.via(b)
		ar := viaB.start("prompt", "none")
		back := onA.at(b).visit(ar.url).callback(t)
		if back.Query().Get("iss") != n.issuer {
			t.Errorf("B's callback has iss %q, want the cluster's issuer %q", back.Query().Get("iss"), n.issuer)
		}
		_, again := viaB.finish(t, ar, back)
		if again.Subject != first.Subject {
			t.Fatalf("B signed in %s silently, want %s", again.Subject, first.Subject)
		}
	})

	t.Run("a key rotated on one node signs and is published on the other at once", func(t *testing.T) {
		adm := n.automation(t, client.AdminScope)
		if ka, kb := jwksKIDs(t, a), jwksKIDs(t, b); !slices.Equal(ka, kb) || len(ka) != len(keys.Algorithms) {
			t.Fatalf("nodes started together publish %v and %v, want the same key per algorithm", ka, kb)
		}
		var fresh []string
		var rs256 string
		for _, k := range adm.call(http.MethodPost, "/admin/keys/rotate", nil).must(t, http.StatusOK).items() {
			fresh = append(fresh, k["kid"].(string))
			if k["alg"] == "RS256" {
				rs256 = k["kid"].(string)
			}
		}
		rotated := time.Now()
		// B reloads its keys only hourly by itself: only the announcement
		// can bring the new keys in time.
		for kids := jwksKIDs(t, b); !containsAll(kids, fresh); kids = jwksKIDs(t, b) {
			if time.Since(rotated) > 2*time.Second {
				t.Fatalf("2s after a rotation on A, B publishes %v, without the new keys %v", kids, fresh)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("B published the keys rotated on A after %v", time.Since(rotated).Round(time.Millisecond))

		svc := n.service(t, func(c *client.Client) { c.AccessTokenFormat = client.FormatJWT })
		header, _, _ := strings.Cut(svc.token(t, b), ".")
		if kid := decodeSegment(t, header)["kid"]; kid != rs256 {
			t.Fatalf("B signs with %v after the rotation, want the new key %s", kid, rs256)
		}
	})

	t.Run("a client deleted on one node gets no token from the other", func(t *testing.T) {
		adm := n.automation(t, client.AdminScope)
		// B hears of the deletion by NOTIFY, milliseconds after A answers;
		// a request in between finds the client in B's cache, and must be
		// refused all the same (the token's foreign key refuses it), as
		// invalid_client. Several clients, so that some request falls in
		// that window.
		for i := range 40 {
			svc := n.service(t)
			// Twice, so that B answers from its client cache.
			svc.token(t, b)
			svc.token(t, b)
			adm.call(http.MethodDelete, "/admin/clients/"+svc.id, nil).must(t, http.StatusNoContent)
			status, body := doJSON(t, svc.tokenRequest(b))
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Fatalf("client %d: B, right after the client was deleted on A: %d %v, want 401 invalid_client", i, status, body)
			}
		}
	})

	t.Run("wrong codes entered on one node count on the other", func(t *testing.T) {
		u := n.user(t, "mfa@example.com")
		secret := n.enrol(t, u)
		rp := n.app(t)
		onA := newBrowser(t, a)
		p := onA.signIn(onA.visit(rp.start().url), "mfa@example.com", testPassword)
		for i := range 2 {
			if p = onA.secondFactor(p, "000000"); p.status != http.StatusOK || !strings.Contains(p.body, "That code is not valid") {
				t.Fatalf("wrong code %d on A: %d", i+1, p.status)
			}
		}
		p = onA.at(b).secondFactor(p, totpCode(t, secret, 1))
		if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" {
			t.Fatalf("the right code on B after two wrong ones on A (limit 2): %d, Retry-After %q; want 429",
				p.status, p.header.Get("Retry-After"))
		}
	})
}

// A node is restarted, as in a rolling deploy, while clients keep asking
// both nodes for tokens. A client may see a refused connection or a 503,
// which it retries, but never half an answer, and nothing a client was
// given is lost.
func TestARestartUnderLoadLosesNoAnswerAndNoToken(t *testing.T) {
	t.Parallel()
	const shutdownTimeout = 5 * time.Second
	c := startCluster(t, "LATCHKEY_SHUTDOWN_TIMEOUT", shutdownTimeout.String())
	n := c.node
	n.user(t, "ada@example.com")
	rp := n.app(t)
	app := credentials{id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret}
	chains := make([]*refreshChain, 3)
	for i := range chains {
		tok, _ := newBrowser(t, n.issuer).signedIn(rp, "ada@example.com")
		chains[i] = &refreshChain{access: tok.AccessToken, refresh: tok.RefreshToken}
	}
	nodes := []*serveProcess{c.a, c.b}

	// The load stays below the per-client rate limits: it is about
	// restarts, not about limits. Each service is a client of its own.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 20 * time.Second}
	defer hc.CloseIdleConnections()
	l := &load{}
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stopLoad(); wg.Wait() }()
	for w := range 4 {
		svc := n.service(t)
		wg.Go(func() {
			pace := time.NewTicker(25 * time.Millisecond)
			defer pace.Stop()
			for i := w; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-pace.C:
				}
				at := i % len(nodes)
				e := send(hc, nodes[at].public+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}}, svc)
				if l.record(e, at, "client credentials") {
					l.issued(e.body, at)
				}
			}
		})
	}
	for _, ch := range chains {
		wg.Go(func() { ch.run(ctx, l, hc, nodes, app) })
	}

	// About a second of load before the restart and a second after it.
	waitFor(t, "the load to get answers from both nodes", func() bool { return l.answered(0) >= 80 && l.answered(1) >= 80 })
	took := c.a.terminate(t)
	if took > shutdownTimeout {
		t.Errorf("A took %v to stop after SIGTERM, more than LATCHKEY_SHUTDOWN_TIMEOUT (%v)", took, shutdownTimeout)
	}
	c.a.start(t)
	c.a.waitReady(t)
	before := l.answered(0)
	waitFor(t, "the restarted A to answer the load", func() bool { return l.answered(0) >= before+80 })
	stopLoad()
	wg.Wait()

	l.mu.Lock()
	t.Logf("A stopped in %v; the load got %d answers (A %d, B %d), %d refused connections, %d 503s, %d access tokens",
		took.Round(time.Millisecond), l.ok[0]+l.ok[1], l.ok[0], l.ok[1], l.refused, l.unavailable, len(l.tokens))
	for i, p := range l.problems {
		if i == 20 {
			t.Errorf("... and %d more", len(l.problems)-i)
			break
		}
		t.Error(p)
	}
	refused, tokens := l.refused, l.tokens
	l.mu.Unlock()
	if refused == 0 {
		t.Error("no request met the stopped node: the test did not exercise the restart")
	}

	// Each token is introspected on the node that did not issue it, by one
	// of several resource servers so that none reaches its rate limit.
	introspectors := make([]credentials, 8)
	for i := range introspectors {
		introspectors[i] = n.service(t, introspectAnyToken)
	}
	var lost sync.Map
	var check sync.WaitGroup
	for i, rs := range introspectors {
		check.Go(func() {
			for j := i; j < len(tokens); j += len(introspectors) {
				tok := tokens[j]
				e := send(hc, nodes[1-tok.node].public+"/oauth2/introspect", url.Values{"token": {tok.value}}, rs)
				if e.status != http.StatusOK || e.body["active"] != true {
					lost.Store(j, fmt.Sprintf("access token %d (from %s): %d %v %v", j, nodes[tok.node].name, e.status, e.body, e.err))
				}
			}
		})
	}
	check.Wait()
	lost.Range(func(_, v any) bool { t.Error(v); return true })

	// Refreshing revokes a grant's earlier access tokens, so each chain
	// counts its last one; its last refresh token works exactly once.
	rs := introspectors[0]
	for i, ch := range chains {
		if got := rs.introspect(t, c.b.public, ch.access); got["active"] != true {
			t.Errorf("chain %d: the last access token is not active: %v", i, got)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ch.refresh}}
		if e := send(hc, c.a.public+"/oauth2/token", form, app); e.status != http.StatusOK || e.body["refresh_token"] == nil {
			t.Errorf("chain %d: the last refresh token, first use: %d %v %v", i, e.status, e.body, e.err)
		}
		if e := send(hc, c.b.public+"/oauth2/token", form, app); e.status != http.StatusBadRequest || e.body["error"] != "invalid_grant" {
			t.Errorf("chain %d: the last refresh token, second use: %d %v, want 400 invalid_grant", i, e.status, e.body)
		}
	}
}

// refreshChain is an app refreshing one grant over and over, as an app
// keeps a user signed in.
type refreshChain struct {
	access, refresh string
}

// run refreshes until ctx ends, at each node in turn. After a clean
// failure it retries with the same refresh token, as an app must; the
// server must not have spent it.
func (ch *refreshChain) run(ctx context.Context, l *load, hc *http.Client, nodes []*serveProcess, app credentials) {
	pace := time.NewTicker(50 * time.Millisecond)
	defer pace.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-pace.C:
		}
		at := i % len(nodes)
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ch.refresh}}
		e := send(hc, nodes[at].public+"/oauth2/token", form, app)
		if e.status/100 == 4 {
			// A token this chain was given and never used is refused: a
			// request whose answer never came spent it.
			l.fail("refresh at %s: %d %v; the chain is broken", nodes[at].name, e.status, e.body)
			return
		}
		if !l.record(e, at, "refresh") {
			continue
		}
		access, _ := e.body["access_token"].(string)
		refresh, _ := e.body["refresh_token"].(string)
		if access == "" || refresh == "" {
			l.fail("refresh at %s: 200 without both tokens: %v", nodes[at].name, e.body)
			return
		}
		ch.access, ch.refresh = access, refresh
	}
}

// load tallies what a load's requests got.
type load struct {
	mu          sync.Mutex
	ok          [2]int // whole answers, per node
	refused     int    // connections that failed before any answer
	unavailable int    // 503s
	tokens      []issuedToken
	problems    []string
}

// issuedToken is an access token a client got, and the node that gave it.
type issuedToken struct {
	value string
	node  int
}

// record tallies an exchange with node at and reports whether it was a
// whole 200 answer. Anything but a whole answer, a clean connection
// failure or a 503 in the protocol's error shape is a problem.
func (l *load) record(e exchange, at int, what string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case e.err != nil && cleanConnectionFailure(e.err):
		l.refused++
	case e.err != nil:
		l.problems = append(l.problems, fmt.Sprintf("%s at node %d: %v", what, at, e.err))
	case e.truncated != nil:
		l.problems = append(l.problems, fmt.Sprintf("%s at node %d: status %d with an incomplete body: %v", what, at, e.status, e.truncated))
	case e.status == http.StatusServiceUnavailable && e.body["error"] != nil:
		l.unavailable++
	case e.status == http.StatusOK:
		l.ok[at]++
		return true
	default:
		l.problems = append(l.problems, fmt.Sprintf("%s at node %d: %d %v", what, at, e.status, e.body))
	}
	return false
}

// issued keeps the access token of a whole client credentials answer.
func (l *load) issued(body map[string]any, at int) {
	token, _ := body["access_token"].(string)
	l.mu.Lock()
	defer l.mu.Unlock()
	if typ, _ := body["token_type"].(string); token == "" || !strings.EqualFold(typ, "bearer") {
		l.problems = append(l.problems, fmt.Sprintf("client credentials at node %d: 200 without a bearer token: %v", at, body))
		return
	}
	l.tokens = append(l.tokens, issuedToken{token, at})
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

func (l *load) answered(at int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ok[at]
}

// cleanConnectionFailure reports whether err means the request got no
// answer at all: the connection was refused, or reset or closed before a
// response began. A client retries those.
func cleanConnectionFailure(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "server closed idle connection")
}

// exchange is one request and how it ended.
type exchange struct {
	status int
	body   map[string]any
	// err says no response arrived; truncated that a response arrived but
	// its body did not arrive whole, or is not JSON.
	err, truncated error
}

// send posts form to endpoint as the client cr, without failing the test,
// so that goroutines can use it.
func send(hc *http.Client, endpoint string, form url.Values, cr credentials) exchange {
	resp, err := hc.Do(cr.form(endpoint, form))
	if err != nil {
		return exchange{err: err}
	}
	defer resp.Body.Close()
	e := exchange{status: resp.StatusCode}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.truncated = err
		return e
	}
	if err := json.Unmarshal(raw, &e.body); err != nil {
		e.truncated = fmt.Errorf("not a JSON object: %q", raw)
	}
	return e
}

// credentials are a confidential client's ID and secret.
type credentials struct{ id, secret string }

// service registers a backend that uses the client credentials grant.
func (n *node) service(t *testing.T, edit ...func(*client.Client)) credentials {
	t.Helper()
	c := client.Client{Name: "service", GrantTypes: []string{client.GrantClientCredentials}, Scope: "reports.read"}
	for _, e := range edit {
		e(&c)
	}
	created, secret, err := n.clients.Create(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return credentials{id: created.ID, secret: secret}
}

// introspectAnyToken makes a service a resource server an admin allowed to
// introspect every access token, not only its own and those for it.
func introspectAnyToken(c *client.Client) { c.IntrospectAnyToken = true }

// tokenRequest asks the node at base for a token with the client
// credentials grant.
func (cr credentials) tokenRequest(base string) *http.Request {
	return cr.form(base+"/oauth2/token", url.Values{"grant_type": {"client_credentials"}})
}

func (cr credentials) token(t *testing.T, base string) string {
	t.Helper()
	status, body := doJSON(t, cr.tokenRequest(base))
	token, _ := body["access_token"].(string)
	if status != http.StatusOK || token == "" {
		t.Fatalf("client credentials for %s at %s: %d %v", cr.id, base, status, body)
	}
	return token
}

// introspect asks the node at base about token, as the resource server cr.
func (cr credentials) introspect(t *testing.T, base, token string) map[string]any {
	t.Helper()
	status, body := doJSON(t, cr.form(base+"/oauth2/introspect", url.Values{"token": {token}}))
	if status != http.StatusOK {
		t.Fatalf("introspection at %s: %d %v", base, status, body)
	}
	return body
}

// revoke revokes one of cr's own tokens at the node at base (RFC 7009).
func (cr credentials) revoke(t *testing.T, base, token string) int {
	t.Helper()
	status, _ := doJSON(t, cr.form(base+"/oauth2/revoke", url.Values{"token": {token}}))
	return status
}

// form is a POST of form to endpoint, authenticated as cr with HTTP Basic
// (client_secret_basic, each part form-encoded as RFC 6749 §2.3.1 says).
func (cr credentials) form(endpoint string, form url.Values) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(cr.id), url.QueryEscape(cr.secret))
	return req
}

// at is the same browser, with the same cookies, talking to the node at
// base: behind a load balancer, one browser's requests reach any node.
func (b *browser) at(base string) *browser {
	other := &browser{t: b.t, issuer: base}
	other.http = &http.Client{Jar: b.http.Jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), other.issuer+"/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return other
}

// via is the same app sending its users and its token requests to the node
// at base instead of the issuer's address. ID tokens still come from the
// issuer and verify against its keys.
func (rp *relyingParty) via(base string) *relyingParty {
	cfg := *rp.oauth
	cfg.Endpoint.AuthURL = rebase(cfg.Endpoint.AuthURL, base)
	cfg.Endpoint.TokenURL = rebase(cfg.Endpoint.TokenURL, base)
	other := *rp
	other.oauth = &cfg
	return &other
}

// rebase moves u to the scheme and host of base.
func rebase(u, base string) string {
	to, _ := url.Parse(u)
	b, _ := url.Parse(base)
	to.Scheme, to.Host = b.Scheme, b.Host
	return to.String()
}

func jwksKIDs(t *testing.T, base string) []string {
	t.Helper()
	status, body := httpGet(t, base+"/.well-known/jwks.json")
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(body, &set); status != http.StatusOK || err != nil {
		t.Fatalf("JWKS at %s: %d %v", base, status, err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// cluster is two nodes, a and b, each a `latchkey serve` process, on one
// database and under one issuer: a's public URL, the one name a load
// balancer would present.
type cluster struct {
	a, b *serveProcess
	// node sets users and clients up in the shared database; its issuer
	// and admin API are a's.
	node *node
}

// startCluster starts two nodes on a fresh database, together, as a
// deployment does, with settings (name, value, ...) added to both
// environments, and waits until both are ready.
func startCluster(t *testing.T, settings ...string) *cluster {
	t.Helper()
	bin := buildLatchkey(t, t.TempDir())
	dbURL := pgtest.URL(t)
	aPublic, aAdmin, bPublic, bAdmin := proctest.FreeAddr(t), proctest.FreeAddr(t), proctest.FreeAddr(t), proctest.FreeAddr(t)
	issuer := "http://" + aPublic
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"LATCHKEY_DATABASE_URL=" + dbURL,
		"LATCHKEY_ISSUER=" + issuer,
		"LATCHKEY_SECRETS=" + testSecret,
		"LATCHKEY_LOG_FORMAT=text",
	}
	shutdown := 15 * time.Second // the default
	for i := 0; i+1 < len(settings); i += 2 {
		env = append(env, settings[i]+"="+settings[i+1])
		if settings[i] == "LATCHKEY_SHUTDOWN_TIMEOUT" {
			var err error
			if shutdown, err = time.ParseDuration(settings[i+1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := &cluster{
		a: newServeProcess("A", bin, env, aPublic, aAdmin, shutdown),
		b: newServeProcess("B", bin, env, bPublic, bAdmin, shutdown),
	}
	c.a.start(t)
	c.b.start(t)
	c.a.waitReady(t)
	c.b.waitReady(t)

	store, err := postgres.Open(dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	c.node = nodeOn(t, store, issuer, c.a.admin)
	c.node.dbURL = dbURL
	return c
}

// nodeOn gives a test the managers a node has, on store, to set users and
// clients up, and the URLs at which it reaches the node serving store.
func nodeOn(t *testing.T, store *postgres.Store, issuer, admin string) *node {
	t.Helper()
	box, err := seal.New([][]byte{[]byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	auditLog := audit.New(store, quietLogger())
	return &node{
		issuer:  issuer,
		admin:   admin,
		store:   store,
		users:   identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{}),
		mfa:     identity.NewMFA(store, box, "test", identity.Throttle{MaxFailures: 100, Window: time.Hour}, auditLog),
		clients: client.NewManager(store, auditLog, time.Hour),
	}
}

// serveProcess is `latchkey serve` as an OS process of its own, as a node
// runs in production: the test reaches it only over HTTP and by signals.
// It keeps its addresses across restarts.
type serveProcess struct {
	name string
	bin  string
	env  []string
	// public and admin are the base URLs of its listeners.
	public, admin string
	// shutdown is its LATCHKEY_SHUTDOWN_TIMEOUT.
	shutdown time.Duration
	run      *proctest.Process
}

func newServeProcess(name, bin string, env []string, public, admin string, shutdown time.Duration) *serveProcess {
	return &serveProcess{
		name: name, bin: bin, shutdown: shutdown,
		env:    append(slices.Clip(env), "LATCHKEY_PUBLIC_ADDR="+public, "LATCHKEY_ADMIN_ADDR="+admin),
		public: "http://" + public,
		admin:  "http://" + admin,
	}
}

// start starts a run, stopped when the test ends if it still runs;
// waitReady waits until it serves.
func (p *serveProcess) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(p.bin, "serve", "--migrate")
	cmd.Env = p.env
	p.run = proctest.Start(t, "node "+p.name, cmd)
}

// waitReady waits until the node answers /readyz with 200.
func (p *serveProcess) waitReady(t *testing.T) {
	t.Helper()
	p.run.AwaitHTTP(t, p.admin+"/readyz", time.Minute)
}

// terminate stops the node as an orchestrator does, with SIGTERM, checks
// that it exits with status 0, and returns how long it took.
func (p *serveProcess) terminate(t *testing.T) time.Duration {
	t.Helper()
	took, err := p.run.Stop(t, syscall.SIGTERM, p.shutdown+10*time.Second)
	if err != nil {
		t.Fatalf("node %s exited with %v after SIGTERM, want status 0\n%s", p.name, err, p.run.Output().Tail(20))
	}
	return took
}
