package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	adminapi "github.com/latchkey/latchkey/pkg/admin"
	"github.com/latchkey/latchkey/pkg/client"
)

// automation is a script calling the admin API, as an operator's CI job
// would: it gets a token from Latchkey's token endpoint with the client
// credentials grant and sends it as a bearer token.
type automation struct {
	t                *testing.T
	n                *node
	clientID, secret string
	token            string
}

// automation registers a client for the given scopes and gets it a token.
func (n *node) automation(t *testing.T, scope string, edit ...func(*client.Client)) *automation {
	t.Helper()
	c := client.Client{Name: "ci", GrantTypes: []string{client.GrantClientCredentials}, Scope: scope}
	for _, e := range edit {
		e(&c)
	}
	created, secret, err := n.clients.Create(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	return &automation{t: t, n: n, clientID: created.ID, secret: secret, token: n.clientToken(t, created.ID, secret)}
}

// clientToken gets an access token with the client credentials grant.
func (n *node) clientToken(t *testing.T, id, secret string) string {
	t.Helper()
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: n.issuer + "/oauth2/token",
		AuthStyle: oauth2.AuthStyleInHeader}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatalf("client credentials for %s: %v", id, err)
	}
	return tok.AccessToken
}

// answer is an admin API response.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends a request to the admin API; body is encoded as JSON unless
// it is a string, which is sent as it is.
func (a *automation) call(method, path string, body any) answer {
	a.t.Helper()
	return a.n.adminCall(a.t, a.token, method, path, body)
}

func (n *node) adminCall(t *testing.T, token, method, path string, body any) answer {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, n.admin+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	ans := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &ans.body)
	return ans
}

// must checks the status of an answer and returns it.
func (ans answer) must(t *testing.T, status int) answer {
	t.Helper()
	if ans.status != status {
		t.Fatalf("status %d, want %d: %s", ans.status, status, ans.raw)
	}
	return ans
}

// items returns the items of a list answer.
func (ans answer) items() []map[string]any {
	var out []map[string]any
	for _, it := range ans.body["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// problem checks that an answer is RFC 9457 problem details with the
// status, and that its errors name field ("" for none).
func (ans answer) problem(t *testing.T, status int, field string) {
	t.Helper()
	if ans.status != status || !strings.HasPrefix(ans.header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("status %d, %s, want %d problem+json: %s", ans.status, ans.header.Get("Content-Type"), status, ans.raw)
	}
	if ans.body["status"] != float64(status) || ans.body["title"] == "" || ans.body["detail"] == "" || ans.body["type"] == "" {
		t.Fatalf("the problem lacks status, title, detail or type: %s", ans.raw)
	}
	if field == "" {
		return
	}
	errs, _ := ans.body["errors"].([]any)
	for _, e := range errs {
		if m := e.(map[string]any); m["field"] == field && m["message"] != "" {
			return
		}
	}
	t.Fatalf("the problem does not name the field %q: %s", field, ans.raw)
}

// adminRoutes lists every route of the admin API, with its parameters
// filled in.
func adminRoutes(t *testing.T) [][2]string {
	t.Helper()
	var out [][2]string
	err := chi.Walk((&adminapi.API{}).Routes().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		path := strings.NewReplacer("{id}", "3f0c5e0a-8a1d-4c47-9a36-2b2f4f7f1b65", "{sid}", "s", "{client_id}", "c",
			"{role}", "r", "{name}", "r", "{kid}", "k", "{key}", "0b4f5d1e-6c2a-4e8b-9f3d-1a2b3c4d5e6f").Replace(route)
		out = append(out, [2]string{method, adminapi.Path + path})
		return nil
	})
	if err != nil || len(out) < 30 {
		t.Fatalf("walking the admin routes: %v (%d routes)", err, len(out))
	}
	return out
}

func TestEveryAdminRouteNeedsAValidTokenWithTheRightScope(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	full := n.automation(t, client.AdminScope)
	reader := n.automation(t, client.AdminReadScope)
	plain := n.automation(t, "reports.read")
	short := n.automation(t, client.AdminScope, func(c *client.Client) { c.AccessTokenLifespan = client.Lifespan(time.Second) })
	revoked := n.automation(t, client.AdminScope)
	// The owner revokes its token (RFC 7009), as after a leak.
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/revoke", strings.NewReader(url.Values{"token": {revoked.token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(revoked.clientID, revoked.secret)
	if status, _ := doJSON(t, req); status != http.StatusOK {
		t.Fatalf("revoking the token: %d", status)
	}
	full.call(http.MethodGet, "/admin/clients", nil).must(t, http.StatusOK) // the token works
	time.Sleep(2 * time.Second)                                             // short's token expires

	for _, route := range adminRoutes(t) {
		method, path := route[0], route[1]
		read := method == http.MethodGet
		for _, tt := range []struct {
			name   string
			token  string
			status int
		}{
			{"no token", "", http.StatusUnauthorized},
			{"a token that is not one", "lk_at_forged", http.StatusUnauthorized},
			{"an expired token", short.token, http.StatusUnauthorized},
			{"a revoked token", revoked.token, http.StatusUnauthorized},
			{"a token without an admin scope", plain.token, http.StatusForbidden},
		} {
			ans := n.adminCall(t, tt.token, method, path, nil)
			ans.problem(t, tt.status, "")
			if !strings.HasPrefix(ans.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %s: no WWW-Authenticate challenge", method, path, tt.name)
			}
		}
		ans := n.adminCall(t, reader.token, method, path, nil)
		switch {
		case read && (ans.status == http.StatusUnauthorized || ans.status == http.StatusForbidden):
			t.Errorf("%s %s with a read-only token: %d, want it allowed", method, path, ans.status)
		case !read && ans.status != http.StatusForbidden:
			t.Errorf("%s %s with a read-only token: %d, want 403", method, path, ans.status)
		}
		if !read && !strings.Contains(ans.header.Get("WWW-Authenticate"), `scope="latchkey:admin"`) {
			t.Errorf("%s %s: the 403 does not say which scope is needed", method, path)
		}
	}
	reader.call(http.MethodGet, "/admin/clients", nil).must(t, http.StatusOK)
	reader.call(http.MethodPost, "/admin/roles", map[string]string{"name": "x"}).problem(t, http.StatusForbidden, "")
}

func TestThePublicListenerHasNoAdminAPI(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	req, _ := http.NewRequest(http.MethodGet, n.issuer+"/admin/clients", nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if status, _ := doJSON(t, req); status != http.StatusNotFound {
		t.Fatalf("GET /admin/clients on the public listener: %d, want 404", status)
	}
}

func TestAUserDelegatedTokenNeverCarriesAdminPower(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	// An app that users sign in to cannot be registered for the admin
	// scopes, through the API or any other way.
	ans := a.call(http.MethodPost, "/admin/clients", map[string]any{
		"client_name": "sneaky", "redirect_uris": []string{"https://app.example.com/cb"},
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"scope": "openid latchkey:admin",
	})
	ans.problem(t, http.StatusUnprocessableEntity, "scope")
}

func TestAdminClientLifecycle(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)

	created := a.call(http.MethodPost, "/admin/clients", map[string]any{
		"client_name": "Billing backend", "grant_types": []string{"client_credentials"}, "scope": "invoices.read",
	}).must(t, http.StatusCreated)
	id, _ := created.body["client_id"].(string)
	secret, _ := created.body["client_secret"].(string)
	if id == "" || len(secret) < 40 || created.header.Get("Location") != "/admin/clients/"+id {
		t.Fatalf("create: want an ID, a secret and a Location: %s", created.raw)
	}
	got := a.call(http.MethodGet, "/admin/clients/"+id, nil).must(t, http.StatusOK)
	if _, shown := got.body["client_secret"]; shown || got.body["client_name"] != "Billing backend" {
		t.Fatalf("GET shows %s; the secret must be shown only once", got.raw)
	}
	first := n.clientToken(t, id, secret)

	// Replace and patch.
	put := a.call(http.MethodPut, "/admin/clients/"+id, map[string]any{
		"client_name": "Billing", "grant_types": []string{"client_credentials"}, "scope": "invoices.read invoices.write",
	}).must(t, http.StatusOK)
	if put.body["scope"] != "invoices.read invoices.write" || put.body["access_token_format"] != "opaque" {
		t.Fatalf("PUT: %s", put.raw)
	}
	patched := a.call(http.MethodPatch, "/admin/clients/"+id, map[string]any{"access_token_format": "jwt", "client_name": nil}).must(t, http.StatusOK)
	if patched.body["access_token_format"] != "jwt" || patched.body["client_name"] != "" || patched.body["scope"] != "invoices.read invoices.write" {
		t.Fatalf("PATCH changes only what it names: %s", patched.raw)
	}
	// New grants bring the response types they need, as on the CLI.
	toWeb := a.call(http.MethodPatch, "/admin/clients/"+id, map[string]any{
		"grant_types": []string{"authorization_code", "client_credentials"}, "redirect_uris": []string{"https://billing.example.com/cb"},
	}).must(t, http.StatusOK)
	if fmt.Sprint(toWeb.body["response_types"]) != "[code]" {
		t.Fatalf("PATCH to the code grant: %s", toWeb.raw)
	}
	a.call(http.MethodPatch, "/admin/clients/"+id, map[string]any{"grant_types": []string{"client_credentials"}, "redirect_uris": nil}).must(t, http.StatusOK)

	// A grace over 30 days is the Manager's to refuse, and changes nothing.
	a.call(http.MethodPost, "/admin/clients/"+id+"/secret", map[string]string{"grace": "721h"}).problem(t, http.StatusUnprocessableEntity, "grace")
	a.call(http.MethodPost, "/admin/clients/"+id+"/secret", map[string]string{"grace": "-1s"}).problem(t, http.StatusUnprocessableEntity, "grace")

	// Rotation with no grace: the old secret stops at once.
	rotated := a.call(http.MethodPost, "/admin/clients/"+id+"/secret", map[string]string{"grace": "0s"}).must(t, http.StatusOK)
	newSecret, _ := rotated.body["client_secret"].(string)
	if newSecret == "" || newSecret == secret {
		t.Fatalf("rotate: %s", rotated.raw)
	}
	if _, ok := rotated.body["previous_secret_expires_at"]; ok {
		t.Errorf("rotation with no grace says the old secret ends at %v", rotated.body["previous_secret_expires_at"])
	}
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: n.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}
	if _, err := cc.Token(t.Context()); err == nil {
		t.Fatal("the rotated-out secret still gets tokens")
	}
	tokens := []string{first, n.clientToken(t, id, newSecret), n.clientToken(t, id, newSecret)}

	// Revoking everything of a compromised backend.
	revoked := a.call(http.MethodDelete, "/admin/clients/"+id+"/tokens", nil).must(t, http.StatusOK)
	if revoked.body["revoked"] != float64(3) {
		t.Fatalf("revoke-all: %s, want 3 tokens revoked", revoked.raw)
	}
	for i, tok := range tokens {
		if active := n.introspect(t, tok); active {
			t.Errorf("token %d is still active after revoke-all", i)
		}
	}
	if !n.introspect(t, n.clientToken(t, id, newSecret)) {
		t.Fatal("revoke-all revoked the client itself; a new token should work")
	}

	a.call(http.MethodDelete, "/admin/clients/"+id, nil).must(t, http.StatusNoContent)
	a.call(http.MethodGet, "/admin/clients/"+id, nil).problem(t, http.StatusNotFound, "")
	a.call(http.MethodDelete, "/admin/clients/"+id, nil).problem(t, http.StatusNotFound, "")
	cc.ClientSecret = newSecret
	if _, err := cc.Token(t.Context()); err == nil {
		t.Fatal("a deleted client still gets tokens")
	}
}

// introspect reports whether a token is active, asking as a resource
// server would.
func (n *node) introspect(t *testing.T, token string) bool {
	t.Helper()
	return n.introspection(t, token)["active"] == true
}

func TestAdminUserLifecycle(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	rp := n.app(t)

	created := a.call(http.MethodPost, "/admin/users", map[string]any{
		"email": "ada@example.com", "name": "Ada Lovelace", "password": testPassword,
		"claims": map[string]any{"locale": "en-GB"},
	}).must(t, http.StatusCreated)
	sub, _ := created.body["sub"].(string)
	if sub == "" || created.body["email"] != "ada@example.com" || created.body["password"] != nil {
		t.Fatalf("create: %s", created.raw)
	}
	userPath := "/admin/users/" + sub
	b := newBrowser(t, n.issuer)
	tok, _ := b.signedIn(rp, "ada@example.com")

	// The admin sees the session and the consent.
	if sessions := a.call(http.MethodGet, userPath+"/sessions", nil).must(t, http.StatusOK).items(); len(sessions) != 1 {
		t.Fatalf("sessions: %v", sessions)
	}
	consents := a.call(http.MethodGet, userPath+"/consents", nil).must(t, http.StatusOK).items()
	if len(consents) != 1 || consents[0]["client_id"] != rp.client.ID {
		t.Fatalf("consents: %v", consents)
	}

	patched := a.call(http.MethodPatch, userPath, map[string]any{"name": "Ada King", "claims": map[string]any{"locale": nil, "zoneinfo": "Europe/London"}}).must(t, http.StatusOK)
	claims, _ := patched.body["claims"].(map[string]any)
	if patched.body["name"] != "Ada King" || claims["locale"] != nil || claims["zoneinfo"] != "Europe/London" {
		t.Fatalf("patch: %s", patched.raw)
	}
	// A new email is unverified, unless the admin says it is verified.
	for _, tt := range []struct {
		patch    map[string]any
		verified bool
	}{
		{map[string]any{"email_verified": true}, true},
		{map[string]any{"email": "ada.king@example.com"}, false},
		{map[string]any{"email": "ada@example.com", "email_verified": true}, true},
		{map[string]any{"email": "ada.lovelace@example.com", "email_verified": true}, true},
		{map[string]any{"email": "ADA.LOVELACE@example.com"}, true},
		{map[string]any{"email": "ada@example.com"}, false},
	} {
		if got := a.call(http.MethodPatch, userPath, tt.patch).must(t, http.StatusOK); got.body["email_verified"] != tt.verified {
			t.Fatalf("patch %v: %s, want email_verified %v", tt.patch, got.raw, tt.verified)
		}
	}

	// Disabled: no sign-in, and the refresh token is dead.
	disabled := a.call(http.MethodPost, userPath+"/disable", nil).must(t, http.StatusOK)
	if disabled.body["disabled"] != true {
		t.Fatalf("disable: %s", disabled.raw)
	}
	if _, err := rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a disabled user's refresh token still works")
	}
	if other := newBrowser(t, n.issuer); !other.signIn(other.visit(rp.start().url), "ada@example.com", testPassword).isLogin() {
		t.Fatal("a disabled user signed in")
	}
	a.call(http.MethodPost, userPath+"/enable", nil).must(t, http.StatusOK)

	// Sign out everywhere ends sessions and refresh tokens.
	b = newBrowser(t, n.issuer)
	tok, _ = b.signedIn(rp, "ada@example.com")
	a.call(http.MethodDelete, userPath+"/sessions", nil).must(t, http.StatusNoContent)
	if q := b.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "login_required" {
		t.Fatalf("after sign-out-everywhere the browser is still signed in: %v", q)
	}
	if _, err := rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("the refresh token survived sign-out-everywhere")
	}

	// One session at a time, and consents.
	b = newBrowser(t, n.issuer)
	b.signedIn(rp, "ada@example.com")
	sid, _ := a.call(http.MethodGet, userPath+"/sessions", nil).must(t, http.StatusOK).items()[0]["sid"].(string)
	a.call(http.MethodDelete, userPath+"/sessions/"+sid, nil).must(t, http.StatusNoContent)
	a.call(http.MethodDelete, userPath+"/sessions/"+sid, nil).problem(t, http.StatusNotFound, "")
	a.call(http.MethodDelete, userPath+"/consents/"+rp.client.ID, nil).must(t, http.StatusNoContent)
	if consents := a.call(http.MethodGet, userPath+"/consents", nil).must(t, http.StatusOK).items(); len(consents) != 0 {
		t.Fatalf("consent survived revocation: %v", consents)
	}

	// A new password, checked against the policy.
	a.call(http.MethodPut, userPath+"/password", map[string]string{"password": "password"}).problem(t, http.StatusUnprocessableEntity, "password")
	a.call(http.MethodPut, userPath+"/password", map[string]string{"password": "a much better passphrase"}).must(t, http.StatusNoContent)
	if _, err := n.users.Authenticate(t.Context(), "ada@example.com", "a much better passphrase", nil); err != nil {
		t.Fatalf("the new password does not work: %v", err)
	}

	// MFA: reset for a user who lost their phone.
	u, _ := n.users.Get(t.Context(), sub)
	n.enrol(t, u)
	if st := a.call(http.MethodGet, userPath+"/mfa", nil).must(t, http.StatusOK); st.body["enabled"] != true || st.body["recovery_codes_left"] != float64(10) {
		t.Fatalf("mfa status: %s", st.raw)
	}
	a.call(http.MethodDelete, userPath+"/mfa", nil).must(t, http.StatusNoContent)
	a.call(http.MethodDelete, userPath+"/mfa", nil).problem(t, http.StatusNotFound, "")

	a.call(http.MethodDelete, userPath, nil).must(t, http.StatusNoContent)
	a.call(http.MethodGet, userPath, nil).problem(t, http.StatusNotFound, "")
	a.call(http.MethodGet, "/admin/users/not-a-uuid", nil).problem(t, http.StatusNotFound, "")
}

func TestAdminValidationErrorsNameTheField(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	a.call(http.MethodPost, "/admin/users", map[string]any{"email": "ada@example.com"}).must(t, http.StatusCreated)

	for _, tt := range []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"duplicate email, in another case", http.MethodPost, "/admin/users", map[string]any{"email": "ADA@example.com"}, http.StatusConflict, "email"},
		{"bad email", http.MethodPost, "/admin/users", map[string]any{"email": "ada"}, http.StatusUnprocessableEntity, "email"},
		{"unknown claim", http.MethodPost, "/admin/users", map[string]any{"email": "b@example.com", "claims": map[string]any{"shoe_size": "9"}}, http.StatusUnprocessableEntity, "claims.shoe_size"},
		{"weak password", http.MethodPost, "/admin/users", map[string]any{"email": "b@example.com", "password": "12345678"}, http.StatusUnprocessableEntity, "password"},
		{"unknown user field", http.MethodPost, "/admin/users", map[string]any{"email": "b@example.com", "colour": "blue"}, http.StatusBadRequest, "colour"},
		{"read-only field", http.MethodPost, "/admin/users", map[string]any{"email": "b@example.com", "sub": "x"}, http.StatusBadRequest, "sub"},
		{"wrong type", http.MethodPost, "/admin/users", map[string]any{"email": 42}, http.StatusBadRequest, "email"},
		{"bad redirect URI", http.MethodPost, "/admin/clients", map[string]any{
			"grant_types": []string{"authorization_code"}, "redirect_uris": []string{"http://app.example.com/cb#frag"}}, http.StatusUnprocessableEntity, "redirect_uris"},
		{"unknown client field", http.MethodPost, "/admin/clients", map[string]any{"grant_types": []string{"client_credentials"}, "redirect_uri": "https://x"}, http.StatusBadRequest, "redirect_uri"},
		{"implicit grant", http.MethodPost, "/admin/clients", map[string]any{"grant_types": []string{"implicit"}}, http.StatusUnprocessableEntity, "grant_types"},
		{"client secret chosen by the caller", http.MethodPost, "/admin/clients", map[string]any{"grant_types": []string{"client_credentials"}, "client_secret": "hunter2"}, http.StatusBadRequest, "client_secret"},
		{"bad role name", http.MethodPost, "/admin/roles", map[string]any{"name": "has space"}, http.StatusUnprocessableEntity, "name"},
		{"bad grace", http.MethodPost, "/admin/clients/none/secret", map[string]any{"grace": "soon"}, http.StatusUnprocessableEntity, "grace"},
		{"bad limit", http.MethodGet, "/admin/users?limit=0", nil, http.StatusBadRequest, "limit"},
		{"unknown filter", http.MethodGet, "/admin/users?emial_prefix=a", nil, http.StatusBadRequest, "emial_prefix"},
		{"unknown action", http.MethodGet, "/admin/audit-events?action=user.hacked", nil, http.StatusBadRequest, "action"},
		{"query on a route that takes none", http.MethodGet, "/admin/keys?limit=1", nil, http.StatusBadRequest, "limit"},
		{"malformed JSON", http.MethodPost, "/admin/users", `{"email": `, http.StatusBadRequest, ""},
		{"not an object", http.MethodPost, "/admin/users", `["ada@example.com"]`, http.StatusBadRequest, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a.t = t
			a.call(tt.method, tt.path, tt.body).problem(t, tt.status, tt.field)
		})
	}
	a.t = t
	req, _ := http.NewRequest(http.MethodPost, n.admin+"/admin/users", strings.NewReader("email=ada@example.com"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+a.token)
	if status, _ := doJSON(t, req); status != http.StatusUnsupportedMediaType {
		t.Errorf("a form body: %d, want 415", status)
	}
	if ans := a.call(http.MethodPost, "/admin/users/"+"3f0c5e0a-8a1d-4c47-9a36-2b2f4f7f1b65", nil); ans.status != http.StatusMethodNotAllowed ||
		ans.header.Get("Allow") != "GET, PATCH, DELETE" {
		t.Errorf("POST on a user: %d, Allow %q; want 405 naming GET, PATCH, DELETE", ans.status, ans.header.Get("Allow"))
	}
	// Nothing half-made: the failures left one user, and no clients but
	// the automation's own.
	if users := a.call(http.MethodGet, "/admin/users", nil).must(t, http.StatusOK).items(); len(users) != 1 {
		t.Fatalf("users after failed creates: %v", users)
	}
}

func TestAdminListsPageThroughEveryItemExactlyOnce(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	var want []string
	for i := range 23 {
		email := fmt.Sprintf("user%02d@example.com", i)
		if _, err := n.users.Create(t.Context(), identityUser(email, nil), ""); err != nil {
			t.Fatal(err)
		}
		want = append(want, email)
	}
	if _, err := n.users.Create(t.Context(), identityUser("zed@other.example", nil), ""); err != nil {
		t.Fatal(err)
	}

	var got []string
	var cursors []string
	next := "/admin/users?email_prefix=USER&limit=5"
	for pages := 0; next != ""; pages++ {
		if pages > 10 {
			t.Fatal("the listing does not end")
		}
		ans := a.call(http.MethodGet, next, nil).must(t, http.StatusOK)
		for _, u := range ans.items() {
			got = append(got, u["email"].(string))
		}
		next = ""
		if c, _ := ans.body["next_cursor"].(string); c != "" {
			cursors = append(cursors, c)
			next = "/admin/users?email_prefix=USER&limit=5&cursor=" + url.QueryEscape(c)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages gave %v, want each of %v once, in order", got, want)
	}

	c := cursors[0]
	for _, tt := range []struct{ name, path string }{
		{"tampered", "/admin/users?email_prefix=USER&limit=5&cursor=" + url.QueryEscape(c[:len(c)-2]+flip(c[len(c)-2:]))},
		{"not base64", "/admin/users?cursor=%21%21"},
		{"another filter", "/admin/users?email_prefix=us&limit=5&cursor=" + url.QueryEscape(c)},
		{"another list", "/admin/clients?cursor=" + url.QueryEscape(c)},
	} {
		a.call(http.MethodGet, tt.path, nil).problem(t, http.StatusBadRequest, "cursor")
	}

	// Clients page the same way, by ID, and filter by name.
	for i := range 7 {
		if _, _, err := n.clients.Create(t.Context(), client.Client{ID: fmt.Sprintf("svc-%d", i), Name: fmt.Sprintf("Service %d", i),
			GrantTypes: []string{client.GrantClientCredentials}}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	next = "/admin/clients?name_prefix=service&limit=3"
	for next != "" {
		ans := a.call(http.MethodGet, next, nil).must(t, http.StatusOK)
		for _, c := range ans.items() {
			ids = append(ids, c["client_id"].(string))
		}
		next = ""
		if c, _ := ans.body["next_cursor"].(string); c != "" {
			next = "/admin/clients?name_prefix=service&limit=3&cursor=" + url.QueryEscape(c)
		}
	}
	if want := []string{"svc-0", "svc-1", "svc-2", "svc-3", "svc-4", "svc-5", "svc-6"}; !slices.Equal(ids, want) {
		t.Fatalf("clients %v, want %v", ids, want)
	}
}

// flip changes a base64url string into another of the same length.
func flip(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == 'A' {
			b.WriteRune('B')
		} else {
			b.WriteRune('A')
		}
	}
	return b.String()
}

func TestRolesAppearInTokensOnlyForAppsAllowedTheRolesScope(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	a := n.automation(t, client.AdminScope)
	for _, name := range []string{"billing-admin", "support"} {
		a.call(http.MethodPost, "/admin/roles", map[string]string{"name": name, "description": "People who " + name}).must(t, http.StatusCreated)
		a.call(http.MethodPut, "/admin/users/"+u.ID+"/roles/"+name, nil).must(t, http.StatusNoContent)
	}
	a.call(http.MethodPost, "/admin/roles", map[string]string{"name": "support"}).problem(t, http.StatusConflict, "name")
	if r := a.call(http.MethodPatch, "/admin/roles/support", map[string]any{"description": nil}).must(t, http.StatusOK); r.body["description"] != "" {
		t.Fatalf("a null description should clear it: %s", r.raw)
	}
	a.call(http.MethodPatch, "/admin/roles/support", map[string]any{"name": "helpdesk"}).problem(t, http.StatusBadRequest, "name")
	a.call(http.MethodPut, "/admin/users/"+u.ID+"/roles/nobody", nil).problem(t, http.StatusNotFound, "")
	if got := a.call(http.MethodGet, "/admin/users/"+u.ID+"/roles", nil).must(t, http.StatusOK); fmt.Sprint(got.body["items"]) != "[billing-admin support]" {
		t.Fatalf("user roles: %s", got.raw)
	}

	withRoles := n.app(t, func(c *client.Client) {
		c.Scope = "openid email roles offline_access"
		c.AccessTokenFormat = client.FormatJWT
	})
	without := n.app(t, func(c *client.Client) { c.AccessTokenFormat = client.FormatJWT })
	tok, id := newBrowser(t, n.issuer).signedIn(withRoles, "ada@example.com")
	plainTok, plainID := newBrowser(t, n.issuer).signedIn(without, "ada@example.com")

	var idClaims, plainClaims map[string]any
	_ = id.Claims(&idClaims)
	_ = plainID.Claims(&plainClaims)
	introspected := n.introspection(t, tok.AccessToken)
	info, err := withRoles.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	var infoClaims map[string]any
	_ = info.Claims(&infoClaims)
	for name, claims := range map[string]map[string]any{
		"ID token":      idClaims,
		"userinfo":      infoClaims,
		"access token":  decodeSegment(t, strings.Split(tok.AccessToken, ".")[1]),
		"introspection": introspected,
	} {
		if fmt.Sprint(claims["roles"]) != "[billing-admin support]" {
			t.Errorf("%s: roles %v, want [billing-admin support]", name, claims["roles"])
		}
	}
	for name, claims := range map[string]map[string]any{
		"ID token":      plainClaims,
		"access token":  decodeSegment(t, strings.Split(plainTok.AccessToken, ".")[1]),
		"introspection": n.introspection(t, plainTok.AccessToken),
	} {
		if _, ok := claims["roles"]; ok {
			t.Errorf("%s of an app without the roles scope has roles: %v", name, claims["roles"])
		}
	}

	// A role taken away is gone at the next refresh.
	a.call(http.MethodDelete, "/admin/users/"+u.ID+"/roles/support", nil).must(t, http.StatusNoContent)
	a.call(http.MethodDelete, "/admin/roles/billing-admin", nil).must(t, http.StatusNoContent)
	next := refreshed(t, withRoles, tok)
	if got := decodeSegment(t, strings.Split(next.AccessToken, ".")[1])["roles"]; fmt.Sprint(got) != "[]" {
		t.Fatalf("after the roles went, the refreshed access token has roles %v", got)
	}
}

// introspection is the view of a token of a resource server allowed to
// introspect every access token.
func (n *node) introspection(t *testing.T, token string) map[string]any {
	t.Helper()
	rs, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}, IntrospectAnyToken: true})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(rs.ID, secret)
	status, body := doJSON(t, req)
	if status != http.StatusOK {
		t.Fatalf("introspection: %d %v", status, body)
	}
	return body
}

func TestAdminRotatesAndRetiresKeys(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	before := a.call(http.MethodGet, "/admin/keys", nil).must(t, http.StatusOK).items()
	rotated := a.call(http.MethodPost, "/admin/keys/rotate", nil).must(t, http.StatusOK).items()
	if len(rotated) != len(before) {
		t.Fatalf("rotation made %d keys, want one per algorithm (%d)", len(rotated), len(before))
	}
	old, _ := before[0]["kid"].(string)
	a.call(http.MethodPost, "/admin/keys/"+rotated[0]["kid"].(string)+"/retire", nil).problem(t, http.StatusConflict, "")
	a.call(http.MethodPost, "/admin/keys/"+old+"/retire", nil).must(t, http.StatusOK)
	a.call(http.MethodPost, "/admin/keys/"+old+"/retire", nil).problem(t, http.StatusNotFound, "")
	_, jwks := httpGet(t, n.issuer+"/.well-known/jwks.json")
	if strings.Contains(string(jwks), old) {
		t.Fatal("the retired key is still published")
	}
}

func TestTheAuditLogRecordsAdminChangesAndSecurityEvents(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_MFA_MAX_FAILURES", "2")
	a := n.automation(t, client.AdminScope)
	actor := "client:" + a.clientID

	// An admin change carries who, from where, and which request.
	body := strings.NewReader(`{"client_name": "Billing", "grant_types": ["client_credentials"]}`)
	req, _ := http.NewRequest(http.MethodPost, n.admin+"/admin/clients", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("X-Request-Id", "ci-run-42")
	status, created := doJSON(t, req)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, created)
	}
	billing := created["client_id"].(string)
	a.call(http.MethodPost, "/admin/clients", map[string]any{"grant_types": []string{"implicit"}}).must(t, http.StatusUnprocessableEntity)
	a.call(http.MethodPost, "/admin/clients/"+billing+"/secret", nil).must(t, http.StatusOK)
	a.call(http.MethodDelete, "/admin/clients/"+billing+"/tokens", nil).must(t, http.StatusOK)
	a.call(http.MethodPost, "/admin/keys/rotate", nil).must(t, http.StatusOK)

	// Security events from the sign-in pages and the token endpoint.
	u := n.user(t, "ada@example.com")
	rp := n.app(t)
	b := newBrowser(t, n.issuer)
	b.signIn(b.visit(rp.start().url), "ada@example.com", "not the password")
	tok, _ := b.signedIn(rp, "ada@example.com")
	refreshed(t, rp, tok)
	if _, err := rp.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a spent refresh token worked again")
	}
	a.call(http.MethodDelete, "/admin/users/"+u.ID+"/consents/"+rp.client.ID, nil).must(t, http.StatusNoContent)
	n.enrol(t, u)
	other := newBrowser(t, n.issuer)
	p := other.signIn(other.visit(rp.start().url), "ada@example.com", testPassword)
	other.secondFactor(other.secondFactor(p, "000000"), "000000")

	for _, tt := range []struct {
		action, target, actor string
	}{
		{"client.created", "client:" + billing, actor},
		{"client.secret_rotated", "client:" + billing, actor},
		{"client.tokens_revoked", "client:" + billing, actor},
		{"key.rotated", "", actor},
		{"login.failed", "user:" + u.ID, "anonymous"},
		{"login.succeeded", "user:" + u.ID, "user:" + u.ID},
		{"consent.granted", "user:" + u.ID, "user:" + u.ID},
		{"token.refresh_reuse_detected", "client:" + rp.client.ID, "client:" + rp.client.ID},
		{"consent.revoked", "user:" + u.ID, actor},
		{"mfa.failed", "user:" + u.ID, "user:" + u.ID},
		{"mfa.throttled", "user:" + u.ID, "user:" + u.ID},
	} {
		q := url.Values{"action": {tt.action}}
		if tt.target != "" {
			q.Set("target", tt.target)
		}
		ans := a.call(http.MethodGet, "/admin/audit-events?"+q.Encode(), nil).must(t, http.StatusOK)
		es := ans.items()
		if len(es) == 0 || es[0]["target"] != tt.target || es[0]["actor"] != tt.actor || es[0]["ip"] != "127.0.0.1" || es[0]["request_id"] == "" {
			t.Errorf("%s: events %v, want one on %q by %q from 127.0.0.1 with a request ID", tt.action, es, tt.target, tt.actor)
		}
	}
	created1 := a.call(http.MethodGet, "/admin/audit-events?action=client.created&target=client:"+billing, nil).must(t, http.StatusOK).items()
	if len(created1) != 1 || created1[0]["request_id"] != "ci-run-42" {
		t.Fatalf("the client's creation: %v, want one event with the caller's request ID", created1)
	}
	// The refused create left nothing behind.
	if es := a.call(http.MethodGet, "/admin/audit-events?action=client.created&actor="+actor, nil).must(t, http.StatusOK).items(); len(es) != 1 {
		t.Fatalf("client.created by the automation: %d events, want 1 (the refused one recorded nothing)", len(es))
	}
}

func TestClientsCreateAdminBootstrapsTheAdminAPI(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	env := vars{"LATCHKEY_DATABASE_URL": n.dbURL}
	code, stdout, stderr := runCLI(t.Context(), env, "clients", "create", "--admin", "--output", "json")
	if code != 0 {
		t.Fatalf("clients create --admin: exit %d: %s", code, stderr)
	}
	c := decodeClient(t, stdout)
	if c["scope"] != "latchkey:admin latchkey:admin:read" || fmt.Sprint(c["grant_types"]) != "[client_credentials]" {
		t.Fatalf("an admin client should have the admin scopes and only client credentials: %s", stdout)
	}
	full := &automation{t: t, n: n, clientID: c["client_id"].(string)}
	full.token = n.clientToken(t, full.clientID, c["client_secret"].(string))
	full.call(http.MethodPost, "/admin/roles", map[string]string{"name": "auditors"}).must(t, http.StatusCreated)

	// Narrowed to reading.
	code, stdout, stderr = runCLI(t.Context(), env, "clients", "create", "--admin", "--scope", "latchkey:admin:read", "--output", "json")
	if code != 0 {
		t.Fatalf("clients create --admin --scope latchkey:admin:read: exit %d: %s", code, stderr)
	}
	c = decodeClient(t, stdout)
	reader := &automation{t: t, n: n, clientID: c["client_id"].(string)}
	reader.token = n.clientToken(t, reader.clientID, c["client_secret"].(string))
	reader.call(http.MethodGet, "/admin/roles", nil).must(t, http.StatusOK)
	reader.call(http.MethodDelete, "/admin/roles/auditors", nil).problem(t, http.StatusForbidden, "")

	// The CLI's changes are audited under the operator's name.
	es := full.call(http.MethodGet, "/admin/audit-events?action=client.created&target=client:"+reader.clientID, nil).must(t, http.StatusOK).items()
	if len(es) != 1 || !strings.HasPrefix(es[0]["actor"].(string), "cli:") {
		t.Fatalf("the CLI's client creation: %v, want one event by cli:USER", es)
	}
}
