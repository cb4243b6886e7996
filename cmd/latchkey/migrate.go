package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/storage/postgres"
)

// migrateCommand applies or reports migrations: latchkey migrate up|status.
func migrateCommand(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfg, err := config.Parse(fs, args, e.lookupEnv)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "up" && fs.Arg(0) != "status") {
		return usageError("latchkey migrate up|status")
	}
	return withStore(cfg, func(store *postgres.Store) error {
		if fs.Arg(0) == "up" {
			if err := store.Migrate(ctx); err != nil {
				return err
			}
		}
		st, err := store.SchemaStatus(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "schema version %d of %d", st.Current, st.Latest)
		if len(st.Pending) > 0 {
			fmt.Fprintf(e.stdout, "; pending: %s", strings.Join(st.Pending, ", "))
		} else {
			fmt.Fprint(e.stdout, "; up to date")
		}
		fmt.Fprintln(e.stdout)
		return nil
	})
}
