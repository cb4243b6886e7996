package pgcluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/storage/pgcluster"
)

// scratch is a directory the postgres user can reach (t.TempDir's parent is
// private to whoever runs the tests), holding one initialised cluster that
// tests clone instead of each paying for initdb.
var scratch struct {
	once sync.Once
	root string
	err  error
}

func TestMain(m *testing.M) {
	if runOwnerHelper() {
		return
	}
	code := m.Run()
	if scratch.root != "" {
		os.RemoveAll(scratch.root)
	}
	os.Exit(code)
}

// newDir returns an empty directory the cluster's user can use.
func newDir(t testing.TB) string {
	t.Helper()
	root := scratchRoot(t)
	dir, err := os.MkdirTemp(root, "c")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// clonedDir returns a directory holding a fresh, stopped cluster.
func clonedDir(t testing.TB) string {
	t.Helper()
	dir := newDir(t)
	if err := pgcluster.Clone(filepath.Join(scratchRoot(t), "base"), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func scratchRoot(t testing.TB) string {
	t.Helper()
	scratch.once.Do(func() {
		root, err := os.MkdirTemp("", "latchkey-pgcluster-test-")
		if err != nil {
			scratch.err = err
			return
		}
		scratch.root = root
		if err := os.Chmod(root, 0o755); err != nil {
			scratch.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		scratch.err = pgcluster.Init(ctx, filepath.Join(root, "base"))
	})
	if scratch.err != nil {
		t.Fatal(scratch.err)
	}
	return scratch.root
}

// start starts a cluster in dir and stops it when the test ends.
func start(t testing.TB, dir string) *pgcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestStartInitialisesClusterThatServesQueriesUntilStop(t *testing.T) {
	t.Parallel()
	dir := newDir(t)
	began := time.Now()
	c := start(t, dir)
	t.Logf("initdb and start took %v", time.Since(began))
	if _, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION")); err != nil {
		t.Errorf("no cluster in Dir/data: %v", err)
	}
	if c.Dir() != dir {
		t.Errorf("Dir() = %q, want %q", c.Dir(), dir)
	}

	ctx := context.Background()
	conn := pgtest.Conn(t, c.URL("postgres"))
	var sum int
	var user string
	if err := conn.QueryRow(ctx, "SELECT 1 + 1, current_user").Scan(&sum, &user); err != nil {
		t.Fatal(err)
	}
	if sum != 2 || user != "postgres" {
		t.Errorf("got %d as %q, want 2 as postgres", sum, user)
	}
	var listen string
	if err := conn.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if listen != "" {
		t.Errorf("listen_addresses = %q, want no TCP listener", listen)
	}

	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if conn, err := pgx.Connect(ctx, c.URL("postgres")); err == nil {
		conn.Close(ctx)
		t.Error("connected after Stop")
	}
}

func TestStartReusesExistingClusterData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := clonedDir(t)

	first := start(t, dir)
	conn := pgtest.Conn(t, first.URL("postgres"))
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	second := start(t, dir)
	t.Logf("restart took %v", time.Since(began))
	var v string
	if err := pgtest.Conn(t, second.URL("postgres")).QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "still here" {
		t.Errorf("got %q", v)
	}
}

func TestStartQuotesServerLogWhenServerFails(t *testing.T) {
	t.Parallel()
	dir := clonedDir(t)
	start(t, dir)

	// A second server on the same data directory must fail on Postgres's lock.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	if err == nil {
		c.Stop(ctx)
		t.Fatal("second Start on a running cluster succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "postgres.log") || !strings.Contains(msg, "lock file") {
		t.Errorf("error does not quote the server log: %v", err)
	}
}

func TestStartPutsSocketInTempDirWhenDirIsTooDeep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(newDir(t), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pgcluster.Clone(filepath.Join(scratchRoot(t), "base"), dir); err != nil {
		t.Fatal(err)
	}

	c := start(t, dir)
	cfg, err := pgx.ParseConfig(c.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	sockDir := cfg.Host
	if strings.HasPrefix(sockDir, dir) || len(sockDir) > 80 {
		t.Errorf("socket directory %q is not a short one outside %s", sockDir, dir)
	}
	var one int
	if err := pgtest.Conn(t, c.URL("postgres")).QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sockDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket directory %s left behind: %v", sockDir, err)
	}
}

func TestStartRejectsDirPostgresUserCannotReach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to another user")
	}
	t.Parallel()
	private := t.TempDir() // mode 0700, owned by root
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: filepath.Join(private, "pg")})
	want := fmt.Sprintf("%s is not readable by the postgres user", private)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Start error = %v, want one saying %q", err, want)
	}
}

func TestCloneRefusesRunningCluster(t *testing.T) {
	t.Parallel()
	dir := clonedDir(t)
	start(t, dir)
	if err := pgcluster.Clone(dir, newDir(t)); err == nil || !strings.Contains(err.Error(), "running") {
		t.Errorf("Clone of a running cluster: %v, want an error saying it runs", err)
	}
}

func TestURLEscapesSocketPathAndDatabaseForPgx(t *testing.T) {
	t.Parallel()
	// The socket path holds characters a URL query must escape.
	dir := filepath.Join(newDir(t), "with space&amp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := pgcluster.Clone(filepath.Join(scratchRoot(t), "base"), dir); err != nil {
		t.Fatal(err)
	}
	c := start(t, dir)
	cfg, err := pgx.ParseConfig(c.URL("some db"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != filepath.Join(dir, "run") || cfg.Database != "some db" || cfg.User != "postgres" || cfg.Port != 5432 {
		t.Errorf("ParseConfig(%q) = host %q db %q user %q port %d", c.URL("some db"), cfg.Host, cfg.Database, cfg.User, cfg.Port)
	}
	var one int
	if err := pgtest.Conn(t, c.URL("postgres")).QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}
