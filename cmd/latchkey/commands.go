package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commandTree builds every command of latchkey, bound to e. It is the one
// place that lists them, so that the help, shell completion and
// docs/cli.md all follow from it; run builds a fresh tree for each call,
// which keeps tests that run commands in parallel apart.
func commandTree(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "latchkey",
		Short: "An OAuth 2.0 and OpenID Connect identity provider",
		Long: `latchkey — an OAuth 2.0 and OpenID Connect identity provider: its server,
its development mode, and the operator commands that manage its database.

Settings come from flags and LATCHKEY_ environment variables; each command
takes as flags only the settings it uses (docs/configuration.md). Every
command is described in docs/cli.md.`,
		Version:                    buildVersion(),
		Args:                       commandArgs,
		RunE:                       noCommand,
		SuggestionsMinimumDistance: 2,
		// run reports errors itself, in one place, with the exit code
		// that goes with them.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetIn(e.stdin)
	root.SetVersionTemplate("latchkey {{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(flagError)

	root.AddGroup(
		&cobra.Group{ID: "node", Title: "Running Latchkey:"},
		&cobra.Group{ID: "operate", Title: "Managing a deployment:"},
	)
	for _, c := range []*cobra.Command{serveCommand(e), devCommand(e), healthcheckCommand(e), benchCommand(e)} {
		c.GroupID = "node"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{migrateCommand(e), keysCommand(e), clientsCommand(e), apiKeysCommand(e), registrationTokensCommand(e), usersCommand(e), mailCommand(e), webhooksCommand(e), plansCommand(e), usageCommand(e), resourcesCommand(e), janitorCommand(e)} {
		c.GroupID = "operate"
		root.AddCommand(c)
	}
	root.AddCommand(versionCommand(e))

	// cobra adds these as late as it can, while running a command; adding
	// them now puts them in the tree for twoDashes and docs/cli.md too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.InitDefaultVersionFlag()
	if completion, _, err := root.Find([]string{"completion"}); err == nil {
		// A group like the others: without a shell, or with one it does
		// not know, it fails with exit code 2.
		completion.Args, completion.RunE = commandArgs, noCommand
	}
	var helpFlags func(*cobra.Command)
	helpFlags = func(c *cobra.Command) {
		c.InitDefaultHelpFlag()
		for _, sub := range c.Commands() {
			helpFlags(sub)
		}
	}
	helpFlags(root)
	return root
}

// groupCommand is a command that only holds others, such as latchkey
// clients. Called with none of them it fails as latchkey alone does, with
// its help on stderr and exit code 2, rather than cobra's help and exit 0,
// which would let a script that lost its subcommand pass.
func groupCommand(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  commandArgs,
		RunE:  noCommand,
		// Suggest "get" for "gte", as cobra does for latchkey's own
		// commands.
		SuggestionsMinimumDistance: 2,
	}
	c.AddCommand(subs...)
	return c
}

// noCommand is the RunE of latchkey and its groups of commands.
func noCommand(*cobra.Command, []string) error { return errNoCommand }

// commandArgs refuses an argument to a group of commands: it is a command
// the group does not have. cobra's own check does this for latchkey only,
// and answers with help and exit code 0 for its groups.
func commandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if cmd.HasParent() {
		var names []string
		for _, sub := range cmd.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		msg = fmt.Sprintf("unknown subcommand %q; %s has %s", args[0], cmd.CommandPath(), strings.Join(names, ", "))
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		// The nearest: "serve", not "dev", for "serv".
		slices.SortStableFunc(s, func(a, b string) int { return editDistance(args[0], a) - editDistance(args[0], b) })
		msg += fmt.Sprintf("; did you mean %s?", s[0])
	}
	return usageError("%s", msg)
}

// noArgs is the Args of a command that takes no arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q; usage: %s", args[0], cmd.UseLine())
	}
	return nil
}

// oneArg is the Args of a command that acts on one thing, named by its one
// argument: the second word of its Use, such as ID in "get ID".
func oneArg(cmd *cobra.Command, args []string) error {
	switch len(args) {
	case 1:
		return nil
	case 0:
		name := "an argument"
		if f := strings.Fields(cmd.Use); len(f) > 1 {
			name = f[1]
		}
		return usageError("missing %s; usage: %s", name, cmd.UseLine())
	}
	return usageError("unexpected argument %q; usage: %s", args[1], cmd.UseLine())
}

// flagError turns the flag package's complaint into a usage error, with
// the flag the operator probably meant when there is one.
func flagError(cmd *cobra.Command, err error) error {
	var unknown *pflag.NotExistError
	if errors.As(err, &unknown) && len(unknown.GetSpecifiedName()) > 1 {
		if near := nearestFlag(cmd.Flags(), unknown.GetSpecifiedName()); near != "" {
			return usageError("%v; did you mean --%s?", err, near)
		}
	}
	return &usageErr{err}
}

// nearestFlag is the flag of fs whose name is at most two edits from name,
// or starts with it, or "" for none.
func nearestFlag(fs *pflag.FlagSet, name string) string {
	best, bestDistance := "", 3
	fs.VisitAll(func(f *pflag.Flag) {
		d := editDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) {
			d = min(d, 1)
		}
		if d < bestDistance {
			best, bestDistance = f.Name, d
		}
	})
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// helpText is cmd's help, as -h shows it.
func helpText(cmd *cobra.Command) string {
	var b bytes.Buffer
	out := cmd.OutOrStdout()
	cmd.SetOut(&b)
	cmd.HelpFunc()(cmd, nil)
	cmd.SetOut(out)
	return b.String()
}

// usageTemplate is cobra's, except that a group of commands, which runs
// only to say that a command is missing, shows no usage line of its own.
const usageTemplate = `Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{if eq (len .Groups) 0}}

Available Commands:{{range $cmds}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{else}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if not .AllChildCommandsHaveGroup}}

Additional Commands:{{range $cmds}}{{if (and (eq .GroupID "") (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// outputFormat is the value of --output: how a command prints what it
// shows, as a table for people or as JSON for programs.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
)

// String shows the value in help.
func (o *outputFormat) String() string { return string(*o) }

// Set accepts json or table only, so that a typo fails before anything is
// done rather than printing a table to a program expecting JSON.
func (o *outputFormat) Set(s string) error {
	switch outputFormat(s) {
	case outputJSON, outputTable:
		*o = outputFormat(s)
		return nil
	}
	return errors.New("must be json or table")
}

// Type names the kind of value in help.
func (o *outputFormat) Type() string { return "format" }

// outputFlag gives cmd --output, a table by default, and returns where the
// choice goes.
func outputFlag(cmd *cobra.Command) *outputFormat {
	o := outputTable
	cmd.Flags().Var(&o, "output", "print as json or table")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"json", "table"}, cobra.ShellCompDirectiveNoFileComp))
	return &o
}

// changedFlags names the flags given on the command line, which is what
// lets an update change only the fields they name.
func changedFlags(fs *pflag.FlagSet) map[string]bool {
	given := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { given[f.Name] = true })
	return given
}
