package pgcluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// socketName is the file Postgres creates in its socket directory for
	// port 5432. The port only names the file: nothing listens on TCP.
	socketName = ".s.PGSQL.5432"
	// maxSocketPath keeps a margin below the 107 bytes a Unix socket path may
	// hold on Linux (sun_path is 108 bytes with its terminating NUL).
	maxSocketPath = 100
	// logTailLines is how much of the server log an error quotes.
	logTailLines = 20
	// killGrace is how long Stop waits after an immediate shutdown before it
	// resorts to SIGKILL.
	killGrace = 5 * time.Second
)

// Options says where a cluster lives and how careful it is with its data.
type Options struct {
	// Dir holds everything: Dir/data (PGDATA), Dir/run (the socket
	// directory) and Dir/postgres.log. It is created if missing. A cluster
	// already in Dir/data is reused, so latchkey dev keeps its data across
	// restarts. When we run as root, Dir is handed to the postgres user.
	Dir string
	// Durable keeps Postgres's default crash safety. Without it, as tests
	// want, the server runs with fsync, synchronous_commit and
	// full_page_writes off: much faster, and a machine crash loses the data.
	Durable bool
}

// Cluster is a running private PostgreSQL server reachable only through a
// Unix socket. The superuser is postgres, and it needs no password.
type Cluster struct {
	dir     string
	sockDir string
	// ownSockDir says sockDir lies outside dir and Stop removes it.
	ownSockDir bool
	proc       *os.Process

	// exited is closed when the postmaster has exited; waitErr is its
	// status, written before the close.
	exited  chan struct{}
	waitErr error

	stopMu  sync.Mutex
	stopped bool
	stopErr error
}

// Init creates dir and an initialised, stopped cluster in dir/data, unless
// dir/data already holds one. Start does this itself; Init exists so that a
// cluster can be prepared once and then copied with Clone.
func Init(ctx context.Context, dir string) error {
	bin, acct, dir, err := prepare(dir)
	if err != nil {
		return err
	}
	return initdb(ctx, bin, dir, acct)
}

// Start starts a cluster in opts.Dir, creating it first if needed, and
// returns once the server accepts connections. The server stops when Stop is
// called or, on Linux, when this process ends in any way. If it cannot start,
// the error quotes the end of Dir/postgres.log.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin, acct, dir, err := prepare(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := initdb(ctx, bin, dir, acct); err != nil {
		return nil, err
	}
	sockDir, ownSockDir, err := socketDir(dir, acct)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600) // #nosec G304 -- the cluster's own log file, in the directory the caller gave the cluster
	if err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	defer logFile.Close()
	if err := acct.own(logPath); err != nil {
		return nil, err
	}
	// Errors quote only what this start wrote, not earlier runs' lines.
	logStart, err := logFile.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}

	args := []string{
		"-D", filepath.Join(dir, "data"),
		"-k", sockDir,
		"-p", "5432",
		"-c", "listen_addresses=",
		"-c", "unix_socket_permissions=0777",
	}
	if !opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...) // #nosec G204 -- the postgres binary found in PATH or /usr/lib/postgresql, with arguments built here
	cmd.Dir = dir
	cmd.Env = serverEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = serverProcAttr(acct.cred)

	c := &Cluster{dir: dir, sockDir: sockDir, ownSockDir: ownSockDir, exited: make(chan struct{})}
	if err := c.launch(cmd); err != nil {
		return nil, fmt.Errorf("pgcluster: start: %w", err)
	}
	if err := c.waitReady(ctx); err != nil {
		// Stop first so that the log holds everything the server said.
		stopCtx, cancel := context.WithTimeout(context.Background(), killGrace)
		defer cancel()
		_ = c.Stop(stopCtx)
		return nil, fmt.Errorf("pgcluster: start: %w%s", err, logTail(logPath, logStart))
	}
	return c, nil
}

// launch starts cmd from a goroutine locked to its OS thread, which then
// waits for the server to exit. The kernel sends Pdeathsig when the thread
// that forked the child exits, not when the process does. Without the lock,
// the forking thread would go back to Go's pool, and any goroutine that later
// ran on it, locked it and returned would make the runtime end the thread,
// and with it the server, while we still use it. The goroutine never
// unlocks: it returns, ending the thread, only after the server has exited.
func (c *Cluster) launch(cmd *exec.Cmd) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		c.proc = cmd.Process
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	return <-started
}

// waitReady polls until the server accepts a connection, it exits, or ctx
// ends. A connection alone could reach another server already running on the
// same Dir (ours would then fail on its lock file a moment later), so it only
// counts once postmaster.pid names our process.
func (c *Cluster) waitReady(ctx context.Context) error {
	delay := 5 * time.Millisecond
	lastErr := errors.New("postmaster.pid does not name our server yet")
	for {
		if c.ownsPIDFile() {
			attemptCtx, cancel := context.WithTimeout(ctx, time.Second)
			conn, err := pgx.Connect(attemptCtx, c.URL("postgres"))
			cancel()
			if err == nil {
				_ = conn.Close(ctx)
				return nil
			}
			lastErr = err
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited before accepting connections (%v)", c.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections in time: %w (last attempt: %v)", ctx.Err(), lastErr)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// ownsPIDFile reports whether Dir/data/postmaster.pid, which Postgres
// writes once it holds the data directory, starts with our server's PID.
func (c *Cluster) ownsPIDFile() bool {
	b, err := os.ReadFile(filepath.Join(c.dir, "data", "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(first) == strconv.Itoa(c.proc.Pid)
}

// URL returns a connection URL for database on this cluster, as user
// postgres over the Unix socket, for pgx.ParseConfig and pgxpool.New.
func (c *Cluster) URL(database string) string {
	return "postgres://postgres@/" + uriEscape(database) + "?host=" + uriEscape(c.sockDir) + "&sslmode=disable"
}

// uriEscape percent-encodes s for a connection URI. pgx decodes URIs the way
// libpq does, which knows only %XX (a "+" stays a plus, unlike in
// url.QueryEscape), so everything but unreserved characters and "/" is
// encoded; slashes are legal there and keep socket paths readable in logs.
func uriEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9',
			ch == '-', ch == '.', ch == '_', ch == '~', ch == '/':
			b.WriteByte(ch)
		default:
			fmt.Fprintf(&b, "%%%02X", ch)
		}
	}
	return b.String()
}

// Dir returns the directory the cluster lives in, as an absolute path.
func (c *Cluster) Dir() string { return c.dir }

// PID returns the process ID of the postmaster.
func (c *Cluster) PID() int { return c.proc.Pid }

// Done returns a channel that is closed once the server has exited, whether
// through Stop or on its own, so that an owner can notice a crashed server.
func (c *Cluster) Done() <-chan struct{} { return c.exited }

// Stop shuts the server down and waits for it to exit. It asks for a fast
// shutdown (SIGINT: disconnect clients, checkpoint, exit); if ctx ends first
// it escalates to an immediate shutdown (SIGQUIT, leaving crash recovery to
// the next start) and then to SIGKILL. It reports a server that had already
// exited with an error. Calling Stop again returns the first call's result.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.stopped {
		return c.stopErr
	}
	c.stopErr = c.stop(ctx)
	c.stopped = true
	if c.ownSockDir {
		// Best effort: the server removed its socket, so this is empty.
		_ = os.Remove(c.sockDir)
	}
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("pgcluster: stop: postgres had already exited: %w", c.waitErr)
		}
		return nil
	default:
	}
	// Signalling an exited process fails harmlessly; the select below sees
	// the exit either way.
	_ = c.proc.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("pgcluster: stop: %w", c.waitErr)
		}
		return nil
	case <-ctx.Done():
	}
	_ = c.proc.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(killGrace):
		// The backends notice the postmaster's death and exit on their own.
		_ = c.proc.Kill()
		<-c.exited
	}
	return fmt.Errorf("pgcluster: stop: fast shutdown did not finish, forced an immediate one: %w", ctx.Err())
}

// prepare finds the binaries and the server's user and makes dir ready for
// that user: absolute, existing, owned by it and reachable by it.
func prepare(dir string) (bin string, acct account, abs string, err error) {
	if dir == "" {
		return "", account{}, "", errors.New("pgcluster: no directory given")
	}
	if bin, err = FindBinDir(); err != nil {
		return "", account{}, "", err
	}
	if acct, err = serverAccount(); err != nil {
		return "", account{}, "", err
	}
	if abs, err = filepath.Abs(dir); err != nil {
		return "", account{}, "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", account{}, "", fmt.Errorf("pgcluster: %w", err)
	}
	if err := acct.checkAncestors(abs); err != nil {
		return "", account{}, "", err
	}
	if err := acct.own(abs); err != nil {
		return "", account{}, "", err
	}
	return bin, acct, abs, nil
}

// initdb creates the cluster in dir/data unless one is there. It initialises
// dir/data.init and renames it into place, because initdb writes PG_VERSION
// early: an initdb killed half-way must not leave a directory that the next
// start would take for a finished cluster.
func initdb(ctx context.Context, bin, dir string, acct account) error {
	data := filepath.Join(dir, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
		return nil
	}
	tmp := filepath.Join(dir, "data.init")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), // #nosec G204 -- initdb found in PATH or /usr/lib/postgresql, with arguments built here
		"-D", tmp,
		"-U", "postgres",
		"--auth=trust",
		"-E", "UTF8",
		"--locale=C.UTF-8",
		"-N", // no fsync: a crash during initdb just means running it again
	)
	cmd.Dir = dir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: acct.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w%s", err, tail(out, "initdb's output"))
	}
	if err := os.Rename(tmp, data); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w", err)
	}
	return nil
}

// socketDir creates the directory for the server's socket: dir/run, unless
// that path is too long for a Unix socket. Then it uses a directory in
// os.TempDir() named from a hash of dir, so that the same cluster always gets
// the same socket and different clusters never share one.
func socketDir(dir string, acct account) (path string, outside bool, err error) {
	run := filepath.Join(dir, "run")
	if len(filepath.Join(run, socketName)) <= maxSocketPath {
		if err := os.Mkdir(run, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return "", false, fmt.Errorf("pgcluster: socket directory: %w", err)
		}
		return run, false, acct.own(run)
	}
	sum := sha256.Sum256([]byte(dir))
	short := filepath.Join(os.TempDir(), "latchkey-pg-"+hex.EncodeToString(sum[:8]))
	if len(filepath.Join(short, socketName)) > maxSocketPath {
		return "", false, fmt.Errorf("pgcluster: socket directory: %s and the temporary directory %s are both too deep for a Unix socket path", dir, os.TempDir())
	}
	switch err := os.Mkdir(short, 0o700); {
	case err == nil:
		if err := acct.checkAncestors(short); err != nil {
			return "", false, err
		}
		return short, true, acct.own(short)
	case !errors.Is(err, os.ErrExist):
		return "", false, fmt.Errorf("pgcluster: socket directory: %w", err)
	}
	// A left-over directory from an earlier run is fine, but only if it is
	// ours: in a shared /tmp someone else could have made it to catch logins.
	fi, err := os.Lstat(short)
	if err != nil {
		return "", false, fmt.Errorf("pgcluster: socket directory: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != acct.uid || fi.Mode().Perm()&0o022 != 0 {
		return "", false, fmt.Errorf("pgcluster: socket directory %s exists but is not a private directory of the server's user; remove it", short)
	}
	return short, true, nil
}

// serverEnv is our environment without PG* variables: PGPORT, say, would
// move the socket away from where URL points, and PGDATA would be ignored at
// best.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// logTail returns the last lines the server wrote to its log from offset on,
// formatted to end an error message.
func logTail(path string, offset int64) string {
	f, err := os.Open(path) // #nosec G304 -- the cluster's own log file
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	out, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	return tail(out, path)
}

// tail formats the last logTailLines lines of out, naming where they came
// from, or returns "" if out is empty.
func tail(out []byte, from string) string {
	out = bytes.TrimRight(out, "\n")
	if len(out) == 0 {
		return ""
	}
	lines := bytes.Split(out, []byte("\n"))
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return fmt.Sprintf("\nlast lines of %s:\n%s", from, bytes.Join(lines, []byte("\n")))
}
