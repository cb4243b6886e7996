package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/latchkey/latchkey/migrations"
)

// versionTable records which migrations have been applied.
const versionTable = "public.schema_version"

// Migrate brings the schema up to the newest embedded migration. Each migration
// runs in its own transaction, and tern holds a Postgres advisory lock for the
// whole run, so replicas that start together apply every migration once and
// all succeed. Running it on an up-to-date database changes nothing.
func Migrate(ctx context.Context, conn *pgx.Conn) error {
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return err
	}
	if err := m.Migrate(ctx); err != nil {
		return errorf("postgres: migrate: %w", err)
	}
	return nil
}

// SchemaStatus says how far a database's schema is from this binary's.
type SchemaStatus struct {
	// Current is the version applied to the database; 0 for an empty one.
	Current int32
	// Latest is the newest version embedded in this binary.
	Latest int32
	// Pending names the migrations not yet applied, in order.
	Pending []string
}

// UpToDate reports whether every embedded migration has been applied.
func (s SchemaStatus) UpToDate() bool { return s.Current >= s.Latest }

// Status reports the schema version of the database behind conn. It only
// reads: a database that was never migrated reports version 0.
func Status(ctx context.Context, conn *pgx.Conn) (SchemaStatus, error) {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists); err != nil {
		return SchemaStatus{}, errorf("postgres: read schema version: %w", err)
	}
	// A nil conn makes tern load the files without creating its table.
	m, err := newMigrator(ctx, nil)
	if err != nil {
		return SchemaStatus{}, err
	}
	var current int32
	if exists {
		if err := conn.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&current); err != nil {
			return SchemaStatus{}, errorf("postgres: read schema version: %w", err)
		}
	}
	s := SchemaStatus{Current: current, Latest: int32(len(m.Migrations))} // #nosec G115 -- a few dozen embedded files
	for _, mig := range m.Migrations {
		if mig.Sequence > current {
			s.Pending = append(s.Pending, mig.Name)
		}
	}
	return s, nil
}

func newMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return nil, errorf("postgres: prepare migrations: %w", err)
	}
	if err := m.LoadMigrations(migrations.FS); err != nil {
		return nil, errorf("postgres: load migrations: %w", err)
	}
	return m, nil
}
