package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey/latchkey/storage/pgcluster"
	"github.com/latchkey/latchkey/storage/postgres"
)

// EnvURL names the environment variable that points pgtest at an existing
// server instead of a private cluster.
const EnvURL = "LATCHKEY_TEST_DATABASE_URL"

// setupTimeout bounds starting the cluster and migrating the template.
const setupTimeout = time.Minute

// mainRan records that TestMain went through Main, so that what pgtest
// starts is also stopped and removed.
var mainRan atomic.Bool

// server is where the test databases live: the shared private cluster or
// the server named by EnvURL.
type server struct {
	// admin is connected to a database that tests never drop, to create
	// and drop theirs.
	admin *pgxpool.Pool
	// template is the migrated database each URL copies.
	template string
	// url returns the URL of a database on this server.
	url func(database string) string
	// cluster is the private cluster, or nil for an external server.
	cluster *pgcluster.Cluster
}

// state is the test binary's shared server. It is set up lazily, so
// packages that never ask for a database pay nothing.
var state struct {
	mu sync.Mutex
	// tried, srv and err cache the outcome of the first setup.
	tried bool
	srv   *server
	err   error
}

// files is where the test binary's clusters live.
var files struct {
	mu sync.Mutex
	// root is the temporary directory holding every cluster's files.
	root string
	// baseReady says root/base holds an initialised cluster to clone.
	baseReady bool
}

// Main runs the package's tests and then stops the cluster it started, if
// any, and removes its files, also when tests failed. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// after run once the tests are done, before the cluster stops, for other
// things the test binary shares, such as a browser.
func Main(m *testing.M, after ...func()) {
	mainRan.Store(true)
	code := m.Run()
	for _, f := range after {
		f()
	}
	if err := teardown(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// URL returns the URL of a fresh database with every migration applied,
// dropped when the test ends. It is safe to call from parallel tests.
func URL(t testing.TB) string {
	t.Helper()
	srv := sharedServer(t)
	return createDatabase(t, srv, srv.template)
}

// Store returns a store on a fresh database with every migration applied
// (see URL), closed before the database is dropped when the test ends.
func Store(t testing.TB) *postgres.Store {
	t.Helper()
	return Open(t, URL(t))
}

// Open returns a store on the database at url, one that URL returned,
// closed when the test ends: for tests of several nodes, each with a pool
// of its own on one database. Tests of the domain packages (pkg/...) get
// their stores here, so that they, like the packages, never import
// storage/postgres.
func Open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	return OpenWithin(t, url, 0)
}

// OpenWithin is Open with timeout as the store's deadline for every call
// (postgres.Options.Timeout; 0 is the default): for tests of an outage,
// which must not wait long for a database that is gone.
func OpenWithin(t testing.TB, url string, timeout time.Duration) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(url, postgres.Options{Timeout: timeout})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Conn returns a plain connection to the database at url, for a test that
// reads or changes rows behind the store's back. It is closed when the
// test ends.
func Conn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// EmptyURL returns the URL of a fresh database with no schema at all, for
// tests of the migrations themselves. It is dropped when the test ends.
func EmptyURL(t testing.TB) string {
	t.Helper()
	// template0 is the one database guaranteed to be pristine; template1,
	// the default, may have been changed on an external server.
	return createDatabase(t, sharedServer(t), "template0")
}

// NewCluster starts a private cluster of the test's own, for tests that stop
// and restart their database (outage tests). It holds only the default
// postgres database; callers create what they need. The cluster is stopped
// and its files removed when the test ends. It needs local server binaries
// even when LATCHKEY_TEST_DATABASE_URL is set.
func NewCluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	checkMain(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	c, err := newCluster(ctx, "cluster-")
	if err != nil {
		fatal(t, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("pgtest: %v", err)
		}
		if err := os.RemoveAll(c.Dir()); err != nil {
			t.Errorf("pgtest: remove cluster: %v", err)
		}
	})
	return c
}

func checkMain(t testing.TB) {
	t.Helper()
	if !mainRan.Load() {
		t.Fatal("pgtest: the package's TestMain must call pgtest.Main, so that the databases it starts are stopped: func TestMain(m *testing.M) { pgtest.Main(m) }")
	}
}

func fatal(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		t.Fatalf("pgtest: %v; or, for tests, point %s at an existing server", err, EnvURL)
	}
	t.Fatalf("pgtest: %v", err)
}

// createDatabase creates a uniquely named copy of template and drops it when
// the test ends. The name is ours, never the test's, so it is always a safe
// identifier.
func createDatabase(t testing.TB, srv *server, template string) string {
	t.Helper()
	name := "t_" + randomHex()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := srv.admin.Exec(ctx, "CREATE DATABASE "+quote(name)+" TEMPLATE "+quote(template)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends connections the test left open, such as a pool it
		// never closed.
		if _, err := srv.admin.Exec(ctx, "DROP DATABASE "+quote(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return srv.url(name)
}

// sharedServer returns the test binary's server, setting it up on first use.
// A failed setup fails every test that asks, with the same error.
func sharedServer(t testing.TB) *server {
	t.Helper()
	checkMain(t)
	state.mu.Lock()
	defer state.mu.Unlock()
	if !state.tried {
		state.tried = true
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		state.srv, state.err = setup(ctx)
	}
	if state.err != nil {
		fatal(t, state.err)
	}
	return state.srv
}

func setup(ctx context.Context) (*server, error) {
	if raw := os.Getenv(EnvURL); raw != "" {
		return setupExternal(ctx, raw)
	}
	return setupCluster(ctx)
}

// setupCluster starts the shared private cluster and migrates its template.
func setupCluster(ctx context.Context) (*server, error) {
	c, err := newCluster(ctx, "shared-")
	if err != nil {
		return nil, err
	}
	srv := &server{template: "latchkey_template", url: c.URL, cluster: c}
	if err := srv.prepare(ctx, c.URL("postgres")); err != nil {
		_ = c.Stop(context.Background())
		return nil, err
	}
	return srv, nil
}

// setupExternal uses the server at connString, with a template of its own.
func setupExternal(ctx context.Context, connString string) (*server, error) {
	url, err := databaseURLs(connString)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	srv := &server{template: "latchkey_template_" + randomHex(), url: url}
	if err := srv.prepare(ctx, connString); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	return srv, nil
}

// prepare connects the admin pool to adminURL and creates and migrates the
// template database.
func (srv *server) prepare(ctx context.Context, adminURL string) error {
	admin, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	srv.admin = admin
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+quote(srv.template)+" TEMPLATE template0"); err != nil {
		admin.Close()
		return fmt.Errorf("create template database: %w", err)
	}
	if err := migrate(ctx, srv.url(srv.template)); err != nil {
		_ = srv.dropTemplate(ctx)
		admin.Close()
		return err
	}
	return nil
}

// migrate applies the migrations to the database at url. It closes its
// connection before returning: Postgres refuses to copy a database that
// anyone is connected to.
func migrate(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connect to template database: %w", err)
	}
	defer conn.Close(context.Background())
	return postgres.Migrate(ctx, conn)
}

func (srv *server) dropTemplate(ctx context.Context) error {
	if _, err := srv.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+quote(srv.template)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop template database: %w", err)
	}
	return nil
}

// newCluster starts a private cluster in a new directory under the root,
// cloned from the base cluster so that initdb runs once per test binary.
func newCluster(ctx context.Context, prefix string) (*pgcluster.Cluster, error) {
	base, dir, err := newClusterDir(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if err := pgcluster.Clone(base, dir); err != nil {
		return nil, err
	}
	return pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
}

// newClusterDir returns the base cluster's directory, creating the cluster
// on first use, and a new empty directory next to it.
func newClusterDir(ctx context.Context, prefix string) (base, dir string, err error) {
	if _, err := pgcluster.FindBinDir(); err != nil {
		return "", "", err
	}
	files.mu.Lock()
	defer files.mu.Unlock()
	if files.root == "" {
		root, err := os.MkdirTemp("", "latchkey-pgtest-")
		if err != nil {
			return "", "", err
		}
		files.root = root
		// MkdirTemp makes the directory private, but when we are root the
		// server runs as the postgres user, which must get through it.
		err = os.Chmod(root, 0o755) // #nosec G302 -- a directory the postgres user must traverse; it holds no secret
		if err != nil {
			return "", "", err
		}
	}
	base = filepath.Join(files.root, "base")
	if !files.baseReady {
		if err := pgcluster.Init(ctx, base); err != nil {
			return "", "", err
		}
		files.baseReady = true
	}
	dir, err = os.MkdirTemp(files.root, prefix)
	if err != nil {
		return "", "", err
	}
	return base, dir, nil
}

// teardown undoes what the tests set up: it drops an external server's
// template, stops the shared cluster and removes every cluster's files.
func teardown() error {
	state.mu.Lock()
	defer state.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	if srv := state.srv; srv != nil {
		if srv.cluster == nil {
			errs = append(errs, srv.dropTemplate(ctx))
		}
		srv.admin.Close()
		if srv.cluster != nil {
			errs = append(errs, srv.cluster.Stop(ctx))
		}
	}
	files.mu.Lock()
	defer files.mu.Unlock()
	if files.root != "" {
		if err := os.RemoveAll(files.root); err != nil {
			errs = append(errs, fmt.Errorf("pgtest: %w", err))
		}
	}
	return errors.Join(errs...)
}

// databaseURLs returns a function that gives connString with its database
// replaced and everything else (hosts, user, password, options) kept. It
// accepts both forms pgx does: a postgres:// URI, which it takes apart the
// way libpq parses one, and key=value pairs, where a later dbname wins.
func databaseURLs(connString string) (func(database string) string, error) {
	if _, err := pgx.ParseConfig(connString); err != nil {
		return nil, err
	}
	scheme := "postgresql://"
	rest, ok := strings.CutPrefix(connString, scheme)
	if !ok {
		scheme = "postgres://"
		rest, ok = strings.CutPrefix(connString, scheme)
	}
	if !ok {
		esc := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
		return func(database string) string {
			return connString + " dbname='" + esc.Replace(database) + "'"
		}, nil
	}
	// libpq's grammar: the authority runs to the first "/" or "?", the
	// database from that "/" to "?", then the query.
	authority, query := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authority, query = rest[:i], rest[i:]
	}
	if strings.HasPrefix(query, "/") {
		query = query[strings.IndexByte(query+"?", '?'):]
	}
	// A dbname parameter would override the path.
	if q, ok := strings.CutPrefix(query, "?"); ok {
		var kept []string
		for _, kv := range strings.Split(q, "&") {
			if k, _, _ := strings.Cut(kv, "="); k != "dbname" {
				kept = append(kept, kv)
			}
		}
		query = ""
		if len(kept) > 0 {
			query = "?" + strings.Join(kept, "&")
		}
	}
	return func(database string) string {
		return scheme + authority + "/" + uriEscape(database) + query
	}, nil
}

// uriEscape percent-encodes s the only way libpq decodes: %XX.
func uriEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			ch == '-', ch == '.', ch == '_', ch == '~':
			b.WriteByte(ch)
		default:
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

func quote(ident string) string { return pgx.Identifier{ident}.Sanitize() }

// randomHex returns 16 random hex digits, for names no two test binaries
// share.
func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
