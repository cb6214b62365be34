package vm

import "syscall"

// sysProcAttr has QEMU killed when the process that started it dies, so a
// test binary that crashes or is killed leaves no VM behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
