package loadtest

import "syscall"

// childSysProcAttr: Windows gets no process group; children are stopped
// explicitly on exit.
func childSysProcAttr() *syscall.SysProcAttr { return nil }
