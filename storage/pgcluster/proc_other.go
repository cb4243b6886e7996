//go:build !linux

package pgcluster

import "syscall"

// serverProcAttr returns how the postmaster is started. Outside Linux there is
// no Pdeathsig, so a server whose owner is killed without running Stop keeps
// running until it is stopped by hand; Setpgid still keeps a terminal's
// Ctrl-C away from it so that we can stop it in order.
func serverProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
