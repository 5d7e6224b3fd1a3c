package loadtest

import "syscall"

// childSysProcAttr puts a child in its own process group, so that a
// Ctrl-C at the terminal reaches only the loadtest, which then stops its
// children in order, and has the kernel kill the child should the
// loadtest itself die without cleaning up (SIGKILL, a crash).
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
