package config

import (
	"fmt"
	"slices"

	"github.com/spf13/pflag"
)

// Flags is one command's share of the settings: the ones it takes as flags,
// bound to its pflag.FlagSet, and the defaults it gives differently from
// the table. A command offers only the flags it uses, so that its -h is
// about it, yet Load still reads every setting, the rest from the
// environment or their defaults: what a command does with a setting it has
// no flag for is the same as before it dropped the flag.
type Flags struct {
	// flags are the bound settings' flags, by environment variable.
	flags map[string]*flagText
	// defaults are this command's own defaults, by environment variable.
	defaults map[string]string
	// given records, once Load has run, the settings given on the command
	// line or in the environment, by environment variable.
	given map[string]bool
}

// Bind registers on fs a flag for each setting named in envs (by
// environment variable, such as "LATCHKEY_DATABASE_URL"), with its
// description and variable as help. defaults, also by environment
// variable, replace the table's defaults for this command, in its help as
// in Load; latchkey dev, for one, listens on loopback by default.
//
// Bind panics on a name that is not a setting, and on LATCHKEY_SECRETS or
// any other setting without a flag: both are mistakes in the command's
// code, which its tests catch, not in how it was run.
func Bind(fs *pflag.FlagSet, envs []string, defaults map[string]string) *Flags {
	table := map[string]Setting{}
	for _, s := range Settings() {
		table[s.Env] = s
	}
	for env := range defaults {
		if _, ok := table[env]; !ok {
			panic(fmt.Sprintf("config: Bind: a default for %s, which is not a setting", env))
		}
	}
	f := &Flags{flags: map[string]*flagText{}, defaults: defaults}
	for _, b := range bindings(new(Config)) {
		if !slices.Contains(envs, b.Env) {
			continue
		}
		if b.Flag == "" {
			panic(fmt.Sprintf("config: Bind: %s can be given only in the environment", b.Env))
		}
		def, ok := defaults[b.Env]
		if !ok {
			def = b.Default
		}
		f.flags[b.Env] = &flagText{text: def, metavar: b.metavar}
		fs.Var(f.flags[b.Env], b.Flag, fmt.Sprintf("%s (env %s)", b.Description, b.Env))
	}
	for _, env := range envs {
		if _, ok := f.flags[env]; !ok {
			panic(fmt.Sprintf("config: Bind: %s is not a setting", env))
		}
	}
	return f
}

// Load fills a Config once the flag set has parsed the command line: each
// setting from its flag if given, else from its environment variable (read
// through lookupEnv, normally os.LookupEnv) unless that is unset or "",
// else from this command's default, else the table's. Like Parse, it
// reports every value it cannot read at once, one line each, and leaves
// required settings and ranges to Validate.
func (f *Flags) Load(lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	given, err := read(bindings(&c), f.flags, f.defaults, lookupEnv)
	if err != nil {
		return Config{}, err
	}
	f.given = given
	return c, nil
}

// Given reports whether the setting named by its environment variable was
// given, on the command line or in the environment, to the last Load,
// rather than defaulted: a command that derives a default from other
// settings, as latchkey dev does its issuer from its port, does so only
// when the operator has not chosen.
func (f *Flags) Given(env string) bool {
	return f.given[env]
}

// DatabaseSettings names the settings, by environment variable, of a
// command that opens the database to do one piece of work and exits:
// where the database is and how long a call may take. LATCHKEY_SECRETS,
// which some of them need too, is read from the environment only.
func DatabaseSettings() []string {
	return []string{"LATCHKEY_DATABASE_URL", "LATCHKEY_DATABASE_TIMEOUT"}
}

// ServerSettings names every setting that has a flag, by environment
// variable: those of a command that runs a node.
func ServerSettings() []string {
	var out []string
	for _, s := range Settings() {
		if s.Flag != "" {
			out = append(out, s.Env)
		}
	}
	return out
}
