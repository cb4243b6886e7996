package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/storage/postgres"
)

// migrateCommand applies or reports migrations: latchkey migrate up|status.
func migrateCommand(e env) *cobra.Command {
	return groupCommand("migrate", "Apply or inspect database migrations",
		`Apply or inspect the database migrations. Migrations are safe to run from
several nodes at once: one applies them, the others wait and find nothing
to do.`,
		migrateSubcommand(e, "up", "Apply pending migrations, then print the schema version",
			func(ctx context.Context, store *postgres.Store) error { return store.Migrate(ctx) }),
		migrateSubcommand(e, "status", "Print the schema version and the pending migrations", nil),
	)
}

// migrateSubcommand is latchkey migrate up or status: it runs before, if
// any, on the database, then prints the schema's status.
func migrateSubcommand(e env, use, short string, before func(context.Context, *postgres.Store) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:               use,
		Short:             short,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	settings := databaseFlags(cmd)
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		return withStore(e, settings, func(_ config.Config, store *postgres.Store) error {
			if before != nil {
				if err := before(ctx, store); err != nil {
					return err
				}
			}
			st, err := store.SchemaStatus(ctx)
			if err != nil {
				return err
			}
			if *output == outputJSON {
				return writeJSON(e.stdout, schemaJSON{Current: st.Current, Latest: st.Latest, Pending: append([]string{}, st.Pending...), UpToDate: st.UpToDate()})
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
	return cmd
}

// schemaJSON is the schema's status as migrate prints it with --output
// json.
type schemaJSON struct {
	// Current is the version applied to the database; 0 for an empty one.
	Current int32 `json:"current"`
	// Latest is the newest version this binary has.
	Latest int32 `json:"latest"`
	// Pending names the migrations not applied yet, in order.
	Pending  []string `json:"pending"`
	UpToDate bool     `json:"up_to_date"`
}
