// Command latchkey is the Latchkey identity provider: its server, its
// development mode, and the operator commands that manage its database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `latchkey — an OAuth 2.0 and OpenID Connect identity provider

Usage:
  latchkey serve [--migrate] [flags]   run a node (configuration: docs/configuration.md)
  latchkey dev [--reset] [flags]       run on a throwaway Postgres under ./.latchkey
  latchkey migrate up|status           apply or inspect database migrations
  latchkey keys list|rotate|retire KID|reseal   manage signing keys and sealed secrets
  latchkey clients create|list|get|update|delete|rotate-secret   manage OAuth clients
  latchkey users create|list|get|update|disable|enable|unlock|delete|set-password|reset-mfa   manage users
  latchkey janitor                     delete expired tokens once
  latchkey bench [--concurrency N]     measure token issuance and introspection
  latchkey version                     print the version

Run "latchkey COMMAND -h" for a command's flags.
`

// env is what a command may touch outside its arguments, so that tests can
// run commands in-process.
type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
	// stdin is where a command reads what must never be in its arguments,
	// which every user of the machine can see in ps: passwords.
	stdin io.Reader
}

func main() {
	// The first SIGINT or SIGTERM cancels ctx for a graceful stop; stop()
	// is called on the way out so a second one kills the process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv, stdin: os.Stdin})
	stop()
	os.Exit(code)
}

// run dispatches to a command and turns its error into readable lines on
// stderr and a non-zero exit code.
func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	commands := map[string]func(context.Context, []string, env) error{
		"serve":   serveCommand,
		"dev":     devCommand,
		"migrate": migrateCommand,
		"keys":    keysCommand,
		"clients": clientsCommand,
		"users":   usersCommand,
		"janitor": janitorCommand,
		"bench":   benchCommand,
		"version": versionCommand,
		// healthcheck is for container healthchecks, so not in the usage.
		"healthcheck": healthcheckCommand,
	}
	name, rest := args[0], args[1:]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(e.stdout, usage)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(e.stderr, "latchkey: unknown command %q\n\n%s", name, usage)
		return 2
	}
	err := cmd(ctx, rest, e)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "latchkey %s: %v\n", name, err)
		return 2
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(e.stderr, "latchkey %s: %s\n", name, line)
	}
	return 1
}

// errUsage marks mistakes in how a command was called.
var errUsage = errors.New("usage")

func usageError(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
}
