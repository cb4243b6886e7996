// Command latchkey is the Latchkey identity provider: its server, its
// development mode, and the operator commands that manage its database.
//
// The commands are a cobra command tree, built by commandTree in
// commands.go; docs/cli.md is generated from it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

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

// run runs the command args name and turns its outcome into an exit code:
// 0 when it succeeded or showed help; 2, with one line and a pointer to
// the command's help, when it was called wrongly; and 1, with each line of
// its error prefixed by the command's name, when it failed.
func run(ctx context.Context, args []string, e env) int {
	root := commandTree(e)
	// A nil slice would have cobra read os.Args, the test binary's own
	// flags under go test.
	root.SetArgs(append([]string{}, twoDashes(root, args)...))
	cmd, err := root.ExecuteContextC(ctx)
	var mistake *usageErr
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errNoCommand):
		// As with a mistake, but the mistake is calling a group of
		// commands with none of them, and its help is the answer.
		fmt.Fprint(e.stderr, helpText(cmd))
		return 2
	case errors.As(err, &mistake):
		fmt.Fprintf(e.stderr, "%s: %v\n", errorPrefix(cmd), mistake.err)
		fmt.Fprintf(e.stderr, "Run '%s --help'.\n", cmd.CommandPath())
		return 2
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintf(e.stderr, "%s: %s\n", errorPrefix(cmd), line)
	}
	return 1
}

// errorPrefix starts each error line of cmd: latchkey and the top-level
// command, such as "latchkey clients" for latchkey clients create, which
// is what scripts and docs/clients.md have always seen.
func errorPrefix(cmd *cobra.Command) string {
	path := strings.Fields(cmd.CommandPath())
	return strings.Join(path[:min(len(path), 2)], " ")
}

// usageErr is a mistake in how a command was called, rather than a failure
// in doing what it was asked: an unknown flag, a missing argument, a value
// out of range. run answers it with exit code 2 and a pointer to the
// command's help.
type usageErr struct{ err error }

func (u *usageErr) Error() string { return u.err.Error() }
func (u *usageErr) Unwrap() error { return u.err }

// usageError is a usageErr with the message format and a give.
func usageError(format string, a ...any) error {
	return &usageErr{fmt.Errorf(format, a...)}
}

// errNoCommand is what a group of commands, latchkey itself included,
// returns when called without one of them.
var errNoCommand = errors.New("no command given")

// twoDashes rewrites -name and -name=value to --name and --name=value for
// the flags of the tree under root. latchkey took one dash or two before it
// moved to cobra, whose flags take two, and docs/configuration.md still
// promises both; the only one-letter flags, -h and -v, are left as they
// are. A value given to the flag before it, in "--name -x", is left alone.
func twoDashes(root *cobra.Command, args []string) []string {
	takesValue := map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) { takesValue[f.Name] = f.NoOptDefVal == "" })
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		dashes := len(a) - len(strings.TrimLeft(a, "-"))
		name, _, hasValue := strings.Cut(a[dashes:], "=")
		takes, known := takesValue[name]
		if !known || !(dashes == 2 || (dashes == 1 && len(name) > 1)) {
			out = append(out, a)
			continue
		}
		out = append(out, "--"+a[dashes:])
		if takes && !hasValue && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}
