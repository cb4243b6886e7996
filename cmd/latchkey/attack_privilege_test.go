package main

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/client"
)

// Privilege attacks: a client, a token or a consent that allows something
// narrow, used to try for something wider.

// userinfoAs calls the userinfo endpoint with token, and returns the status,
// the challenge and the body.
func (n *node) userinfoAs(t *testing.T, token string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, n.issuer+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(body)
}

// An app allowed openid alone asks, with the claims parameter and without
// showing the user anything (prompt=none), for the claims of the email,
// phone, address and profile scopes. The parameter requests claims; it
// grants none (OpenID Connect Core §5.5).
func TestTheClaimsParameterReleasesNoClaimTheGrantedScopesDoNotCover(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	_, err := n.users.Create(t.Context(), identityUser("ada@example.com", map[string]any{
		"phone_number": "+44 20 7946 0000",
		"address":      map[string]any{"locality": "London", "country": "GB"},
		"birthdate":    "1815-12-10",
	}), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	rp := n.app(t, func(c *client.Client) { c.Scope = "openid" })
	b := newBrowser(t, n.issuer)
	b.signedIn(rp, "ada@example.com")

	wanted := []string{"email", "email_verified", "phone_number", "address", "birthdate", "name"}
	ask := map[string]any{}
	for _, name := range wanted {
		ask[name] = map[string]bool{"essential": true}
	}
	claims, _ := json.Marshal(map[string]any{"id_token": ask, "userinfo": ask})
	ar := rp.start("prompt", "none", "claims", string(claims))
	tok, id := rp.finish(t, ar, b.visit(ar.url).callback(t))

	var inToken, atUserinfo map[string]any
	if err := id.Claims(&inToken); err != nil {
		t.Fatal(err)
	}
	info, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if err := info.Claims(&atUserinfo); err != nil {
		t.Fatal(err)
	}
	for where, got := range map[string]map[string]any{"ID token": inToken, "userinfo": atUserinfo} {
		if got["sub"] == nil {
			t.Errorf("%s has no sub: %v", where, got)
		}
		for _, name := range wanted {
			if v, ok := got[name]; ok {
				t.Errorf("%s released %s = %v, which the granted scope openid does not cover", where, name, v)
			}
		}
	}
}

// Userinfo describes the user who signed in. A backend's token has no user,
// even with the openid scope; and a client whose ID is a user's sub (as a
// client registered straight into the database can be) is still not that
// user.
func TestUserinfoServesOnlyTokensOfAUsersSignIn(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	backend := n.service(t, func(c *client.Client) { c.Scope = "openid" })

	impostor := client.Client{ID: u.ID, GrantTypes: []string{client.GrantClientCredentials}, Scope: "openid"}
	impostor.Normalize()
	secret, hash := client.NewSecret()
	impostor.SecretHash = hash
	if err := n.store.CreateClient(t.Context(), &impostor); err != nil {
		t.Fatal(err)
	}

	for name, cr := range map[string]credentials{"a backend": backend, "a client named with the user's sub": {id: u.ID, secret: secret}} {
		status, challenge, body := n.userinfoAs(t, cr.token(t, n.issuer))
		if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) || strings.Contains(body, "ada@example.com") {
			t.Errorf("%s's client-credentials token at userinfo: %d %q %s, want 401 invalid_token and no profile", name, status, challenge, body)
		}
	}
}

// Nobody can register a client under a user's sub, through the CLI or the
// admin API: subs are UUIDs, and so no client ID may be one.
func TestAClientCannotBeRegisteredUnderAUsersSub(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	code, _, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL},
		"clients", "create", "--id", u.ID, "--grant-type", "client_credentials")
	if code != 1 || !strings.Contains(stderr, "client_id") || !strings.Contains(stderr, "UUID") {
		t.Errorf("clients create --id <a user's sub>: exit %d, stderr %q; want a refusal naming client_id and saying why", code, stderr)
	}
	a := n.automation(t, client.AdminScope)
	a.call(http.MethodPost, "/admin/clients", map[string]any{
		"client_id": u.ID, "grant_types": []string{"client_credentials"},
	}).problem(t, http.StatusUnprocessableEntity, "client_id")
	if _, err := n.clients.Get(t.Context(), u.ID); err == nil {
		t.Fatal("a client was registered under the user's sub")
	}
}

// A confidential client may introspect its own tokens and those whose aud
// names it; any other token is {"active": false}, exactly like a token that
// does not exist, unless an admin allowed it introspect_any_token.
func TestIntrospectionDescribesATokenOnlyToWhomItConcerns(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	api := n.service(t, func(c *client.Client) { c.ID, c.Scope = "notes-api", "" })
	caller := n.service(t, func(c *client.Client) { c.Audience = []string{"notes-api"} })
	stranger := n.service(t)
	a := n.automation(t, client.AdminScope)
	created := a.call(http.MethodPost, "/admin/clients", map[string]any{
		"client_name": "Auditor", "grant_types": []string{"client_credentials"}, "introspect_any_token": true,
	}).must(t, http.StatusCreated)
	if created.body["introspect_any_token"] != true {
		t.Fatalf("the admin API did not keep introspect_any_token: %s", created.raw)
	}
	auditor := credentials{id: created.body["client_id"].(string), secret: created.body["client_secret"].(string)}

	backendToken := caller.token(t, n.issuer)
	app := n.app(t, func(c *client.Client) { c.Audience = []string{"notes-api"} })
	user, _ := newBrowser(t, n.issuer).signedIn(app, "ada@example.com")
	unknown := stranger.introspect(t, n.issuer, "lk_at_unknown.unknown")
	active := func(got map[string]any) bool { return got["active"] == true }

	for name, tok := range map[string]string{
		"a backend's access token": backendToken,
		"a user's access token":    user.AccessToken,
		"a user's refresh token":   user.RefreshToken,
	} {
		if got := stranger.introspect(t, n.issuer, tok); !maps.Equal(got, unknown) || len(got) != 1 {
			t.Errorf("another client introspecting %s: %v, want exactly what an unknown token gets, %v", name, got, unknown)
		}
	}
	for name, check := range map[string]bool{
		"the caller, its own token":                  active(caller.introspect(t, n.issuer, backendToken)),
		"the API its aud names, a backend's token":   active(api.introspect(t, n.issuer, backendToken)),
		"the API its aud names, a user's token":      active(api.introspect(t, n.issuer, user.AccessToken)),
		"the auditor, a backend's token":             active(auditor.introspect(t, n.issuer, backendToken)),
		"the auditor, a user's token":                active(auditor.introspect(t, n.issuer, user.AccessToken)),
		"the API, a user's refresh token (inactive)": !active(api.introspect(t, n.issuer, user.RefreshToken)),
		"the auditor, a refresh token (inactive)":    !active(auditor.introspect(t, n.issuer, user.RefreshToken)),
	} {
		if !check {
			t.Errorf("%s: got the wrong answer", name)
		}
	}
}

// A jti is unique per client (RFC 7523 §3): one client using a jti leaves
// it free for another, and the one that used it cannot use it again.
func TestOneClientCannotUseUpAnothersAssertionIDs(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	victim, attacker := n.keyClient(t), n.keyClient(t)
	now := time.Now()
	for _, tt := range []struct {
		name string
		k    keyClient
		want int
	}{
		{"another client uses the jti first", attacker, http.StatusOK},
		{"the client uses its jti", victim, http.StatusOK},
		{"the client uses its jti again", victim, http.StatusUnauthorized},
	} {
		status, body := tt.k.token(t, n, tt.k.assertion(t, n, "jti-2026-03-02-0001", now, now.Add(time.Minute)))
		if status != tt.want {
			t.Errorf("%s: %d %v, want %d", tt.name, status, body, tt.want)
		}
	}

	// Keyed by client and jti, the record still lets exactly one of many
	// copies of an assertion through, however they arrive.
	stolen := victim.assertion(t, n, "jti-2026-03-02-0002", now, now.Add(time.Minute))
	var won atomic.Int32
	burst(t, 12, attackers(4), func(_ int, ip string) {
		resp, err := clientFrom(ip).Do(assertionRequest(n, stolen))
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			won.Add(1)
		}
	})
	if won.Load() != 1 {
		t.Fatalf("%d of 12 concurrent copies of one assertion got a token, want 1", won.Load())
	}
}
