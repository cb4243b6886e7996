package main

import (
	"context"
	"log/slog"
	"os/user"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/events"
	"github.com/latchkey/latchkey/storage/postgres"
)

// databaseFlags gives cmd, a command that opens the database to do one
// piece of work, the database settings as flags, and more besides when it
// has a use for them; every other setting it reads from the environment.
func databaseFlags(cmd *cobra.Command, more ...string) *config.Flags {
	return config.Bind(cmd.Flags(), append(config.DatabaseSettings(), more...), nil)
}

// operatorAudit is the audit log of an operator command, and a context
// that names the operator: changes made from the CLI are recorded, like
// the admin API's, under "cli:" and the operating-system user. The CLI
// keeps its output to its own lines, so the events go to the database
// only, not to a log; from there the event outbox sends them to webhooks
// and the log stream, as it does the nodes' (cfg.EventLog).
func operatorAudit(ctx context.Context, store *postgres.Store, cfg config.Config) (context.Context, *audit.Log) {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return audit.WithActor(ctx, "cli:"+name), audit.New(store, slog.New(slog.DiscardHandler), eventOutbox(store, cfg))
}

// eventOutbox is the audit reactor that writes every event to the event
// outbox (pkg/events), for webhooks and, if cfg.EventLog says so, the log
// stream: the nodes' audit logs and the CLI's have it alike, so that no
// change goes unsent whoever makes it.
func eventOutbox(store *postgres.Store, cfg config.Config) *events.Outbox {
	return events.NewOutbox(store, cfg.EventLog != "" && cfg.EventLog != events.LogNone)
}

// withStore reads the settings given to a command, then runs f with them
// on the database they name, which the command needs, and closes it
// afterwards.
func withStore(e env, settings *config.Flags, f func(config.Config, *postgres.Store) error) error {
	cfg, err := settings.Load(e.lookupEnv)
	if err != nil {
		return err
	}
	if err := cfg.Validate(config.NeedDatabase); err != nil {
		return err
	}
	store, err := openStore(cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	return f(cfg, store)
}

// invocation is what an operator subcommand that acts on the database
// reads from its command line before it opens the database: the one
// thing it acts on, if it takes one, and which flags were given, which is
// what lets an update change only those fields.
type invocation struct {
	target string
	given  map[string]bool
}

// onDatabase completes cmd, an operator subcommand that acts on the
// database: it gives cmd the database settings, and the more it names, as
// flags, and when cmd runs, fills in inv, runs check (which rejects flags
// that parse but make no sense together) before the database is opened,
// and then run, with the configuration, the store and an audit log that
// names the operator.
func onDatabase(e env, cmd *cobra.Command, inv *invocation, check func() error,
	run func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error, more ...string) *cobra.Command {
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	settings := databaseFlags(cmd, more...)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 1 {
			inv.target = args[0]
		}
		inv.given = changedFlags(cmd.Flags())
		if err := check(); err != nil {
			return err
		}
		return withStore(e, settings, func(cfg config.Config, store *postgres.Store) error {
			ctx, auditLog := operatorAudit(cmd.Context(), store, cfg)
			return run(ctx, cfg, store, auditLog)
		})
	}
	return cmd
}
