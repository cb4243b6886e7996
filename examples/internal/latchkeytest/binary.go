package latchkeytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey/internal/pgtest"
)

// binary is the latchkey executable, built once per test binary: building
// takes seconds, starting a node milliseconds.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// mainRan records that TestMain went through Main, which removes the
// binary when the tests are done.
var mainRan atomic.Bool

// Main runs the package's tests, then after (such as chromiumtest.Stop),
// then removes the latchkey binary it built and stops the test databases
// (pgtest.Main). Call it from TestMain:
//
//	func TestMain(m *testing.M) { latchkeytest.Main(m) }
func Main(m *testing.M, after ...func()) {
	mainRan.Store(true)
	pgtest.Main(m, append(after, func() {
		if binary.dir != "" {
			_ = os.RemoveAll(binary.dir)
		}
	})...)
}

// latchkeyBinary builds cmd/latchkey, once per test binary, with the go
// command as the Dockerfile does (static, -trimpath), and returns the
// executable's path. Building it alike everywhere lets the go command
// reuse one compilation of its packages.
func latchkeyBinary(t testing.TB) string {
	t.Helper()
	if !mainRan.Load() {
		t.Fatal("latchkeytest: the package's TestMain must call latchkeytest.Main, which cleans up after the tests: func TestMain(m *testing.M) { latchkeytest.Main(m) }")
	}
	binary.once.Do(func() {
		if binary.dir, binary.err = os.MkdirTemp("", "latchkeytest-"); binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "latchkey")
		cmd := exec.Command("go", "build", "-o", binary.path, latchkeyPackage) // #nosec G204 -- fixed arguments; the path is our temporary directory
		// The same settings as cmd/latchkey's tests and .ci/run's checks.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-trimpath")
		binary.out, binary.err = cmd.CombinedOutput()
	})
	if binary.err != nil {
		t.Fatalf("latchkeytest: go build %s: %v\n%s", latchkeyPackage, binary.err, binary.out)
	}
	return binary.path
}
