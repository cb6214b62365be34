package pgdump

import "syscall"

// childAttr makes a client program die with acco: a SIGKILLed acco must
// not leave a pg_dump writing a dump nobody will clean up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
