//go:build unix && !linux

package loadtest

import "syscall"

// childSysProcAttr puts a child in its own process group, so that a
// Ctrl-C at the terminal reaches only the loadtest, which then stops its
// children in order. (Only Linux can also tie a child's life to ours.)
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
