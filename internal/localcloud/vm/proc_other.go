//go:build !linux

package vm

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
