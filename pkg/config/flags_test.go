package config_test

import (
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/latchkey/latchkey/pkg/config"
)

// bind binds envs and defaults on a fresh pflag set, as a command does,
// and parses args with it.
func bind(t *testing.T, envs []string, defaults map[string]string, args ...string) (*config.Flags, *pflag.FlagSet, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := config.Bind(fs, envs, defaults)
	return f, fs, fs.Parse(args)
}

func TestBindOffersOnlyTheChosenSettingsAsFlags(t *testing.T) {
	_, fs, err := bind(t, config.DatabaseSettings(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	if want := []string{"database-timeout", "database-url"}; !slices.Equal(names, want) {
		t.Fatalf("flags %q, want %q", names, want)
	}
	if _, _, err := bind(t, config.DatabaseSettings(), nil, "--issuer", "https://id.example.com"); err == nil {
		t.Fatal("a command with the database settings accepted --issuer")
	}
}

func TestBoundFlagBeatsEnvironmentBeatsCommandDefaultBeatsTableDefault(t *testing.T) {
	envs := []string{"LATCHKEY_PUBLIC_ADDR", "LATCHKEY_ADMIN_ADDR", "LATCHKEY_LOG_FORMAT", "LATCHKEY_ISSUER"}
	ours := map[string]string{"LATCHKEY_PUBLIC_ADDR": "127.0.0.1:8080", "LATCHKEY_LOG_FORMAT": "text", "LATCHKEY_ISSUER": "http://localhost:8080"}
	env := environ{"LATCHKEY_LOG_FORMAT": "json", "LATCHKEY_ISSUER": "https://env.example.com"}
	f, _, err := bind(t, envs, ours, "--issuer", "https://flag.example.com")
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Load(env.lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := defaults()
	want.Issuer = "https://flag.example.com" // the flag, over the environment
	want.LogFormat = "json"                  // the environment, over the command's default
	want.PublicAddr = "127.0.0.1:8080"       // the command's default, over the table's
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got\n%+v\nwant\n%+v", c, want)
	}
	for env, given := range map[string]bool{"LATCHKEY_ISSUER": true, "LATCHKEY_LOG_FORMAT": true, "LATCHKEY_PUBLIC_ADDR": false, "LATCHKEY_ADMIN_ADDR": false} {
		if f.Given(env) != given {
			t.Errorf("Given(%s) = %v, want %v", env, !given, given)
		}
	}
}

// A command without a flag for a setting still runs with the value the
// operator put in the environment: dropping the flag narrows the help, not
// the configuration.
func TestLoadReadsSettingsWithoutAFlagFromTheEnvironment(t *testing.T) {
	f, _, err := bind(t, config.DatabaseSettings(), nil, "--database-url", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.Load(environ{"LATCHKEY_SECRETS": secretA, "LATCHKEY_CLIENT_SECRET_GRACE_PERIOD": "1h"}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != dbURL || len(c.Secrets) != 1 || c.ClientSecretGracePeriod != time.Hour || c.AccessTokenLifespan != 15*time.Minute {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadReportsEveryUnreadableValueAtOnce(t *testing.T) {
	f, _, err := bind(t, config.DatabaseSettings(), nil, "--database-timeout", "soon")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Load(environ{"LATCHKEY_LOG_LEVEL": "loud"}.lookup)
	if err == nil {
		t.Fatal("want errors, got none")
	}
	want := []string{
		`LATCHKEY_LOG_LEVEL (--log-level): "loud" from the environment is not a log level`,
		`LATCHKEY_DATABASE_TIMEOUT (--database-timeout): "soon" from the command line is not a duration`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got %d:\n%v", len(want), len(lines), err)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d = %q, want it to start %q", i+1, lines[i], want[i])
		}
	}
}

func TestBoundFlagsShowTheirVariableAndTheCommandsDefaultInHelp(t *testing.T) {
	_, fs, err := bind(t, config.ServerSettings(), map[string]string{"LATCHKEY_PUBLIC_ADDR": "127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	help := fs.FlagUsages()
	for _, want := range []string{
		"--public-addr host:port",
		"(env LATCHKEY_PUBLIC_ADDR) (default 127.0.0.1:8080)",
		"--enforce-pkce true|false",
		"(env LATCHKEY_ENFORCE_PKCE) (default true)",
		"(env LATCHKEY_ISSUER)\n",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if strings.Contains(help, "LATCHKEY_SECRETS") {
		t.Errorf("help offers LATCHKEY_SECRETS, which has no flag:\n%s", help)
	}
}

func TestServerSettingsAreEverySettingWithAFlag(t *testing.T) {
	var want []string
	for _, s := range config.Settings() {
		if s.Flag != "" {
			want = append(want, s.Env)
		}
	}
	if got := config.ServerSettings(); !slices.Equal(got, want) {
		t.Fatalf("ServerSettings() = %q, want %q", got, want)
	}
}

func TestBindRefusesWhatIsNotAFlag(t *testing.T) {
	for _, c := range []struct {
		envs     []string
		defaults map[string]string
	}{
		{envs: []string{"LATCHKEY_SECRETS"}},
		{envs: []string{"LATCHKEY_NO_SUCH_THING"}},
		{defaults: map[string]string{"LATCHKEY_NO_SUCH_THING": "1"}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Bind(%q, %v) did not panic", c.envs, c.defaults)
				}
			}()
			config.Bind(pflag.NewFlagSet("test", pflag.ContinueOnError), c.envs, c.defaults)
		}()
	}
}
