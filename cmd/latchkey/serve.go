package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/storage/postgres"
)

// serveCommand runs a node: latchkey serve [--migrate] [flags].
func serveCommand(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a node",
		Long: `Run a node: the OAuth 2.0 and OpenID Connect endpoints and sign-in pages on
the public listener, and the admin API on the admin listener, until SIGINT
or SIGTERM, which stop it gracefully.

It refuses to start on a database schema older than this binary's unless
--migrate is given. It needs LATCHKEY_DATABASE_URL, LATCHKEY_ISSUER and
LATCHKEY_SECRETS, which only the environment can give; every setting is in
docs/configuration.md.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	migrate := cmd.Flags().Bool("migrate", false, "apply pending database migrations before serving")
	settings := config.Bind(cmd.Flags(), config.ServerSettings(), nil)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := settings.Load(e.lookupEnv)
		if err != nil {
			return err
		}
		return serve(cmd.Context(), e, cfg, *migrate)
	}
	return cmd
}

// serve runs a node with cfg until ctx ends, applying pending migrations
// first if migrate is set.
func serve(ctx context.Context, e env, cfg config.Config, migrate bool) error {
	if err := cfg.Validate(config.NeedDatabase | config.NeedIssuer | config.NeedSecrets); err != nil {
		return err
	}
	logger := newLogger(e.stderr, cfg)
	tracer, logger, stopTracing, err := startTracing(ctx, logger)
	if err != nil {
		return err
	}
	defer stopTracing()

	store, err := openStore(cfg, tracer)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := prepareSchema(ctx, store, migrate, logger); err != nil {
		return stoppedWhileStarting(ctx, logger, err)
	}
	public, admin, err := listen(cfg)
	if err != nil {
		return err
	}
	return serveNode(ctx, cfg, store, logger, tracer, public, admin)
}

// prepareSchema refuses to serve on a schema older than this binary's, since
// queries would fail at random later, unless asked to migrate.
func prepareSchema(ctx context.Context, store *postgres.Store, migrate bool, logger *slog.Logger) error {
	if migrate {
		return store.Migrate(ctx)
	}
	st, err := store.SchemaStatus(ctx)
	if err != nil {
		return err
	}
	switch {
	case st.Current < st.Latest:
		return fmt.Errorf("the database schema is at version %d but this binary needs %d: run `latchkey migrate up` first, or start with --migrate", st.Current, st.Latest)
	case st.Current > st.Latest:
		// A newer node has migrated during a rolling upgrade; migrations are
		// written to keep the previous release working.
		logger.Warn("the database schema is newer than this binary", "schema", st.Current, "binary", st.Latest)
	}
	return nil
}

// listen opens both listeners before anything is served, so that an address
// in use fails the start rather than half of the node.
func listen(cfg config.Config) (public, admin net.Listener, err error) {
	public, err = net.Listen("tcp", cfg.PublicAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("public listener: %w", err)
	}
	admin, err = net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		_ = public.Close()
		return nil, nil, fmt.Errorf("admin listener: %w", err)
	}
	return public, admin, nil
}

// serveNode wires a node on store and serves it on the given listeners until
// ctx ends. tracer traces its requests, or is nil when tracing is off.
// extend may add routes to the wired node before it serves.
func serveNode(ctx context.Context, cfg config.Config, store *postgres.Store, logger *slog.Logger, tracer trace.TracerProvider, public, admin net.Listener, extend ...func(*app)) error {
	a, err := wire(ctx, cfg, store, logger, tracer)
	if err != nil {
		_ = public.Close()
		_ = admin.Close()
		return stoppedWhileStarting(ctx, logger, err)
	}
	defer a.stop()
	for _, e := range extend {
		e(a)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.keys.Run(ctx, cfg.KeysReloadInterval)
	var mailQueued func()
	if a.sender.Transport != nil {
		go a.sender.Run(ctx)
		mailQueued = a.sender.Wake
	} else {
		logger.Warn("LATCHKEY_SMTP_URL is not set: mail (password resets, invitations, notifications) stays in the outbox, unsent, until it is")
	}
	go a.deliverer.Run(ctx)
	go a.logouts.Run(ctx)
	// The meter stops after the listeners, once no request can charge it,
	// and gives back the quota budget the node holds, for other nodes.
	meterDone := make(chan struct{})
	go func() { defer close(meterDone); a.meter.Run(ctx) }()
	defer func() { cancel(); <-meterDone }()
	// Rows written to either outbox of deliveries to apps are announced
	// on one channel.
	outboxQueued := func() { a.deliverer.Wake(); a.logouts.Wake() }
	go store.ListenForChanges(ctx, logger, a.keys.Changed, mailQueued, outboxQueued)
	if cfg.JanitorInterval > 0 {
		go a.janitor.run(ctx, cfg.JanitorInterval)
	}
	err = server.Serve(ctx, logger, cfg.ShutdownTimeout,
		server.Listener{Name: "public", Listener: public, Handler: a.public},
		server.Listener{Name: "admin", Listener: admin, Handler: a.admin},
	)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// stoppedWhileStarting is err, unless err is only the signal that stopped a
// node still starting up: that is a stop like any other, and a supervisor
// that sent SIGTERM should see exit code 0, not a failure.
func stoppedWhileStarting(ctx context.Context, logger *slog.Logger, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		logger.Info("stopped while starting")
		return nil
	}
	return err
}
