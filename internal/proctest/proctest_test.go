package proctest_test

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/proctest"
)

// childAddr, when set, makes the test binary a child process: it says
// hello, serves 200 at that address and exits 0 on SIGTERM, as a server
// stopped by an orchestrator should.
const childAddr = "PROCTEST_CHILD_ADDR"

func TestMain(m *testing.M) {
	if addr := os.Getenv(childAddr); addr != "" {
		serveUntilSIGTERM(addr)
		return
	}
	os.Exit(m.Run())
}

func serveUntilSIGTERM(addr string) {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		os.Exit(2)
	}
	println("hello from the child")
	go func() { _ = http.Serve(ln, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})) }()
	<-stop
	os.Exit(0)
}

func child(t *testing.T) (*exec.Cmd, string) {
	addr := proctest.FreeAddr(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childAddr+"="+addr)
	return cmd, addr
}

func TestAProcessIsReadyWhenItAnswersAndStopsOnSIGTERM(t *testing.T) {
	t.Parallel()
	cmd, addr := child(t)
	p := proctest.Start(t, "child", cmd)
	p.AwaitHTTP(t, "http://"+addr+"/", time.Minute)
	if !strings.Contains(p.Output().String(), "hello from the child") {
		t.Errorf("output = %q, want the child's greeting", p.Output())
	}
	if _, err := p.Stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("the child exited with %v after SIGTERM, want status 0", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("the stopped child still listens")
	}
}

func TestAProcessStillRunningIsStoppedWhenItsTestEnds(t *testing.T) {
	t.Parallel()
	var p *proctest.Process
	t.Run("test", func(t *testing.T) {
		cmd, addr := child(t)
		p = proctest.Start(t, "child", cmd)
		p.AwaitHTTP(t, "http://"+addr+"/", time.Minute)
	})
	select {
	case <-p.Exited():
	default:
		t.Fatal("the child still runs after its test ended")
	}
	if err := p.Err(); err != nil {
		t.Errorf("the child exited with %v, want status 0 after SIGTERM", err)
	}
}

func TestErrSaysHowTheProcessExited(t *testing.T) {
	t.Parallel()
	var exitErr *exec.ExitError
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-no-such-flag")
	p := proctest.Start(t, "child", cmd)
	<-p.Exited()
	if err := p.Err(); !errors.As(err, &exitErr) {
		t.Fatalf("Err = %v, want the exit status of a test binary given a bad flag", err)
	}
}

func TestOutputTailIsTheLastLines(t *testing.T) {
	var o proctest.Output
	_, _ = o.Write([]byte("one\ntwo\nthree\n"))
	if got := o.Tail(2); got != "two\nthree" {
		t.Errorf("Tail(2) = %q", got)
	}
	if got := o.Tail(9); got != "one\ntwo\nthree" {
		t.Errorf("Tail(9) = %q", got)
	}
}
