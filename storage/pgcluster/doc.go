// Package pgcluster starts and stops a private, throwaway PostgreSQL server:
// for tests (through internal/pgtest) and for the `latchkey dev` command.
//
// # Lifecycle
//
// Start finds the server binaries (FindBinDir), runs initdb into Dir/data if
// no cluster is there yet, starts the postmaster and returns once a
// connection succeeds. Stop asks for a fast shutdown and waits for the exit.
// A later Start on the same Dir reuses the data, which is how latchkey dev
// keeps its state across restarts. Init and Clone let tests pay for initdb
// once and copy the result for every further cluster.
//
// # Why exec postgres directly
//
// pg_ctl daemonises: the server it starts is nobody's child, so nothing ties
// its life to ours, and waiting for it to exit means polling. Running the
// postmaster as our own child gives us its exit status, a way to wait for it
// (Cluster.Done), its output in Dir/postgres.log, and the guarantee below.
//
// # Why Pdeathsig
//
// A test binary can panic, time out or be killed with SIGKILL, and none of
// those run Stop. The server must still not outlive it: a stray postmaster
// holds its directory and memory until someone finds it. On Linux the
// postmaster is started with Pdeathsig set to SIGQUIT, so the kernel orders
// an immediate shutdown when its parent goes away, whatever the reason; the
// backends then exit on noticing the postmaster's death. The kernel ties
// Pdeathsig to the parent thread rather than the process, so the server is
// started from a goroutine locked to its OS thread that lives exactly as long
// as the server (see Cluster.launch). The postmaster also gets its own
// process group, so a Ctrl-C in a terminal reaches only our process, which
// then stops the server in order.
//
// # Why only a Unix socket
//
// The server listens on no TCP port (listen_addresses is empty), so any
// number of clusters, from parallel test binaries or a developer's own
// Postgres, run side by side without fighting over port 5432, and nothing
// outside the machine can reach them. Authentication is trust, which is safe
// only because of that. The socket lives in Dir/run, or, when that path would
// be too long for a Unix socket, in a directory under os.TempDir() named from
// a hash of Dir. Cluster.URL builds connection strings that point there.
//
// # Running as root
//
// Postgres refuses to run as root. When we are root, Dir is handed to the
// postgres system user and initdb and the server run as that user. Every
// directory above Dir must let that user through, which rules out places
// like /root; Start says so plainly instead of leaving the reason in the log.
package pgcluster
