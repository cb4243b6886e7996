package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/proctest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// logoutReceiver is an app's back-channel logout endpoint, written as
// OpenID Connect Back-Channel Logout 1.0 §2.6 tells an app to validate a
// logout token: the signature against the provider's JWKS (go-oidc's
// remote key set), typ logout+jwt, iss, aud (its own client ID), iat and
// exp, a jti, sid and sub, the back-channel logout event, and no nonce.
// It answers 200 to a valid token and 400 to anything else (§2.8).
type logoutReceiver struct {
	t   *testing.T
	srv *httptest.Server
	url string
	// issuers are what the token's iss may be (one per node: test nodes
	// each have their own), jwks where its keys are published, clientID
	// its aud, set once the app is registered.
	issuers  []string
	jwks     string
	clientID atomic.Pointer[string]

	// down makes it answer 503 without reading the request.
	down atomic.Bool
	// hold, when set, keeps the next valid token's request waiting until
	// released; holding tells that one is waiting.
	hold    atomic.Pointer[chan struct{}]
	holding chan struct{}

	mu  sync.Mutex
	got []logoutToken
	bad []string
}

// logoutToken is a logout token that verified.
type logoutToken struct {
	raw                     string
	alg, kid                string
	iss, sub, sid, jti, aud string
	iat, exp                int64
}

func newLogoutReceiver(t *testing.T, issuer string, otherNodes ...string) *logoutReceiver {
	t.Helper()
	r := &logoutReceiver{t: t, issuers: append([]string{issuer}, otherNodes...), jwks: issuer + "/.well-known/jwks.json",
		holding: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.url = r.srv.URL + "/backchannel-logout"
	return r
}

// register is a client edit registering the receiver as the client's
// backchannel_logout_uri.
func (r *logoutReceiver) register(c *client.Client) {
	c.BackchannelLogoutURI = r.url
}

func (r *logoutReceiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.down.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	// The form is read before a hold, while the sender is surely there;
	// the token is checked after, when its keys may be served by another
	// node.
	formErr := req.ParseForm()
	if release := r.hold.Swap(nil); release != nil {
		r.holding <- struct{}{}
		<-*release
	}
	tok, err := r.verify(req, formErr)
	if err != nil {
		r.mu.Lock()
		r.bad = append(r.bad, err.Error())
		r.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, tok)
	r.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (r *logoutReceiver) verify(req *http.Request, formErr error) (logoutToken, error) {
	var tok logoutToken
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return tok, fmt.Errorf("%s with %q, want a form POST", req.Method, req.Header.Get("Content-Type"))
	}
	if formErr != nil {
		return tok, formErr
	}
	raw := req.PostForm.Get("logout_token")
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return tok, fmt.Errorf("not a JWS: %w", err)
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "logout+jwt" {
		return tok, fmt.Errorf("typ %q, want logout+jwt", typ)
	}
	tok.raw, tok.alg, tok.kid = raw, h.Algorithm, h.KeyID
	// Not the request's context: a held request's sender may be gone.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	payload, err := oidc.NewRemoteKeySet(ctx, r.jwks).VerifySignature(ctx, raw)
	if err != nil {
		return tok, fmt.Errorf("signature: %w", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return tok, err
	}
	str := func(k string) string { s, _ := c[k].(string); return s }
	num := func(k string) int64 { f, _ := c[k].(float64); return int64(f) }
	tok.iss, tok.sub, tok.sid, tok.jti, tok.aud = str("iss"), str("sub"), str("sid"), str("jti"), str("aud")
	tok.iat, tok.exp = num("iat"), num("exp")
	events, _ := c["events"].(map[string]any)
	event, isObject := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any)
	now := time.Now().Unix()
	switch want := r.clientID.Load(); {
	case !slices.Contains(r.issuers, tok.iss):
		return tok, fmt.Errorf("iss %q, want one of %q", tok.iss, r.issuers)
	case want == nil || tok.aud != *want:
		return tok, fmt.Errorf("aud %v, want this app's client ID", c["aud"])
	case tok.iat == 0 || tok.iat > now+5 || tok.exp <= now || tok.exp-tok.iat > 300:
		return tok, fmt.Errorf("iat %d, exp %d at %d: not a fresh, short-lived token", tok.iat, tok.exp, now)
	case tok.jti == "" || tok.sid == "" || tok.sub == "":
		return tok, fmt.Errorf("jti %q, sid %q, sub %q: all are wanted", tok.jti, tok.sid, tok.sub)
	case !isObject || len(event) != 0 || len(events) != 1:
		return tok, fmt.Errorf("events %v, want exactly the back-channel logout event with {}", c["events"])
	case c["nonce"] != nil:
		return tok, fmt.Errorf("a nonce (%v): a logout token must not have one (§2.4)", c["nonce"])
	}
	return tok, nil
}

// forApp sets the client whose tokens the receiver expects.
func (r *logoutReceiver) forApp(id string) { r.clientID.Store(&id) }

// tokens returns the tokens that verified so far.
func (r *logoutReceiver) tokens() []logoutToken {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// await waits until tokens for every sid have arrived, and fails on any
// that did not verify.
func (r *logoutReceiver) await(t *testing.T, sids ...string) []logoutToken {
	t.Helper()
	waitFor(t, fmt.Sprintf("logout tokens for %d sign-ins", len(sids)), func() bool {
		got := r.tokens()
		for _, sid := range sids {
			if !slices.ContainsFunc(got, func(l logoutToken) bool { return l.sid == sid }) {
				return false
			}
		}
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		t.Fatalf("logout tokens refused by the app: %v", r.bad)
	}
	return slices.Clone(r.got)
}

// holdNext makes the next valid request wait; the function returned
// releases it.
func (r *logoutReceiver) holdNext() func() {
	release := make(chan struct{})
	r.hold.Store(&release)
	var once sync.Once
	return func() { once.Do(func() { close(release) }) }
}

// approve signs in to rp with the browser's session: only the consent
// page, if the app has not been allowed yet.
func (b *browser) approve(rp *relyingParty) {
	b.t.Helper()
	ar := rp.start()
	p := b.visit(ar.url)
	if p.isConsent() {
		p = b.decide(p, "allow")
	}
	rp.finish(b.t, ar, p.callback(b.t))
}

// sidOf reads the sid claim of a raw ID token.
func sidOf(t *testing.T, idToken string) string {
	t.Helper()
	var c struct {
		SID string `json:"sid"`
	}
	jws, err := jose.ParseSignedCompact(idToken, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil || c.SID == "" {
		t.Fatalf("ID token without a sid (%v)", err)
	}
	return c.SID
}

// logoutRows returns the logout outbox's rows as (client, sid, status,
// attempts).
func logoutRows(t *testing.T, dbURL string) [][4]string {
	t.Helper()
	conn := pgtest.Conn(t, dbURL)
	// Polled in loops: one connection at a time, not one per call until
	// the test ends.
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT client_id, sid, status, attempts::text FROM logout_outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][4]string
	for rows.Next() {
		var r [4]string
		if err := rows.Scan(&r[0], &r[1], &r[2], &r[3]); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEndingASessionInTheBrowserSendsEachAppOfItAVerifiableLogoutToken(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ada := n.user(t, "ada@example.com")
	notesRP, chatRP := newLogoutReceiver(t, n.issuer), newLogoutReceiver(t, n.issuer)
	notes := newWebApp(t, n, notesRP.register)
	// Chat's ID tokens are ES256: its logout tokens must be too, so that
	// it verifies them as it verifies those.
	chat := newWebApp(t, n, chatRP.register, func(c *client.Client) { c.IDTokenSignedResponseAlg = "ES256" })
	// An app without a backchannel_logout_uri is simply not told.
	plain := newWebApp(t, n)
	notesRP.forApp(notes.rp.client.ID)
	chatRP.forApp(chat.rp.client.ID)
	tab := chromiumtest.Tab(t)

	allowAt := func(app *webApp) chromedp.Action[chromedp.Void] {
		return chromedp.Steps(
			chromedp.Navigate(app.url+"/start"),
			chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
			chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
			chromedp.WaitVisible(chromedp.ID("verified")),
		)
	}
	if err := chromedp.Do(tab, signInTo(notes, "ada@example.com"), allowAt(chat), allowAt(plain)); err != nil {
		t.Fatalf("signing in to three apps in one session: %v", err)
	}
	sid := sidOf(t, notes.lastIDToken())
	if sidOf(t, chat.lastIDToken()) != sid {
		t.Fatal("one browser session gave two apps different sids")
	}
	if got := notesRP.tokens(); len(got) != 0 {
		t.Fatalf("logout tokens before any sign-out: %v", got)
	}
	// Only the apps that take logout tokens are recorded against the
	// sign-in: the plain app's sign-in writes nothing more.
	if got := n.rows(t, "session_clients"); got != 2 {
		t.Fatalf("the sign-in is recorded against %d apps, want the 2 with a backchannel_logout_uri", got)
	}

	if err := chromedp.Do(tab, chromedp.Navigate(notes.url+"/logout"), chromedp.WaitVisible(chromedp.ID("bye"))); err != nil {
		t.Fatalf("sign-out: %v", err)
	}
	for _, tt := range []struct {
		rcv *logoutReceiver
		alg string
	}{{notesRP, "RS256"}, {chatRP, "ES256"}} {
		got := tt.rcv.await(t, sid)
		if len(got) != 1 || got[0].sub != ada.ID || got[0].alg != tt.alg {
			t.Fatalf("app %s got %+v, want one token for %s signed %s", tt.rcv.url, got, ada.ID, tt.alg)
		}
	}
	rows := logoutRows(t, n.dbURL)
	if len(rows) != 2 {
		t.Fatalf("logout outbox: %v, want a row for each app with a backchannel_logout_uri", rows)
	}
	// The session is over: the next sign-in asks for the password.
	if err := chromedp.Do(tab, chromedp.Navigate(notes.url+"/start"), chromedp.WaitVisible(chromedp.ID("password"))); err != nil {
		t.Fatalf("sign-in after sign-out: %v", err)
	}
}

func TestAdminSignOutsAndDisablingSendLogoutTokensForEachSessionEnded(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	ada := n.user(t, "ada@example.com")
	rcv := newLogoutReceiver(t, n.issuer)
	rp := n.app(t, rcv.register)
	rcv.forApp(rp.client.ID)
	admin := n.automation(t, client.AdminScope)
	// The admin API takes the field with the redirect URIs' rules.
	admin.call(http.MethodPatch, "/admin/clients/"+rp.client.ID, map[string]any{"backchannel_logout_uri": "http://app.example.com/bcl"}).
		problem(t, http.StatusUnprocessableEntity, "backchannel_logout_uri")
	if got := admin.call(http.MethodGet, "/admin/clients/"+rp.client.ID, nil).must(t, http.StatusOK); got.body["backchannel_logout_uri"] != rcv.url {
		t.Fatalf("the admin API shows backchannel_logout_uri %v, want %s", got.body["backchannel_logout_uri"], rcv.url)
	}
	signIn := func() string {
		_, id := newBrowser(t, n.issuer).signedIn(rp, "ada@example.com")
		var c struct {
			SID string `json:"sid"`
		}
		if err := id.Claims(&c); err != nil || c.SID == "" {
			t.Fatalf("ID token sid: %q, %v", c.SID, err)
		}
		return c.SID
	}

	// One session ended by an admin; the other stays.
	one, other := signIn(), signIn()
	admin.call(http.MethodDelete, "/admin/users/"+ada.ID+"/sessions/"+one, nil).must(t, http.StatusNoContent)
	rcv.await(t, one)
	if slices.ContainsFunc(rcv.tokens(), func(l logoutToken) bool { return l.sid == other }) {
		t.Fatal("ending one session told the app another ended")
	}
	// Signed out everywhere: the rest.
	third := signIn()
	admin.call(http.MethodDelete, "/admin/users/"+ada.ID+"/sessions", nil).must(t, http.StatusNoContent)
	rcv.await(t, other, third)
	// Disabled: the session of the moment.
	fourth := signIn()
	admin.call(http.MethodPost, "/admin/users/"+ada.ID+"/disable", nil).must(t, http.StatusOK)
	got := rcv.await(t, fourth)
	if len(got) != 4 {
		t.Fatalf("%d logout tokens, want one for each of 4 sessions ended: %+v", len(got), got)
	}
	for _, l := range got {
		if l.sub != ada.ID {
			t.Fatalf("logout token for %s, want %s", l.sub, ada.ID)
		}
	}
	// A logout token is signed with the ID tokens' keys, but is never
	// taken for one (its typ says what it is).
	status, body := endSessionCall(t, n.issuer, url.Values{"id_token_hint": {got[0].raw}})
	if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || !strings.Contains(desc, "not a valid ID token") {
		t.Fatalf("a logout token as id_token_hint: %d %v, want it refused as no ID token", status, body)
	}
}

func TestALogoutTokenReachesAnAppThatWasDownWhenItComesBack(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")

	// One app answers 503 for a while; the other's port is closed.
	unavailable := newLogoutReceiver(t, n.issuer)
	unavailable.down.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	_ = ln.Close()
	closed := newLogoutReceiver(t, n.issuer)
	rpDown := n.app(t, unavailable.register)
	rpClosed := n.app(t, func(c *client.Client) { c.BackchannelLogoutURI = "http://" + closedAddr + "/backchannel-logout" })
	unavailable.forApp(rpDown.client.ID)
	closed.forApp(rpClosed.client.ID)

	b := newBrowser(t, n.issuer)
	_, id := b.signedIn(rpDown, "ada@example.com")
	b.approve(rpClosed)
	var c struct {
		SID string `json:"sid"`
	}
	if err := id.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if err := n.users.SignOutEverywhere(t.Context(), id.Subject); err != nil {
		t.Fatal(err)
	}
	// Both have been tried, and failed, more than once.
	waitFor(t, "several failed attempts at each app", func() bool {
		rows := logoutRows(t, n.dbURL)
		return len(rows) == 2 && rows[0][2] == "pending" && atLeast(rows[0][3], 3) && rows[1][2] == "pending" && atLeast(rows[1][3], 3)
	})
	downSince := time.Now()
	unavailable.down.Store(false)
	back, err := net.Listen("tcp", closedAddr)
	if err != nil {
		t.Fatalf("the closed app's port cannot be opened again: %v", err)
	}
	closedSrv := &http.Server{Handler: http.HandlerFunc(closed.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = closedSrv.Serve(back) }()
	t.Cleanup(func() { _ = closedSrv.Close() })

	for _, rcv := range []*logoutReceiver{unavailable, closed} {
		got := rcv.await(t, c.SID)
		// Signed when sent, not when the session ended: a retry never
		// carries a token that expired while the app was down.
		if got[0].iat < downSince.Unix() {
			t.Fatalf("the retried token was issued at %d, before the app came back (%d)", got[0].iat, downSince.Unix())
		}
	}
	waitFor(t, "both rows delivered", func() bool {
		rows := logoutRows(t, n.dbURL)
		return rows[0][2] == "delivered" && rows[1][2] == "delivered"
	})
	m := scrape(t, n.admin)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^latchkey_logout_deliveries_total\{result="delivered"\} 2$`),
		regexp.MustCompile(`(?m)^latchkey_logout_deliveries_total\{result="retry"\} ([6-9]|\d\d+)$`),
		regexp.MustCompile(`(?m)^latchkey_logout_outbox_logouts\{status="pending"\} 0$`),
	} {
		if !want.MatchString(m) {
			t.Errorf("metrics lack %s:\n%s", want, m)
		}
	}
}

func TestTwoNodesDeliverEachLogoutTokenOnce(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	n1 := startNode(t, "LATCHKEY_DATABASE_URL", dbURL)
	n2 := startNode(t, "LATCHKEY_DATABASE_URL", dbURL)
	ada := n1.user(t, "ada@example.com")
	rcv := newLogoutReceiver(t, n1.issuer, n2.issuer)
	rp := n1.app(t, rcv.register)
	rcv.forApp(rp.client.ID)
	var sids []string
	for range 6 {
		_, id := newBrowser(t, n1.issuer).signedIn(rp, "ada@example.com")
		var c struct {
			SID string `json:"sid"`
		}
		if err := id.Claims(&c); err != nil {
			t.Fatal(err)
		}
		sids = append(sids, c.SID)
	}
	if err := n1.users.SignOutEverywhere(t.Context(), ada.ID); err != nil {
		t.Fatal(err)
	}
	rcv.await(t, sids...)
	waitFor(t, "every row delivered", func() bool {
		for _, r := range logoutRows(t, dbURL) {
			if r[2] != "delivered" {
				return false
			}
		}
		return true
	})
	if got := rcv.tokens(); len(got) != len(sids) {
		t.Fatalf("%d tokens for %d sessions: with no node killed, none may arrive twice", len(got), len(sids))
	}
}

func atLeast(n string, least int) bool {
	i, err := strconv.Atoi(n)
	return err == nil && i >= least
}

// endSessionCall is an end-session request from an app's server: no
// browser, so no cookie, and no sign of a navigation.
func endSessionCall(t *testing.T, issuer string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(issuer + "/oauth2/logout?" + form.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m
}

// The guarantee docs/clients.md states: a node killed while an app holds
// its logout token loses nothing; the token is sent again, signed afresh
// with the same jti, once the dead node's claim (twice
// LATCHKEY_WEBHOOK_TIMEOUT) runs out, and the other sign-in's token is
// not held up by it.
func TestANodeKilledMidLogoutDeliveryLosesNoLogout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL := pgtest.URL(t)
	store := pgtest.Open(t, dbURL)
	bin := buildLatchkey(t, t.TempDir())
	// Both nodes have one issuer, as a deployment's do: B's address,
	// where the app finds the keys once A is dead.
	addrB := proctest.FreeAddr(t)
	issuer := "http://" + addrB
	rcv := newLogoutReceiver(t, issuer)

	auditLog := audit.New(store, quietLogger())
	app, _, err := client.NewManager(store, auditLog, time.Hour).Create(ctx, client.Client{
		Name: "Notes", GrantTypes: []string{client.GrantAuthorizationCode}, RedirectURIs: []string{"http://127.0.0.1:9/cb"},
		Scope: "openid", BackchannelLogoutURI: rcv.url,
	})
	if err != nil {
		t.Fatal(err)
	}
	rcv.forApp(app.ID)
	users := identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{})
	ada, err := users.Create(ctx, identityUser("ada@example.com", nil), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	// Two sign-ins that reached the app, recorded as the sign-in and the
	// authorization endpoint record them.
	sids := []string{"SIGNINONE", "SIGNINTWO"}
	for _, sid := range sids {
		if err := store.CreateBrowserSession(ctx, identity.BrowserSession{SID: sid, UserID: ada.ID, AuthTime: time.Now(),
			AMR: []string{"pwd"}, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := store.RecordSessionClient(ctx, sid, app.ID); err != nil {
			t.Fatal(err)
		}
	}

	a := startServe(t, "A", bin, dbURL, &proctest.Output{}, "LATCHKEY_WEBHOOK_TIMEOUT=2s", "LATCHKEY_ISSUER="+issuer)
	release := rcv.holdNext()
	defer release()
	if err := users.SignOutEverywhere(ctx, ada.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rcv.holding:
	case <-time.After(30 * time.Second):
		t.Fatal("no logout token reached the app to be held")
	}
	if _, err := a.Stop(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("a node killed with SIGKILL exited cleanly")
	}
	startServe(t, "B", bin, dbURL, &proctest.Output{}, "LATCHKEY_WEBHOOK_TIMEOUT=2s", "LATCHKEY_ISSUER="+issuer,
		"LATCHKEY_PUBLIC_ADDR="+addrB)
	// The app takes the held request after all, as one whose answer never
	// reached the dead node would have.
	release()

	rcv.await(t, sids...)
	waitFor(t, "every logout delivered", func() bool {
		for _, r := range logoutRows(t, dbURL) {
			if r[2] != "delivered" {
				return false
			}
		}
		return true
	})
	got := rcv.tokens()
	jti := map[string]string{}
	for _, l := range got {
		if j, seen := jti[l.sid]; seen && j != l.jti {
			t.Fatalf("sign-in %s was sent twice with jti %s and %s: an app could not tell the repeat", l.sid, j, l.jti)
		}
		jti[l.sid] = l.jti
	}
	if len(jti) != len(sids) {
		t.Fatalf("tokens for %d sign-ins, want %d", len(jti), len(sids))
	}
}

func TestClientsTakeABackchannelLogoutURIByFlagAndRefuseAnUnsafeOneInOneLine(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	created := decodeClient(t, mustRun(t, cli, "create", "--name", "notes", "--redirect-uri", "https://notes.example.com/cb",
		"--backchannel-logout-uri", "https://notes.example.com/bcl", "--backchannel-logout-session-required", "--output", "json"))
	if created["backchannel_logout_uri"] != "https://notes.example.com/bcl" || created["backchannel_logout_session_required"] != true {
		t.Fatalf("create with back-channel logout: %v", created)
	}
	id := created["client_id"].(string)
	if table := mustRun(t, cli, "get", id); !strings.Contains(table, "https://notes.example.com/bcl") {
		t.Fatalf("the table does not show the backchannel_logout_uri:\n%s", table)
	}
	code, _, stderr := cli("update", id, "--backchannel-logout-uri", "http://notes.example.com/bcl")
	if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "backchannel_logout_uri") {
		t.Fatalf("a plain-http backchannel_logout_uri: exit %d, %q; want one line naming the field", code, stderr)
	}
	got := decodeClient(t, mustRun(t, cli, "update", id, "--backchannel-logout-uri", "", "--backchannel-logout-session-required=false", "--output", "json"))
	if _, present := got["backchannel_logout_uri"]; present {
		t.Fatalf("update --backchannel-logout-uri \"\": %v, want it gone", got)
	}
}
