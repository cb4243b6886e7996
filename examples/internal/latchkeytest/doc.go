// Package latchkeytest runs a live Latchkey for the examples' tests, the
// way an operator runs one, so that each example is tested against the
// real thing over real HTTP.
//
// Start builds the latchkey binary (once per test binary) and runs
// `latchkey serve --migrate` as a process of its own, on free loopback
// ports and a throwaway database from internal/pgtest; the test's package
// must therefore call pgtest.Main from TestMain. Clients and users are
// registered with the latchkey CLI (`latchkey clients create`, `latchkey
// users create`), as docs/clients.md and docs/users.md tell operators to.
//
// NotesAPI serves the resource server example's demo API (package
// examples/resourceserver/notes) in the test's process, for the examples
// that call it. Agent is a user without a screen: it signs in through
// Latchkey's pages over plain HTTP, for tests that need a user's token but
// not a browser. TOTP is their authenticator app.
//
// Every process is stopped when its test ends; when the test failed, what
// it printed is logged.
package latchkeytest
