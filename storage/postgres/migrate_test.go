package postgres_test

import (
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/migrations"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/postgres"
)

// schema describes a database's tables, columns and indexes, so that two
// states can be compared.
func schema(t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(t.Context(), `
		SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable
		  FROM information_schema.columns WHERE table_schema = 'public'
		UNION ALL
		SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'
		UNION ALL
		SELECT 'version ' || version FROM public.schema_version`)
	if err != nil {
		t.Fatal(err)
	}
	s, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(s)
	return s
}

func TestMigrationsApplyToEmptyDatabase(t *testing.T) {
	t.Parallel()
	conn := pgtest.Conn(t, pgtest.EmptyURL(t))

	before, err := postgres.Status(t.Context(), conn)
	if err != nil {
		t.Fatal(err)
	}
	if before.Current != 0 || before.UpToDate() || len(before.Pending) != int(before.Latest) {
		t.Fatalf("status of an empty database = %+v, want version 0 with every migration pending", before)
	}
	var versionTable bool
	if err := conn.QueryRow(t.Context(), `SELECT to_regclass('public.schema_version') IS NOT NULL`).Scan(&versionTable); err != nil || versionTable {
		t.Fatalf("Status wrote to the database (version table exists = %v, err %v); it must only read", versionTable, err)
	}

	if err := postgres.Migrate(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	after, err := postgres.Status(t.Context(), conn)
	if err != nil {
		t.Fatal(err)
	}
	if !after.UpToDate() || len(after.Pending) != 0 || after.Current != after.Latest {
		t.Fatalf("status after Migrate = %+v, want up to date", after)
	}
	if _, err := conn.Exec(t.Context(), `SELECT kid FROM signing_keys`); err != nil {
		t.Fatalf("signing_keys is not usable after migrating: %v", err)
	}
}

func TestMigratingAgainChangesNothing(t *testing.T) {
	t.Parallel()
	conn := pgtest.Conn(t, pgtest.EmptyURL(t))
	if err := postgres.Migrate(t.Context(), conn); err != nil {
		t.Fatal(err)
	}
	first := schema(t, conn)
	if err := postgres.Migrate(t.Context(), conn); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if second := schema(t, conn); !slices.Equal(first, second) {
		t.Fatalf("second Migrate changed the schema:\nbefore %q\nafter  %q", first, second)
	}
}

func TestConcurrentMigrationsAllSucceed(t *testing.T) {
	t.Parallel()
	url := pgtest.EmptyURL(t)
	const nodes = 4
	conns := make([]*pgx.Conn, nodes)
	for i := range conns {
		conns[i] = pgtest.Conn(t, url)
	}
	start := make(chan struct{})
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			<-start
			errs[i] = postgres.Migrate(t.Context(), c)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Migrate failed while others ran it too: %v", i, err)
		}
	}
	st, err := postgres.Status(t.Context(), conns[0])
	if err != nil {
		t.Fatal(err)
	}
	if !st.UpToDate() {
		t.Fatalf("status after concurrent migrations = %+v, want up to date", st)
	}
}

func TestUpgradingToHashedSessionTokensKeepsBrowsersSignedIn(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.EmptyURL(t)
	m, err := migrate.NewMigrator(ctx, pgtest.Conn(t, url), "public.schema_version")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		t.Fatal(err)
	}
	var hardening int32
	for _, mig := range m.Migrations {
		if mig.Name == "008_hardening.sql" {
			hardening = mig.Sequence
		}
	}
	if err := m.MigrateTo(ctx, hardening-1); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	sessions := func(hashed bool) *scs.SessionManager {
		s := scs.New()
		s.Store = pgxstore.NewWithCleanupInterval(pool, 0)
		s.HashTokenInStore = hashed
		return s
	}

	// A browser signs in before the upgrade, when tokens were stored as
	// they are.
	before := sessions(false)
	sctx, err := before.Load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	before.Put(sctx, "user", "ada")
	token, _, err := before.Commit(sctx)
	if err != nil {
		t.Fatal(err)
	}

	if err := m.MigrateTo(ctx, hardening); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := pool.QueryRow(ctx, `SELECT token FROM sessions`).Scan(&stored); err != nil || stored == token {
		t.Fatalf("after the upgrade the table holds %q (err %v), want a digest of the token", stored, err)
	}
	after := sessions(true)
	sctx, err = after.Load(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.GetString(sctx, "user"); got != "ada" {
		t.Fatalf("after the upgrade the browser's cookie finds %q, want its session", got)
	}

	// Going back down cannot turn digests into tokens: the sessions go.
	if err := m.MigrateTo(ctx, hardening-1); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("after migrating down %d sessions are left (err %v), want none", left, err)
	}
}

func TestUpgradingToEdDSAKeysKeepsTheOthersAndAddsOne(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.EmptyURL(t)
	m, err := migrate.NewMigrator(ctx, pgtest.Conn(t, url), "public.schema_version")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		t.Fatal(err)
	}
	var eddsa int32
	for _, mig := range m.Migrations {
		if mig.Name == "024_eddsa_signing_keys.sql" {
			eddsa = mig.Sequence
		}
	}
	if err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store := pgtest.Open(t, url)
	box, err := seal.New([][]byte{[]byte("migrate-test-secret-migrate-test-secret")})
	if err != nil {
		t.Fatal(err)
	}
	newManager := func() *keys.Manager {
		return keys.NewManager(store, box, slog.New(slog.DiscardHandler), audit.New(store, slog.New(slog.DiscardHandler)))
	}
	if err := newManager().Init(ctx); err != nil {
		t.Fatal(err)
	}
	algs := func() map[string]string {
		stored, err := store.SigningKeys(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		byAlg := map[string]string{}
		for _, k := range stored {
			byAlg[k.Algorithm] = k.KID
		}
		return byAlg
	}
	before := algs()

	// Down: the schema before 024 cannot hold an EdDSA key, so it goes,
	// and the others stay.
	if err := m.MigrateTo(ctx, eddsa-1); err != nil {
		t.Fatal(err)
	}
	old := algs()
	if _, ok := old["EdDSA"]; ok || old["RS256"] != before["RS256"] || old["ES256"] != before["ES256"] {
		t.Fatalf("keys after migrating down: %v, want the RS256 and ES256 keys of %v only", old, before)
	}
	if err := newManager().Init(ctx); err == nil {
		t.Fatal("an EdDSA key was stored under the schema before 024")
	}

	// Up again, as an existing deployment upgrades: its first start adds
	// an EdDSA key and keeps the keys it had.
	if err := m.MigrateTo(ctx, eddsa); err != nil {
		t.Fatal(err)
	}
	if err := newManager().Init(ctx); err != nil {
		t.Fatal(err)
	}
	after := algs()
	if after["EdDSA"] == "" || after["EdDSA"] == before["EdDSA"] || after["RS256"] != before["RS256"] || after["ES256"] != before["ES256"] {
		t.Fatalf("keys after the upgrade: %v (before: %v), want the same RS256 and ES256 keys and a new EdDSA one", after, before)
	}
}
