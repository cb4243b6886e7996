package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/storage/postgres"
)

// newClient stores a client-credentials client.
func newClient(t *testing.T, s *postgres.Store, id string) *client.Client {
	t.Helper()
	c := &client.Client{ID: id, GrantTypes: []string{client.GrantClientCredentials}}
	c.Normalize()
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// grant is a fosite request of c for family, whose tokens expire at exp.
func grant(c *client.Client, family string, exp time.Time) fosite.Requester {
	r := fosite.NewRequest()
	r.ID = family
	r.Client = c
	r.RequestedAt = time.Now()
	r.Session = &fosite.DefaultSession{Subject: "user-1", ExpiresAt: map[fosite.TokenType]time.Time{
		fosite.AccessToken: exp, fosite.RefreshToken: exp, fosite.AuthorizeCode: exp,
	}}
	return r
}

func exists(t *testing.T, err error) bool {
	t.Helper()
	switch {
	case err == nil, errors.Is(err, fosite.ErrInactiveToken):
		return true
	case errors.Is(err, fosite.ErrNotFound):
		return false
	}
	t.Fatal(err)
	return false
}

func TestJanitorDeletesExpiredRowsAndKeepsReuseEvidence(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := t.Context()
	c := newClient(t, s, "app")
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateAccessTokenSession(ctx, "at-expired", grant(c, "f1", past)))
	must(s.CreateAccessTokenSession(ctx, "at-live", grant(c, "f2", future)))
	must(s.CreateRefreshTokenSession(ctx, "rt-expired", "at-expired", grant(c, "f1", past)))
	must(s.CreateAuthorizeCodeSession(ctx, "code-expired", grant(c, "f3", past)))
	must(s.RecordAssertionJTI(ctx, c.ID, "jti-expired", past))
	must(s.RecordAssertionJTI(ctx, c.ID, "jti-live", future))
	// A spent refresh token that has not expired is what recognises reuse.
	must(s.CreateRefreshTokenSession(ctx, "rt-spent", "at-live", grant(c, "f2", future)))
	must(s.RotateRefreshToken(ctx, "f2", "rt-spent"))

	deleted, err := s.Sweep(ctx, time.Now(), 1, 0) // batches of one: the loop must go on
	must(err)
	for table, want := range map[string]int64{
		"oauth_access_tokens": 1, "oauth_refresh_tokens": 1, "oauth_authorization_codes": 1, "oauth_client_assertion_jtis": 1,
	} {
		if deleted[table] != want {
			t.Errorf("swept %d rows from %s, want %d", deleted[table], table, want)
		}
	}
	if _, err := s.GetAccessTokenSession(ctx, "at-expired", nil); exists(t, err) {
		t.Error("expired access token survived")
	}
	if _, err := s.GetAuthorizeCodeSession(ctx, "code-expired", nil); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("expired code survived: %v", err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "at-live", nil); !exists(t, err) {
		t.Error("live access token was deleted")
	}
	r, err := s.GetRefreshTokenSession(ctx, "rt-spent", nil)
	if !errors.Is(err, fosite.ErrInactiveToken) || r == nil || r.GetID() != "f2" {
		t.Fatalf("spent refresh token after the sweep: %v, %v; want it kept, inactive, with its family", r, err)
	}
	if err := s.AssertionJTIUsed(ctx, c.ID, "jti-live"); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Errorf("live jti forgotten: %v", err)
	}
	if again, err := s.Sweep(ctx, time.Now(), 100, 0); err != nil || sum(again) != 0 {
		t.Errorf("second sweep deleted %v (err %v), want nothing", again, err)
	}
}

func sum(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

func TestRolledBackTransactionLeavesNothing(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	c := newClient(t, s, "app")
	ctx, err := s.BeginTX(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(ctx, "at", grant(c, "f", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(ctx, "at", nil); err != nil {
		t.Fatalf("the transaction does not see its own write: %v", err)
	}
	if _, err := s.GetAccessTokenSession(t.Context(), "at", nil); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("an uncommitted write is visible outside the transaction: %v", err)
	}
	if err := s.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(t.Context(), "at", nil); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("a rolled-back write persisted: %v", err)
	}
}

func TestGuardRollsBackAForgottenTransaction(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	c := newClient(t, s, "app")
	guarded, release := s.GuardTransactions(t.Context())
	ctx, err := s.BeginTX(guarded)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(ctx, "at", grant(c, "f", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	release() // as a handler's defer does after a flow that never committed
	if _, err := s.GetAccessTokenSession(t.Context(), "at", nil); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("the forgotten transaction's write persisted: %v", err)
	}
	// The connection went back to the pool in a usable state.
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestDeletingAClientDeletesItsTokens(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	c := newClient(t, s, "app")
	if err := s.CreateAccessTokenSession(t.Context(), "at", grant(c, "f", time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccessTokenSession(t.Context(), "at", nil); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatalf("a deleted client's token still loads: %v", err)
	}
	if err := s.DeleteClient(t.Context(), c.ID); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("deleting twice: %v, want client.ErrNotFound", err)
	}
}

func TestClientIDsAreUnique(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	newClient(t, s, "app")
	c := &client.Client{ID: "app", GrantTypes: []string{client.GrantClientCredentials}}
	if err := s.CreateClient(t.Context(), c); !errors.Is(err, client.ErrExists) {
		t.Fatalf("second client with the same ID: %v, want client.ErrExists", err)
	}
}

func TestAssertionJTIIsSingleUsePerClientUntilItExpires(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := t.Context()
	if err := s.RecordAssertionJTI(ctx, "a", "jti", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAssertionJTI(ctx, "a", "jti", time.Now().Add(time.Minute)); !errors.Is(err, fosite.ErrJTIKnown) {
		t.Fatalf("replayed jti: %v, want fosite.ErrJTIKnown", err)
	}
	// A jti is unique per client (RFC 7523 §3): another client's is free.
	if err := s.AssertionJTIUsed(ctx, "b", "jti"); err != nil {
		t.Fatalf("another client's jti: %v, want it free", err)
	}
	if err := s.RecordAssertionJTI(ctx, "b", "jti", time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("another client using the jti: %v", err)
	}
	if err := s.RecordAssertionJTI(ctx, "a", "old", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	// An assertion that has expired cannot be replayed anyway, so its jti
	// may be used again without waiting for the janitor.
	if err := s.AssertionJTIUsed(ctx, "a", "old"); err != nil {
		t.Fatalf("expired jti: %v, want it free", err)
	}
	if err := s.RecordAssertionJTI(ctx, "a", "old", time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("reusing an expired jti: %v", err)
	}
}

func TestARevokedRefreshTokenIsNotFoundAndASpentOneIsInactive(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := t.Context()
	c := newClient(t, s, "app")
	exp := time.Now().Add(time.Hour)
	for _, sig := range []string{"rt-spent", "rt-live"} {
		if err := s.CreateRefreshTokenSession(ctx, sig, "at", grant(c, "f", exp)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RotateRefreshToken(ctx, "f", "rt-spent"); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeRefreshToken(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	r, err := s.GetRefreshTokenSession(ctx, "rt-spent", nil)
	if !errors.Is(err, fosite.ErrInactiveToken) || r == nil {
		t.Fatalf("a spent refresh token, its family revoked since: %v, %v; want it inactive, with its request, as reuse", r, err)
	}
	_, err = s.GetRefreshTokenSession(ctx, "rt-live", nil)
	if !errors.Is(err, fosite.ErrNotFound) || !errors.Is(err, postgres.ErrRefreshTokenRevoked) || errors.Is(err, fosite.ErrInactiveToken) {
		t.Fatalf("a revoked refresh token: %v; want fosite.ErrNotFound wrapping ErrRefreshTokenRevoked", err)
	}
}

func TestStoredSessionsKeepIntegersExact(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	ctx := t.Context()
	c := newClient(t, s, "app")
	r := grant(c, "f", time.Now().Add(time.Hour))
	r.SetSession(&fosite.DefaultSession{Extra: map[string]any{"updated_at": int64(1796410335)}})
	if err := s.CreateAccessTokenSession(ctx, "at", r); err != nil {
		t.Fatal(err)
	}
	loaded := &fosite.DefaultSession{}
	if _, err := s.GetAccessTokenSession(ctx, "at", loaded); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(loaded.Extra["updated_at"]); got != "1796410335" {
		t.Fatalf("updated_at came back as %s (%T), want 1796410335", got, loaded.Extra["updated_at"])
	}
}

func TestIsUnavailable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", fmt.Errorf("postgres: load: %w", context.DeadlineExceeded), true},
		{"statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"raised by a trigger", &pgconn.PgError{Code: "P0001"}, false},
		{"canceled by the client", context.Canceled, false},
		{"not found", fosite.ErrNotFound, false},
	}
	for _, tt := range tests {
		if got := postgres.IsUnavailable(tt.err); got != tt.want {
			t.Errorf("%s: IsUnavailable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestOnlyStandaloneAccessTokensCommitAsynchronously records, with a
// trigger, the synchronous_commit each write runs under, on a pool of one
// connection so that a setting that leaked would show up in the next write.
func TestOnlyStandaloneAccessTokensCommitAsynchronously(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	// The test cluster itself runs without synchronous commit; ask for it.
	s, err := postgres.Open(url+"&synchronous_commit=on", postgres.Options{MaxConns: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := newClient(t, s, "app")
	ctx := t.Context()
	conn := pgtest.Conn(t, url)
	if _, err := conn.Exec(ctx, `
		CREATE TABLE seen (what text, setting text);
		CREATE FUNCTION record() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
			INSERT INTO seen VALUES (TG_TABLE_NAME || ' ' || TG_OP, current_setting('synchronous_commit'));
			RETURN NEW; END $$;
		CREATE TRIGGER record BEFORE INSERT OR UPDATE ON oauth_access_tokens FOR EACH ROW EXECUTE FUNCTION record();
		CREATE TRIGGER record BEFORE INSERT ON oauth_refresh_tokens FOR EACH ROW EXECUTE FUNCTION record();`); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	// Client credentials: a token on its own.
	if err := s.CreateAccessTokenSession(ctx, "cc", grant(c, "f1", exp)); err != nil {
		t.Fatal(err)
	}
	// A refresh: tokens issued in a transaction with the redemption.
	txCtx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccessTokenSession(txCtx, "at", grant(c, "f2", exp)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRefreshTokenSession(txCtx, "rt", "at", grant(c, "f2", exp)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(txCtx); err != nil {
		t.Fatal(err)
	}
	// A revocation, on the one connection the asynchronous insert used.
	if err := s.RevokeAccessToken(ctx, "f1"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT what || ': ' || setting FROM seen`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"oauth_access_tokens INSERT: off",
		"oauth_access_tokens INSERT: on",
		"oauth_refresh_tokens INSERT: on",
		"oauth_access_tokens UPDATE: on",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("writes ran under\n%q\nwant\n%q", got, want)
	}
}
