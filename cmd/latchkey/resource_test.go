package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/resource"
)

// This file is RFC 8707 resource indicators: tokens restricted to the
// registered resources a client names, as x/oauth2 asks for them.

const (
	notesAPI   = "https://notes.example.com/api"
	billingAPI = "https://billing.example.com"
)

// resources registers notesAPI, which accepts notes.read, and billingAPI,
// which accepts invoices.read.
func (n *node) resources(t *testing.T) {
	t.Helper()
	m := resource.NewManager(n.store, audit.New(n.store, quietLogger()))
	for uri, scope := range map[string]string{notesAPI: "notes.read", billingAPI: "invoices.read"} {
		if _, err := m.Create(t.Context(), resource.Resource{URI: uri, Scopes: []string{scope}}); err != nil {
			t.Fatal(err)
		}
	}
}

// jwtClaims reads a JWT's claims without checking it: the tests that use
// it check the token by introspection too.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%.20q… is not a JWT", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// audOf reads aud as a list, whichever form it has.
func audOf(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func TestCodeFlowTokensAreRestrictedToTheRequestedResourceAndRefreshNarrows(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.resources(t)
	n.user(t, "ada@example.com")
	rp := n.app(t, func(c *client.Client) {
		c.Scope = "openid email offline_access notes.read invoices.read"
		c.Audience = []string{notesAPI, billingAPI}
		c.AccessTokenFormat = client.FormatJWT
	})
	b := newBrowser(t, n.issuer)

	// Both resources at the authorization endpoint, as x/oauth2 sends
	// them; the code's tokens are for both.
	ar := authRequest{state: "state-" + t.Name(), nonce: "nonce-0123456789", verifier: oauth2.GenerateVerifier()}
	ar.url = rp.oauth.AuthCodeURL(ar.state, oauth2.S256ChallengeOption(ar.verifier), oauth2.SetAuthURLParam("nonce", ar.nonce),
		oauth2.SetAuthURLParam("resource", notesAPI)) + "&" + url.Values{"resource": {billingAPI}}.Encode()
	p := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
	p = b.decide(p, "allow")
	code := p.callback(t).Query().Get("code")

	// The code is exchanged for the notes API alone: the access token's
	// aud is it, and its scopes are those the notes API accepts (and
	// Latchkey's own).
	tok, err := rp.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(ar.verifier), oauth2.SetAuthURLParam("resource", notesAPI))
	if err != nil {
		t.Fatalf("exchange for one resource: %v", err)
	}
	claims := jwtClaims(t, tok.AccessToken)
	if aud := audOf(claims["aud"]); !slices.Equal(aud, []string{notesAPI}) || claims["scope"] != "openid email offline_access notes.read" {
		t.Fatalf("JWT access token aud %v scope %q; want the notes API and its scope", claims["aud"], claims["scope"])
	}
	info := n.introspection(t, tok.AccessToken)
	if aud := audOf(info["aud"]); !slices.Equal(aud, []string{notesAPI}) || info["scope"] != "openid email offline_access notes.read" {
		t.Fatalf("introspection aud %v scope %v; want the notes API and its scope", info["aud"], info["scope"])
	}

	// The refresh token kept the whole grant: a refresh narrows to the
	// billing API now ...
	refresh := func(resources ...string) (int, map[string]any) {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "resource": resources}
		status, _, body := n.formCall(t, "/oauth2/token", rp.client.ID, rp.oauth.ClientSecret, form)
		if rt, ok := body["refresh_token"].(string); ok {
			tok.RefreshToken = rt
		}
		return status, body
	}
	status, body := refresh(billingAPI)
	at, _ := body["access_token"].(string)
	if status != http.StatusOK || !slices.Equal(audOf(jwtClaims(t, at)["aud"]), []string{billingAPI}) || jwtClaims(t, at)["scope"] != "openid email offline_access invoices.read" {
		t.Fatalf("refresh for the billing API: %d %v", status, body)
	}
	// ... and to nothing it was not granted for.
	status, body = refresh("https://other.example.com")
	if status != http.StatusBadRequest || body["error"] != "invalid_target" {
		t.Fatalf("refresh for a resource outside the grant: %d %v; want invalid_target", status, body)
	}
	// Without resource, a refresh is for the whole grant again.
	status, body = refresh()
	at, _ = body["access_token"].(string)
	if aud := audOf(jwtClaims(t, at)["aud"]); status != http.StatusOK || !slices.Equal(aud, []string{billingAPI, notesAPI}) {
		t.Fatalf("refresh without resource: %d aud %v; want both resources", status, aud)
	}
}

func TestAuthorizationRequestForAResourceIsRefusedWithInvalidTarget(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.resources(t)
	rp := n.app(t, func(c *client.Client) {
		c.Scope = "openid notes.read invoices.read"
		c.Audience = []string{notesAPI, "https://unregistered.example.com"}
	})
	for _, tc := range []struct{ why, resource, scope string }{
		{"an unknown resource", "https://unregistered.example.com", "openid"},
		{"a resource the client's audience does not list", billingAPI, "openid"},
		{"a scope the resource does not accept", notesAPI, "openid invoices.read"},
		{"a relative URI", "/api", "openid"},
		{"a URI with a fragment", notesAPI + "#x", "openid"},
	} {
		ar := rp.start("resource", tc.resource, "scope", tc.scope)
		p := newBrowser(t, n.issuer).visit(ar.url)
		if p.location == nil || p.location.Query().Get("error") != "invalid_target" {
			t.Fatalf("%s: %d %v; want invalid_target back at the app", tc.why, p.status, p.location)
		}
	}
	// The accepted scope for the registered resource goes through.
	if p := newBrowser(t, n.issuer).visit(rp.start("resource", notesAPI, "scope", "openid notes.read").url); !p.isLogin() {
		t.Fatalf("a request for the notes API: %d %v; want the login page", p.status, p.location)
	}
}

func TestClientCredentialsTokenForAResourceCarriesItsAudienceAndScopes(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.resources(t)
	backend, secret, err := n.clients.Create(t.Context(), client.Client{
		GrantTypes: []string{client.GrantClientCredentials}, Scope: "notes.read invoices.read",
		Audience: []string{notesAPI, billingAPI}, AccessTokenFormat: client.FormatJWT,
	})
	if err != nil {
		t.Fatal(err)
	}
	// A narrower backend whose audience is the notes API alone.
	narrow, narrowSecret, err := n.clients.Create(t.Context(), client.Client{
		GrantTypes: []string{client.GrantClientCredentials}, Scope: "notes.read invoices.read", Audience: []string{notesAPI},
	})
	if err != nil {
		t.Fatal(err)
	}
	cc := func(id, secret string, scopes []string, resources ...string) *clientcredentials.Config {
		return &clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: n.issuer + "/oauth2/token",
			Scopes: scopes, EndpointParams: url.Values{"resource": resources}, AuthStyle: oauth2.AuthStyleInHeader}
	}

	// The client's default scopes are narrowed to what the resource accepts.
	tok, err := cc(backend.ID, secret, nil, billingAPI).Token(t.Context())
	if err != nil {
		t.Fatalf("client credentials for the billing API: %v", err)
	}
	claims := jwtClaims(t, tok.AccessToken)
	if !slices.Equal(audOf(claims["aud"]), []string{billingAPI}) || claims["scope"] != "invoices.read" {
		t.Fatalf("JWT aud %v scope %v; want the billing API and invoices.read", claims["aud"], claims["scope"])
	}
	info := n.introspection(t, tok.AccessToken)
	if !slices.Equal(audOf(info["aud"]), []string{billingAPI}) || info["scope"] != "invoices.read" {
		t.Fatalf("introspection aud %v scope %v", info["aud"], info["scope"])
	}

	for _, tc := range []struct {
		why       string
		cfg       *clientcredentials.Config
		wantError string
	}{
		{"an unknown resource", cc(backend.ID, secret, nil, "https://unknown.example.com"), "invalid_target"},
		{"a scope the resource does not accept", cc(backend.ID, secret, []string{"notes.read"}, billingAPI), "invalid_target"},
		{"a resource a narrower client may not use", cc(narrow.ID, narrowSecret, nil, billingAPI), "invalid_target"},
		{"resource and audience at once", func() *clientcredentials.Config {
			c := cc(backend.ID, secret, nil, notesAPI)
			c.EndpointParams.Set("audience", notesAPI)
			return c
		}(), "invalid_request"},
	} {
		_, err := tc.cfg.Token(t.Context())
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != tc.wantError {
			t.Fatalf("%s: %v; want %s", tc.why, err, tc.wantError)
		}
	}

	// Without resource, a client's tokens are as before: for its whole
	// audience.
	tok, err = cc(backend.ID, secret, nil).Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if aud := audOf(jwtClaims(t, tok.AccessToken)["aud"]); !slices.Equal(aud, []string{notesAPI, billingAPI}) {
		t.Fatalf("without resource: aud %v, want the client's audience", aud)
	}
}

func TestAdminAPIAndCLIRegisterResourcesThatTokensCanThenBeFor(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	adm := n.automation(t, client.AdminScope)
	escaped := url.PathEscape(notesAPI)

	created := adm.call(http.MethodPost, "/admin/resources", map[string]any{"uri": notesAPI, "name": "Notes", "scopes": []string{"notes.read"}}).
		must(t, http.StatusCreated)
	if created.header.Get("Location") != "/admin/resources/"+escaped || created.body["uri"] != notesAPI {
		t.Fatalf("created: %v %v", created.header, created.body)
	}
	adm.call(http.MethodPost, "/admin/resources", map[string]any{"uri": notesAPI}).must(t, http.StatusConflict)
	for _, bad := range []map[string]any{
		{"uri": "notes"}, {"uri": notesAPI + "/x#frag"}, {"uri": "https://x.example.com", "scopes": []string{"a b"}},
	} {
		if got := adm.call(http.MethodPost, "/admin/resources", bad); got.status != http.StatusUnprocessableEntity || got.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("creating %v: %d %s; want a 422 problem", bad, got.status, got.raw)
		}
	}
	adm.call(http.MethodPut, "/admin/resources/"+escaped, map[string]any{"name": "Notes", "scopes": []string{"notes.read", "notes.write"}}).must(t, http.StatusOK)
	if got := adm.call(http.MethodGet, "/admin/resources/"+escaped, nil).must(t, http.StatusOK); len(got.body["scopes"].([]any)) != 2 {
		t.Fatalf("after replace: %v", got.body)
	}
	if len(n.events(t, audit.ResourceUpdated)) != 1 {
		t.Fatal("no resource.updated audit event")
	}
	// A reader may list, not change.
	reader := n.automation(t, client.AdminReadScope)
	if items := reader.call(http.MethodGet, "/admin/resources", nil).must(t, http.StatusOK).items(); len(items) != 1 {
		t.Fatalf("list: %v", items)
	}
	reader.call(http.MethodDelete, "/admin/resources/"+escaped, nil).must(t, http.StatusForbidden)

	// The CLI registers one too, and says what is wrong in one line.
	db := vars{"LATCHKEY_DATABASE_URL": n.dbURL}
	if code, out, errOut := runCLI(t.Context(), db, "resources", "create", billingAPI, "--scope", "invoices.read", "--name", "Billing"); code != 0 {
		t.Fatalf("resources create: %d %s%s", code, out, errOut)
	}
	if _, out, _ := runCLI(t.Context(), db, "resources", "list"); !strings.Contains(out, billingAPI) || !strings.Contains(out, "invoices.read") {
		t.Fatalf("resources list: %s", out)
	}
	for _, args := range [][]string{{"resources", "create", "relative/uri"}, {"resources", "delete", "https://nope.example.com"}} {
		code, _, errOut := runCLI(t.Context(), db, args...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") > 0 || errOut == "" {
			t.Fatalf("latchkey %s: %d %q; want one line and a failure", strings.Join(args, " "), code, errOut)
		}
	}

	// A client whose audience lists it gets tokens for it.
	backend, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials},
		Scope: "invoices.read", Audience: []string{billingAPI}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := (&clientcredentials.Config{ClientID: backend.ID, ClientSecret: secret, TokenURL: n.issuer + "/oauth2/token",
		EndpointParams: url.Values{"resource": {billingAPI}}}).Token(t.Context())
	if err != nil {
		t.Fatalf("a token for the resource the CLI registered: %v", err)
	}
	if aud := audOf(n.introspection(t, tok.AccessToken)["aud"]); !slices.Equal(aud, []string{billingAPI}) {
		t.Fatalf("aud %v", aud)
	}

	// Deleted, it can no longer be asked for.
	if code, out, errOut := runCLI(t.Context(), db, "resources", "delete", billingAPI); code != 0 {
		t.Fatalf("resources delete: %d %s%s", code, out, errOut)
	}
	_, err = (&clientcredentials.Config{ClientID: backend.ID, ClientSecret: secret, TokenURL: n.issuer + "/oauth2/token",
		EndpointParams: url.Values{"resource": {billingAPI}}}).Token(t.Context())
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_target" {
		t.Fatalf("a deleted resource: %v; want invalid_target", err)
	}
	adm.call(http.MethodDelete, "/admin/resources/"+escaped, nil).must(t, http.StatusNoContent)
	adm.call(http.MethodGet, "/admin/resources/"+escaped, nil).must(t, http.StatusNotFound)
}
