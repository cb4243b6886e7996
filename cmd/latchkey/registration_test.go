package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/openidclient"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
)

// registered is a registration response (RFC 7591 §3.2.1).
type registered struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r registered) str(field string) string { s, _ := r.body[field].(string); return s }

// errorCode is the error of an error response, and its description.
func (r registered) errorCode() (string, string) { return r.str("error"), r.str("error_description") }

// register sends a registration request from http client hc (nil: the
// default), with bearer as the initial access token when not empty; body
// is encoded as JSON unless it is a string.
func (n *node) register(t *testing.T, hc *http.Client, bearer string, body any) registered {
	t.Helper()
	r, err := n.registrationCall(hc, http.MethodPost, n.issuer+"/oauth2/register", bearer, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// registrationCall is one request to the registration or a client
// configuration endpoint; safe from any goroutine.
func (n *node) registrationCall(hc *http.Client, method, u, bearer string, body any) (registered, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return registered{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return registered{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return registered{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	r := registered{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r, err
}

// loopbackApp is the metadata of a confidential web app on loopback.
func loopbackApp(name string) map[string]any {
	return map[string]any{
		"client_name":   name,
		"redirect_uris": []string{"http://127.0.0.1:9/callback"},
		"grant_types":   []string{"authorization_code", "refresh_token"},
		"scope":         "openid email",
	}
}

// registeredRP is the relying party a registration response describes,
// built as an app developer would from it with x/oauth2 and go-oidc.
func (n *node) registeredRP(t *testing.T, r registered) *relyingParty {
	t.Helper()
	c, err := n.clients.Get(t.Context(), r.str("client_id"))
	if err != nil {
		t.Fatalf("the registered client is not stored: %v", err)
	}
	provider, err := oidc.NewProvider(t.Context(), n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if c.IsPublic() {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return &relyingParty{
		client: c,
		oauth: &oauth2.Config{ClientID: c.ID, ClientSecret: r.str("client_secret"), RedirectURL: c.RedirectURIs[0],
			Endpoint: endpoint, Scopes: c.Scopes()},
		verifier: provider.Verifier(&oidc.Config{ClientID: c.ID}),
		provider: provider,
	}
}

// TestOpenIDClientRegistersAnMCPStyleClientAndSignsInWithIt is what an
// MCP client does on meeting a server: it registers itself as a public
// client with a loopback redirect URI and signs its user in with PKCE,
// here with openid-client doing both. What the registration asked for
// beyond RFC 7591 (consent skipped, introspection of every token, an
// audience) is not granted, and the user is asked to consent.
func TestOpenIDClientRegistersAnMCPStyleClientAndSignsInWithIt(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_REGISTRATION", "open")
	u := n.user(t, "ada@example.com")

	var started struct {
		Client       map[string]any `json:"client"`
		URL          string         `json:"url"`
		CodeVerifier string         `json:"code_verifier"`
		State        string         `json:"state"`
		Nonce        string         `json:"nonce"`
	}
	openidclient.Run(t, "register.mjs", map[string]any{
		"issuer": n.issuer,
		"scope":  "openid email offline_access",
		"metadata": map[string]any{
			"client_name":                "Claude Code",
			"redirect_uris":              []string{"http://127.0.0.1:33418/callback"},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
			"scope":                      "openid email offline_access",
			// RFC 7591 metadata Latchkey does not keep, which it ignores.
			"client_uri": "https://claude.ai", "logo_uri": "https://claude.ai/logo.png", "software_id": "claude-code",
			// Latchkey's own privileged fields, which no registration sets.
			"skip_consent": true, "introspect_any_token": true, "audience": []string{"https://api.example.com"},
			"access_token_lifespan": "24h",
		},
	}, &started)
	id, _ := started.Client["client_id"].(string)
	if id == "" || started.Client["token_endpoint_auth_method"] != "none" || started.Client["registration_access_token"] == nil ||
		started.Client["client_secret"] != nil {
		t.Fatalf("openid-client registered %v; want a public client with a registration access token", started.Client)
	}
	stored, err := n.clients.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.SkipConsent || stored.IntrospectAnyToken || len(stored.Audience) != 0 || stored.AccessTokenLifespan != 0 ||
		!stored.IsPublic() || stored.Name != "Claude Code" {
		t.Fatalf("stored client %+v: privileged fields were taken from an anonymous registration", stored)
	}

	if !stored.SelfRegistered {
		t.Fatal("the registered client is not marked as having registered itself")
	}

	b := newBrowser(t, n.issuer)
	consent := b.signIn(b.visit(started.URL), "ada@example.com", testPassword)
	if !consent.isConsent() || !strings.Contains(consent.body, "Claude Code") {
		t.Fatalf("a registered client was not shown to the user for consent:\n%s", consent.body)
	}
	// Its name is its own choice: the user is told nobody checked it, and
	// where allowing it sends them, which it cannot choose freely.
	if !strings.Contains(consent.body, `id="unverified-warning"`) || !strings.Contains(consent.body, "<strong>127.0.0.1:33418</strong>") {
		t.Fatalf("the consent page for a self-registered app does not say so, or where it sends the user:\n%s", consent.body)
	}
	back := b.decide(consent, "allow").callback(t)
	var done struct {
		Claims   map[string]any `json:"claims"`
		Userinfo map[string]any `json:"userinfo"`
		Refresh  bool           `json:"refresh"`
	}
	openidclient.Run(t, "register_callback.mjs", map[string]any{
		"issuer": n.issuer, "client_id": id, "callback": back.String(),
		"code_verifier": started.CodeVerifier, "state": started.State, "nonce": started.Nonce,
	}, &done)
	if aud, _ := done.Claims["aud"].([]any); done.Claims["sub"] != u.ID || len(aud) != 1 || aud[0] != id || done.Userinfo["email"] != "ada@example.com" || !done.Refresh {
		t.Fatalf("sign-in with the registered client: claims %v, userinfo %v, refresh token %v", done.Claims, done.Userinfo, done.Refresh)
	}

	// An app an operator made is not flagged.
	other := newBrowser(t, n.issuer)
	if page := other.signIn(other.visit(n.app(t).start().url), "ada@example.com", testPassword); !page.isConsent() ||
		strings.Contains(page.body, `id="unverified-warning"`) {
		t.Fatalf("the consent page for an operator's app: %d\n%s", page.status, page.body)
	}

	events := n.events(t, audit.ClientRegistered, "via", "open")
	if len(events) != 1 || events[0].Actor != audit.Anonymous || events[0].Target != audit.Client(id) {
		t.Fatalf("client.registered events %+v, want one by anonymous for %s", events, id)
	}
}

// TestRegisteredClientReadsUpdatesAndDeletesItselfWithItsToken drives RFC
// 7592 with the registration access token, and with every token that is
// not the client's.
func TestRegisteredClientReadsUpdatesAndDeletesItselfWithItsToken(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_REGISTRATION", "open", "LATCHKEY_REGISTRATION_RATE_LIMIT", "0")
	n.user(t, "ada@example.com")
	mine := n.register(t, nil, "", loopbackApp("Notes"))
	other := n.register(t, nil, "", loopbackApp("Other"))
	if mine.status != http.StatusCreated || other.status != http.StatusCreated {
		t.Fatalf("registration: %d %s", mine.status, mine.raw)
	}
	id, token, uri := mine.str("client_id"), mine.str("registration_access_token"), mine.str("registration_client_uri")
	if uri != n.issuer+"/oauth2/register/"+id || mine.header.Get("Location") != uri || !strings.HasPrefix(token, "lk_rat_") ||
		mine.str("client_secret") == "" || mine.body["client_secret_expires_at"] != float64(0) || mine.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("registration response %s", mine.raw)
	}
	// Only the digest of the token is kept.
	var stored []byte
	n.query(t, &stored, `SELECT token_digest FROM client_registrations WHERE client_id = $1`, id)
	if bytes.Contains(stored, []byte(token)) || len(stored) != 32 {
		t.Fatalf("stored %x for the registration access token, want its SHA-256 digest", stored)
	}

	call := func(method, bearer string, body any) registered {
		t.Helper()
		r, err := n.registrationCall(nil, method, uri, bearer, body)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	read := call(http.MethodGet, token, nil)
	if read.status != http.StatusOK || read.str("client_id") != id || read.str("client_name") != "Notes" ||
		read.str("registration_access_token") != token || read.str("client_secret") != "" {
		t.Fatalf("read: %d %s", read.status, read.raw)
	}
	for name, bearer := range map[string]string{
		"another client's token": other.str("registration_access_token"),
		"no token":               "",
		"a garbled token":        token[:len(token)-1] + "x",
		"the client secret":      mine.str("client_secret"),
	} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			r := call(method, bearer, map[string]any{"client_id": id, "redirect_uris": []string{"http://127.0.0.1:9/evil"}})
			if code, _ := r.errorCode(); r.status != http.StatusUnauthorized || code != "invalid_token" ||
				!strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s with %s: %d %s, want 401 invalid_token", method, name, r.status, r.raw)
			}
		}
	}
	// Another client's own token does not reach this client at its URI
	// either way round: at the other's URI, this token is refused.
	if r, _ := n.registrationCall(nil, http.MethodGet, other.str("registration_client_uri"), token, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("a token read another client: %d %s", r.status, r.raw)
	}

	// An update replaces the metadata; what it leaves out takes its
	// default; it stays within the policy it registered under.
	update := map[string]any{"client_id": id, "client_name": "Notes 2",
		"redirect_uris": []string{"http://127.0.0.1:9/callback", "http://localhost:7/cb"}, "scope": "openid profile"}
	up := call(http.MethodPut, token, update)
	if up.status != http.StatusOK || up.str("client_name") != "Notes 2" || up.str("scope") != "openid profile" ||
		up.str("registration_access_token") != token {
		t.Fatalf("update: %d %s", up.status, up.raw)
	}
	if c, _ := n.clients.Get(t.Context(), id); c.Name != "Notes 2" || len(c.RedirectURIs) != 2 || c.CanUse(client.GrantRefreshToken) {
		t.Fatalf("stored after update: %+v", c)
	}
	for name, tt := range map[string]struct {
		body map[string]any
		code string
	}{
		"without client_id":        {map[string]any{"redirect_uris": []string{"http://127.0.0.1:9/callback"}}, "invalid_client_metadata"},
		"with another client_id":   {map[string]any{"client_id": other.str("client_id"), "redirect_uris": []string{"http://127.0.0.1:9/callback"}}, "invalid_client_metadata"},
		"with a wrong secret":      {map[string]any{"client_id": id, "client_secret": "nope", "redirect_uris": []string{"http://127.0.0.1:9/callback"}}, "invalid_client_metadata"},
		"beyond the policy's URIs": {map[string]any{"client_id": id, "redirect_uris": []string{"https://evil.example.com/cb"}}, "invalid_redirect_uri"},
		"for admin scopes":         {map[string]any{"client_id": id, "grant_types": []string{"client_credentials"}, "scope": client.AdminScope}, "invalid_client_metadata"},
	} {
		r := call(http.MethodPut, token, tt.body)
		if code, _ := r.errorCode(); r.status != http.StatusBadRequest || code != tt.code {
			t.Errorf("update %s: %d %s, want 400 %s", name, r.status, r.raw, tt.code)
		}
	}
	if c, _ := n.clients.Get(t.Context(), id); c.Name != "Notes 2" || c.IsAdmin() {
		t.Fatalf("a refused update changed the client: %+v", c)
	}
	// Sending the secret back, as a client echoing its information does,
	// is accepted when it is the client's.
	echo := withFields(update, "client_secret", mine.str("client_secret"), "registration_access_token", token, "client_id_issued_at", 1)
	if r := call(http.MethodPut, token, echo); r.status != http.StatusOK {
		t.Fatalf("update echoing the client's information: %d %s", r.status, r.raw)
	}
	if e := n.events(t, audit.ClientUpdated); len(e) != 2 || e[0].Actor != audit.Client(id) {
		t.Fatalf("client.updated events %+v, want two by the client itself", e)
	}

	// The registered client works with its secret, then is deleted.
	rp := n.registeredRP(t, mine)
	if _, id := newBrowser(t, n.issuer).signedIn(rp, "ada@example.com"); id.Audience[0] != rp.client.ID {
		t.Fatalf("ID token audience %v", id.Audience)
	}
	if r := call(http.MethodDelete, token, nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if _, err := n.clients.Get(t.Context(), id); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("after delete, the client: %v", err)
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		if r := call(method, token, update); r.status != http.StatusUnauthorized {
			t.Errorf("%s after delete: %d %s, want 401", method, r.status, r.raw)
		}
	}
	if status, _, body := n.tokenRequest(t, id, mine.str("client_secret")); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
		t.Fatalf("the deleted client's credentials: %d %v", status, body)
	}
	if e := n.events(t, audit.ClientDeleted); len(e) != 1 || e[0].Actor != audit.Client(id) {
		t.Fatalf("client.deleted events %+v", e)
	}
	// An operator's client has no registration to manage.
	admin := n.app(t)
	if r, _ := n.registrationCall(nil, http.MethodGet, n.issuer+"/oauth2/register/"+admin.client.ID, other.str("registration_access_token"), nil); r.status != http.StatusUnauthorized {
		t.Fatalf("an operator's client through RFC 7592: %d %s", r.status, r.raw)
	}
}

// withFields is m with the extra keys and values (key, value, ...).
func withFields(m map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// TestInitialAccessTokensAreRequiredAndCapWhatIsRegistered: with
// registration by token, nothing registers without a usable token, and a
// token registers only what its cap allows, saying which field is beyond
// it; refusals spend no use.
func TestInitialAccessTokensAreRequiredAndCapWhatIsRegistered(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_REGISTRATION", "token", "LATCHKEY_REGISTRATION_RATE_LIMIT", "0")
	n.user(t, "ada@example.com")
	admin := n.automation(t, client.AdminScope)

	// The cap: web apps under https://app.example.com/cb/ and loopback,
	// openid and email, the code flow.
	created := admin.call(http.MethodPost, "/admin/registration-tokens", map[string]any{
		"name": "partner onboarding", "max_uses": 2, "expires_in": "1h",
		"grant_types": []string{"authorization_code"}, "scope": "openid email",
		"redirect_uris": []string{"https://app.example.com/cb/", "loopback"},
	}).must(t, http.StatusCreated)
	token, _ := created.body["token"].(string)
	tokenID, _ := created.body["id"].(string)
	if !strings.HasPrefix(token, "lk_iat_") || created.header.Get("Location") != "/admin/registration-tokens/"+tokenID {
		t.Fatalf("created %s", created.raw)
	}
	app := func(edit ...any) map[string]any {
		return withFields(map[string]any{"client_name": "Partner", "redirect_uris": []string{"https://app.example.com/cb/done"},
			"grant_types": []string{"authorization_code"}, "scope": "openid"}, edit...)
	}
	for name, tt := range map[string]struct {
		body   map[string]any
		field  string
		code   string
		status int
	}{
		"a grant type beyond it":   {app("grant_types", []string{"authorization_code", "refresh_token"}), "grant_types", "invalid_client_metadata", 400},
		"client credentials":       {app("grant_types", []string{"client_credentials"}, "redirect_uris", nil), "grant_types", "invalid_client_metadata", 400},
		"a scope beyond it":        {app("scope", "openid phone"), "scope", "invalid_client_metadata", 400},
		"an admin scope":           {app("grant_types", []string{"client_credentials"}, "redirect_uris", nil, "scope", client.AdminScope), "scope", "invalid_client_metadata", 400},
		"another host":             {app("redirect_uris", []string{"https://evil.example.com/cb/"}), "redirect_uris", "invalid_redirect_uri", 400},
		"a host that extends it":   {app("redirect_uris", []string{"https://app.example.com.evil.example/cb/"}), "redirect_uris", "invalid_redirect_uri", 400},
		"a path beside the prefix": {app("redirect_uris", []string{"https://app.example.com/cbx"}), "redirect_uris", "invalid_redirect_uri", 400},
		"dot segments out of it":   {app("redirect_uris", []string{"https://app.example.com/cb/../admin"}), "redirect_uris", "invalid_redirect_uri", 400},
		"encoded dot segments":     {app("redirect_uris", []string{"https://app.example.com/cb/%2e%2e/admin"}), "redirect_uris", "invalid_redirect_uri", 400},
		"a post-logout URI beyond": {app("post_logout_redirect_uris", []string{"https://evil.example.com/"}), "post_logout_redirect_uris", "invalid_client_metadata", 400},
		"a jwks_uri to fetch":      {app("token_endpoint_auth_method", "private_key_jwt", "jwks_uri", "https://169.254.169.254/keys"), "jwks_uri", "invalid_client_metadata", 400},
	} {
		r := n.register(t, nil, token, tt.body)
		code, desc := r.errorCode()
		if r.status != tt.status || code != tt.code || !strings.Contains(desc, tt.field+":") {
			t.Errorf("%s: %d %s, want %d %s naming %s", name, r.status, r.raw, tt.status, tt.code, tt.field)
		}
	}
	list := admin.call(http.MethodGet, "/admin/registration-tokens", nil).must(t, http.StatusOK).items()
	if len(list) != 1 || list[0]["uses"] != float64(0) || list[0]["token"] != nil {
		t.Fatalf("after refusals, the tokens: %v; want no use spent and no token shown", list)
	}
	if n.rows(t, "clients") != 1 {
		t.Fatal("a refused registration stored a client")
	}

	for name, bearer := range map[string]string{"no token": "", "a made-up token": "lk_iat_" + strings.Repeat("A", 43),
		"a registration access token": "lk_rat_" + strings.Repeat("A", 43), "an admin access token": admin.token} {
		r := n.register(t, nil, bearer, app())
		if code, _ := r.errorCode(); r.status != http.StatusUnauthorized || code != "invalid_token" {
			t.Errorf("%s: %d %s, want 401 invalid_token", name, r.status, r.raw)
		}
	}

	// Within the cap, it registers, and the client signs a user in.
	ok := n.register(t, nil, token, app("redirect_uris", []string{"https://app.example.com/cb/done", "http://127.0.0.1:9/callback"}))
	if ok.status != http.StatusCreated {
		t.Fatalf("within the cap: %d %s", ok.status, ok.raw)
	}
	rp := n.registeredRP(t, ok)
	rp.oauth.RedirectURL = "http://127.0.0.1:9/callback"
	newBrowser(t, n.issuer).signedIn(rp, "ada@example.com")
	if e := n.events(t, audit.ClientRegistered, "registration_token", tokenID); len(e) != 1 || e[0].Actor != "registration_token:"+tokenID {
		t.Fatalf("client.registered %+v, want one by the token", e)
	}

	// An expired token is refused, and so is a revoked one.
	expiring := admin.call(http.MethodPost, "/admin/registration-tokens", map[string]any{"name": "short", "expires_in": "1s"}).must(t, http.StatusCreated)
	time.Sleep(1100 * time.Millisecond)
	if r := n.register(t, nil, expiring.body["token"].(string), app("redirect_uris", []string{"http://127.0.0.1:9/callback"})); r.status != http.StatusUnauthorized {
		t.Fatalf("an expired token: %d %s", r.status, r.raw)
	}
	admin.call(http.MethodDelete, "/admin/registration-tokens/"+tokenID, nil).must(t, http.StatusNoContent)
	if r := n.register(t, nil, token, app()); r.status != http.StatusUnauthorized {
		t.Fatalf("a revoked token with a use left: %d %s", r.status, r.raw)
	}
	admin.call(http.MethodDelete, "/admin/registration-tokens/"+tokenID, nil).must(t, http.StatusNotFound)
	if _, err := n.clients.Get(t.Context(), ok.str("client_id")); err != nil {
		t.Fatalf("revoking the token deleted the client it registered: %v", err)
	}
	// The client manages itself within the revoked token's cap still.
	manage := func(body map[string]any) registered {
		t.Helper()
		r, err := n.registrationCall(nil, http.MethodPut, ok.str("registration_client_uri"), ok.str("registration_access_token"),
			withFields(body, "client_id", ok.str("client_id")))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := manage(app("redirect_uris", []string{"https://app.example.com/cb/other"})); r.status != http.StatusOK {
		t.Fatalf("an update within the cap: %d %s", r.status, r.raw)
	}
	for name, body := range map[string]map[string]any{
		"another host":      app("redirect_uris", []string{"https://other.example/cb/"}),
		"a refresh grant":   app("grant_types", []string{"authorization_code", "refresh_token"}),
		"a scope beyond it": app("scope", "openid profile"),
		"skip_consent set":  app("skip_consent", true, "redirect_uris", []string{"https://app.example.com/cb/"}),
	} {
		r := manage(body)
		if name == "skip_consent set" {
			if c, _ := n.clients.Get(t.Context(), ok.str("client_id")); r.status != http.StatusOK || c.SkipConsent {
				t.Errorf("an update with skip_consent: %d, skip_consent %v; want it ignored", r.status, c.SkipConsent)
			}
			continue
		}
		if r.status != http.StatusBadRequest {
			t.Errorf("an update with %s: %d %s, want 400", name, r.status, r.raw)
		}
	}

	// A token's cap cannot hold admin scopes or loose redirect rules.
	for name, body := range map[string]map[string]any{
		"an admin scope":        {"name": "x", "expires_in": "1h", "scope": "openid latchkey:admin"},
		"a prefix without path": {"name": "x", "expires_in": "1h", "redirect_uris": []string{"https://app.example.com"}},
		"plain http":            {"name": "x", "expires_in": "1h", "redirect_uris": []string{"http://app.example.com/"}},
		"no expiry":             {"name": "x"},
		"a year and more":       {"name": "x", "expires_in": "9000h"},
		"no uses":               {"name": "x", "expires_in": "1h", "max_uses": -1},
	} {
		if r := admin.call(http.MethodPost, "/admin/registration-tokens", body); r.status != http.StatusUnprocessableEntity {
			t.Errorf("a token with %s: %d %s, want 422", name, r.status, r.raw)
		}
	}
	reader := n.automation(t, client.AdminReadScope)
	reader.call(http.MethodPost, "/admin/registration-tokens", map[string]any{"name": "x", "expires_in": "1h"}).must(t, http.StatusForbidden)
}

// TestASingleUseInitialAccessTokenRegistersOneClientUnderABurst sends
// one single-use token from several addresses at once: exactly one
// registration succeeds, on any number of parallel requests.
func TestASingleUseInitialAccessTokenRegistersOneClientUnderABurst(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_REGISTRATION", "token")
	admin := n.automation(t, client.AdminScope)
	token := admin.call(http.MethodPost, "/admin/registration-tokens", map[string]any{"name": "once", "expires_in": "1h"}).
		must(t, http.StatusCreated).body["token"].(string)
	var created, refused atomic.Int32
	burst(t, 16, attackers(4), func(_ int, ip string) {
		r, err := n.registrationCall(clientFrom(ip), http.MethodPost, n.issuer+"/oauth2/register", token, loopbackApp("burst"))
		switch {
		case err != nil:
			t.Error(err)
		case r.status == http.StatusCreated:
			created.Add(1)
		case r.status == http.StatusUnauthorized:
			refused.Add(1)
		default:
			t.Errorf("burst: %d %s", r.status, r.raw)
		}
	})
	if created.Load() != 1 || refused.Load() != 15 {
		t.Fatalf("a single-use token registered %d clients (%d refused), want exactly 1", created.Load(), refused.Load())
	}
	if got := n.rows(t, "client_registrations"); got != 1 {
		t.Fatalf("%d registrations stored, want 1", got)
	}
	var uses int
	n.query(t, &uses, `SELECT uses FROM registration_tokens`)
	if uses != 1 {
		t.Fatalf("the token has %d uses, want 1", uses)
	}
}

// TestOpenRegistrationIsCappedPerAddressAndInAll: anonymous callers
// cannot store clients without bound. A burst from several addresses
// gets no more than each address's hourly allowance, and no more in all
// than open registration may hold.
func TestOpenRegistrationIsCappedPerAddressAndInAll(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_REGISTRATION", "open", "LATCHKEY_REGISTRATION_ADDRESS_LIMIT", "2", "LATCHKEY_REGISTRATION_MAX_CLIENTS", "5")
	var created, hourly, full atomic.Int32
	burst(t, 16, attackers(4), func(_ int, ip string) {
		r, err := n.registrationCall(clientFrom(ip), http.MethodPost, n.issuer+"/oauth2/register", "", loopbackApp("flood"))
		code, _ := r.errorCode()
		switch {
		case err != nil:
			t.Error(err)
		case r.status == http.StatusCreated:
			created.Add(1)
		case r.status == http.StatusTooManyRequests && code == "temporarily_unavailable" && r.header.Get("Retry-After") != "":
			hourly.Add(1)
		case r.status == http.StatusForbidden && code == "access_denied":
			full.Add(1)
		default:
			t.Errorf("flood: %d %s", r.status, r.raw)
		}
	})
	if created.Load() != 5 || n.rows(t, "client_registrations") != 5 || hourly.Load()+full.Load() != 11 {
		t.Fatalf("created %d (stored %d), refused %d by the hourly cap and %d by the total, want 5 stored", created.Load(),
			n.rows(t, "client_registrations"), hourly.Load(), full.Load())
	}
	var most int
	n.query(t, &most, `SELECT max(c) FROM (SELECT count(*) AS c FROM client_registrations GROUP BY registered_from) x`)
	if most > 2 {
		t.Fatalf("one address registered %d clients, more than its 2 an hour", most)
	}
	// A fresh address is still refused: the total is full.
	if late := n.register(t, clientFrom("127.0.0.9"), "", loopbackApp("late")); late.status != http.StatusForbidden {
		t.Fatalf("past the total: %d %s", late.status, late.raw)
	}
}

// TestRegistrationRequestsAreRateLimitedPerAddress: every kind of
// registration request counts against the address's allowance.
func TestRegistrationRequestsAreRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_REGISTRATION", "open", "LATCHKEY_REGISTRATION_RATE_LIMIT", "3")
	from := clientFrom("127.0.0.2")
	for i := range 3 {
		if r, _ := n.registrationCall(from, http.MethodGet, n.issuer+"/oauth2/register/nobody", "lk_rat_x", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("request %d: %d %s", i, r.status, r.raw)
		}
	}
	r := n.register(t, from, "", loopbackApp("fourth"))
	if code, _ := r.errorCode(); r.status != http.StatusTooManyRequests || code != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("the fourth request: %d %s, want 429 with Retry-After", r.status, r.raw)
	}
	if r := n.register(t, clientFrom("127.0.0.3"), "", loopbackApp("elsewhere")); r.status != http.StatusCreated {
		t.Fatalf("another address: %d %s", r.status, r.raw)
	}
}

// TestRegistrationRefusesOversizedAndMalformedBodies sends what no client
// metadata is: each is refused, in the protocol's error shape, and
// nothing is stored.
func TestRegistrationRefusesOversizedAndMalformedBodies(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_REGISTRATION", "open", "LATCHKEY_REGISTRATION_RATE_LIMIT", "0")
	post := func(contentType string, body []byte) registered {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/register", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		r := registered{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s: the answer is not JSON: %s", contentType, raw)
		}
		return r
	}
	big := `{"client_name":"x","redirect_uris":["http://127.0.0.1:9/cb"],"software_statement":"` + strings.Repeat("a", 40<<10) + `"}`
	huge := `{"client_name":"` + strings.Repeat("a", 70<<10) + `"}`
	for _, tt := range []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"over the endpoint's limit", "application/json", big, 413, "invalid_client_metadata"},
		{"over the listener's limit", "application/json", huge, 413, "invalid_request"},
		{"a form", "application/x-www-form-urlencoded", "client_name=x", 415, "invalid_request"},
		{"multipart", "multipart/form-data; boundary=x", "--x--", 415, "invalid_request"},
		{"no media type", "", "{}", 415, "invalid_request"},
		{"text", "text/plain", "{}", 415, "invalid_request"},
		{"an array", "application/json", "[]", 400, "invalid_client_metadata"},
		{"null", "application/json", "null", 400, "invalid_client_metadata"},
		{"not JSON", "application/json", "{redirect_uris:", 400, "invalid_client_metadata"},
		{"two objects", "application/json", `{} {}`, 400, "invalid_client_metadata"},
		{"a string for a list", "application/json", `{"redirect_uris":"http://127.0.0.1/cb"}`, 400, "invalid_client_metadata"},
		{"no redirect URI", "application/json", `{}`, 400, "invalid_redirect_uri"},
		{"plain http off loopback", "application/json", `{"redirect_uris":["http://app.example.com/cb"]}`, 400, "invalid_redirect_uri"},
		{"a fragment", "application/json", `{"redirect_uris":["http://127.0.0.1/cb#x"]}`, 400, "invalid_redirect_uri"},
		{"a custom scheme", "application/json", `{"redirect_uris":["javascript:alert(1)"]}`, 400, "invalid_redirect_uri"},
		{"https off the policy", "application/json", `{"redirect_uris":["https://app.example.com/cb"]}`, 400, "invalid_redirect_uri"},
		{"a NUL in the name", "application/json", `{"client_name":"a\u0000b","redirect_uris":["http://127.0.0.1/cb"]}`, 400, "invalid_client_metadata"},
		{"the implicit grant", "application/json", `{"grant_types":["implicit"],"redirect_uris":["http://127.0.0.1/cb"]}`, 400, "invalid_client_metadata"},
		{"client credentials", "application/json", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`, 400, "invalid_client_metadata"},
		{"an unknown auth method", "application/json", `{"token_endpoint_auth_method":"tls_client_auth","redirect_uris":["http://127.0.0.1/cb"]}`, 400, "invalid_client_metadata"},
		{"a scope beyond the settings", "application/json", `{"scope":"openid phone","redirect_uris":["http://127.0.0.1/cb"]}`, 400, "invalid_client_metadata"},
		{"a private key", "application/json", `{"token_endpoint_auth_method":"private_key_jwt","jwks":{"keys":[{"kty":"oct","k":"AAAA"}]},"redirect_uris":["http://127.0.0.1/cb"]}`, 400, "invalid_client_metadata"},
	} {
		r := post(tt.contentType, []byte(tt.body))
		if code, _ := r.errorCode(); r.status != tt.status || code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.name, r.status, r.raw, tt.status, tt.code)
		}
	}
	if n.rows(t, "clients") != 0 {
		t.Fatal("a refused registration stored a client")
	}
	// A chunked body over the limit is refused as well as a declared one.
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/register", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a chunked oversized body: %d", resp.StatusCode)
	}
}

// TestRegistrationIsOffByDefaultAndDiscoveryNamesItOnlyWhenOn: off, the
// endpoints are not there and neither discovery document names them; on,
// both do, as openid-client reads them.
func TestRegistrationIsOffByDefaultAndDiscoveryNamesItOnlyWhenOn(t *testing.T) {
	t.Parallel()
	off := startNode(t)
	if r := off.register(t, nil, "", loopbackApp("x")); r.status != http.StatusNotFound {
		t.Fatalf("registration while off: %d %s", r.status, r.raw)
	}
	if r, _ := off.registrationCall(nil, http.MethodGet, off.issuer+"/oauth2/register/x", "lk_rat_x", nil); r.status != http.StatusNotFound {
		t.Fatalf("a client configuration endpoint while off: %d %s", r.status, r.raw)
	}
	if off.rows(t, "clients") != 0 {
		t.Fatal("registration while off stored a client")
	}
	for _, tt := range []struct {
		n    *node
		want string
	}{{off, ""}, {startNode(t, "LATCHKEY_REGISTRATION", "token"), "/oauth2/register"}, {startNode(t, "LATCHKEY_REGISTRATION", "open"), "/oauth2/register"}} {
		want := ""
		if tt.want != "" {
			want = tt.n.issuer + tt.want
		}
		for _, path := range []string{tt.n.issuer + "/.well-known/openid-configuration", tt.n.host + "/.well-known/oauth-authorization-server"} {
			status, body := httpGet(t, path)
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil || status != http.StatusOK {
				t.Fatalf("%s: %d %s", path, status, body)
			}
			got, present := doc["registration_endpoint"]
			if (want == "" && present) || (want != "" && got != want) {
				t.Errorf("%s: registration_endpoint %v, want %q", path, got, want)
			}
		}
		var meta map[string]any
		openidclient.Run(t, "discover.mjs", map[string]any{"issuer": tt.n.issuer}, &meta)
		if got, _ := meta["registration_endpoint"].(string); got != want {
			t.Errorf("openid-client reads registration_endpoint %q, want %q", got, want)
		}
	}
	// Under an issuer with a path, the endpoints are under it too.
	tenant := startNodeUnder(t, nil, "/tenant-a", "LATCHKEY_REGISTRATION", "open")
	r := tenant.register(t, nil, "", loopbackApp("tenant app"))
	if r.status != http.StatusCreated || r.str("registration_client_uri") != tenant.issuer+"/oauth2/register/"+r.str("client_id") {
		t.Fatalf("registration under /tenant-a: %d %s", r.status, r.raw)
	}
	if read, _ := tenant.registrationCall(nil, http.MethodGet, r.str("registration_client_uri"), r.str("registration_access_token"), nil); read.status != http.StatusOK {
		t.Fatalf("reading under /tenant-a: %d %s", read.status, read.raw)
	}
}

// TestRegistrationTokensCLIMakesListsAndRevokes: the CLI makes a token
// that registers, lists it without the token, and revokes it.
func TestRegistrationTokensCLIMakesListsAndRevokes(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_REGISTRATION", "token")
	env := vars{"LATCHKEY_DATABASE_URL": n.dbURL}
	code, out, errOut := runCLI(t.Context(), env, "registration-tokens", "create", "--name", "ci", "--uses", "3",
		"--expires-in", "2h", "--scope", "openid email", "--redirect-uris", "loopback", "--output", "json")
	if code != 0 || !strings.Contains(errOut, "cannot be shown again") {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	var made struct {
		ID      string `json:"id"`
		Token   string `json:"token"`
		MaxUses int    `json:"max_uses"`
	}
	if err := json.Unmarshal([]byte(out), &made); err != nil || made.MaxUses != 3 || !strings.HasPrefix(made.Token, "lk_iat_") {
		t.Fatalf("create printed %s", out)
	}
	if r := n.register(t, nil, made.Token, loopbackApp("from the CLI's token")); r.status != http.StatusCreated {
		t.Fatalf("registering with the CLI's token: %d %s", r.status, r.raw)
	}
	code, out, _ = runCLI(t.Context(), env, "registration-tokens", "list")
	if code != 0 || !strings.Contains(out, made.ID) || !strings.Contains(out, "1/3") || strings.Contains(out, made.Token) {
		t.Fatalf("list: %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t.Context(), env, "registration-tokens", "create", "--name", "bad", "--scope", "latchkey:admin"); code == 0 ||
		strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "scope") {
		t.Fatalf("an admin scope: %d %q, want one line naming the scope", code, errOut)
	}
	if code, out, _ := runCLI(t.Context(), env, "registration-tokens", "revoke", made.ID); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %d %s", code, out)
	}
	if code, _, errOut := runCLI(t.Context(), env, "registration-tokens", "revoke", made.ID); code == 0 || !strings.Contains(errOut, "no initial access token") {
		t.Fatalf("revoking again: %d %s", code, errOut)
	}
	if r := n.register(t, nil, made.Token, loopbackApp("after revocation")); r.status != http.StatusUnauthorized {
		t.Fatalf("the revoked token: %d %s", r.status, r.raw)
	}
	if n.rows(t, "registration_tokens") != 0 {
		t.Fatal("the revoked token's row is still there")
	}
}
