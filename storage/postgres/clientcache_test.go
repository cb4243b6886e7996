package postgres_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/storage/postgres"
)

// node opens a store on url and, if listening, runs its change listener as
// serve does, waiting until the listener is up.
func node(t *testing.T, url string, listening bool) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if listening {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.ListenForChanges(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), func() {}, nil, nil)
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	return s
}

// secretHash returns the secret digest a node authenticates c with.
func secretHash(t *testing.T, s *postgres.Store, id string) string {
	t.Helper()
	c, err := s.GetClient(t.Context(), id)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(c.GetHashedSecret())
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newSecretClient(t *testing.T, s *postgres.Store) *client.Client {
	t.Helper()
	c := &client.Client{ID: "billing", GrantTypes: []string{client.GrantClientCredentials}}
	c.Normalize()
	_, c.SecretHash = client.NewSecret()
	if err := s.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCacheServesRepeatedLookupsAndHearsAnnouncements(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	a := node(t, url, true)
	c := newSecretClient(t, a)
	old := string(c.SecretHash)
	eventually(t, "the client to be cached", func() bool { return cachedNow(t, a, url, c.ID, old) })

	// A change that bypasses the store is invisible to the cache: proof
	// that lookups are served from memory.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `UPDATE clients SET secret_hash = 'changed' WHERE id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	if got := secretHash(t, a, c.ID); got != old {
		t.Fatalf("a lookup went to the database (%q): the cache is not used", got)
	}
	// The announcement every store change sends evicts the entry.
	if _, err := conn.Exec(t.Context(), `SELECT pg_notify('latchkey_clients', $1)`, c.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the announcement to evict the client", func() bool { return secretHash(t, a, c.ID) == "changed" })
}

// cachedNow reports whether a serves c from its cache: it looks c up once
// (which caches it when the cache is on), changes the row behind the
// store's back, looks again, and puts the row back.
func cachedNow(t *testing.T, a *postgres.Store, url, id, want string) bool {
	t.Helper()
	secretHash(t, a, id)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `UPDATE clients SET secret_hash = 'probe' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	cached := secretHash(t, a, id) == want
	if _, err := conn.Exec(t.Context(), `UPDATE clients SET secret_hash = $2 WHERE id = $1`, id, []byte(want)); err != nil {
		t.Fatal(err)
	}
	if !cached {
		// The cache came on between the two lookups and kept the probe's
		// value; announce the restore, as every real change does.
		if _, err := conn.Exec(t.Context(), `SELECT pg_notify('latchkey_clients', $1)`, id); err != nil {
			t.Fatal(err)
		}
		// Let it arrive before the next probe, which it would disturb.
		time.Sleep(100 * time.Millisecond)
	}
	return cached
}

func TestChangeOnOneNodeReachesAnotherNodesCache(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	a, b := node(t, url, true), node(t, url, true)
	c := newSecretClient(t, b)
	old := string(c.SecretHash)
	eventually(t, "node A to cache the client", func() bool { return cachedNow(t, a, url, c.ID, old) })

	// Node B rotates the secret with no grace, as an admin would after a leak.
	m := client.NewManager(b, audit.New(b, slog.New(slog.DiscardHandler)), 0)
	if _, _, err := m.RotateSecret(t.Context(), c.ID, 0); err != nil {
		t.Fatal(err)
	}
	if secretHash(t, b, c.ID) == old {
		t.Fatal("the node that rotated the secret still authenticates the old one")
	}
	eventually(t, "node A to drop the old secret", func() bool { return secretHash(t, a, c.ID) != old })

	if err := m.Delete(t.Context(), c.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node A to forget the deleted client", func() bool {
		_, err := a.GetClient(t.Context(), c.ID)
		return errors.Is(err, fosite.ErrNotFound)
	})
}

func TestWithoutAListenerEveryLookupReadsTheDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	a := node(t, url, false)
	c := newSecretClient(t, a)
	if got := secretHash(t, a, c.ID); got != string(c.SecretHash) {
		t.Fatal("lookup failed")
	}
	if cachedNow(t, a, url, c.ID, string(c.SecretHash)) {
		t.Fatal("a store without a change listener served a client from memory")
	}
}

// tracedNode is node, listening, with every database call made within a
// traced context recorded, so that a test can count them.
func tracedNode(t *testing.T, url string) (*postgres.Store, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s, err := postgres.Open(url, postgres.Options{Tracer: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ListenForChanges(ctx, slog.New(slog.DiscardHandler), func() {}, nil, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return s, rec
}

// clientQueries counts the queries rec saw that read a client by ID.
func clientQueries(rec *tracetest.SpanRecorder) int {
	n := 0
	for _, s := range rec.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == semconv.DBQueryTextKey && strings.Contains(a.Value.AsString(), "FROM clients c WHERE c.id = $1") {
				n++
			}
		}
	}
	return n
}

func TestUnknownClientIDsCostOneQueryUntilTheClientIsCreated(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	a, rec := tracedNode(t, url)
	b := node(t, url, true)
	known := newSecretClient(t, b)
	eventually(t, "node A's cache to be on", func() bool { return cachedNow(t, a, url, known.ID, string(known.SecretHash)) })

	ctx, span := sdktrace.NewTracerProvider().Tracer("test").Start(t.Context(), "lookups")
	defer span.End()
	lookup := func(s *postgres.Store, id string) error {
		_, err := s.GetClient(ctx, id)
		return err
	}
	for range 20 {
		if err := lookup(a, "ghost"); !errors.Is(err, fosite.ErrNotFound) {
			t.Fatalf("an unknown client: %v, want not found", err)
		}
	}
	if n := clientQueries(rec); n != 1 {
		t.Fatalf("20 lookups of an unknown ID made %d queries, want 1", n)
	}
	if err := lookup(a, strings.Repeat("g", client.MaxIDLen+1)); !errors.Is(err, fosite.ErrNotFound) || clientQueries(rec) != 1 {
		t.Fatalf("an ID longer than any client's: %v after %d queries, want not found without a query", err, clientQueries(rec))
	}

	// Node B creates the client: B finds it at once though it looked for
	// it before, and A as soon as the announcement arrives.
	if err := lookup(b, "ghost"); !errors.Is(err, fosite.ErrNotFound) {
		t.Fatal(err)
	}
	c := &client.Client{ID: "ghost", GrantTypes: []string{client.GrantClientCredentials}}
	c.Normalize()
	if err := b.CreateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if err := lookup(b, "ghost"); err != nil {
		t.Fatalf("the node that created the client does not find it: %v", err)
	}
	eventually(t, "node A to find the new client", func() bool { return lookup(a, "ghost") == nil })
}
