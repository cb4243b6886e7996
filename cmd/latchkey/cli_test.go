package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/config"
)

// The tests in this file are those of issue 14's list of CLI defects, one
// or more each, and of what replaced the hand-rolled CLI: per-command
// flags, --output json on every command that shows records, shell
// completion, and docs/cli.md.

// commandPaths lists every command of the tree, as the arguments that name
// it ("clients", "create"), latchkey itself first, leaving out cobra's
// help and its hidden completion helpers.
func commandPaths() [][]string {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub, append(slices.Clone(path), sub.Name()))
			}
		}
	}
	walk(commandTree(env{}), nil)
	return paths
}

// settingsInHelp reads the settings a command's help offers as flags, by
// environment variable: a setting's flag says "(env LATCHKEY_...)", which
// tells it from a flag of the command's own with the same name, such as
// clients create's --access-token-lifespan.
func settingsInHelp(help string) []string {
	var envs []string
	for _, m := range regexp.MustCompile(`(?m)^\s+--[a-z-]+ .*\(env (LATCHKEY_[A-Z_]+)\)`).FindAllStringSubmatch(help, -1) {
		envs = append(envs, m[1])
	}
	slices.Sort(envs)
	return envs
}

func TestEveryCommandAnswersHelpWithItsOwnUsage(t *testing.T) {
	t.Parallel()
	for _, path := range commandPaths() {
		name := strings.TrimSpace("latchkey " + strings.Join(path, " "))
		for _, h := range []string{"-h", "--help"} {
			code, stdout, stderr := runCLI(t.Context(), vars{}, append(slices.Clone(path), h)...)
			usage := regexp.MustCompile(`Usage:\n  ` + regexp.QuoteMeta(name) + `[ \n]`)
			if code != 0 || stderr != "" || !usage.MatchString(stdout) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want its usage on stdout and exit 0", name, h, code, stdout, stderr)
			}
		}
	}
}

// A command's -h lists the settings it uses, and not the 28 of a node.
func TestEachCommandTakesOnlyTheSettingsItUses(t *testing.T) {
	t.Parallel()
	database := config.DatabaseSettings()
	// Those that mail a link build it on the issuer.
	mailing := append(slices.Clone(database), "LATCHKEY_ISSUER", "LATCHKEY_NOTIFICATIONS")
	want := map[string][]string{
		"serve":                      config.ServerSettings(),
		"dev":                        config.ServerSettings(),
		"bench":                      append(slices.Clone(database), "LATCHKEY_DATABASE_MAX_CONNS"),
		"healthcheck":                {"LATCHKEY_ADMIN_ADDR"},
		"janitor":                    append(slices.Clone(database), "LATCHKEY_JANITOR_BATCH_SIZE", "LATCHKEY_AUDIT_RETENTION"),
		"migrate up":                 database,
		"migrate status":             database,
		"keys list":                  database,
		"keys rotate":                database,
		"keys retire":                database,
		"keys reseal":                database,
		"clients create":             database,
		"clients list":               database,
		"clients get":                database,
		"clients update":             database,
		"clients delete":             database,
		"clients rotate-secret":      database,
		"api-keys create":            database,
		"api-keys list":              database,
		"api-keys revoke":            database,
		"users create":               mailing,
		"users list":                 database,
		"users get":                  database,
		"users update":               mailing,
		"users disable":              database,
		"users enable":               database,
		"users unlock":               database,
		"users delete":               database,
		"users set-password":         mailing,
		"users reset-mfa":            mailing,
		"users passkeys":             database,
		"users remove-passkey":       database,
		"users trusted-devices":      database,
		"users forget-devices":       database,
		"mail list":                  database,
		"mail retry":                 database,
		"mail test":                  database,
		"webhooks list":              database,
		"webhooks create":            database,
		"webhooks update":            database,
		"webhooks delete":            database,
		"webhooks enable":            database,
		"webhooks deliveries":        database,
		"webhooks rotate-secret":     database,
		"webhooks test":              database,
		"users invite":               mailing,
		"users revoke-invite":        database,
		"plans list":                 database,
		"plans create":               database,
		"plans update":               database,
		"plans delete":               database,
		"plans assign":               database,
		"plans unassign":             database,
		"usage":                      database,
		"registration-tokens create": database,
		"registration-tokens list":   database,
		"registration-tokens revoke": database,
		"resources create":           database,
		"resources list":             database,
		"resources delete":           database,
	}
	for _, path := range commandPaths() {
		_, help, _ := runCLI(t.Context(), vars{}, append(slices.Clone(path), "-h")...)
		expected := slices.Clone(want[strings.Join(path, " ")])
		slices.Sort(expected)
		if got := settingsInHelp(help); !slices.Equal(got, expected) {
			t.Errorf("latchkey %s -h offers the settings %q; want %q", strings.Join(path, " "), got, expected)
		}
	}
}

// A mistyped flag is one line and a pointer to the command's help, not the
// command's 60 lines of usage.
func TestAMistypedFlagIsOneLineAndAHint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args   []string
		stderr string
	}{
		{[]string{"clients", "create", "--nme", "billing"},
			"latchkey clients: unknown flag: --nme; did you mean --name?\nRun 'latchkey clients create --help'.\n"},
		{[]string{"serve", "--isuer", "https://id.example.com"},
			"latchkey serve: unknown flag: --isuer; did you mean --issuer?\nRun 'latchkey serve --help'.\n"},
		{[]string{"migrate", "up", "--database-ulr", "postgres://db"},
			"latchkey migrate: unknown flag: --database-ulr; did you mean --database-url?\nRun 'latchkey migrate up --help'.\n"},
		{[]string{"keys", "list", "--issuer", "https://id.example.com"},
			"latchkey keys: unknown flag: --issuer\nRun 'latchkey keys list --help'.\n"},
		{[]string{"bench", "--concurrency", "many"},
			"latchkey bench: invalid argument \"many\" for \"--concurrency\" flag: strconv.ParseInt: parsing \"many\": invalid syntax\nRun 'latchkey bench --help'.\n"},
		{[]string{"keys", "retire"},
			"latchkey keys: missing KID; usage: latchkey keys retire KID [flags]\nRun 'latchkey keys retire --help'.\n"},
		{[]string{"serve", "now"},
			"latchkey serve: unexpected argument \"now\"; usage: latchkey serve [flags]\nRun 'latchkey serve --help'.\n"},
	}
	for _, c := range cases {
		code, stdout, stderr := runCLI(t.Context(), vars{}, c.args...)
		if code != 2 || stdout != "" || stderr != c.stderr {
			t.Errorf("latchkey %s: exit %d, stdout %q, stderr %q; want exit 2 and\n%s", strings.Join(c.args, " "), code, stdout, stderr, c.stderr)
		}
	}
}

// clients -h and users -h once said "unknown subcommand".
func TestGroupsListTheirSubcommandsInHelp(t *testing.T) {
	t.Parallel()
	for _, group := range []string{"clients", "users", "keys", "migrate", "mail"} {
		code, stdout, stderr := runCLI(t.Context(), vars{}, group, "-h")
		if code != 0 || stderr != "" {
			t.Errorf("latchkey %s -h: exit %d, stderr %q", group, code, stderr)
		}
		for _, path := range commandPaths() {
			if len(path) == 2 && path[0] == group && !regexp.MustCompile(`(?m)^  `+regexp.QuoteMeta(path[1])+` `).MatchString(stdout) {
				t.Errorf("latchkey %s -h does not list %s:\n%s", group, path[1], stdout)
			}
		}
	}
}

// A group called without a subcommand fails as latchkey alone does, with
// its help on stderr, so that a script that lost its subcommand fails.
func TestAGroupWithoutASubcommandShowsItsHelpAndExits2(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"clients"}, {"users"}, {"keys"}, {"migrate"}, {"mail"}, {"completion"}} {
		code, stdout, stderr := runCLI(t.Context(), vars{}, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "Usage:\n  "+strings.TrimSpace("latchkey "+strings.Join(args, " "))+" [command]") {
			t.Errorf("latchkey %s: exit %d, stdout %q, stderr %q; want its help on stderr and exit 2", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// keys retire -h once tried to retire a key named -h.
func TestKeysRetireHelpShowsHelpAndRetiresNothing(t *testing.T) {
	t.Parallel()
	env := vars{"LATCHKEY_DATABASE_URL": pgtest.URL(t), "LATCHKEY_SECRETS": testSecret}
	if code, _, stderr := runCLI(t.Context(), env, "keys", "rotate"); code != 0 {
		t.Fatalf("keys rotate: exit %d, stderr %q", code, stderr)
	}
	for _, args := range [][]string{{"keys", "retire", "-h"}, {"keys", "retire", "--help"}, {"keys", "retire", "some-kid", "-h"}} {
		code, stdout, stderr := runCLI(t.Context(), env, args...)
		if code != 0 || stderr != "" || !strings.Contains(stdout, "latchkey keys retire KID [flags]") {
			t.Errorf("latchkey %s: exit %d, stdout %q, stderr %q; want its help", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	_, out, _ := runCLI(t.Context(), env, "keys", "list")
	if strings.Contains(out, "retired") {
		t.Fatalf("a key was retired:\n%s", out)
	}
}

func TestVersionFlagPrintsTheVersion(t *testing.T) {
	t.Parallel()
	_, want, _ := runCLI(t.Context(), vars{}, "version")
	for _, flag := range []string{"--version", "-v"} {
		code, stdout, stderr := runCLI(t.Context(), vars{}, flag)
		if code != 0 || stdout != want || stderr != "" || !strings.HasPrefix(stdout, "latchkey ") {
			t.Errorf("latchkey %s: exit %d, stdout %q, stderr %q; want %q", flag, code, stdout, stderr, want)
		}
	}
}

// healthcheck was missing from the usage; now every command is in it.
func TestUsageListsEveryCommand(t *testing.T) {
	t.Parallel()
	_, _, usage := runCLI(t.Context(), vars{})
	_, help, _ := runCLI(t.Context(), vars{}, "--help")
	for _, path := range commandPaths() {
		if len(path) != 1 {
			continue
		}
		for _, text := range []string{usage, help} {
			if !regexp.MustCompile(`(?m)^  ` + path[0] + ` +\S`).MatchString(text) {
				t.Errorf("the usage does not list %s:\n%s", path[0], text)
			}
		}
	}
	if !strings.Contains(usage, "healthcheck") {
		t.Error("the usage does not list healthcheck")
	}
}

// dev -h once showed serve's defaults, which dev does not use.
func TestDevHelpShowsDevsOwnDefaults(t *testing.T) {
	t.Parallel()
	defaults := func(command string) map[string]string { return flagDefaults(t, command) }
	dev, serve := defaults("dev"), defaults("serve")
	for flag, want := range map[string]string{
		"issuer":      "http://localhost:8080",
		"public-addr": "127.0.0.1:8080",
		"admin-addr":  "127.0.0.1:8081",
		"log-format":  "text",
		"dir":         ".latchkey",
	} {
		if dev[flag] != want {
			t.Errorf("latchkey dev -h gives --%s the default %q; dev uses %q", flag, dev[flag], want)
		}
	}
	for flag, want := range map[string]string{"issuer": "", "public-addr": ":8080", "log-format": "json"} {
		if serve[flag] != want {
			t.Errorf("latchkey serve -h gives --%s the default %q; want %q", flag, serve[flag], want)
		}
	}
}

func TestShellCompletionProducesAScript(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{
		"bash":       "__start_latchkey",
		"zsh":        "#compdef latchkey",
		"fish":       "complete -c latchkey",
		"powershell": "Register-ArgumentCompleter",
	} {
		code, stdout, stderr := runCLI(t.Context(), vars{}, "completion", shell)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("latchkey completion %s: exit %d, stderr %q; want a script with %q", shell, code, stderr, want)
		}
	}
	// What a shell asks for as it completes: the values of --output.
	code, stdout, _ := runCLI(t.Context(), vars{}, cobra.ShellCompRequestCmd, "clients", "get", "app", "--output", "")
	if code != 0 || !strings.HasPrefix(stdout, "json\ntable\n") {
		t.Errorf("completing --output: exit %d, stdout %q", code, stdout)
	}
	code, stdout, _ = runCLI(t.Context(), vars{}, cobra.ShellCompRequestCmd, "clients", "")
	if code != 0 || !strings.Contains(stdout, "rotate-secret\t") {
		t.Errorf("completing a subcommand of clients: exit %d, stdout %q", code, stdout)
	}
}

// Every command that shows records prints them as JSON with --output json,
// keys list and migrate status included.
func TestReadCommandsPrintJSON(t *testing.T) {
	t.Parallel()
	env := vars{"LATCHKEY_DATABASE_URL": pgtest.URL(t), "LATCHKEY_SECRETS": testSecret}
	for _, setup := range [][]string{
		{"keys", "rotate"},
		{"clients", "create", "--id", "billing", "--grant-type", "client_credentials"},
		{"users", "create", "--email", "ada@example.com", "--no-password"},
	} {
		if code, _, stderr := runCLI(t.Context(), env, setup...); code != 0 {
			t.Fatalf("latchkey %s: exit %d, stderr %q", strings.Join(setup, " "), code, stderr)
		}
	}
	cases := []struct {
		args []string
		// member is one the JSON must have: of the object, or of each
		// element of the array.
		member string
	}{
		{[]string{"keys", "list"}, "kid"},
		{[]string{"keys", "rotate"}, "kid"},
		{[]string{"migrate", "status"}, "up_to_date"},
		{[]string{"migrate", "up"}, "latest"},
		{[]string{"clients", "list"}, "client_id"},
		{[]string{"clients", "get", "billing"}, "client_id"},
		{[]string{"users", "list"}, "sub"},
		{[]string{"users", "get", "ada@example.com"}, "sub"},
	}
	for _, c := range cases {
		code, stdout, stderr := runCLI(t.Context(), env, append(c.args, "--output", "json")...)
		if code != 0 {
			t.Errorf("latchkey %s --output json: exit %d, stderr %q", strings.Join(c.args, " "), code, stderr)
			continue
		}
		var objects []map[string]any
		if err := json.Unmarshal([]byte(stdout), &objects); err != nil {
			var one map[string]any
			if err := json.Unmarshal([]byte(stdout), &one); err != nil {
				t.Errorf("latchkey %s --output json printed no JSON object or array: %v\n%s", strings.Join(c.args, " "), err, stdout)
				continue
			}
			objects = []map[string]any{one}
		}
		if len(objects) == 0 {
			t.Errorf("latchkey %s --output json printed an empty array", strings.Join(c.args, " "))
		}
		for _, o := range objects {
			if _, ok := o[c.member]; !ok {
				t.Errorf("latchkey %s --output json: %v has no %q", strings.Join(c.args, " "), o, c.member)
			}
		}
	}
	code, stdout, _ := runCLI(t.Context(), env, "migrate", "status", "--output", "json")
	var st schemaJSON
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || !st.UpToDate || st.Current != st.Latest || st.Pending == nil || len(st.Pending) != 0 {
		t.Errorf("migrate status --output json on a migrated database: %s (%v)", stdout, err)
	}
}

// Flags took one dash or two before cobra, and docs/configuration.md says
// they still do.
func TestLongFlagsTakeOneDashOrTwo(t *testing.T) {
	t.Parallel()
	tree := commandTree(env{})
	cases := []struct{ in, want []string }{
		{[]string{"serve", "-issuer", "https://id.example.com", "-migrate"}, []string{"serve", "--issuer", "https://id.example.com", "--migrate"}},
		{[]string{"serve", "-issuer=https://id.example.com", "--migrate=false"}, []string{"serve", "--issuer=https://id.example.com", "--migrate=false"}},
		{[]string{"keys", "-database-url", "postgres://db", "list"}, []string{"keys", "--database-url", "postgres://db", "list"}},
		// A value that looks like a flag stays the value.
		{[]string{"clients", "update", "app", "--name", "-output"}, []string{"clients", "update", "app", "--name", "-output"}},
		{[]string{"clients", "rotate-secret", "app", "-grace", "-1s"}, []string{"clients", "rotate-secret", "app", "--grace", "-1s"}},
		// Shorthands, unknown words and what follows -- are left alone.
		{[]string{"keys", "retire", "-h"}, []string{"keys", "retire", "-h"}},
		{[]string{"clients", "get", "-nosuchflag"}, []string{"clients", "get", "-nosuchflag"}},
		{[]string{"clients", "get", "--", "-output"}, []string{"clients", "get", "--", "-output"}},
	}
	for _, c := range cases {
		if got := twoDashes(tree, c.in); !slices.Equal(got, c.want) {
			t.Errorf("twoDashes(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	code, _, stderr := runCLI(t.Context(), vars{}, "healthcheck", "-admin-addr=127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "http://127.0.0.1:1/readyz") {
		t.Fatalf("healthcheck -admin-addr=127.0.0.1:1: exit %d, stderr %q; want it to ask 127.0.0.1:1", code, stderr)
	}
}

// updateCLIReference rewrites docs/cli.md: go test ./cmd/latchkey -run
// TestCLIReference -update.
var updateCLIReference = flag.Bool("update", false, "rewrite docs/cli.md from the command tree")

// docs/cli.md is the help of every command, generated from the tree, so
// that it cannot drift from what latchkey -h says.
func TestCLIReference(t *testing.T) {
	path := filepath.Join(repoRoot, "docs", "cli.md")
	want := cliReference(commandTree(env{}))
	if *updateCLIReference {
		if err := os.WriteFile(path, want, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/cli.md is not what the command tree generates; regenerate it with:\n" +
			"  go test ./cmd/latchkey -run TestCLIReference -update")
	}
}

// cliReference is docs/cli.md: a contents list, then each command's help,
// as -h prints it, under a heading of its own.
func cliReference(root *cobra.Command) []byte {
	var b bytes.Buffer
	b.WriteString(`# Command-line reference

<!-- Generated from latchkey's command tree; do not edit. Regenerate with:
     go test ./cmd/latchkey -run TestCLIReference -update -->

Every command of ` + "`latchkey`" + `, with its help as ` + "`latchkey COMMAND -h`" + ` prints it.
A flag that says ` + "`(env LATCHKEY_...)`" + ` is a setting, also read from that
environment variable ([configuration.md](configuration.md)); a command reads
every other setting from the environment only. Errors go to standard error,
one line each, starting with ` + "`latchkey COMMAND:`" + `. The exit code is ` + "`0`" + ` on
success, ` + "`1`" + ` when the command ran and failed, and ` + "`2`" + ` when it was called
wrongly, with a second line naming the help to read.

`)
	var commands []*cobra.Command
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		commands = append(commands, c)
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub)
			}
		}
	}
	walk(root)
	for _, c := range commands {
		indent := strings.Repeat("  ", strings.Count(c.CommandPath(), " "))
		anchor := strings.ReplaceAll(c.CommandPath(), " ", "-")
		fmt.Fprintf(&b, "%s- [%s](#%s): %s\n", indent, c.CommandPath(), anchor, c.Short)
	}
	for _, c := range commands {
		fmt.Fprintf(&b, "\n## %s\n\n```text\n%s```\n", c.CommandPath(), helpText(c))
	}
	return b.Bytes()
}
