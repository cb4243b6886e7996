package pgcluster_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage/pgcluster"
)

const (
	// ownerHelperEnv makes the test binary act as a cluster's owner that
	// dies: its value says how ("panic", "exit" or "hang" to be killed).
	ownerHelperEnv = "LATCHKEY_PGCLUSTER_OWNER_HELPER"
	// ownerDirEnv names the directory of the helper's cluster.
	ownerDirEnv = "LATCHKEY_PGCLUSTER_OWNER_DIR"
	// pidPrefix starts the line on which the helper reports the postmaster.
	pidPrefix = "postmaster-pid "
	// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
	prSetChildSubreaper = 36
)

// runOwnerHelper acts as the owner a test kills, if the environment asks for
// it, and reports whether it did. It runs from TestMain, before any test.
func runOwnerHelper() bool {
	how := os.Getenv(ownerHelperEnv)
	if how == "" {
		return false
	}
	c, err := pgcluster.Start(context.Background(), pgcluster.Options{Dir: os.Getenv(ownerDirEnv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Printf("%s%d\n", pidPrefix, c.PID())
	switch how {
	case "panic":
		panic("owner panics without stopping its cluster")
	case "exit":
		os.Exit(1)
	case "hang":
		select {}
	}
	return true
}

// TestServerDoesNotOutliveOwner runs this test binary as a cluster's owner
// and ends it in the ways a test binary ends badly. The postmaster and its
// backends must be gone soon after, without anyone calling Stop.
func TestServerDoesNotOutliveOwner(t *testing.T) {
	t.Parallel()
	// As a subreaper this process adopts the orphaned postmaster and can reap
	// it at once. Otherwise it would stay a zombie until PID 1 reaps it, which
	// in some containers is late or never, and kill(pid, 0) cannot tell a
	// zombie from a live process.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	t.Cleanup(func() { syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0) })

	for _, how := range []string{"panic", "exit", "hang"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			dir := clonedDir(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), ownerHelperEnv+"="+how, ownerDirEnv+"="+dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := 0
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if s, ok := strings.CutPrefix(sc.Text(), pidPrefix); ok {
					pid, _ = strconv.Atoi(s)
					break
				}
			}
			if pid == 0 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("helper reported no postmaster PID; stderr:\n%s", stderr.String())
			}
			if how == "hang" {
				cmd.Process.Kill()
			}
			for sc.Scan() {
			}
			cmd.Wait()

			began := time.Now()
			if err := waitGone(pid, 10*time.Second); err != nil {
				t.Fatalf("%v; helper stderr:\n%s", err, stderr.String())
			}
			t.Logf("postmaster %d gone %v after its owner", pid, time.Since(began))
		})
	}
}

// waitGone waits until no process of the postmaster's process group exists,
// reaping those that this subreaper adopted.
func waitGone(pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var ws syscall.WaitStatus
		// -pid: every process in the group the postmaster leads.
		for {
			wpid, err := syscall.Wait4(-pid, &ws, syscall.WNOHANG, nil)
			if wpid <= 0 || err != nil {
				break
			}
		}
		if err := syscall.Kill(-pid, 0); err == syscall.ESRCH {
			if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
				return fmt.Errorf("postmaster %d: kill(pid, 0) = %v, want ESRCH", pid, err)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group of postmaster %d still exists %v after its owner died", pid, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
