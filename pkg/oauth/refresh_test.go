package oauth

import (
	"context"
	"sync"
	"testing"
)

func TestRefreshRotatesTheRefreshToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, secret, first := f.signedIn(t)
	second, err := f.refresh(t.Context(), app, secret, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("refreshing returned the same tokens; want new ones (rotation)")
	}
	if got := f.introspect(t, app.ID, secret, second.AccessToken); got["active"] != true || got["sub"] != f.user.ID || got["scope"] != "openid offline_access" {
		t.Fatalf("refreshed access token: %v, want active for the user with the original scopes", got)
	}
	if got := f.introspect(t, app.ID, secret, first.AccessToken); got["active"] != false {
		t.Fatalf("the access token before the refresh is still active: %v", got)
	}
}

func TestRefreshTokenReuseRevokesFamily(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, secret, stolen := f.signedIn(t)
	// The app refreshes twice; then the thief replays the first refresh token.
	second, err := f.refresh(t.Context(), app, secret, stolen.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	newest, err := f.refresh(t.Context(), app, secret, second.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.introspect(t, app.ID, secret, newest.AccessToken); got["active"] != true {
		t.Fatalf("newest access token before the reuse: %v", got)
	}

	if _, err := f.refresh(t.Context(), app, secret, stolen.RefreshToken); errorCode(err) != "invalid_grant" {
		t.Fatalf("reusing a spent refresh token: %v, want invalid_grant", err)
	}
	if got := f.introspect(t, app.ID, secret, newest.AccessToken); got["active"] != false {
		t.Fatalf("newest access token after the reuse: %v, want inactive (the family is revoked)", got)
	}
	if _, err := f.refresh(t.Context(), app, secret, newest.RefreshToken); errorCode(err) != "invalid_grant" {
		t.Fatalf("newest refresh token after the reuse: %v, want invalid_grant", err)
	}
	// The reuse is recognised again, not forgotten after the first time.
	if _, err := f.refresh(t.Context(), app, secret, stolen.RefreshToken); errorCode(err) != "invalid_grant" {
		t.Fatalf("second reuse: %v", err)
	}
}

// race runs do from n goroutines released at once and returns their errors.
func race(n int, do func() error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = do()
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one of errs is nil and that every loser was
// told its grant is no good, not that the server failed.
func oneWinner(t *testing.T, errs []error) {
	t.Helper()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errorCode(err) != "invalid_grant":
			t.Errorf("a losing request failed with %v, want invalid_grant", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent redemptions succeeded, want exactly 1", won, len(errs))
	}
}

func TestConcurrentRefreshesOfOneTokenHaveOneWinner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, secret, tok := f.signedIn(t)
	oneWinner(t, race(20, func() error {
		_, err := f.refresh(context.Background(), app, secret, tok.RefreshToken)
		return err
	}))
	// The losers wrote nothing: the grant has its first pair of tokens and
	// the winner's, never a second successor. (A loser that arrived after
	// the winner committed presented a spent token, which is reuse, and may
	// have revoked the family: RFC 9700 §4.14.2 counts that as a breach.)
	for _, table := range []string{"oauth_refresh_tokens", "oauth_access_tokens"} {
		if n := f.count(t, `SELECT count(*) FROM `+table+` WHERE client_id = $1`, app.ID); n != 2 {
			t.Errorf("%s holds %d rows for the grant, want 2 (the original and one successor)", table, n)
		}
	}
}

func TestConcurrentExchangesOfOneCodeHaveOneWinner(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, secret := f.webApp(t)
	code, verifier := f.signIn(t, app, "openid", "offline_access")
	oneWinner(t, race(10, func() error {
		_, err := f.exchange(context.Background(), app, secret, code, verifier)
		return err
	}))
}

func TestUsedCodeRevokesWhatItIssued(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app, secret := f.webApp(t)
	code, verifier := f.signIn(t, app, "openid", "offline_access")
	tok, err := f.exchange(t.Context(), app, secret, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.exchange(t.Context(), app, secret, code, verifier); errorCode(err) != "invalid_grant" {
		t.Fatalf("second use of a code: %v, want invalid_grant", err)
	}
	if got := f.introspect(t, app.ID, secret, tok.AccessToken); got["active"] != false {
		t.Fatalf("a replayed code must revoke the tokens it issued (RFC 6749 §4.1.2): %v", got)
	}
}
