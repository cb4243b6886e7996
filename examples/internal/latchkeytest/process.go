package latchkeytest

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

// FreeAddr returns a loopback address with a port that nothing listens on
// now, for a process to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("latchkeytest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// process is a program the test started. It is stopped when the test ends:
// with SIGTERM, as an orchestrator stops it, then SIGKILL if it lingers.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
	err    error // how it exited; set before exited is closed
}

// startProcess runs bin with args and exactly the environment env, and
// stops it when the test ends.
func startProcess(t testing.TB, name, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &lockedBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...) // #nosec G204 -- a binary the test built
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("latchkeytest: starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s printed:\n%s", p.name, p.out.tail(60))
		}
	})
	return p
}

func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitReady waits until url answers 200, failing the test if the process
// exits first or is not ready within a minute.
func (p *process) waitReady(t testing.TB, url string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-p.exited:
			t.Fatalf("latchkeytest: %s exited before it was ready: %v\n%s", p.name, p.err, p.out.tail(30))
		default:
		}
		if resp, err := hc.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("latchkeytest: %s was not ready within a minute\n%s", p.name, p.out.tail(30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer collects a process's output, written from its own
// goroutines and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail is the last n lines written.
func (b *lockedBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
