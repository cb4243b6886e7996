package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/config"
)

func TestMain(m *testing.M) { pgtest.Main(m, chromiumtest.Stop) }

const testSecret = "test-secret-test-secret-test-secret-0123"

// vars is an environment for a command run in-process.
type vars map[string]string

func (v vars) lookup(k string) (string, bool) { s, ok := v[k]; return s, ok }

// runCLI runs latchkey in-process as a user would from a shell, with vs as
// its whole environment and nothing on stdin.
func runCLI(ctx context.Context, vs vars, args ...string) (code int, stdout, stderr string) {
	return runCLIWithStdin(ctx, vs, "", args...)
}

// runCLIWithStdin is runCLI with stdin as what is piped in, the way a
// script hands latchkey a password.
func runCLIWithStdin(ctx context.Context, vs vars, stdin string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(ctx, args, env{stdout: &out, stderr: &errOut, lookupEnv: vs.lookup, stdin: strings.NewReader(stdin)})
	return code, out.String(), errOut.String()
}

// testConfig is the configuration a node gets from env and the defaults.
func testConfig(t *testing.T, env vars) config.Config {
	t.Helper()
	cfg, err := config.Parse(flag.NewFlagSet("test", flag.ContinueOnError), nil, env.lookup)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(config.NeedDatabase | config.NeedIssuer | config.NeedSecrets); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// loopback returns a listener on a free loopback port and the http URL for it.
func loopback(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestUnknownCommandGivesOneLineAndAHint(t *testing.T) {
	code, _, stderr := runCLI(t.Context(), vars{}, "frobnicate")
	if code != 2 || stderr != "latchkey: unknown command \"frobnicate\"\nRun 'latchkey --help'.\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = runCLI(t.Context(), vars{}, "serv")
	if code != 2 || !strings.Contains(stderr, "did you mean serve?") {
		t.Fatalf("a command one letter short: exit %d, stderr %q", code, stderr)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t.Context(), vars{}, "version")
	if code != 0 || !strings.HasPrefix(stdout, "latchkey ") {
		t.Fatalf("exit %d, stdout %q", code, stdout)
	}
}
