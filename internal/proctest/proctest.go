// Package proctest runs programs for tests the way an operator runs them:
// as processes of their own, reached only over the network and by
// signals. It is the one copy of what cmd/latchkey's end-to-end tests and
// examples/internal/latchkeytest need for that: a free port to listen on,
// a process that is stopped when its test ends whatever happened, and what
// it printed, for failure messages.
//
//	cmd := exec.Command(bin, "serve")
//	cmd.Env = env
//	p := proctest.Start(t, "latchkey serve", cmd)
//	p.AwaitHTTP(t, admin+"/readyz", time.Minute)
//	...
//	if _, err := p.Stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
//		t.Fatalf("latchkey serve exited with %v after SIGTERM", err)
//	}
package proctest

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreeAddr returns a loopback address with a port that nothing listens on
// now, for a process to listen on. Knowing the address before the process
// starts lets a test put it in the process's settings (an issuer URL).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Output collects what a process prints (or a logger writes): the
// process's pipes write it from goroutines of their own while the test
// reads it. The zero value is ready to use.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Tail returns the last n lines written, for a failure message.
func (o *Output) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(o.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// alsoTo is w and out, or out alone if w is nil.
func alsoTo(w io.Writer, out *Output) io.Writer {
	if w == nil {
		return out
	}
	return io.MultiWriter(w, out)
}

// stopWait is how long a process still running when its test ends has to
// exit after SIGTERM before it is killed.
const stopWait = 10 * time.Second

// failureLines is how much of a process's output a failed test logs.
const failureLines = 60

// Process is a program a test started with Start.
type Process struct {
	name   string
	cmd    *exec.Cmd
	out    *Output
	exited chan struct{}
	err    error // how it exited; set before exited is closed
}

// Start starts cmd, named name in failure messages, and stops it when the
// test ends: with SIGTERM, as an orchestrator stops a program, then with
// SIGKILL if it is still running after a few seconds. A test that failed
// logs the end of what it printed.
//
// Output collects cmd's standard output and standard error, also where
// cmd sends them somewhere else as well (a log file kept as an artifact,
// an Output of their own to read one stream alone). A cmd whose
// SysProcAttr asks for a process group of its own (Setpgid) is signalled
// as a group, as a terminal signals what it runs: `go run` and the
// program it built alike.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{name: name, cmd: cmd, out: &Output{}, exited: make(chan struct{})}
	cmd.Stdout = alsoTo(cmd.Stdout, p.out)
	cmd.Stderr = alsoTo(cmd.Stderr, p.out)
	if cmd.WaitDelay == 0 {
		// A child the process leaves behind may hold its output open;
		// the process has exited all the same.
		cmd.WaitDelay = stopWait
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("proctest: starting %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(stopWait):
				_ = p.Signal(syscall.SIGKILL)
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("%s printed:\n%s", p.name, p.out.Tail(failureLines))
		}
	})
	return p
}

// Output is what the process printed, on standard output and standard
// error.
func (p *Process) Output() *Output { return p.out }

// PID is the process's ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process exited, as exec.Cmd.Wait reports it; nil until
// Exited is closed, and for an exit with status 0.
func (p *Process) Err() error {
	select {
	case <-p.exited:
		return p.err
	default:
		return nil
	}
}

// Signal sends sig to the process, or to its process group if it has one.
func (p *Process) Signal(sig syscall.Signal) error {
	if a := p.cmd.SysProcAttr; a != nil && a.Setpgid {
		return syscall.Kill(-p.cmd.Process.Pid, sig)
	}
	return p.cmd.Process.Signal(sig)
}

// Await calls ready until it returns true, failing the test if the process
// exits first or ready is still false after within. what says what is
// awaited, for the failure message.
func (p *Process) Await(t testing.TB, what string, within time.Duration, ready func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ready() {
		select {
		case <-p.exited:
			t.Fatalf("%s exited while the test waited for %s: %v\n%s", p.name, what, p.err, p.out.Tail(failureLines/2))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still waiting for %s after %v\n%s", p.name, what, within, p.out.Tail(failureLines/2))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// AwaitHTTP waits until url answers 200 (a readiness endpoint), as Await
// does.
func (p *Process) AwaitHTTP(t testing.TB, url string, within time.Duration) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	p.Await(t, "200 from "+url, within, func() bool {
		resp, err := hc.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Stop sends sig (SIGTERM as an orchestrator, SIGINT as Ctrl-C) and waits
// for the process to exit. It returns how long that took and how the
// process exited, which the caller judges; it kills the process and fails
// the test if it is still running after within.
func (p *Process) Stop(t testing.TB, sig syscall.Signal, within time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := p.Signal(sig); err != nil {
		t.Fatalf("proctest: signalling %s: %v", p.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(within):
		_ = p.Signal(syscall.SIGKILL)
		<-p.exited
		t.Fatalf("%s did not exit within %v of %v\n%s", p.name, within, sig, p.out.Tail(failureLines/2))
	}
	return time.Since(start), p.err
}
