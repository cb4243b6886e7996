// Package postgres is Latchkey's only store: every piece of state lives in
// PostgreSQL, so server nodes stay stateless and several can share one
// database.
//
// Every call runs under a deadline (the configured database timeout), so a
// slow or unreachable database turns into an error rather than a hung request.
package postgres
