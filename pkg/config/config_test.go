package config_test

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/pkg/config"
)

const (
	secretA = "secret-a-secret-a-secret-a-secret-a" // 35 bytes
	secretB = "secret-b-secret-b-secret-b-secret-b"
	dbURL   = "postgres://latchkey@db.internal:5432/latchkey"
)

// environ is a fake environment for Parse.
type environ map[string]string

func (e environ) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// parse runs Parse on a fresh flag set, as a command would.
func parse(t *testing.T, env environ, args ...string) (config.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return config.Parse(fs, args, env.lookup)
}

// load is what a command does: Parse, then Validate.
func load(t *testing.T, env environ, need config.Requirement, args ...string) error {
	t.Helper()
	c, err := parse(t, env, args...)
	if err != nil {
		return err
	}
	return c.Validate(need)
}

// defaults is the documented default of every setting.
func defaults() config.Config {
	return config.Config{
		PublicAddr:                ":8080",
		AdminAddr:                 "127.0.0.1:8081",
		AccessTokenLifespan:       15 * time.Minute,
		RefreshTokenLifespan:      720 * time.Hour,
		IDTokenLifespan:           time.Hour,
		AuthorizationCodeLifespan: 5 * time.Minute,
		LogLevel:                  slog.LevelInfo,
		LogFormat:                 "json",
		DatabaseMaxConns:          20,
		DatabaseTimeout:           5 * time.Second,
		KeysReloadInterval:        30 * time.Second,
		ShutdownTimeout:           15 * time.Second,
		EnforcePKCE:               true,
		PAR:                       true,
		PARLifespan:               time.Minute,
		ClientSecretGracePeriod:   24 * time.Hour,
		JanitorInterval:           10 * time.Minute,
		JanitorBatchSize:          1000,
		SessionIdleTimeout:        8 * time.Hour,
		SessionLifetime:           168 * time.Hour,
		MFAMaxFailures:            5,
		MFAFailureWindow:          15 * time.Minute,
		LoginMaxFailures:          5,
		LoginFailureWindow:        15 * time.Minute,
		LockoutFailures:           20,
		ClientRateLimit:           0,
		SignInRateLimit:           30,
		SignInAttemptLimit:        300,
		ReauthWindow:              10 * time.Minute,
		TrustedDeviceLifetime:     720 * time.Hour,
		AuthorizeRateLimit:        30,
		AuditRetention:            8760 * time.Hour,
		ClientAuthFailureLimit:    20,
		MailRequestLimit:          20,
		SMTPTimeout:               30 * time.Second,
		Notifications:             []string{"password", "email", "mfa", "recovery-codes", "new-browser"},
		SignUp:                    "off",
		EventLog:                  "none",
		WebhookTimeout:            10 * time.Second,
		Registration:              "off",
		RegistrationScopes:        []string{"openid", "profile", "email", "offline_access"},
		RegistrationRedirectURIs:  []string{"loopback"},
		RegistrationRateLimit:     20,
		RegistrationAddressLimit:  10,
		RegistrationMaxClients:    1000,
		DeviceCodeLifespan:        10 * time.Minute,
		DevicePollInterval:        5 * time.Second,
		DevicePendingLimit:        100,
		DeviceCodeFailures:        10,
		DeviceCodeGlobalFailures:  1000,
	}
}

// label is how an error line names the setting whose variable is env.
func label(t *testing.T, env string) string {
	t.Helper()
	for _, s := range config.Settings() {
		if s.Env == env {
			if s.Flag == "" {
				return env + ": "
			}
			return env + " (--" + s.Flag + "): "
		}
	}
	t.Fatalf("no setting %s", env)
	return ""
}

func TestDefaultsWhenNothingIsSet(t *testing.T) {
	c, err := parse(t, environ{})
	if err != nil {
		t.Fatal(err)
	}
	if want := defaults(); !reflect.DeepEqual(c, want) {
		t.Fatalf("Parse with nothing set =\n%+v\nwant\n%+v", c, want)
	}
	if err := c.Validate(0); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
}

func TestFlagBeatsEnvironmentBeatsDefault(t *testing.T) {
	tests := []struct {
		name string
		env  environ
		args []string
		want func(c *config.Config)
	}{
		{
			name: "environment overrides default",
			env: environ{
				"LATCHKEY_PUBLIC_ADDR":                 ":9000",
				"LATCHKEY_ACCESS_TOKEN_LIFESPAN":       "10m",
				"LATCHKEY_AUTHORIZATION_CODE_LIFESPAN": "90s",
				"LATCHKEY_LOG_LEVEL":                   "debug",
				"LATCHKEY_DATABASE_MAX_CONNS":          "50",
				"LATCHKEY_SHUTDOWN_TIMEOUT":            "0s",
			},
			want: func(c *config.Config) {
				c.PublicAddr = ":9000"
				c.AccessTokenLifespan = 10 * time.Minute
				c.AuthorizationCodeLifespan = 90 * time.Second
				c.LogLevel = slog.LevelDebug
				c.DatabaseMaxConns = 50
				c.ShutdownTimeout = 0
			},
		},
		{
			name: "flag overrides environment",
			env: environ{
				"LATCHKEY_ISSUER":                "https://env.example.com",
				"LATCHKEY_ACCESS_TOKEN_LIFESPAN": "10m",
				"LATCHKEY_LOG_FORMAT":            "text",
			},
			args: []string{"--issuer", "https://flag.example.com", "-access-token-lifespan=2m", "--log-format=json"},
			want: func(c *config.Config) {
				c.Issuer = "https://flag.example.com"
				c.AccessTokenLifespan = 2 * time.Minute
				c.LogFormat = "json"
			},
		},
		{
			name: "flag overrides default",
			args: []string{"--database-url", dbURL, "--keys-reload-interval", "5s"},
			want: func(c *config.Config) {
				c.DatabaseURL = dbURL
				c.KeysReloadInterval = 5 * time.Second
			},
		},
		{
			name: "flag equal to the default still overrides environment",
			env:  environ{"LATCHKEY_ADMIN_ADDR": "127.0.0.1:9999"},
			args: []string{"--admin-addr", "127.0.0.1:8081"},
			want: func(c *config.Config) {},
		},
		{
			name: "empty environment variable counts as unset",
			env:  environ{"LATCHKEY_PUBLIC_ADDR": "", "LATCHKEY_SECRETS": ""},
			want: func(c *config.Config) {},
		},
		{
			name: "explicit empty flag overrides environment",
			env:  environ{"LATCHKEY_ISSUER": "https://env.example.com"},
			args: []string{"--issuer="},
			want: func(c *config.Config) {},
		},
		{
			name: "secrets are split on commas, first one first",
			env:  environ{"LATCHKEY_SECRETS": secretB + ", " + secretA},
			want: func(c *config.Config) { c.Secrets = [][]byte{[]byte(secretB), []byte(secretA)} },
		},
		{
			name: "log level and format accept upper case",
			env:  environ{"LATCHKEY_LOG_LEVEL": "WARN", "LATCHKEY_LOG_FORMAT": "TEXT"},
			want: func(c *config.Config) {
				c.LogLevel = slog.LevelWarn
				c.LogFormat = "text"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestEachProblemNamesItsSetting(t *testing.T) {
	all := config.NeedDatabase | config.NeedIssuer | config.NeedSecrets
	tests := []struct {
		name string
		env  environ // merged over a valid environment; "" unsets
		args []string
		need config.Requirement
		// wantEnv is the setting the single error line must name, or "" if
		// the configuration is valid.
		wantEnv string
	}{
		{name: "valid", need: all},

		{name: "missing database URL", env: environ{"LATCHKEY_DATABASE_URL": ""}, need: all, wantEnv: "LATCHKEY_DATABASE_URL"},
		{name: "database URL not needed", env: environ{"LATCHKEY_DATABASE_URL": ""}, need: config.NeedIssuer | config.NeedSecrets},
		{name: "bad database URL", env: environ{"LATCHKEY_DATABASE_URL": "postgres://latchkey@db:port/latchkey"}, wantEnv: "LATCHKEY_DATABASE_URL"},
		{name: "database key=value string", env: environ{"LATCHKEY_DATABASE_URL": "host=db user=latchkey dbname=latchkey"}, need: all},

		{name: "missing issuer", env: environ{"LATCHKEY_ISSUER": ""}, need: all, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer not needed", env: environ{"LATCHKEY_ISSUER": ""}, need: config.NeedDatabase},
		{name: "issuer under a path", env: environ{"LATCHKEY_ISSUER": "https://example.com/auth"}, need: all},
		{name: "issuer with a port", env: environ{"LATCHKEY_ISSUER": "https://id.example.com:8443"}, need: all},
		{name: "issuer scheme not https", env: environ{"LATCHKEY_ISSUER": "ftp://id.example.com"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer http on a public host", env: environ{"LATCHKEY_ISSUER": "http://id.example.com"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer http on a private address", env: environ{"LATCHKEY_ISSUER": "http://10.0.0.1"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer http on localhost", env: environ{"LATCHKEY_ISSUER": "http://localhost:8080"}, need: all},
		{name: "issuer http on 127.0.0.1", env: environ{"LATCHKEY_ISSUER": "http://127.0.0.1:8080"}, need: all},
		{name: "issuer http on 127.0.0.0/8", env: environ{"LATCHKEY_ISSUER": "http://127.1.2.3"}, need: all},
		{name: "issuer http on ::1", env: environ{"LATCHKEY_ISSUER": "http://[::1]:8080"}, need: all},
		{name: "issuer http on a host named like localhost", env: environ{"LATCHKEY_ISSUER": "http://localhost.example.com"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer http on localhost spelt with a long s", env: environ{"LATCHKEY_ISSUER": "http://localhoſt:8080"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer http on LOCALHOST", env: environ{"LATCHKEY_ISSUER": "http://LOCALHOST:8080"}, need: all},
		{name: "issuer relative", env: environ{"LATCHKEY_ISSUER": "id.example.com"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer trailing slash", env: environ{"LATCHKEY_ISSUER": "https://id.example.com/"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer query", env: environ{"LATCHKEY_ISSUER": "https://id.example.com?tenant=a"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer empty query", env: environ{"LATCHKEY_ISSUER": "https://id.example.com?"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer fragment", env: environ{"LATCHKEY_ISSUER": "https://id.example.com#a"}, wantEnv: "LATCHKEY_ISSUER"},
		{name: "issuer user info", env: environ{"LATCHKEY_ISSUER": "https://admin@id.example.com"}, wantEnv: "LATCHKEY_ISSUER"},

		{name: "missing secrets", env: environ{"LATCHKEY_SECRETS": ""}, need: all, wantEnv: "LATCHKEY_SECRETS"},
		{name: "secrets not needed", env: environ{"LATCHKEY_SECRETS": ""}, need: config.NeedDatabase},
		{name: "short secret", env: environ{"LATCHKEY_SECRETS": secretA + ",short"}, wantEnv: "LATCHKEY_SECRETS"},
		{name: "empty secret entry", env: environ{"LATCHKEY_SECRETS": secretA + ",," + secretB}, wantEnv: "LATCHKEY_SECRETS"},
		{name: "trailing comma in secrets", env: environ{"LATCHKEY_SECRETS": secretA + ","}, wantEnv: "LATCHKEY_SECRETS"},
		{name: "duplicate secret", env: environ{"LATCHKEY_SECRETS": secretA + "," + secretB + "," + secretA}, wantEnv: "LATCHKEY_SECRETS"},
		{name: "exactly 32 bytes", env: environ{"LATCHKEY_SECRETS": strings.Repeat("x", 32)}, need: all},

		{name: "bad duration in environment", env: environ{"LATCHKEY_ID_TOKEN_LIFESPAN": "an hour"}, wantEnv: "LATCHKEY_ID_TOKEN_LIFESPAN"},
		{name: "duration without a unit", env: environ{"LATCHKEY_SHUTDOWN_TIMEOUT": "15"}, wantEnv: "LATCHKEY_SHUTDOWN_TIMEOUT"},
		{name: "bad duration in flag", args: []string{"--database-timeout", "fast"}, wantEnv: "LATCHKEY_DATABASE_TIMEOUT"},
		{name: "zero access token lifespan", env: environ{"LATCHKEY_ACCESS_TOKEN_LIFESPAN": "0s"}, wantEnv: "LATCHKEY_ACCESS_TOKEN_LIFESPAN"},
		{name: "negative ID token lifespan", env: environ{"LATCHKEY_ID_TOKEN_LIFESPAN": "-1h"}, wantEnv: "LATCHKEY_ID_TOKEN_LIFESPAN"},
		{name: "zero refresh token lifespan", env: environ{"LATCHKEY_REFRESH_TOKEN_LIFESPAN": "0s"}, wantEnv: "LATCHKEY_REFRESH_TOKEN_LIFESPAN"},
		{name: "zero code lifespan", env: environ{"LATCHKEY_AUTHORIZATION_CODE_LIFESPAN": "0s"}, wantEnv: "LATCHKEY_AUTHORIZATION_CODE_LIFESPAN"},
		{name: "code lifespan 10m", env: environ{"LATCHKEY_AUTHORIZATION_CODE_LIFESPAN": "10m"}, need: all},
		{name: "code lifespan 11m", env: environ{"LATCHKEY_AUTHORIZATION_CODE_LIFESPAN": "11m"}, wantEnv: "LATCHKEY_AUTHORIZATION_CODE_LIFESPAN"},
		{name: "access token lifespan 25h", env: environ{"LATCHKEY_ACCESS_TOKEN_LIFESPAN": "25h"}, wantEnv: "LATCHKEY_ACCESS_TOKEN_LIFESPAN"},
		{name: "refresh shorter than access", env: environ{"LATCHKEY_ACCESS_TOKEN_LIFESPAN": "1h", "LATCHKEY_REFRESH_TOKEN_LIFESPAN": "30m"}, wantEnv: "LATCHKEY_REFRESH_TOKEN_LIFESPAN"},
		{name: "refresh equal to access", env: environ{"LATCHKEY_ACCESS_TOKEN_LIFESPAN": "1h", "LATCHKEY_REFRESH_TOKEN_LIFESPAN": "1h"}, wantEnv: "LATCHKEY_REFRESH_TOKEN_LIFESPAN"},

		{name: "bad log level", env: environ{"LATCHKEY_LOG_LEVEL": "verbose"}, wantEnv: "LATCHKEY_LOG_LEVEL"},
		{name: "bad log format", env: environ{"LATCHKEY_LOG_FORMAT": "xml"}, wantEnv: "LATCHKEY_LOG_FORMAT"},

		{name: "address without a port", env: environ{"LATCHKEY_PUBLIC_ADDR": "8080"}, wantEnv: "LATCHKEY_PUBLIC_ADDR"},
		{name: "address with a named port", env: environ{"LATCHKEY_PUBLIC_ADDR": ":http"}, wantEnv: "LATCHKEY_PUBLIC_ADDR"},
		{name: "address port out of range", env: environ{"LATCHKEY_ADMIN_ADDR": "127.0.0.1:65536"}, wantEnv: "LATCHKEY_ADMIN_ADDR"},
		{name: "IPv6 address", env: environ{"LATCHKEY_ADMIN_ADDR": "[::1]:8081"}, need: all},
		{name: "same addresses", env: environ{"LATCHKEY_PUBLIC_ADDR": "127.0.0.1:8081"}, wantEnv: "LATCHKEY_ADMIN_ADDR"},
		{name: "both on an ephemeral port", env: environ{"LATCHKEY_PUBLIC_ADDR": "127.0.0.1:0", "LATCHKEY_ADMIN_ADDR": "127.0.0.1:0"}, need: all},

		{name: "no database connections", env: environ{"LATCHKEY_DATABASE_MAX_CONNS": "0"}, wantEnv: "LATCHKEY_DATABASE_MAX_CONNS"},
		{name: "too many database connections", env: environ{"LATCHKEY_DATABASE_MAX_CONNS": "1001"}, wantEnv: "LATCHKEY_DATABASE_MAX_CONNS"},
		{name: "database connections not a number", env: environ{"LATCHKEY_DATABASE_MAX_CONNS": "lots"}, wantEnv: "LATCHKEY_DATABASE_MAX_CONNS"},
		{name: "database connections beyond int32", env: environ{"LATCHKEY_DATABASE_MAX_CONNS": "99999999999"}, wantEnv: "LATCHKEY_DATABASE_MAX_CONNS"},
		{name: "zero database timeout", env: environ{"LATCHKEY_DATABASE_TIMEOUT": "0s"}, wantEnv: "LATCHKEY_DATABASE_TIMEOUT"},
		{name: "database timeout over 5m", env: environ{"LATCHKEY_DATABASE_TIMEOUT": "6m"}, wantEnv: "LATCHKEY_DATABASE_TIMEOUT"},
		{name: "keys reload under 1s", env: environ{"LATCHKEY_KEYS_RELOAD_INTERVAL": "500ms"}, wantEnv: "LATCHKEY_KEYS_RELOAD_INTERVAL"},
		{name: "negative shutdown timeout", env: environ{"LATCHKEY_SHUTDOWN_TIMEOUT": "-1s"}, wantEnv: "LATCHKEY_SHUTDOWN_TIMEOUT"},

		{name: "PKCE not a boolean", env: environ{"LATCHKEY_ENFORCE_PKCE": "sometimes"}, wantEnv: "LATCHKEY_ENFORCE_PKCE"},
		{name: "PKCE off", env: environ{"LATCHKEY_ENFORCE_PKCE": "false"}, need: all},
		{name: "negative secret grace period", env: environ{"LATCHKEY_CLIENT_SECRET_GRACE_PERIOD": "-1h"}, wantEnv: "LATCHKEY_CLIENT_SECRET_GRACE_PERIOD"},
		{name: "secret grace period over 30 days", env: environ{"LATCHKEY_CLIENT_SECRET_GRACE_PERIOD": "721h"}, wantEnv: "LATCHKEY_CLIENT_SECRET_GRACE_PERIOD"},
		{name: "no secret grace period", env: environ{"LATCHKEY_CLIENT_SECRET_GRACE_PERIOD": "0s"}, need: all},
		{name: "janitor off", env: environ{"LATCHKEY_JANITOR_INTERVAL": "0s"}, need: all},
		{name: "janitor in a loop", env: environ{"LATCHKEY_JANITOR_INTERVAL": "10ms"}, wantEnv: "LATCHKEY_JANITOR_INTERVAL"},
		{name: "janitor batch of none", env: environ{"LATCHKEY_JANITOR_BATCH_SIZE": "0"}, wantEnv: "LATCHKEY_JANITOR_BATCH_SIZE"},
		{name: "session idle timeout of seconds", env: environ{"LATCHKEY_SESSION_IDLE_TIMEOUT": "30s"}, wantEnv: "LATCHKEY_SESSION_IDLE_TIMEOUT"},
		{name: "session lifetime over 90 days", env: environ{"LATCHKEY_SESSION_LIFETIME": "2161h"}, wantEnv: "LATCHKEY_SESSION_LIFETIME"},
		{name: "no wrong codes allowed", env: environ{"LATCHKEY_MFA_MAX_FAILURES": "0"}, wantEnv: "LATCHKEY_MFA_MAX_FAILURES"},
		{name: "failure window of seconds", env: environ{"LATCHKEY_MFA_FAILURE_WINDOW": "30s"}, wantEnv: "LATCHKEY_MFA_FAILURE_WINDOW"},
		{name: "failure window of a day", env: environ{"LATCHKEY_LOGIN_FAILURE_WINDOW": "24h"}, wantEnv: "LATCHKEY_LOGIN_FAILURE_WINDOW"},
		{name: "no wrong passwords allowed", env: environ{"LATCHKEY_LOGIN_MAX_FAILURES": "0"}, wantEnv: "LATCHKEY_LOGIN_MAX_FAILURES"},
		{name: "more failures than NIST allows", env: environ{"LATCHKEY_LOCKOUT_FAILURES": "101"}, wantEnv: "LATCHKEY_LOCKOUT_FAILURES"},
		{name: "negative rate limit", env: environ{"LATCHKEY_CLIENT_RATE_LIMIT": "-1"}, wantEnv: "LATCHKEY_CLIENT_RATE_LIMIT"},
		{name: "no sign-in rate limit", env: environ{"LATCHKEY_SIGNIN_RATE_LIMIT": "0"}},
		{name: "trusted proxies", env: environ{"LATCHKEY_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,2001:db8::/32"}},
		{name: "negative authorize rate limit", env: environ{"LATCHKEY_AUTHORIZE_RATE_LIMIT": "-1"}, wantEnv: "LATCHKEY_AUTHORIZE_RATE_LIMIT"},
		{name: "no authorize rate limit", env: environ{"LATCHKEY_AUTHORIZE_RATE_LIMIT": "0"}},
		{name: "negative client authentication failure limit", env: environ{"LATCHKEY_CLIENT_AUTH_FAILURE_LIMIT": "-1"}, wantEnv: "LATCHKEY_CLIENT_AUTH_FAILURE_LIMIT"},
		{name: "no client authentication failure limit", env: environ{"LATCHKEY_CLIENT_AUTH_FAILURE_LIMIT": "0"}},
		{name: "audit events kept for ever", env: environ{"LATCHKEY_AUDIT_RETENTION": "0"}},
		{name: "audit events kept a day", env: environ{"LATCHKEY_AUDIT_RETENTION": "24h"}},
		{name: "audit events kept minutes", env: environ{"LATCHKEY_AUDIT_RETENTION": "24m"}, wantEnv: "LATCHKEY_AUDIT_RETENTION"},
		{name: "negative audit retention", env: environ{"LATCHKEY_AUDIT_RETENTION": "-1h"}, wantEnv: "LATCHKEY_AUDIT_RETENTION"},
		{name: "trusted proxy that is not an address", env: environ{"LATCHKEY_TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"}, wantEnv: "LATCHKEY_TRUSTED_PROXIES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := environ{
				"LATCHKEY_DATABASE_URL": dbURL,
				"LATCHKEY_ISSUER":       "https://id.example.com",
				"LATCHKEY_SECRETS":      secretA,
			}
			for k, v := range tt.env {
				env[k] = v
			}
			err := load(t, env, tt.need, tt.args...)
			if tt.wantEnv == "" {
				if err != nil {
					t.Fatalf("want no error, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %s, got none", tt.wantEnv)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], label(t, tt.wantEnv)) {
				t.Fatalf("want one line starting %q, got:\n%v", label(t, tt.wantEnv), err)
			}
		})
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	c := defaults()
	c.Issuer = "http://id.example.com/"
	c.Secrets = [][]byte{[]byte("short"), nil}
	c.AuthorizationCodeLifespan = time.Hour
	c.LogFormat = "xml"
	c.DatabaseMaxConns = 0

	err := c.Validate(config.NeedDatabase)
	if err == nil {
		t.Fatal("want errors, got none")
	}
	want := []string{
		"LATCHKEY_DATABASE_URL", // missing
		"LATCHKEY_ISSUER",       // http on a public host
		"LATCHKEY_ISSUER",       // trailing slash
		"LATCHKEY_SECRETS",      // short
		"LATCHKEY_SECRETS",      // empty
		"LATCHKEY_AUTHORIZATION_CODE_LIFESPAN",
		"LATCHKEY_LOG_FORMAT",
		"LATCHKEY_DATABASE_MAX_CONNS",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got %d:\n%v", len(want), len(lines), err)
	}
	for i, env := range want {
		if !strings.HasPrefix(lines[i], label(t, env)) {
			t.Errorf("line %d = %q, want it to start %q", i+1, lines[i], label(t, env))
		}
	}
}

func TestParseReportsEveryUnreadableValueAtOnce(t *testing.T) {
	env := environ{
		"LATCHKEY_ACCESS_TOKEN_LIFESPAN": "15 minutes",
		"LATCHKEY_LOG_LEVEL":             "loud",
	}
	_, err := parse(t, env, "--database-max-conns", "twenty", "--shutdown-timeout", "soon")
	if err == nil {
		t.Fatal("want errors, got none")
	}
	want := []string{
		`LATCHKEY_ACCESS_TOKEN_LIFESPAN (--access-token-lifespan): "15 minutes" from the environment is not a duration`,
		`LATCHKEY_LOG_LEVEL (--log-level): "loud" from the environment is not a log level`,
		`LATCHKEY_DATABASE_MAX_CONNS (--database-max-conns): "twenty" from the command line is not a whole number`,
		`LATCHKEY_SHUTDOWN_TIMEOUT (--shutdown-timeout): "soon" from the command line is not a duration`,
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

func TestErrorsNeverShowSecretsOrTheDatabasePassword(t *testing.T) {
	const password = "hunter2-correct-horse"
	const shortSecret = "tiny-but-secret"
	tests := []struct {
		name string
		env  environ
	}{
		{"database URL that does not parse", environ{"LATCHKEY_DATABASE_URL": "postgres://latchkey:" + password + "@db:notaport/latchkey"}},
		{"key=value string that does not parse", environ{"LATCHKEY_DATABASE_URL": "host=db password=" + password + " port=notaport"}},
		{"issuer with a password", environ{"LATCHKEY_ISSUER": "https://admin:" + password + "@id.example.com"}},
		{"short secret", environ{"LATCHKEY_SECRETS": secretA + "," + shortSecret}},
		{"duplicate secret", environ{"LATCHKEY_SECRETS": secretA + "," + secretA}},
		{"secrets alongside a value that does not parse", environ{"LATCHKEY_SECRETS": shortSecret, "LATCHKEY_LOG_LEVEL": "loud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := load(t, tt.env, config.NeedDatabase|config.NeedIssuer|config.NeedSecrets)
			if err == nil {
				t.Fatal("want an error, got none")
			}
			for _, secret := range []string{password, shortSecret, secretA} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("error shows a secret:\n%v", err)
				}
			}
		})
	}
}

func TestCallerFlagsAndArgumentsAreKept(t *testing.T) {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	migrate := fs.Bool("migrate", false, "apply migrations first")
	c, err := config.Parse(fs, []string{"--migrate", "--log-level", "debug", "list", "extra"}, environ{}.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if !*migrate {
		t.Error("the caller's own flag was not parsed")
	}
	if c.LogLevel != slog.LevelDebug {
		t.Errorf("LogLevel = %v, want debug", c.LogLevel)
	}
	if got, want := fs.Args(), []string{"list", "extra"}; !slices.Equal(got, want) {
		t.Errorf("fs.Args() = %q, want %q", got, want)
	}
}

func TestHelpListsEveryFlagWithItsVariable(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	_, err := config.Parse(fs, []string{"-h"}, environ{}.lookup)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-h) error = %v, want flag.ErrHelp", err)
	}
	for _, s := range config.Settings() {
		if s.Flag == "" {
			if strings.Contains(out.String(), s.Env) {
				t.Errorf("help mentions %s, which has no flag", s.Env)
			}
			continue
		}
		if !strings.Contains(out.String(), "-"+s.Flag+" ") || !strings.Contains(out.String(), "env "+s.Env+")") {
			t.Errorf("help does not show -%s with %s:\n%s", s.Flag, s.Env, out.String())
		}
	}
}

func TestSettingsMatchTheFlagsParseRegisters(t *testing.T) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Bool("migrate", false, "a caller's own flag")
	if _, err := config.Parse(fs, nil, environ{}.lookup); err != nil {
		t.Fatal(err)
	}

	listed := map[string]config.Setting{}
	for _, s := range config.Settings() {
		if !strings.HasPrefix(s.Env, "LATCHKEY_") || s.Description == "" {
			t.Errorf("setting %+v needs a LATCHKEY_ name and a description", s)
		}
		if s.Flag != "" {
			listed[s.Flag] = s
		}
	}
	registered := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "migrate" {
			return
		}
		registered[f.Name] = true
		s, ok := listed[f.Name]
		if !ok {
			t.Errorf("flag --%s is not in Settings()", f.Name)
			return
		}
		if f.DefValue != s.Default {
			t.Errorf("flag --%s defaults to %q, Settings() says %q", f.Name, f.DefValue, s.Default)
		}
		if !strings.Contains(f.Usage, s.Env) {
			t.Errorf("flag --%s usage %q does not mention %s", f.Name, f.Usage, s.Env)
		}
	})
	for name := range listed {
		if !registered[name] {
			t.Errorf("Settings() lists --%s, but Parse does not register it", name)
		}
	}
}

func TestSecretsCannotBeGivenAsAFlag(t *testing.T) {
	for _, s := range config.Settings() {
		if s.Env == "LATCHKEY_SECRETS" && s.Flag != "" {
			t.Fatalf("LATCHKEY_SECRETS has flag --%s; a flag would show the secrets in ps", s.Flag)
		}
	}
	if _, err := parse(t, environ{}, "--secrets", secretA); err == nil {
		t.Fatal("Parse accepted --secrets")
	}
}

// docsPath is the operator's configuration reference, relative to this
// package.
const docsPath = "../../docs/configuration.md"

func TestDocsDescribeEverySetting(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	docs := string(b)
	for _, s := range config.Settings() {
		// Each setting has one table row: | `ENV` | `--flag` | `default` | ...
		var row string
		for line := range strings.Lines(docs) {
			if strings.HasPrefix(line, "| `"+s.Env+"` |") {
				row = line
			}
		}
		if row == "" {
			t.Errorf("%s has no row in the table in %s", s.Env, docsPath)
			continue
		}
		cells := strings.Split(row, " | ")
		if len(cells) < 4 {
			t.Errorf("%s row is malformed: %q", s.Env, row)
			continue
		}
		wantFlag, wantDefault := "none (environment only)", "none"
		if s.Flag != "" {
			wantFlag = "`--" + s.Flag + "`"
		}
		if s.Default != "" {
			wantDefault = "`" + s.Default + "`"
		}
		if cells[1] != wantFlag {
			t.Errorf("%s row gives flag %s, want %s", s.Env, cells[1], wantFlag)
		}
		if cells[2] != wantDefault {
			t.Errorf("%s row gives default %s, want %s", s.Env, cells[2], wantDefault)
		}
	}
}

func TestDocsMentionOnlyRealSettings(t *testing.T) {
	b, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, s := range config.Settings() {
		known[s.Env] = true
		if s.Flag != "" {
			known["--"+s.Flag] = true
		}
	}
	for _, name := range regexp.MustCompile(`LATCHKEY_[A-Z_]+`).FindAllString(string(b), -1) {
		if !known[name] {
			t.Errorf("%s mentions %s, which is not a setting", docsPath, name)
		}
	}
	for _, name := range regexp.MustCompile("`(--[a-z-]+)").FindAllStringSubmatch(string(b), -1) {
		if !known[name[1]] {
			t.Errorf("%s mentions flag %s, which is not a setting", docsPath, name[1])
		}
	}
}
