// Package openidclient runs openid-client, the Node.js relying-party
// library (pinned in package.json), from Go tests, so that Latchkey is
// tested against a client it did not write, the way its users' apps call
// it.
//
// A scenario is a small ES module in this directory (register.mjs, say):
// it reads one JSON value from stdin, calls openid-client, and writes one
// JSON value to stdout. A flow that needs a browser in the middle is two
// scenarios, with the browser driven from Go between them and the state
// (code verifier, state) carried through the JSON.
//
//	var out struct{ ClientID string `json:"client_id"` }
//	openidclient.Run(t, "register.mjs", map[string]any{"issuer": iss}, &out)
//
// Node.js is needed. The library is installed on first use (npm ci in
// this directory, from the lockfile), so that the README's test command
// is all a fresh machine needs; without Node.js or the npm registry a test
// fails under CI=true and is skipped elsewhere, as for Chromium.
package openidclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeout bounds one scenario, so that a hung request fails the test
// rather than the whole run.
const Timeout = 60 * time.Second

// here is this package's directory, where the scenarios and node_modules
// are, once found.
var here struct {
	once sync.Once
	dir  string
}

// dir returns this package's directory. A test runs in its own package's
// directory, somewhere in the module: the module's root is the nearest
// directory above with go.mod. (The source file's own path cannot be used:
// CI builds with -trimpath, which leaves only the import path.)
func dir() string {
	here.once.Do(func() {
		d, err := os.Getwd()
		if err != nil {
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				here.dir = filepath.Join(d, "internal", "openidclient")
				return
			}
			parent := filepath.Dir(d)
			if parent == d {
				return
			}
			d = parent
		}
	})
	return here.dir
}

// ErrMissing says what a machine lacks to run the scenarios.
var ErrMissing = errors.New("node and openid-client are needed (npm ci in internal/openidclient)")

// install remembers the outcome of installing the library in this test
// binary.
var install struct {
	once sync.Once
	err  error
}

// Available reports whether node and the pinned library are installed,
// installing the library if node and npm are there and it is not.
func Available() error {
	if _, err := exec.LookPath("node"); err != nil {
		return ErrMissing
	}
	install.once.Do(func() {
		if dir() == "" {
			install.err = fmt.Errorf("%w: no go.mod above the test's directory", ErrMissing)
			return
		}
		install.err = installLibrary()
	})
	return install.err
}

// installLibrary runs npm ci unless the library is there. Test binaries of
// several packages run at once, so an exclusive lock on a file beside
// the lockfile lets one install while the others wait.
func installLibrary() error {
	marker := filepath.Join(dir(), "node_modules", "openid-client", "package.json")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(dir(), ".install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMissing, err)
	}
	defer func() { _ = lock.Close() }()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("%w: %v", ErrMissing, err)
	}
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: npm ci: %v: %s", ErrMissing, err, bytes.TrimSpace(out))
	}
	return nil
}

// Need fails the test under CI=true and skips it elsewhere when the
// scenarios cannot run here: CI must not pass by testing nothing.
func Need(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("interoperability tests: %v", err)
		}
		t.Skipf("skipping the openid-client test: %v", err)
	}
}

// Run runs the scenario with input on its stdin and decodes its stdout into
// out (when out is not nil). A scenario that exits non-zero fails the test
// with what it wrote to stderr.
func Run(t testing.TB, scenario string, input, out any) {
	t.Helper()
	if err := Try(t, scenario, input, out); err != nil {
		t.Fatalf("openid-client %s: %v", scenario, err)
	}
}

// Try is Run for a scenario that is expected to fail: it returns the
// scenario's error (what it wrote to stderr, which is the library's error
// message) instead of failing the test.
func Try(t testing.TB, scenario string, input, out any) error {
	t.Helper()
	Need(t)
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatalf("openidclient: input: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	// #nosec G204 -- the scenario is a file name from the tests themselves.
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir(), scenario))
	cmd.Dir = dir()
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return errors.New(string(bytes.TrimSpace(stderr.Bytes())) + " (" + err.Error() + ")")
	}
	if out != nil {
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("openidclient: %s wrote %q: %v", scenario, stdout.String(), err)
		}
	}
	return nil
}
