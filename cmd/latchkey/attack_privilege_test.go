package main

import (
	"encoding/json"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/client"
)

// Privilege attacks: a client, a token or a consent that allows something
// narrow, used to try for something wider.

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
