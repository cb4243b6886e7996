package pgcluster

import "syscall"

// serverProcAttr returns how the postmaster is started. Pdeathsig makes the
// kernel send it SIGQUIT (immediate shutdown) when the thread that started it
// exits, which covers every way our process can end: a panic, os.Exit, a
// test binary's timeout, or SIGKILL. Setpgid puts it in its own process group
// so a Ctrl-C in a terminal reaches only us, and we stop it in order. Go sets
// Pdeathsig after switching to cred, so the setuid does not clear it.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
}
