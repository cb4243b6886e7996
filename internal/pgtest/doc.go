// Package pgtest gives each test its own throwaway PostgreSQL database, so
// tests run against the real thing, in parallel, without seeing each other's
// rows.
//
// A test binary starts at most one private cluster (storage/pgcluster), on
// first use, and Main stops it. Migrations run once, into a template
// database; every URL call copies the template with CREATE DATABASE ...
// TEMPLATE, which takes milliseconds, and drops the copy when its test ends.
//
// Setting LATCHKEY_TEST_DATABASE_URL to an existing server's URL (its user
// needs CREATEDB) makes pgtest use that server instead, for machines without
// server binaries. The template there gets a unique name, so several test
// binaries can share the server, and Main drops it again. A test binary that
// is killed leaves its databases behind on such a server; the private
// cluster, by contrast, goes away with its owner.
package pgtest
