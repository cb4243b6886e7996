package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/audit"
)

// Personal API keys on the account page (pkg/signin's account_apikeys.go).

// personalScopes is what these tests let users give their keys.
const personalScopes = "reports.read reports.write"

// shownKey is the new key on the page that shows it once.
var shownKey = regexp.MustCompile(`id="api-key" type="text" value="(lk_ak_[0-9A-Za-z]{36})"`)

// keyIDs are the revoke forms' key IDs on the account page.
var keyIDs = regexp.MustCompile(`<input type="hidden" name="key" value="([0-9a-f-]{36})">`)

// personalKeyScene is a node with personal keys on, Ada signed in on a
// browser, and a resource server allowed to introspect any token.
func personalKeyScene(t *testing.T, settings ...string) (*node, *browser, credentials) {
	t.Helper()
	n := startNode(t, append([]string{"LATCHKEY_PERSONAL_API_KEY_SCOPES", personalScopes}, settings...)...)
	n.user(t, "ada@example.com")
	b := newBrowser(t, n.issuer)
	b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	return n, b, n.service(t, introspectAnyToken)
}

// makeKey posts the new-key form as the account page does.
func (b *browser) makeKey(name, expires string, scopes ...string) page {
	b.t.Helper()
	return b.submit("/account/api-keys/create", url.Values{"name": {name}, "scope": scopes, "expires": {expires}})
}

// madeKey makes a personal key for reports.read on the account page and
// returns it, as the page shows it once, and its ID, the node's only key.
func (b *browser) madeKey(n *node, expires string) (key, id string) {
	b.t.Helper()
	m := shownKey.FindStringSubmatch(b.makeKey("ci", expires, "reports.read").body)
	if m == nil {
		b.t.Fatal("the key was not shown")
	}
	n.query(b.t, &id, `SELECT id::text FROM api_keys`)
	return m[1], id
}

// keyCount is how many keys the database holds.
func (n *node) keyCount(t *testing.T) int {
	t.Helper()
	var count int
	n.query(t, &count, `SELECT count(*) FROM api_keys`)
	return count
}

func TestAPersonalKeyIsMadeAfterReauthenticationShownOnceAndWorksUntilRevoked(t *testing.T) {
	t.Parallel()
	n, b := reauthScene(t, "LATCHKEY_PERSONAL_API_KEY_SCOPES", personalScopes)
	rs := n.service(t, introspectAnyToken)
	u := mustUser(t, n)
	if p := b.visit(n.issuer + "/account"); !strings.Contains(p.body, `id="new-api-key"`) || !strings.Contains(p.body, `value="reports.write"`) {
		t.Fatalf("the account page offers no personal key with the allowed scopes:\n%s", p.body)
	}

	p := b.makeKey("laptop backup", "30", "reports.read", "reports.write")
	if !p.isReauth() || n.keyCount(t) != 0 {
		t.Fatalf("a key from a sign-in that is not recent: %d, want the page asking for the password and no key:\n%s", p.status, p.body)
	}
	form := url.Values{"reauth_password": {testPassword}}
	for _, m := range hiddenField.FindAllStringSubmatch(p.body, -1) {
		form.Add(m[1], m[2])
	}
	if got := form["scope"]; len(got) != 2 {
		t.Fatalf("the re-authentication form carries the scopes %v, want both", got)
	}
	shown := b.submit("/account/api-keys/create", form)
	m := shownKey.FindStringSubmatch(shown.body)
	if shown.status != http.StatusOK || m == nil {
		t.Fatalf("the key after the password: %d, want the page showing it:\n%s", shown.status, shown.body)
	}
	key := m[1]
	if cc := shown.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("the page showing the key has Cache-Control %q; it must not be cached", cc)
	}

	got := rs.introspect(t, n.issuer, key)
	if got["active"] != true || got["sub"] != u.ID || got["client_id"] != apikey.PersonalClientID || got["scope"] != "reports.read reports.write" {
		t.Fatalf("introspection of the personal key: %v, want active for Ada as %s", got, apikey.PersonalClientID)
	}
	if got["exp"] == nil {
		t.Fatal("the key made to expire in 30 days has no exp")
	}
	status, _ := doJSON(t, rs.form(n.issuer+"/oauth2/introspect", url.Values{"token": {key}, "client_address": {"198.51.100.23"}}))
	if status != http.StatusOK {
		t.Fatalf("introspection with the caller's address: %d", status)
	}

	account := b.visit(n.issuer + "/account")
	if strings.Contains(account.body, key) || strings.Contains(account.body, key[len(apikey.Prefix)+4:]) {
		t.Fatal("the account page shows the key again")
	}
	for _, want := range []string{"laptop backup", key[:10], "reports.read reports.write", "expires ", "last used", "from 198.51.100.23"} {
		if !strings.Contains(account.body, want) {
			t.Errorf("the account page's key list lacks %q", want)
		}
	}
	ids := keyIDs.FindAllStringSubmatch(account.body, -1)
	if len(ids) != 1 {
		t.Fatalf("the account page lists %d keys, want 1", len(ids))
	}

	// Revoking takes power away: no password asked for, even now.
	done := b.submit("/account/api-keys/revoke", url.Values{"key": {ids[0][1]}})
	if done.status != http.StatusOK || !strings.Contains(done.body, "The API key is revoked") {
		t.Fatalf("revoking: %d, want the account page saying so:\n%s", done.status, done.body)
	}
	if got := rs.introspect(t, n.issuer, key); got["active"] != false {
		t.Fatalf("the revoked key: %v, want inactive at once", got)
	}
	if strings.Contains(done.body, "<strong>laptop backup</strong>") || keyIDs.MatchString(done.body) {
		t.Fatal("the revoked key is still listed")
	}
	if len(n.events(t, audit.APIKeyCreated, "name", "laptop backup")) != 1 || len(n.events(t, audit.APIKeyRevoked, "name", "laptop backup")) != 1 {
		t.Fatal("the key's making and revoking are not each audited once")
	}
}

func TestPersonalKeyRequestsOutsideWhatTheOwnerMayHaveAreRefusedWithAClearPage(t *testing.T) {
	t.Parallel()
	n, b, _ := personalKeyScene(t)
	for _, tt := range []struct {
		name, expires string
		scopes        []string
		want          string
	}{
		{"wide", "30", []string{"reports.read", "billing.write"}, "billing.write is not one users may give their own keys"},
		{"admin", "30", []string{"latchkey:admin"}, "latchkey:admin is not for keys"},
		{"none", "30", nil, "Choose at least one scope"},
		{"", "30", []string{"reports.read"}, "Give the key a name"},
		{"forever and a day", "9999", []string{"reports.read"}, "Choose when the key expires"},
	} {
		p := b.makeKey(tt.name, tt.expires, tt.scopes...)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, tt.want) || !strings.Contains(p.body, `role="alert"`) {
			t.Errorf("a key %q with %v expiring %s: %d, want 400 saying %q:\n%s", tt.name, tt.scopes, tt.expires, p.status, tt.want, p.body)
		}
	}
	if c := n.keyCount(t); c != 0 {
		t.Fatalf("%d keys were made from refused requests", c)
	}
}

func TestAnotherUsersPersonalKeyCannotBeRevoked(t *testing.T) {
	t.Parallel()
	n, ada, rs := personalKeyScene(t)
	key, id := ada.madeKey(n, "never")

	n.user(t, "bob@example.com")
	bob := newBrowser(t, n.issuer)
	bob.signIn(bob.visit(n.issuer+"/login"), "bob@example.com", testPassword)
	for _, attempt := range []string{id, "not-a-key-id", ""} {
		p := bob.submit("/account/api-keys/revoke", url.Values{"key": {attempt}})
		if p.status != http.StatusNotFound || !strings.Contains(p.body, "not on your account") {
			t.Errorf("Bob revoking %q: %d, want 404 saying it is not his:\n%s", attempt, p.status, p.body)
		}
	}
	if got := rs.introspect(t, n.issuer, key); got["active"] != true {
		t.Fatalf("Ada's key after Bob's attempts: %v, want still active", got)
	}
	if got := n.events(t, audit.APIKeyRevoked); len(got) != 0 {
		t.Fatalf("failed revocations were audited as revocations: %+v", got)
	}
}

func TestPersonalKeyFormsRefuseCrossSitePosts(t *testing.T) {
	t.Parallel()
	n, b, rs := personalKeyScene(t)
	key, id := b.madeKey(n, "7")
	cross := []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}
	if p := b.submit("/account/api-keys/create", url.Values{"name": {"evil"}, "scope": {"reports.read"}, "expires": {"never"}}, cross...); p.status != http.StatusForbidden || shownKey.MatchString(p.body) {
		t.Errorf("making a key from another site: %d, want 403", p.status)
	}
	if p := b.submit("/account/api-keys/revoke", url.Values{"key": {id}}, cross...); p.status != http.StatusForbidden {
		t.Errorf("revoking a key from another site: %d, want 403", p.status)
	}
	if c := n.keyCount(t); c != 1 {
		t.Fatalf("%d keys after the cross-site posts, want the one", c)
	}
	if got := rs.introspect(t, n.issuer, key); got["active"] != true {
		t.Fatalf("the key after a cross-site revoke: %v", got)
	}
}

func TestWithPersonalKeysOffTheAccountPageOffersNoneAndRefusesToMakeOne(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	b.signedIn(rp, "ada@example.com")
	if p := b.visit(n.issuer + "/account"); strings.Contains(p.body, "api-keys") {
		t.Fatal("the account page shows the API key section with personal keys off")
	}
	if p := b.makeKey("ci", "30", "reports.read"); p.status != http.StatusForbidden || !strings.Contains(p.body, "Personal API keys are off") {
		t.Fatalf("making a key with personal keys off: %d, want 403 saying they are off:\n%s", p.status, p.body)
	}
	if c := n.keyCount(t); c != 0 {
		t.Fatalf("%d keys made with personal keys off", c)
	}
}

func TestADisabledUserCannotMakeAPersonalKey(t *testing.T) {
	t.Parallel()
	n, b, _ := personalKeyScene(t)
	if err := n.users.Disable(t.Context(), mustUser(t, n).ID); err != nil {
		t.Fatal(err)
	}
	if p := b.makeKey("ci", "30", "reports.read"); !p.isLogin() || shownKey.MatchString(p.body) {
		t.Fatalf("a disabled user making a key: %d, want the sign-in page", p.status)
	}
	if c := n.keyCount(t); c != 0 {
		t.Fatalf("a disabled user made %d keys", c)
	}
}
