package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/storage/pgcluster"
	"github.com/latchkey/latchkey/storage/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestParallelTestsGetSeparateDatabases(t *testing.T) {
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			began := time.Now()
			url := pgtest.URL(t)
			t.Logf("database created in %v", time.Since(began))
			conn := pgtest.Conn(t, url)
			// In a shared database the second CREATE TABLE would fail, or
			// the count would see another test's row.
			if _, err := conn.Exec(ctx, "CREATE TABLE mine (test int)"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "INSERT INTO mine VALUES ($1)", i); err != nil {
				t.Fatal(err)
			}
			var n, got int
			if err := conn.QueryRow(ctx, "SELECT count(*), min(test) FROM mine").Scan(&n, &got); err != nil {
				t.Fatal(err)
			}
			if n != 1 || got != i {
				t.Errorf("table holds %d rows, first %d; want only this test's %d", n, got, i)
			}
		})
	}
}

func TestTableInOneDatabaseIsInvisibleInAnother(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := pgtest.Conn(t, pgtest.URL(t)), pgtest.Conn(t, pgtest.URL(t))
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var exists bool
	if err := b.QueryRow(ctx, "SELECT to_regclass('only_in_a') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Error("table created in one test database is visible in another")
	}
}

func TestURLDatabaseHasEveryMigrationApplied(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.URL(t))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('signing_keys') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		t.Error("signing_keys table missing")
	}
	status, err := postgres.Status(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if !status.UpToDate() {
		t.Errorf("schema not up to date: %+v", status)
	}
}

func TestStoreServesMigratedDatabase(t *testing.T) {
	t.Parallel()
	if err := pgtest.Store(t).Ping(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestEmptyURLDatabaseHasNoTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pgtest.Conn(t, pgtest.EmptyURL(t))
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("empty database has %d tables", tables)
	}
	if err := postgres.Migrate(ctx, conn); err != nil {
		t.Errorf("migrating the empty database: %v", err)
	}
}

func TestDatabaseIsDroppedWhenTestEnds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var name string
	t.Run("user", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.Database
		// A connection left open must not keep the database alive.
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn
	})
	// t.Run returns after the subtest's cleanups have run.
	var n int
	if err := pgtest.Conn(t, pgtest.URL(t)).QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if name == "" || n != 0 {
		t.Errorf("database %q still exists after its test ended", name)
	}
}

func TestNewClusterSurvivesStopAndRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	began := time.Now()
	c := pgtest.NewCluster(t)
	t.Logf("cluster started in %v", time.Since(began))

	conn := pgtest.Conn(t, c.URL("postgres"))
	if _, err := conn.Exec(ctx, "CREATE DATABASE latchkey"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("connection still works after Stop")
	}

	again, err := pgcluster.Start(ctx, pgcluster.Options{Dir: c.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Stop(context.Background()) })
	var one int
	if err := pgtest.Conn(t, again.URL("latchkey")).QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Errorf("database created before the restart: %v", err)
	}
}

// TestExternalServerIsLeftAsFound runs this package's database tests in a
// child process pointed at a server through LATCHKEY_TEST_DATABASE_URL, and
// checks that they pass and leave no database behind.
func TestExternalServerIsLeftAsFound(t *testing.T) {
	if os.Getenv(pgtest.EnvURL) != "" {
		t.Skip("already running against an external server")
	}
	t.Parallel()
	ctx := context.Background()
	external := pgtest.NewCluster(t)

	cmd := exec.Command(os.Args[0], "-test.run=^(TestParallelTestsGetSeparateDatabases|TestURLDatabaseHasEveryMigrationApplied|TestEmptyURLDatabaseHasNoTables|TestDatabaseIsDroppedWhenTestEnds)$")
	// Any URL form pgx accepts; this one also carries an option that must
	// survive the database being swapped.
	cmd.Env = append(os.Environ(), pgtest.EnvURL+"="+external.URL("postgres")+"&application_name=pgtest")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tests against the external server failed: %v\n%s", err, out)
	}

	rows, err := pgtest.Conn(t, external.URL("postgres")).Query(ctx, "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')")
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("databases left on the external server: %v", left)
	}
}
