package oauth

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/latchkey/latchkey/pkg/discovery"
)

func TestRevokeAccessToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.backend(t, "")
	token := f.token(t, c.ID, secret).AccessToken
	other := f.token(t, c.ID, secret).AccessToken

	for i := range 2 { // revoking twice is fine
		if status := f.revoke(t, c.ID, secret, token, "access_token"); status != http.StatusOK {
			t.Fatalf("revocation %d: %d", i+1, status)
		}
	}
	if got := f.introspect(t, c.ID, secret, token); got["active"] != false {
		t.Fatalf("revoked token: %v", got)
	}
	if got := f.introspect(t, c.ID, secret, other); got["active"] != true {
		t.Fatalf("another grant's token was revoked with it: %v", got)
	}
	if status := f.revoke(t, c.ID, secret, "lk_at_unknown.token", ""); status != http.StatusOK {
		t.Fatalf("unknown token: %d, want 200 (RFC 7009 §2.2)", status)
	}
}

func TestRevokeRefreshTokenRevokesItsGrant(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, appSecret, tok := f.signedIn(t)
	// Without a hint, and with the wrong one, the token is still found.
	for _, hint := range []string{"", "access_token"} {
		if status := f.revoke(t, app.ID, appSecret, tok.RefreshToken, hint); status != http.StatusOK {
			t.Fatalf("revoke (hint %q): %d", hint, status)
		}
	}
	if got := f.introspect(t, app.ID, appSecret, tok.AccessToken); got["active"] != false {
		t.Fatalf("access token of a revoked grant: %v", got)
	}
	if _, err := f.refresh(t.Context(), app, appSecret, tok.RefreshToken); errorCode(err) != "invalid_grant" {
		t.Fatalf("refresh with a revoked token: %v, want invalid_grant", err)
	}
}

func TestClientCannotRevokeAnotherClientsToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner, ownerSecret := f.backend(t, "")
	thief, thiefSecret := f.backend(t, "")
	token := f.token(t, owner.ID, ownerSecret).AccessToken
	status, h, body := f.post(t, discovery.RevocationPath, thief.ID, thiefSecret, url.Values{"token": {token}})
	rfc6749Error(t, status, h, body, http.StatusBadRequest, "unauthorized_client")
	if got := f.introspect(t, owner.ID, ownerSecret, token); got["active"] != true {
		t.Fatalf("another client revoked the token: %v", got)
	}
	if status := f.revoke(t, owner.ID, "wrong", token, ""); status != http.StatusUnauthorized {
		t.Fatalf("revocation with a wrong secret: %d, want 401", status)
	}
}

func TestRevocationAnswers503WhenTheStoreFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, secret := f.backend(t, "")
	token := f.token(t, c.ID, secret).AccessToken
	// The store now fails to revoke, as it would on a failing disk; reading
	// (and so authenticating the client) still works.
	f.sql(t, `
		CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$;
		CREATE TRIGGER fail BEFORE UPDATE ON oauth_access_tokens FOR EACH ROW EXECUTE FUNCTION fail();`)
	status, h, body := f.post(t, discovery.RevocationPath, c.ID, secret, url.Values{"token": {token}})
	rfc6749Error(t, status, h, body, http.StatusServiceUnavailable, "temporarily_unavailable")
	if h.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if got := f.introspect(t, c.ID, secret, token); got["active"] != true {
		t.Fatalf("the failed revocation half-happened: %v", got)
	}
}
