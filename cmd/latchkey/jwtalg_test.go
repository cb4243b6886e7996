package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/internal/openidclient"
	"github.com/latchkey/latchkey/pkg/client"
)

// reportsAPI is the audience of the JWT access tokens in these tests.
const reportsAPI = "https://reports.example.com"

func TestClientsChooseTheirAccessTokenAlgorithmByFlag(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	created := decodeClient(t, mustRun(t, cli, "create", "--id", "reports", "--grant-type", "client_credentials",
		"--access-token-format", "jwt", "--access-token-alg", "EdDSA", "--output", "json"))
	if created["access_token_signed_response_alg"] != "EdDSA" {
		t.Fatalf("create --access-token-alg EdDSA: %v", created)
	}
	if table := mustRun(t, cli, "get", "reports"); !strings.Contains(table, "access_token_signed_response_alg  EdDSA\n") {
		t.Fatalf("get does not show the algorithm:\n%s", table)
	}
	if got := decodeClient(t, mustRun(t, cli, "update", "reports", "--access-token-alg", "ES256", "--output", "json")); got["access_token_signed_response_alg"] != "ES256" {
		t.Fatalf("update --access-token-alg ES256: %v", got)
	}
	// Opaque tokens are not signed: switching to them drops the choice
	// rather than failing on it.
	got := decodeClient(t, mustRun(t, cli, "update", "reports", "--access-token-format", "opaque", "--output", "json"))
	if _, ok := got["access_token_signed_response_alg"]; ok || got["access_token_format"] != "opaque" {
		t.Fatalf("update --access-token-format opaque: %v", got)
	}
	// A client that never chose has no member: the server's RS256.
	plain := decodeClient(t, mustRun(t, cli, "create", "--grant-type", "client_credentials", "--access-token-format", "jwt", "--output", "json"))
	if _, ok := plain["access_token_signed_response_alg"]; ok {
		t.Fatalf("a client created without --access-token-alg: %v", plain)
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"create", "--grant-type", "client_credentials", "--access-token-format", "jwt", "--access-token-alg", "HS256"},
			[]string{"access_token_signed_response_alg", `"HS256"`, "EdDSA"}},
		{[]string{"create", "--grant-type", "client_credentials", "--access-token-format", "jwt", "--access-token-alg", "none"},
			[]string{"access_token_signed_response_alg", `"none"`}},
		{[]string{"create", "--grant-type", "client_credentials", "--access-token-alg", "EdDSA"},
			[]string{"access_token_signed_response_alg", "opaque"}},
		{[]string{"update", "reports", "--access-token-format", "jwt", "--access-token-alg", "ed25519"},
			[]string{"access_token_signed_response_alg", `"ed25519"`}},
	} {
		code, stdout, stderr := cli(tc.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		if code != 1 || stdout != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "latchkey clients: ") {
			t.Errorf("clients %s: exit %d, stdout %q, stderr %q; want exit 1 and one line", strings.Join(tc.args, " "), code, stdout, stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("clients %s: %q does not mention %s", strings.Join(tc.args, " "), stderr, w)
			}
		}
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, cli, "list", "--output", "json")), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("refused clients were stored: %v (err %v)", listed, err)
	}
	if got := decodeClient(t, mustRun(t, cli, "get", "reports", "--output", "json")); got["access_token_format"] != "opaque" {
		t.Fatalf("a refused update changed the client: %v", got)
	}
}

func TestAdminAPIValidatesTheAccessTokenAlgorithm(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	created := a.call(http.MethodPost, "/admin/clients", map[string]any{
		"client_id": "reports", "grant_types": []string{"client_credentials"},
		"access_token_format": "jwt", "access_token_signed_response_alg": "EdDSA",
	}).must(t, http.StatusCreated)
	if created.body["access_token_signed_response_alg"] != "EdDSA" {
		t.Fatalf("created: %s", created.raw)
	}
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any
	}{
		{"HS256 at create", http.MethodPost, "/admin/clients", map[string]any{
			"grant_types": []string{"client_credentials"}, "access_token_format": "jwt", "access_token_signed_response_alg": "HS256"}},
		{"an alg for opaque tokens", http.MethodPost, "/admin/clients", map[string]any{
			"grant_types": []string{"client_credentials"}, "access_token_signed_response_alg": "ES256"}},
		{"none by PATCH", http.MethodPatch, "/admin/clients/reports", map[string]any{"access_token_signed_response_alg": "none"}},
		{"a number", http.MethodPatch, "/admin/clients/reports", map[string]any{"access_token_signed_response_alg": 256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.t = t
			ans := a.call(tc.method, tc.path, tc.body)
			status := http.StatusUnprocessableEntity
			if tc.name == "a number" {
				status = http.StatusBadRequest
			}
			ans.problem(t, status, "access_token_signed_response_alg")
		})
	}
	a.t = t
	got := a.call(http.MethodPatch, "/admin/clients/reports", map[string]any{"access_token_signed_response_alg": "ES256"}).must(t, http.StatusOK)
	if got.body["access_token_signed_response_alg"] != "ES256" {
		t.Fatalf("PATCH to ES256: %s", got.raw)
	}
	if clients := a.call(http.MethodGet, "/admin/clients", nil).must(t, http.StatusOK).items(); len(clients) != 2 {
		t.Fatalf("refused clients were stored: %v", clients)
	}
}

// Each algorithm's tokens, issued by a whole node to clients registered
// with the CLI, verify with go-oidc fed from the node's discovery document
// and JWKS, as a Go resource server would verify them.
func TestJWTAccessTokensOfEachAlgorithmVerifyWithGoOIDC(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	provider, err := oidc.NewProvider(t.Context(), n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	// EdDSA signs access tokens only: the ID token algorithms advertised
	// are still those ID tokens may be signed with.
	var meta struct {
		IDTokenAlgs []string `json:"id_token_signing_alg_values_supported"`
		JWKSURI     string   `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(meta.IDTokenAlgs, []string{"RS256", "ES256"}) {
		t.Fatalf("id_token_signing_alg_values_supported = %v, want [RS256 ES256]", meta.IDTokenAlgs)
	}
	_, jwks := httpGet(t, meta.JWKSURI)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}

	db := vars{"LATCHKEY_DATABASE_URL": n.dbURL}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		code, stdout, stderr := runCLI(t.Context(), db, "clients", "create", "--grant-type", "client_credentials",
			"--audience", reportsAPI, "--access-token-format", "jwt", "--access-token-alg", alg, "--output", "json")
		if code != 0 {
			t.Fatalf("clients create --access-token-alg %s: exit %d, stderr %q", alg, code, stderr)
		}
		c := decodeClient(t, stdout)
		cc := clientcredentials.Config{ClientID: c["client_id"].(string), ClientSecret: c["client_secret"].(string),
			TokenURL: provider.Endpoint().TokenURL, AuthStyle: oauth2.AuthStyleInHeader}
		tok, err := cc.Token(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		verified, err := provider.Verifier(&oidc.Config{ClientID: reportsAPI, SupportedSigningAlgs: []string{alg}}).Verify(t.Context(), tok.AccessToken)
		if err != nil {
			t.Fatalf("go-oidc on a %s access token: %v", alg, err)
		}
		if verified.Subject != cc.ClientID {
			t.Fatalf("sub %q, want the client %q", verified.Subject, cc.ClientID)
		}
		parsed, err := josejwt.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil {
			t.Fatalf("%s token: %v", alg, err)
		}
		keys := set.Key(parsed.Headers[0].KeyID)
		if len(keys) != 1 || keys[0].Algorithm != alg {
			t.Fatalf("%s token's kid %q names %v in the JWKS", alg, parsed.Headers[0].KeyID, keys)
		}
		if !n.introspect(t, tok.AccessToken) {
			t.Fatalf("introspection says the %s token is inactive", alg)
		}
	}
}

// oauth4webapi, the Node.js library under openid-client, validates JWT
// access tokens for resource servers (RFC 9068 §4): each algorithm's
// tokens pass when expected, fail when another is, and a token whose
// header names another algorithm or key fails.
func TestJWTAccessTokensOfEachAlgorithmVerifyWithOauth4webapi(t *testing.T) {
	t.Parallel()
	openidclient.Need(t)
	n := startNode(t)
	db := vars{"LATCHKEY_DATABASE_URL": n.dbURL}
	algs := []string{"RS256", "ES256", "EdDSA"}
	tokens := map[string]string{}
	for _, alg := range algs {
		code, stdout, stderr := runCLI(t.Context(), db, "clients", "create", "--grant-type", "client_credentials",
			"--audience", reportsAPI, "--access-token-format", "jwt", "--access-token-alg", alg, "--output", "json")
		if code != 0 {
			t.Fatalf("clients create --access-token-alg %s: exit %d, stderr %q", alg, code, stderr)
		}
		c := decodeClient(t, stdout)
		tokens[alg] = n.clientToken(t, c["client_id"].(string), c["client_secret"].(string))
	}
	validate := func(token string, algorithms ...string) (map[string]any, error) {
		var out struct{ Claims map[string]any }
		err := openidclient.Try(t, "jwtalg.mjs", map[string]any{
			"issuer": n.issuer, "token": token, "audience": reportsAPI, "algorithms": algorithms}, &out)
		return out.Claims, err
	}
	for _, alg := range algs {
		claims, err := validate(tokens[alg], alg)
		if err != nil || claims["iss"] != n.issuer || claims["client_id"] == nil {
			t.Fatalf("oauth4webapi on a %s token: claims %v, err %v", alg, claims, err)
		}
		for _, other := range algs {
			if other == alg {
				continue
			}
			if _, err := validate(tokens[alg], other); err == nil || !strings.Contains(err.Error(), `unexpected JWT "alg"`) {
				t.Errorf("oauth4webapi expecting only %s, given a %s token: %v; want its alg refused", other, alg, err)
			}
		}
	}
	// One algorithm's signature under another's header, so under another
	// key's kid: neither a verifier that takes the key from the kid nor
	// introspection accepts it.
	head := func(tok string) string { return strings.SplitN(tok, ".", 2)[0] }
	rest := func(tok string) string { return strings.SplitN(tok, ".", 2)[1] }
	for _, swap := range [][2]string{{"EdDSA", "ES256"}, {"ES256", "EdDSA"}, {"EdDSA", "RS256"}} {
		forged := head(tokens[swap[1]]) + "." + rest(tokens[swap[0]])
		if _, err := validate(forged, algs...); err == nil {
			t.Errorf("oauth4webapi accepted a %s token under a %s header", swap[0], swap[1])
		}
		if n.introspect(t, forged) {
			t.Errorf("introspection accepted a %s token under a %s header", swap[0], swap[1])
		}
	}
}

func TestAnAppWithEdDSAAccessTokensKeepsItsIDTokenAlgorithm(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	rp := n.app(t, func(c *client.Client) {
		c.Audience = []string{reportsAPI}
		c.AccessTokenFormat = client.FormatJWT
		c.AccessTokenSignedResponseAlg = "EdDSA"
		c.IDTokenSignedResponseAlg = "ES256"
	})
	tok, id := newBrowser(t, n.issuer).signedIn(rp, "ada@example.com")
	raw, _ := tok.Extra("id_token").(string)
	if header := decodeSegment(t, strings.SplitN(raw, ".", 2)[0]); header["alg"] != "ES256" {
		t.Fatalf("ID token header %v, want alg ES256 as registered", header)
	}
	// at_hash is of the EdDSA access token, with the ID token's SHA-256
	// (OpenID Connect Core §3.1.3.6): go-oidc checks it as an app does.
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	at, err := rp.provider.Verifier(&oidc.Config{ClientID: reportsAPI, SupportedSigningAlgs: []string{oidc.EdDSA}}).Verify(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatalf("the app's access token: %v", err)
	}
	if at.Subject != id.Subject {
		t.Fatalf("access token sub %q, ID token sub %q", at.Subject, id.Subject)
	}
	// The userinfo endpoint takes it as it takes any access token.
	info, err := rp.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != "ada@example.com" {
		t.Fatalf("userinfo with the EdDSA access token: %v, %v", info, err)
	}
}
