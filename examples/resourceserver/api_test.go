package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/examples/internal/latchkeytest"
	"github.com/latchkey/latchkey/examples/resourceserver/notes"
)

// get calls the API with token and decodes a 200 answer into v; it
// returns the status and the challenge.
func get(t *testing.T, url, token string, v any) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s answered %s", url, body)
		}
	}
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

var challengeParam = regexp.MustCompile(`(\w+)="([^"]*)"`)

// params are the parameters of a challenge.
func params(challenge string) map[string]string {
	out := map[string]string{}
	for _, m := range challengeParam.FindAllStringSubmatch(challenge, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestABackendReadsNotesButNotTheVault(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.Start(t)
	api := srv.NotesAPI(t, 0)
	reports := srv.CreateClient(t, "--name", "reports", "--grant-type", "client_credentials",
		"--scope", notes.ScopeRead, "--audience", notes.DefaultAudience)
	cc := clientcredentials.Config{ClientID: reports.ID, ClientSecret: reports.Secret, TokenURL: srv.Endpoint(t).TokenURL}
	tok, err := cc.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	var list notes.List
	if status, challenge := get(t, api+"/api/notes", tok.AccessToken, &list); status != 200 || list.Caller != reports.ID || len(list.Notes) == 0 {
		t.Fatalf("GET /api/notes: %d %q %+v, want the notes, for %s", status, challenge, list, reports.ID)
	}
	// No user signed in for this token: a person must be behind the vault.
	status, challenge := get(t, api+"/api/vault", tok.AccessToken, nil)
	if status != 401 || params(challenge)["error"] != "insufficient_user_authentication" {
		t.Fatalf("GET /api/vault with a backend's token: %d %q, want a step-up challenge", status, challenge)
	}
}

// A user who signed in with a password alone reads their notes, but the
// vault sends them back for a second factor (RFC 9470). The app asks
// Latchkey for what the challenge names; Ada, who has no second factor yet,
// turns one on along the way, and the new token opens the vault.
func TestTheVaultSendsAPasswordSignInBackForASecondFactor(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.Start(t)
	api := srv.NotesAPI(t, 0)
	ada := srv.CreateUser(t, "ada@example.com", "correct horse battery staple", "--name", "Ada Lovelace")
	app := srv.CreateClient(t, "--name", "Notes", "--grant-type", "authorization_code",
		"--redirect-uri", "http://127.0.0.1/callback", "--scope", "openid "+notes.ScopeRead,
		"--audience", notes.DefaultAudience)
	conf := &oauth2.Config{ClientID: app.ID, ClientSecret: app.Secret, RedirectURL: "http://127.0.0.1/callback",
		Scopes: []string{"openid", notes.ScopeRead}, Endpoint: srv.Endpoint(t)}
	agent := srv.Agent(t, ada)

	tok := agent.SignIn(t, conf)
	var list notes.List
	if status, challenge := get(t, api+"/api/notes", tok.AccessToken, &list); status != 200 || list.Caller != ada.Sub {
		t.Fatalf("GET /api/notes after a password sign-in: %d %q, caller %q; want Ada's notes", status, challenge, list.Caller)
	}

	status, challenge := get(t, api+"/api/vault", tok.AccessToken, nil)
	want := params(`Bearer realm="notes", error="insufficient_user_authentication", error_description="A stronger sign-in is required", acr_values="urn:latchkey:acr:mfa", max_age="600"`)
	got := params(challenge)
	if status != 401 || len(got) != len(want) {
		t.Fatalf("GET /api/vault after a password sign-in: %d %q, want 401 with %v", status, challenge, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("challenge %s=%q, want %q", k, got[k], v)
		}
	}

	// acr_values alone is a preference to Latchkey (docs/mfa.md); the
	// claims parameter makes the second factor essential, so that a user
	// without one turns one on rather than getting a password sign-in again.
	essential := `{"id_token":{"acr":{"essential":true,"values":["` + strings.Join(strings.Fields(got["acr_values"]), `","`) + `"]}}}`
	stepped := agent.SignIn(t, conf,
		oauth2.SetAuthURLParam("acr_values", got["acr_values"]),
		oauth2.SetAuthURLParam("max_age", got["max_age"]),
		oauth2.SetAuthURLParam("claims", essential))
	if ada.TOTPSecret == "" {
		t.Fatal("Latchkey did not ask Ada to turn on a second factor")
	}
	var vault notes.Vault
	if status, challenge := get(t, api+"/api/vault", stepped.AccessToken, &vault); status != 200 {
		t.Fatalf("GET /api/vault after stepping up: %d %q", status, challenge)
	}
	if vault.Caller != ada.Sub || vault.ACR != notes.ACRMFA || len(vault.Secrets) == 0 {
		t.Fatalf("the vault answered %+v, want Ada's secrets and acr %s", vault, notes.ACRMFA)
	}
}
