package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os/user"
	"strings"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/storage/postgres"
)

// parseSubcommand reads the arguments of an operator subcommand such as
// `latchkey clients get ID --output json`: the flags register puts on the
// flag set, every server setting (--database-url and the like), and, when
// hasTarget, the one positional argument naming what it acts on. The target
// may come straight after the subcommand or after the flags, because the
// flag package stops at the first positional argument and operators write
// both. given names the flags given explicitly, which lets an update change
// only those fields.
//
// The server settings are read by config.Parse on a second flag set, fed
// only the settings given here. They cannot share the first: a subcommand's
// own flags may have a server setting's name with another meaning, such as
// a client's own --access-token-lifespan.
func parseSubcommand(e env, name, form string, args []string, hasTarget bool,
	usage, register func(*flag.FlagSet)) (cfg config.Config, target string, given map[string]bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { usage(fs) }
	register(fs)
	server := passServerSettings(fs)
	if hasTarget && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		target, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, "", nil, err
		}
		return cfg, "", nil, usageError("%v", err)
	}
	rest := fs.Args()
	if hasTarget && target == "" && len(rest) == 1 {
		target, rest = rest[0], nil
	}
	if len(rest) > 0 || (hasTarget && target == "") {
		return cfg, "", nil, usageError("%s", form)
	}
	given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	settings := flag.NewFlagSet(name, flag.ContinueOnError)
	settings.SetOutput(e.stderr)
	cfg, err = config.Parse(settings, server.args, e.lookupEnv)
	return cfg, target, given, err
}

// operatorAudit is the audit log of an operator command, and a context
// that names the operator: changes made from the CLI are recorded, like
// the admin API's, under "cli:" and the operating-system user. The CLI
// keeps its output to its own lines, so the events go to the database
// only, not to a log.
func operatorAudit(ctx context.Context, store *postgres.Store) (context.Context, *audit.Log) {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return audit.WithActor(ctx, "cli:"+name), audit.New(store, slog.New(slog.DiscardHandler))
}

// withStore runs f on the database cfg names, which a command needs, and
// closes it afterwards.
func withStore(cfg config.Config, f func(*postgres.Store) error) error {
	if err := cfg.Validate(config.NeedDatabase); err != nil {
		return err
	}
	store, err := openStore(cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	return f(store)
}

// serverSettings collects the server settings given on the command line,
// as arguments for config.Parse, so that --database-url and the like work
// here as they do for every other command.
type serverSettings struct {
	args []string
}

// serverSetting is the flag for one server setting; it only records its
// text, leaving config.Parse to read and check it.
type serverSetting struct {
	name string
	into *serverSettings
}

// String returns "": the default is config's to show, in its docs.
func (s *serverSetting) String() string { return "" }

// Set records the setting for config.Parse.
func (s *serverSetting) Set(text string) error {
	s.into.args = append(s.into.args, "--"+s.name+"="+text)
	return nil
}

// passServerSettings registers a flag on fs for every server setting whose
// name the subcommand does not use itself.
func passServerSettings(fs *flag.FlagSet) *serverSettings {
	server := &serverSettings{}
	for _, s := range config.Settings() {
		if s.Flag == "" || fs.Lookup(s.Flag) != nil {
			continue
		}
		fs.Var(&serverSetting{name: s.Flag, into: server}, s.Flag, fmt.Sprintf("%s (env %s)", s.Description, s.Env))
	}
	return server
}
