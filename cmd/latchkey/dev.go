package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/storage/pgcluster"
)

// devDatabase is the database latchkey dev creates in its own cluster.
const devDatabase = "latchkey"

// devCommand runs a complete node for development: a throwaway Postgres
// under ./.latchkey (kept across restarts), a generated secret kept beside
// it, migrations applied, public side on http://localhost:8080 and admin side
// on 127.0.0.1:8081. Any setting given explicitly, the database URL included,
// is honoured instead of the throwaway one.
func devCommand(ctx context.Context, args []string, e env) (err error) {
	fset := flag.NewFlagSet("dev", flag.ContinueOnError)
	fset.SetOutput(e.stderr)
	dir := fset.String("dir", ".latchkey", "directory for the throwaway database and the development secret")
	reset := fset.Bool("reset", false, "wipe the directory first: a new database, new keys and a new secret")
	cfg, err := config.Parse(fset, args, e.lookupEnv)
	if err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return usageError("unexpected argument %q", fset.Arg(0))
	}
	if *dir, err = filepath.Abs(*dir); err != nil {
		return err
	}
	if *reset {
		if err := os.RemoveAll(*dir); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	// 0755: when run as root, the cluster runs as the postgres user, which
	// must be able to reach its directory inside this one.
	err = os.MkdirAll(*dir, 0o755) // #nosec G301 -- the postgres user must traverse it; the secret inside is 0600
	if err != nil {
		return err
	}

	explicit := explicitSettings(fset, e.lookupEnv)
	if !explicit["LATCHKEY_LOG_FORMAT"] {
		cfg.LogFormat = "text"
	}
	if !explicit["LATCHKEY_PUBLIC_ADDR"] {
		// Loopback only: a development node holds throwaway credentials.
		cfg.PublicAddr = "127.0.0.1:8080"
	}
	if len(cfg.Secrets) == 0 {
		if cfg.Secrets, err = devSecret(filepath.Join(*dir, "secret")); err != nil {
			return err
		}
	}
	logger := newLogger(e.stderr, cfg)
	tracer, logger, stopTracing, err := startTracing(ctx, logger)
	if err != nil {
		return err
	}
	defer stopTracing()

	if cfg.DatabaseURL == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(*dir, "postgres"), Durable: true})
		if err != nil {
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			err = errors.Join(err, cluster.Stop(stopCtx))
		}()
		if err := createDatabase(ctx, cluster.URL("postgres"), devDatabase); err != nil {
			return err
		}
		cfg.DatabaseURL = cluster.URL(devDatabase)
	}

	public, admin, err := listen(cfg)
	if err != nil {
		return err
	}
	if cfg.Issuer == "" {
		cfg.Issuer = fmt.Sprintf("http://localhost:%d", public.Addr().(*net.TCPAddr).Port)
	}
	if err := cfg.Validate(config.NeedDatabase | config.NeedIssuer | config.NeedSecrets); err != nil {
		_ = public.Close()
		_ = admin.Close()
		return err
	}

	store, err := openStore(cfg, tracer)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := prepareSchema(ctx, store, true, logger); err != nil {
		return err
	}

	seedCtx, auditLog := operatorAudit(ctx, store)
	password, err := seedDemo(seedCtx, identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{}),
		client.NewManager(store, auditLog, cfg.ClientSecretGracePeriod), cfg.Issuer, *dir)
	if err != nil {
		return err
	}

	fmt.Fprintf(e.stdout, `Latchkey development server
  issuer:    %s
  discovery: %s/.well-known/openid-configuration
  admin API: http://%s/admin (get a client with: latchkey clients create --admin)
  database:  %s
  try it:    %s%s (sign in as %s, password %s)
Press Ctrl-C to stop.
`, cfg.Issuer, cfg.Issuer, admin.Addr(), cfg.DatabaseURL, cfg.Issuer, demoPath, demoEmail, password)
	demo := newDevDemo(cfg.Issuer)
	return serveNode(ctx, cfg, store, logger, tracer, public, admin, func(a *app) { demo.Register(a.public) })
}

// explicitSettings reports, by environment variable name, which settings
// were given on the command line or in the environment, so that dev changes
// only the defaults.
func explicitSettings(fset *flag.FlagSet, lookupEnv func(string) (string, bool)) map[string]bool {
	flags := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { flags[f.Name] = true })
	set := map[string]bool{}
	for _, s := range config.Settings() {
		// As in config.Parse, an empty variable counts as unset.
		v, _ := lookupEnv(s.Env)
		set[s.Env] = v != "" || (s.Flag != "" && flags[s.Flag])
	}
	return set
}

// devSecret reads the development secret at path, creating it on first use,
// so that keys sealed under it stay readable across restarts.
func devSecret(path string) ([][]byte, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- latchkey dev's own secret under ./.latchkey
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		_, _ = rand.Read(raw)
		b = []byte(base64.RawURLEncoding.EncodeToString(raw))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, fmt.Errorf("write development secret: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read development secret: %w", err)
	}
	return [][]byte{[]byte(strings.TrimSpace(string(b)))}, nil
}

// createDatabase creates name unless it exists.
func createDatabase(ctx context.Context, serverURL, name string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("connect to the development cluster: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
