package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/client"
)

// This file attacks what an anonymous caller can make the server store:
// parked authorization requests, audit events, and what the database
// holds that a thief could use.

// storedSessions describes the scs sessions table: how many rows, the
// largest row's data, and the latest expiry.
func storedSessions(t *testing.T, conn *pgx.Conn) (rows, largest int, latest time.Time) {
	t.Helper()
	if err := conn.QueryRow(t.Context(), `SELECT count(*), coalesce(max(length(data)), 0), coalesce(max(expiry), 'epoch')
		FROM sessions`).Scan(&rows, &largest, &latest); err != nil {
		t.Fatal(err)
	}
	return rows, largest, latest
}

// noRedirects is an HTTP client from ip that stops at the first answer.
func noRedirects(ip string) *http.Client {
	c := clientFrom(ip)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

func TestParkingAuthorizationRequestsIsLimitedPerAddress(t *testing.T) {
	t.Parallel()
	const limit = 5
	n := startNode(t, "LATCHKEY_AUTHORIZE_RATE_LIMIT", "5")
	rp := n.app(t)
	from := attackers(2)
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	// Each request comes without a cookie, as from a fresh browser, so
	// each would start a session of its own.
	burst(t, 3*limit, from[:1], func(_ int, ip string) {
		resp, err := noRedirects(ip).Get(rp.start().url)
		if err != nil {
			t.Error(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests &&
			(resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(body), "Wait")) {
			t.Errorf("a refused request: Retry-After %q, %s, want a page that says how long to wait: %s",
				resp.Header.Get("Retry-After"), resp.Header.Get("Content-Type"), body)
		}
		mu.Lock()
		statuses[resp.StatusCode]++
		mu.Unlock()
	})
	if statuses[http.StatusSeeOther] != limit || statuses[http.StatusTooManyRequests] != 2*limit {
		t.Fatalf("a burst of %d from one address: %v; want %d parked (303) and the rest refused (429)", 3*limit, statuses, limit)
	}
	resp, err := noRedirects(from[1]).Get(rp.start().url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("another address: %d, want it parked and sent to sign in", resp.StatusCode)
	}
	if rows, _, _ := storedSessions(t, mustConnect(t, n.dbURL)); rows != limit+1 {
		t.Fatalf("%d sessions stored, want %d: one per parked request", rows, limit+1)
	}
}

func TestAnAuthorizationRequestParksOnlyWhatTheFlowUses(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	conn := mustConnect(t, n.dbURL)

	// A megabyte form parks nothing.
	big := url.Values{"client_id": {rp.client.ID}, "junk": {strings.Repeat("x", 1<<20)}}.Encode()
	status, _, _ := sendBody(t, http.MethodPost, n.issuer+"/oauth2/authorize", strings.NewReader(big),
		"application/x-www-form-urlencoded", int64(len(big)), true)
	if rows, _, _ := storedSessions(t, conn); status != http.StatusRequestEntityTooLarge || rows != 0 {
		t.Fatalf("a 1 MB authorization request: %d and %d sessions stored; want 413 and none", status, rows)
	}

	// An over-long parameter the flow uses is the app's error, and parks
	// nothing.
	over := rp.start("login_hint", strings.Repeat("a", 300)+"@example.com")
	resp, err := noRedirects("127.0.0.1").Get(over.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	to, _ := url.Parse(resp.Header.Get("Location"))
	if q := to.Query(); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(to.String(), rp.oauth.RedirectURL) ||
		q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), "login_hint") ||
		q.Get("iss") != n.issuer || q.Get("state") != over.state {
		t.Fatalf("an over-long login_hint: %d to %s; want invalid_request naming it, sent back to the app with iss and state", resp.StatusCode, to)
	}
	overState := rp.start()
	overState.url = strings.Replace(overState.url, "state="+overState.state, "state="+strings.Repeat("s", 513), 1)
	resp, err = noRedirects("127.0.0.1").Get(overState.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	to, _ = url.Parse(resp.Header.Get("Location"))
	if q := to.Query(); q.Get("error") != "invalid_request" || q.Has("state") || q.Get("iss") != n.issuer {
		t.Fatalf("an over-long state: sent to %s; want invalid_request, without the state echoed back", to)
	}
	if rows, _, _ := storedSessions(t, conn); rows != 0 {
		t.Fatalf("over-long parameters parked %d sessions", rows)
	}

	// Half a megabyte the flow does not use is not kept, and the request
	// still works.
	ar := rp.start("junk", strings.Repeat("x", 512<<10))
	p := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
	rows, largest, latest := storedSessions(t, conn)
	if rows != 1 || largest > 4096 {
		t.Fatalf("parking a request with half a megabyte of junk stored %d sessions, the largest %d bytes; want one of a few hundred", rows, largest)
	}
	rp.finish(t, ar, b.decide(p, "allow").callback(t))
	if time.Until(latest) < 7*time.Hour {
		t.Fatalf("the signed-in session expires in %s, want the idle timeout", time.Until(latest))
	}

	// A browser where nobody signs in keeps its parked request for an
	// hour, not for the 8-hour idle timeout.
	if _, err := conn.Exec(t.Context(), `DELETE FROM sessions`); err != nil {
		t.Fatal(err)
	}
	newBrowser(t, n.issuer).visit(rp.start().url)
	if _, _, latest := storedSessions(t, conn); time.Until(latest) > time.Hour+time.Minute {
		t.Fatalf("a session holding only a parked request expires in %s, want an hour", time.Until(latest))
	}
}

func TestAMegabyteEmailLeavesOnlyACappedRecordInTheAuditLog(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	conn := mustConnect(t, n.dbURL)
	login := b.visit(rp.start().url)
	for _, tt := range []struct {
		name   string
		email  string
		status int
	}{
		{"a megabyte", strings.Repeat("a", 1<<20) + "@example.com", http.StatusRequestEntityTooLarge},
		{"60 KiB", strings.Repeat("a", 60<<10) + "@example.com", http.StatusOK},
	} {
		if p := b.signIn(login, tt.email, "wrong password"); p.status != tt.status {
			t.Fatalf("%s typed as the email: %d, want %d", tt.name, p.status, tt.status)
		}
	}
	var events, longest int
	var truncated bool
	if err := conn.QueryRow(t.Context(), `SELECT count(*), coalesce(max(length(details->>'email')), 0), coalesce(bool_and((details->>'truncated')::boolean), false)
		FROM audit_events WHERE action = 'login.failed'`).Scan(&events, &longest, &truncated); err != nil {
		t.Fatal(err)
	}
	if events != 1 || longest > 257 || !truncated {
		t.Fatalf("%d login.failed events, the longest email %d characters, marked truncated %v; want one event, at most 256 characters and a mark",
			events, longest, truncated)
	}
}

func TestTheJanitorSweepsAuditEventsPastTheirRetention(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	conn := mustConnect(t, n.dbURL)
	age := func(days int) {
		t.Helper()
		if _, err := conn.Exec(t.Context(), `INSERT INTO audit_events (at, actor, action) VALUES (now() - make_interval(days => $1), 'anonymous', 'login.failed')`, days); err != nil {
			t.Fatal(err)
		}
	}
	left := func() (n int) {
		t.Helper()
		if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM audit_events WHERE action = 'login.failed'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	age(400)
	age(300)
	age(10)
	// The default keeps a year.
	code, stdout, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL, "LATCHKEY_JANITOR_BATCH_SIZE": "1"}, "janitor")
	if code != 0 || !strings.Contains(stdout, "audit_events\t1\n") || left() != 2 {
		t.Fatalf("janitor: exit %d, stdout %q, stderr %q, %d events left; want the one older than a year swept", code, stdout, stderr, left())
	}
	code, stdout, stderr = runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL, "LATCHKEY_AUDIT_RETENTION": "720h"}, "janitor")
	if code != 0 || !strings.Contains(stdout, "audit_events\t1\n") || left() != 1 {
		t.Fatalf("janitor keeping 30 days: exit %d, stdout %q, stderr %q, %d events left; want the 300-day-old one swept", code, stdout, stderr, left())
	}
	age(4000)
	code, stdout, stderr = runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL, "LATCHKEY_AUDIT_RETENTION": "0"}, "janitor")
	if code != 0 || !strings.Contains(stdout, "audit_events\tkept") || left() != 2 {
		t.Fatalf("janitor keeping events for ever: exit %d, stdout %q, stderr %q, %d events left; want none swept, and said so", code, stdout, stderr, left())
	}
}

// sessionCookie returns the browser's Latchkey session cookie.
func (b *browser) sessionCookie() *http.Cookie {
	b.t.Helper()
	u, _ := url.Parse(b.issuer)
	for _, c := range b.http.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "latchkey_session") {
			return c
		}
	}
	b.t.Fatal("the browser has no session cookie")
	return nil
}

func TestAStolenSessionsTableSignsNobodyIn(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	cookie := b.sessionCookie()
	if p := b.visit(n.issuer + "/account"); p.status != http.StatusOK || !strings.Contains(p.body, "ada@example.com") {
		t.Fatalf("the account page with the browser's own cookie: %d", p.status)
	}

	rows, err := mustConnect(t, n.dbURL).Query(t.Context(), `SELECT token FROM sessions`)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tokens) == 0 {
		t.Fatalf("sessions stored: %v (err %v), want the browser's", tokens, err)
	}
	for _, token := range tokens {
		if token == cookie.Value {
			t.Fatal("the sessions table holds the cookie's token itself")
		}
		// A thief with a copy of the table presents what it holds.
		thief := newBrowser(t, n.issuer)
		u, _ := url.Parse(n.issuer)
		thief.http.Jar.SetCookies(u, []*http.Cookie{{Name: cookie.Name, Value: token, Path: "/"}})
		if p := thief.visit(n.issuer + "/account"); strings.Contains(p.body, "ada@example.com") || !p.isLogin() {
			t.Fatalf("a token read from the sessions table, sent as the cookie: %d, want the login page", p.status)
		}
	}
}

func TestASignInRecordsTheClientsAddressAsTheServerResolvesIt(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, trusted, from, forwarded, want string
	}{
		{"behind a trusted proxy", "127.0.0.1", "127.0.0.1", "198.51.100.7", "198.51.100.7"},
		{"straight from the internet, claiming another address", "", "127.0.0.2", "198.51.100.7", "127.0.0.2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, "LATCHKEY_TRUSTED_PROXIES", tt.trusted)
			ada := n.user(t, "ada@example.com")
			rp := n.app(t)
			b := newBrowser(t, n.issuer).from(tt.from)
			login := b.visit(rp.start().url)
			b.submit("/login", url.Values{"request": {login.handle(t)}, "email": {"ada@example.com"}, "password": {testPassword}},
				"X-Forwarded-For", tt.forwarded)

			var stored string
			if err := mustConnect(t, n.dbURL).QueryRow(t.Context(), `SELECT ip FROM browser_sessions`).Scan(&stored); err != nil || stored != tt.want {
				t.Fatalf("browser_sessions.ip = %q (err %v), want %q", stored, err, tt.want)
			}
			a := n.automation(t, client.AdminReadScope)
			sessions := a.call(http.MethodGet, "/admin/users/"+ada.ID+"/sessions", nil).must(t, http.StatusOK)
			if !strings.Contains(sessions.raw, `"ip":"`+tt.want+`"`) {
				t.Fatalf("the admin API shows %s, want the address %s", sessions.raw, tt.want)
			}
			if p := b.visit(n.issuer + "/account"); !strings.Contains(p.body, tt.want) || strings.Contains(p.body, tt.want+":") {
				t.Fatalf("the account page does not show the address %s, without a port", tt.want)
			}
		})
	}
}
