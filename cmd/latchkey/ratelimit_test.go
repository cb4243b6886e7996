package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
)

// tokenRequest asks the token endpoint for a client-credentials token.
func (n *node) tokenRequest(t *testing.T, id, secret string) (int, http.Header, map[string]any) {
	t.Helper()
	return n.formCall(t, "/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"}})
}

// formCall posts a form to a protocol endpoint as a client.
func (n *node) formCall(t *testing.T, path, id, secret string, form url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header, body
}

// limited checks an answer is 429 with Retry-After and an RFC 6749 error.
func limited(t *testing.T, what string, status int, header http.Header, body map[string]any) {
	t.Helper()
	secs, err := strconv.Atoi(header.Get("Retry-After"))
	if status != http.StatusTooManyRequests || err != nil || secs < 1 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("%s over the limit: %d, Retry-After %q, %v; want 429, a Retry-After in seconds and error temporarily_unavailable",
			what, status, header.Get("Retry-After"), body)
	}
}

func TestAClientOverItsRateGets429OnEachEndpoint(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_CLIENT_RATE_LIMIT", "2")
	backend := func() (string, string) {
		c, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID, secret
	}

	id, secret := backend()
	var tokens []string
	for i := range 2 {
		status, _, body := n.tokenRequest(t, id, secret)
		if status != http.StatusOK {
			t.Fatalf("token %d within the limit: %d %v", i+1, status, body)
		}
		tokens = append(tokens, body["access_token"].(string))
	}
	status, header, body := n.tokenRequest(t, id, secret)
	limited(t, "the token endpoint", status, header, body)
	otherID, otherSecret := backend()
	if status, _, _ := n.tokenRequest(t, otherID, otherSecret); status != http.StatusOK {
		t.Fatalf("another client was limited too: %d", status)
	}

	rsID, rsSecret := backend()
	for range 2 {
		if status, _, body := n.formCall(t, "/oauth2/introspect", rsID, rsSecret, url.Values{"token": {tokens[0]}}); status != http.StatusOK {
			t.Fatalf("introspection within the limit: %d %v", status, body)
		}
	}
	status, header, body = n.formCall(t, "/oauth2/introspect", rsID, rsSecret, url.Values{"token": {tokens[0]}})
	limited(t, "introspection", status, header, body)

	revoker, revokerSecret := backend()
	var own []string
	for range 2 {
		status, _, body := n.tokenRequest(t, revoker, revokerSecret)
		if status != http.StatusOK {
			t.Fatalf("token for the revoker: %d %v", status, body)
		}
		own = append(own, body["access_token"].(string))
	}
	for range 2 { // revoking a revoked token is fine too (RFC 7009 §2.2)
		if status, _, body := n.formCall(t, "/oauth2/revoke", revoker, revokerSecret, url.Values{"token": {own[0]}}); status != http.StatusOK {
			t.Fatalf("revocation within the limit: %d %v", status, body)
		}
	}
	status, header, body = n.formCall(t, "/oauth2/revoke", revoker, revokerSecret, url.Values{"token": {own[1]}})
	limited(t, "revocation", status, header, body)
	// A refused revocation did nothing, so that the client's retry does it.
	if !n.introspect(t, own[1]) {
		t.Fatal("a revocation refused with 429 revoked the token anyway")
	}
}

// errorLine is what a page says went wrong.
var errorLine = regexp.MustCompile(`<p class="error" role="alert"[^>]*>([^<]*)</p>`)

func TestSignInAttemptsFromOneAddressGet429(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_SIGNIN_RATE_LIMIT", "3")
	n.user(t, "ada@example.com")
	rp := n.app(t)
	b := newBrowser(t, n.issuer)
	login := b.visit(rp.start().url)
	for i := range 3 {
		if p := b.signIn(login, "ada@example.com", "wrong password"); !p.isLogin() || p.status != http.StatusOK {
			t.Fatalf("attempt %d within the limit: %d", i+1, p.status)
		}
	}
	p := b.signIn(login, "ada@example.com", testPassword)
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "too many sign-in attempts") {
		t.Fatalf("the 4th attempt within a minute: %d, Retry-After %q; want 429 with an explanation", p.status, p.header.Get("Retry-After"))
	}
	// Codes count against the same allowance as passwords.
	code := b.submit("/login/otp", url.Values{"request": {login.handle(t)}, "code": {"123456"}})
	if code.status != http.StatusTooManyRequests {
		t.Fatalf("a code from the same address: %d, want 429", code.status)
	}
}

func TestForwardedAddressesCountOnlyBehindTrustedProxies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		trusted string
		// separate says each forwarded address gets its own allowance.
		separate bool
	}{
		{"behind a trusted proxy", "127.0.0.1", true},
		{"straight from the internet", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t, "LATCHKEY_SIGNIN_RATE_LIMIT", "1", "LATCHKEY_TRUSTED_PROXIES", tt.trusted)
			n.user(t, "ada@example.com")
			rp := n.app(t)
			b := newBrowser(t, n.issuer)
			login := b.visit(rp.start().url)
			attempt := func(from string) page {
				return b.submit("/login", url.Values{"request": {login.handle(t)}, "email": {"ada@example.com"}, "password": {"wrong"}},
					"X-Forwarded-For", from)
			}
			if p := attempt("198.51.100.1"); p.status != http.StatusOK {
				t.Fatalf("first attempt: %d", p.status)
			}
			if p := attempt("198.51.100.1"); p.status != http.StatusTooManyRequests {
				t.Fatalf("second attempt from the same address: %d, want 429", p.status)
			}
			if p := attempt("198.51.100.2"); (p.status == http.StatusOK) != tt.separate {
				t.Fatalf("an attempt claiming another address: %d", p.status)
			}
			if tt.separate {
				a := n.automation(t, client.AdminScope)
				es := a.call(http.MethodGet, "/admin/audit-events?action=login.failed", nil).must(t, http.StatusOK).items()
				if len(es) != 2 || es[0]["ip"] != "198.51.100.2" || es[1]["ip"] != "198.51.100.1" {
					t.Fatalf("audit events %v, want the forwarded addresses", es)
				}
			}
		})
	}
}

func TestALockedAccountAnswersLikeAnUnknownOne(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_LOGIN_MAX_FAILURES", "2", "LATCHKEY_LOCKOUT_FAILURES", "2")
	ada := n.user(t, "ada@example.com")
	rp := n.app(t)
	b := newBrowser(t, n.issuer)
	answer := func(email, password string) (int, string) {
		p := b.signIn(b.visit(rp.start().url), email, password)
		m := errorLine.FindStringSubmatch(p.body)
		if m == nil {
			return p.status, ""
		}
		return p.status, m[1]
	}
	for _, email := range []string{"ada@example.com", "nobody@example.com"} {
		for range 2 {
			answer(email, "wrong password")
		}
	}
	lockedStatus, locked := answer("ada@example.com", testPassword)
	unknownStatus, unknown := answer("nobody@example.com", testPassword)
	wrongStatus, wrong := answer("grace@example.com", "wrong password")
	if locked == "" || lockedStatus != unknownStatus || locked != unknown || locked != wrong || wrongStatus != lockedStatus {
		t.Fatalf("a locked account says %d %q, an unknown one %d %q, a wrong password %d %q; want them all alike",
			lockedStatus, locked, unknownStatus, unknown, wrongStatus, wrong)
	}

	// An admin lets the user back in.
	a := n.automation(t, client.AdminScope)
	a.call(http.MethodPost, "/admin/users/"+ada.ID+"/unlock", nil).must(t, http.StatusOK)
	if p := b.signIn(b.visit(rp.start().url), "ada@example.com", testPassword); !p.isConsent() {
		t.Fatalf("after the unlock the right password does not sign in: %d", p.status)
	}
	if es := a.call(http.MethodGet, "/admin/audit-events?action=login.locked", nil).must(t, http.StatusOK).items(); len(es) != 2 {
		t.Fatalf("login.locked events: %v, want one for each email", es)
	}

	// So does an operator at the CLI.
	other := newBrowser(t, n.issuer)
	for range 2 {
		other.signIn(other.visit(rp.start().url), "ada@example.com", "wrong password")
	}
	if p := other.signIn(other.visit(rp.start().url), "ada@example.com", testPassword); p.isConsent() {
		t.Fatal("not locked again")
	}
	if code, _, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL}, "users", "unlock", "ada@example.com"); code != 0 {
		t.Fatalf("users unlock: exit %d: %s", code, stderr)
	}
	if p := other.signIn(other.visit(rp.start().url), "ada@example.com", testPassword); !p.isConsent() {
		t.Fatalf("after users unlock the right password does not sign in: %d", p.status)
	}
}
