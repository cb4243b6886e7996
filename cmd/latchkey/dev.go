package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/events"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/pgcluster"
)

// devDatabase is the database latchkey dev creates in its own cluster.
const devDatabase = "latchkey"

// devCommand runs a complete node for development, on a database and a
// secret of its own unless given others: latchkey dev [--reset] [flags].
func devCommand(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a development node on a throwaway Postgres under ./.latchkey",
		Long: `Run a complete node for development: a throwaway Postgres under --dir,
kept across restarts, a generated secret kept beside it (LATCHKEY_SECRETS
if set), migrations applied, a demo user and client, personal API keys for the
profile and email scopes, a webhook receiver of its own that shows every
event at /dev/webhooks, the public side on http://localhost:8080 and the
admin API on 127.0.0.1:8081.

Any setting given explicitly, by flag or environment variable, is honoured:
--database-url uses that database instead of the throwaway one. Unless
--issuer is given, the issuer is http://localhost and the public port.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	dir := cmd.Flags().String("dir", ".latchkey", "directory for the throwaway database and the development secret")
	reset := cmd.Flags().Bool("reset", false, "wipe the directory first: a new database, new keys and a new secret")
	// dev's own defaults, shown in its -h. A development node listens on
	// loopback only, since it holds throwaway credentials, and logs as
	// text, for a person at a terminal.
	settings := config.Bind(cmd.Flags(), config.ServerSettings(), map[string]string{
		"LATCHKEY_PUBLIC_ADDR": "127.0.0.1:8080",
		"LATCHKEY_LOG_FORMAT":  "text",
		// Unless given, the issuer follows the public listener's port,
		// which may be 0 for any free one; this is it on the default.
		"LATCHKEY_ISSUER": "http://localhost:8080",
		// So that the account page's personal API keys can be tried: a
		// key for reading the demo user's profile.
		"LATCHKEY_PERSONAL_API_KEY_SCOPES": "profile email",
		// So that the device grant and client registration can be tried:
		// the demo device at /dev/demo/device, and apps (MCP clients,
		// CLI tools) on loopback registering themselves.
		"LATCHKEY_DEVICE_FLOW":  "true",
		"LATCHKEY_REGISTRATION": "open",
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := settings.Load(e.lookupEnv)
		if err != nil {
			return err
		}
		deriveIssuer := !settings.Given("LATCHKEY_ISSUER") || cfg.Issuer == ""
		return dev(cmd.Context(), e, cfg, deriveIssuer, *dir, *reset)
	}
	return cmd
}

// dev runs a development node with cfg, its files under dir, wiped first if
// reset is set. With deriveIssuer, the issuer is localhost on whatever port
// the public listener got.
func dev(ctx context.Context, e env, cfg config.Config, deriveIssuer bool, dir string, reset bool) (err error) {
	if dir, err = filepath.Abs(dir); err != nil {
		return err
	}
	if reset {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("reset: %w", err)
		}
	}
	// 0755: when run as root, the cluster runs as the postgres user, which
	// must be able to reach its directory inside this one.
	err = os.MkdirAll(dir, 0o755) // #nosec G301 -- the postgres user must traverse it; the secret inside is 0600
	if err != nil {
		return err
	}
	if len(cfg.Secrets) == 0 {
		if cfg.Secrets, err = devSecret(filepath.Join(dir, "secret")); err != nil {
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
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "postgres"), Durable: true})
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
	if deriveIssuer {
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

	seedCtx, auditLog := operatorAudit(ctx, store, cfg)
	password, err := seedDemo(seedCtx, identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{}),
		client.NewManager(store, auditLog, cfg.ClientSecretGracePeriod), cfg.Issuer,
		"http://"+admin.Addr().String()+devLogoutPath, dir)
	if err != nil {
		return err
	}

	box, err := seal.New(cfg.Secrets)
	if err != nil {
		return err
	}
	// Every event goes to dev's own receiver too, for /dev/webhooks.
	hooks := &devWebhooks{issuer: cfg.Issuer}
	if err := hooks.subscribe(seedCtx, events.NewManager(store, box, auditLog), "http://"+admin.Addr().String()); err != nil {
		return fmt.Errorf("subscribe the development webhook receiver: %w", err)
	}

	fmt.Fprintf(e.stdout, `Latchkey development server
  issuer:    %s
  discovery: %s/.well-known/openid-configuration
  admin API: http://%s/admin (get a client with: latchkey clients create --admin)
  database:  %s
  try it:    %s%s (sign in as %s, password %s)
  device:    %s%s (a TV that signs in with the device grant)
  mail:      %s%s (each link is printed here too)
%sPress Ctrl-C to stop.
`, cfg.Issuer, cfg.Issuer, admin.Addr(), cfg.DatabaseURL, cfg.Issuer, demoPath, demoEmail, password, cfg.Issuer, demoDevicePath,
		cfg.Issuer, devMailPath, devWebhooksLine(cfg.Issuer))
	demo := newDevDemo(cfg.Issuer)
	return serveNode(ctx, cfg, store, logger, tracer, public, admin, func(a *app) {
		demo.Register(a.public)
		newDevDevice(demo).Register(a.public)
		// Without a mail server, mail is printed and kept for /dev/mail.
		if a.sender.Transport == nil {
			a.sender.Transport = mail.NewConsole(e.stdout)
			a.sender.KeepSent = true
		}
		(&devMail{store: store, box: box}).Register(a.public)
		hooks.Register(a.public, a.admin)
	})
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
