// Package migrations holds Latchkey's database schema as numbered SQL files,
// embedded so that the binary carries the schema it was built for.
//
// Files are named NNN_description.sql and applied in order by
// storage/postgres.Migrate. A file is never edited once released: change the
// schema by adding the next number.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS
