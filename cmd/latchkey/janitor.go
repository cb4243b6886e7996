package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/storage/postgres"
)

// janitor deletes expired token rows, so that the tables stay the size of
// what is live, and audit events past their retention.
type janitor struct {
	store *postgres.Store
	batch int
	// auditRetention is how long audit events are kept; 0 keeps them.
	auditRetention time.Duration
	logger         *slog.Logger
}

// newJanitor is the janitor cfg asks for.
func newJanitor(store *postgres.Store, cfg config.Config, logger *slog.Logger) *janitor {
	return &janitor{store: store, batch: int(cfg.JanitorBatchSize), auditRetention: cfg.AuditRetention, logger: logger}
}

// sweep runs one pass and logs what it deleted.
func (j *janitor) sweep(ctx context.Context) (map[string]int64, error) {
	deleted, err := j.store.Sweep(ctx, time.Now(), j.batch, j.auditRetention)
	var total int64
	for _, n := range deleted {
		total += n
	}
	if total > 0 {
		j.logger.Info("janitor deleted expired rows", "rows", total)
	}
	return deleted, err
}

// run sweeps every interval until ctx ends. A failed pass is logged and
// retried at the next tick.
func (j *janitor) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := j.sweep(ctx); err != nil && ctx.Err() == nil {
				j.logger.Error("janitor pass failed; retrying at the next interval", "err", err)
			}
		}
	}
}

// janitorCommand runs one janitor pass: latchkey janitor.
func janitorCommand(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "janitor",
		Short: "Delete expired tokens, and audit events past their retention, once",
		Long: `Delete expired tokens, codes, assertion IDs and sessions, and audit events
older than LATCHKEY_AUDIT_RETENTION, once, and print how many rows went from
each table. serve does the same every LATCHKEY_JANITOR_INTERVAL; run this
from cron where that is 0.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	settings := databaseFlags(cmd, "LATCHKEY_JANITOR_BATCH_SIZE", "LATCHKEY_AUDIT_RETENTION")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return withStore(e, settings, func(cfg config.Config, store *postgres.Store) error {
			j := newJanitor(store, cfg, newLogger(e.stderr, cfg))
			deleted, err := j.sweep(cmd.Context())
			if err != nil {
				return err
			}
			for _, table := range slices.Sorted(maps.Keys(deleted)) {
				fmt.Fprintf(e.stdout, "%s\t%d\n", table, deleted[table])
			}
			if j.auditRetention == 0 {
				fmt.Fprintf(e.stdout, "audit_events\tkept (LATCHKEY_AUDIT_RETENTION is 0)\n")
			}
			return nil
		})
	}
	return cmd
}
