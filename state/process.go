package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process identifies the process that holds a lock, precisely enough for
// another run on the same machine to prove that it is gone: the host name,
// the kernel's boot ID and PID namespace, the process ID and the time the
// process started (in clock ticks since boot), which tells a reused PID
// apart.
type Process struct {
	// Host is the host name.
	Host string `json:"host"`
	// BootID is /proc/sys/kernel/random/boot_id: it changes at each boot.
	BootID string `json:"boot_id"`
	// PIDNamespace is the PID namespace (/proc/self/ns/pid), so that a
	// process of another container sharing the host name and kernel is not
	// mistaken for a gone one.
	PIDNamespace string `json:"pid_namespace"`
	// PID is the process ID.
	PID int `json:"pid"`
	// Start is field 22 of /proc/PID/stat: when the process started, in
	// clock ticks after boot.
	Start uint64 `json:"start"`
}

// procRoot is where the proc file system is mounted.
const procRoot = "/proc"

// CurrentProcess describes this process. It returns an error where the
// proc file system does not say enough (not Linux): a lock then carries no
// process and is never taken over before its lease expires.
func CurrentProcess() (*Process, error) {
	return readProcess(procRoot, os.Getpid())
}

func readProcess(root string, pid int) (*Process, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return nil, fmt.Errorf("host name: %v", err)
	}
	boot, ns, err := machineIDs(root)
	if err != nil {
		return nil, err
	}
	start, _, err := processStart(root, pid)
	if err != nil {
		return nil, err
	}
	return &Process{Host: host, BootID: boot, PIDNamespace: ns, PID: pid, Start: start}, nil
}

// machineIDs reads the boot ID and this process's PID namespace.
func machineIDs(root string) (boot, ns string, err error) {
	b, err := os.ReadFile(filepath.Join(root, "sys/kernel/random/boot_id"))
	if err != nil {
		return "", "", fmt.Errorf("boot id: %w", err)
	}
	ns, err = os.Readlink(filepath.Join(root, "self/ns/pid"))
	if err != nil {
		return "", "", fmt.Errorf("pid namespace: %w", err)
	}
	boot = strings.TrimSpace(string(b))
	if boot == "" || ns == "" {
		return "", "", errors.New("empty boot id or pid namespace")
	}
	return boot, ns, nil
}

// processStart returns field 22 (starttime) of /proc/PID/stat and whether
// the process has exited (a zombie not yet reaped). The error wraps
// fs.ErrNotExist when there is no such process.
func processStart(root string, pid int) (start uint64, exited bool, err error) {
	data, err := os.ReadFile(filepath.Join(root, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false, fmt.Errorf("process %d: %w", pid, err)
	}
	return parseStat(string(data))
}

// parseStat reads the state and starttime fields of a /proc/PID/stat line.
// The second field, the command name in parentheses, may hold spaces and
// parentheses itself: the fields after it start after the last ')'.
func parseStat(stat string) (start uint64, exited bool, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false, errors.New("malformed /proc stat: no command name")
	}
	fields := strings.Fields(stat[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	const at = 22 - 3
	if len(fields) <= at {
		return 0, false, fmt.Errorf("malformed /proc stat: %d fields after the command name", len(fields))
	}
	start, err = strconv.ParseUint(fields[at], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("malformed /proc stat starttime %q: %w", fields[at], err)
	}
	// Z: zombie, X: dead.
	return start, fields[0] == "Z" || fields[0] == "X", nil
}

// String describes the process for people: pid PID on HOST.
func (p Process) String() string {
	return fmt.Sprintf("pid %d on %s", p.PID, p.Host)
}

// Gone reports whether the process p is provably gone: it ran on this
// machine since its last boot, in this PID namespace, and there is no
// process with its PID any more, or the one there started at another time
// (the PID was reused), or it has exited and is not yet reaped. Anything else (another host, another boot, another
// container, an unreadable /proc) is not proof.
func (p Process) Gone() bool {
	return p.goneIn(procRoot)
}

func (p Process) goneIn(root string) bool {
	if p.PID <= 0 || p.BootID == "" || p.PIDNamespace == "" {
		return false
	}
	host, err := os.Hostname()
	if err != nil || host != p.Host {
		return false
	}
	boot, ns, err := machineIDs(root)
	if err != nil || boot != p.BootID || ns != p.PIDNamespace {
		return false
	}
	start, exited, err := processStart(root, p.PID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return true
	case err != nil:
		return false
	}
	return exited || start != p.Start
}
