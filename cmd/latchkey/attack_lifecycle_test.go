package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/client"
)

// Lifecycle attacks: what must end when a user's access, an app's consent,
// a sign-in or a token ends, tried from outside after it ended.

// codeInHand is an authorization code an app received and has not
// redeemed yet, with the verifier that redeems it.
type codeInHand struct {
	code string
	ar   authRequest
}

// issueCode runs an authorization request in a browser that is signed in
// and has consented, and returns the code the app got back.
func (b *browser) issueCode(rp *relyingParty) codeInHand {
	b.t.Helper()
	ar := rp.start()
	return codeInHand{code: b.visit(ar.url).callback(b.t).Query().Get("code"), ar: ar}
}

// redeem exchanges the code as the app would.
func (c codeInHand) redeem(ctx context.Context, rp *relyingParty) (*oauth2.Token, error) {
	return rp.oauth.Exchange(ctx, c.code, oauth2.VerifierOption(c.ar.verifier))
}

// refresh redeems a refresh token once, as the app would.
func (rp *relyingParty) refresh(ctx context.Context, refreshToken string) error {
	_, err := rp.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	return err
}

func TestGrantsEndWithTheActThatEndsTheUsersAccess(t *testing.T) {
	t.Parallel()
	for name, act := range map[string]func(n *node, id string) error{
		"disable": func(n *node, id string) error { return n.users.Disable(context.Background(), id) },
		"delete":  func(n *node, id string) error { return n.users.Delete(context.Background(), id) },
		"set a new password": func(n *node, id string) error {
			return n.users.SetPassword(context.Background(), id, "a brand new passphrase")
		},
		"sign out everywhere": func(n *node, id string) error { return n.users.SignOutEverywhere(context.Background(), id) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := startNode(t)
			u := n.user(t, "ada@example.com")
			rp := n.app(t)
			b := newBrowser(t, n.issuer)
			redeemed, _ := b.signedIn(rp, "ada@example.com")
			pending := b.issueCode(rp)

			if err := act(n, u.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := pending.redeem(t.Context(), rp); !isInvalidGrant(err) {
				t.Errorf("a code issued a moment before: %v, want invalid_grant", err)
			}
			if err := rp.refresh(t.Context(), redeemed.RefreshToken); !isInvalidGrant(err) {
				t.Errorf("the refresh token of a code redeemed before: %v, want invalid_grant", err)
			}
		})
	}
}

// After the user revokes an app on their account page, the app must not
// come back: not through a code it got just before, not through its
// refresh token, and not silently through prompt=none.
func TestARevokedAppDoesNotSilentlyComeBack(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	redeemed, _ := b.signedIn(rp, "ada@example.com")
	pending := b.issueCode(rp)

	b.visit(n.issuer + "/account")
	if done := b.submit("/account/apps/revoke", url.Values{"client_id": {rp.client.ID}}); !strings.Contains(done.body, "no longer has access") {
		t.Fatalf("revoking the app on the account page: %d:\n%s", done.status, done.body)
	}
	if _, err := pending.redeem(t.Context(), rp); !isInvalidGrant(err) {
		t.Errorf("a code issued just before the revocation: %v, want invalid_grant", err)
	}
	if err := rp.refresh(t.Context(), redeemed.RefreshToken); !isInvalidGrant(err) {
		t.Errorf("the refresh token from before the revocation: %v, want invalid_grant", err)
	}
	if q := b.visit(rp.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "consent_required" {
		t.Errorf("prompt=none after the revocation: %v, want consent_required", q)
	}
}

// The token endpoint asks again, at every use of a code or refresh token,
// whether its user may still use it: the revocation that goes with each act
// may have missed a grant (a code issued in the same instant), and the
// grant must fail anyway. Here the database is changed the way such a race
// leaves it: the user or the consent gone, the grant's rows still active.
func TestTheTokenEndpointChecksTheUserAtEveryUseOfAGrant(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	u := n.user(t, "ada@example.com")
	rp := n.app(t)
	firstParty := n.app(t, func(c *client.Client) { c.SkipConsent = true })
	b := newBrowser(t, n.issuer)
	tok, _ := b.signedIn(rp, "ada@example.com")
	firstTok, err := b.issueCode(firstParty).redeem(t.Context(), firstParty)
	if err != nil {
		t.Fatal(err)
	}
	pending := b.issueCode(rp)
	db := mustConnect(t, n.dbURL)

	if _, err := db.Exec(t.Context(), `DELETE FROM consents WHERE user_id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := rp.refresh(t.Context(), tok.RefreshToken); !isInvalidGrant(err) {
		t.Errorf("refresh once the consent is gone: %v, want invalid_grant", err)
	}
	if _, err := pending.redeem(t.Context(), rp); !isInvalidGrant(err) {
		t.Errorf("a code once the consent is gone: %v, want invalid_grant", err)
	}
	// An app that skips consent needs none.
	next, err := firstParty.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: firstTok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh for an app that skips consent: %v", err)
	}

	if _, err := db.Exec(t.Context(), `UPDATE users SET disabled = true WHERE id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := firstParty.refresh(t.Context(), next.RefreshToken); !isInvalidGrant(err) {
		t.Errorf("refresh for a disabled user: %v, want invalid_grant", err)
	}
}

// prompt=login and max_age=0 ask for a sign-in after the request; one in
// the same second, before it, is not one.
func TestPromptLoginAndMaxAgeZeroAreNotSatisfiedByASignInTheSameSecond(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	rp := n.app(t, func(c *client.Client) { c.SkipConsent = true })
	b := newBrowser(t, n.issuer)
	ar := rp.start()
	login := b.visit(ar.url)
	// Right after a second starts, so that the sign-in and the requests
	// that follow it fall in the same second.
	waitForNextSecond()
	rp.finish(t, ar, b.signIn(login, "ada@example.com", testPassword).callback(t))
	for _, extra := range [][]string{{"prompt", "login"}, {"max_age", "0"}} {
		ar := rp.start(extra...)
		p := b.visit(ar.url)
		if !p.isLogin() {
			t.Fatalf("%s=%s right after a sign-in: want the login page, got %d to %v", extra[0], extra[1], p.status, p.location)
		}
		// A sign-in after the request satisfies it.
		rp.finish(t, ar, b.signIn(p, "ada@example.com", testPassword).callback(t))
	}
}

// An assertion that lives an hour is refused, whether its iat or its exp
// says so, and nothing of it is kept: its jti is still the client's to use.
func TestAClientAssertionThatLivesAnHourIsRefusedAndLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	k := n.keyClient(t)
	now := time.Now()
	for _, tt := range []struct {
		name, jti string
		iat, exp  time.Time
	}{
		{"an hour after its iat", "jti-hour", now, now.Add(time.Hour)},
		{"an hour from now, without iat", "jti-no-iat", time.Time{}, now.Add(time.Hour)},
		{"four minutes left of an hour", "jti-old", now.Add(-56 * time.Minute), now.Add(4 * time.Minute)},
	} {
		status, body := k.token(t, n, k.assertion(t, n, tt.jti, tt.iat, tt.exp))
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("%s: %d %v, want 401 invalid_client", tt.name, status, body)
		}
		if status, body := k.token(t, n, k.assertion(t, n, tt.jti, now, now.Add(time.Minute))); status != http.StatusOK {
			t.Errorf("a one-minute assertion with the jti of the refused one (%s): %d %v, want a token", tt.name, status, body)
		}
	}
}

// A revoked refresh token presented again is refused as revoked. It is not
// reuse of a spent token, so it neither raises the alarm in the audit log
// nor revokes anything; a spent one still does.
func TestARevokedRefreshTokenIsRefusedAsRevokedNotAsReuse(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	auditor := n.automation(t, client.AdminReadScope)
	reuseEvents := func() int {
		return len(auditor.call(http.MethodGet, "/admin/audit-events?action=token.refresh_reuse_detected", nil).must(t, http.StatusOK).items())
	}
	id, secret := rp.client.ID, rp.oauth.ClientSecret
	revoked, _ := b.signedIn(rp, "ada@example.com")
	if status, _, body := n.formCall(t, "/oauth2/revoke", id, secret, url.Values{"token": {revoked.RefreshToken}}); status != http.StatusOK {
		t.Fatalf("revoking the refresh token: %d %v", status, body)
	}
	status, _, body := n.formCall(t, "/oauth2/token", id, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {revoked.RefreshToken}})
	if desc, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.Contains(desc, "revoked") {
		t.Fatalf("the revoked refresh token: %d %v, want invalid_grant saying it was revoked", status, body)
	}
	if got := reuseEvents(); got != 0 {
		t.Fatalf("presenting a revoked refresh token recorded %d reuse events, want none", got)
	}

	spent, err := b.issueCode(rp).redeem(t.Context(), rp)
	if err != nil {
		t.Fatal(err)
	}
	refreshed(t, rp, spent)
	if err := rp.refresh(t.Context(), spent.RefreshToken); !isInvalidGrant(err) {
		t.Fatalf("a spent refresh token: %v, want invalid_grant", err)
	}
	if got := reuseEvents(); got != 1 {
		t.Fatalf("presenting a spent refresh token recorded %d reuse events, want 1", got)
	}
}
