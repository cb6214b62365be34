package state

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		start      uint64
		exited     bool
		bad        bool
	}{
		{"Plain", "42 (acco) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0 0", 123456, false, false},
		{"Spaces and parens in the name", "42 (a) b (c) R 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 99 0 0", 99, false, false},
		{"Zombie", "42 (acco) Z 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 7 0 0", 7, true, false},
		{"No name", "42 acco S 1", 0, false, true},
		{"Short", "42 (acco) S 1 2 3", 0, false, true},
		{"Not a number", "42 (acco) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 x 0 0", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, exited, err := parseStat(tc.stat)
			if tc.bad {
				if err == nil {
					t.Fatalf("parseStat(%q) = %d, nil; want an error", tc.stat, start)
				}
				return
			}
			if err != nil || start != tc.start || exited != tc.exited {
				t.Errorf("parseStat = %d, %v, %v; want %d, %v", start, exited, err, tc.start, tc.exited)
			}
		})
	}
}

// fakeProc writes a proc tree with a boot ID, a PID namespace and the
// given processes (pid -> stat line).
func fakeProc(t *testing.T, boot, ns string, procs map[int]string) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "sys/kernel/random"), 0o700))
	must(os.WriteFile(filepath.Join(root, "sys/kernel/random/boot_id"), []byte(boot+"\n"), 0o600))
	must(os.MkdirAll(filepath.Join(root, "self/ns"), 0o700))
	must(os.Symlink(ns, filepath.Join(root, "self/ns/pid")))
	for pid, stat := range procs {
		must(os.MkdirAll(filepath.Join(root, strconv.Itoa(pid)), 0o700))
		must(os.WriteFile(filepath.Join(root, strconv.Itoa(pid), "stat"), []byte(stat), 0o600))
	}
	return root
}

func TestProcessGone(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	stat := func(state string, start int) string {
		return "42 (acco) " + state + " 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 " + strconv.Itoa(start) + " 0 0"
	}
	root := fakeProc(t, "boot-1", "pid:[4026531836]", map[int]string{42: stat("S", 1000), 43: stat("Z", 2000)})
	holder := Process{Host: host, BootID: "boot-1", PIDNamespace: "pid:[4026531836]", PID: 42, Start: 1000}
	with := func(f func(*Process)) Process { p := holder; f(&p); return p }
	for _, tc := range []struct {
		name string
		p    Process
		gone bool
	}{
		{"Running", holder, false},
		{"No such pid", with(func(p *Process) { p.PID = 44 }), true},
		{"Pid reused", with(func(p *Process) { p.Start = 999 }), true},
		{"Exited, not reaped", with(func(p *Process) { p.PID, p.Start = 43, 2000 }), true},
		{"Another host", with(func(p *Process) { p.Host += "-other"; p.PID = 44 }), false},
		{"Another boot", with(func(p *Process) { p.BootID = "boot-0"; p.PID = 44 }), false},
		{"Another container", with(func(p *Process) { p.PIDNamespace = "pid:[1]"; p.PID = 44 }), false},
		{"Nothing recorded", Process{Host: host, PID: 44}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.goneIn(root); got != tc.gone {
				t.Errorf("goneIn(%+v) = %v, want %v", tc.p, got, tc.gone)
			}
		})
	}
}

func TestCurrentProcessAndAChildThatDied(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	me, err := CurrentProcess()
	if err != nil {
		t.Fatal(err)
	}
	if me.Gone() {
		t.Errorf("this process %+v is reported gone", me)
	}
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	child, err := readProcess(procRoot, cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if child.Gone() {
		t.Errorf("running child %+v is reported gone", child)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !child.Gone() {
		t.Errorf("killed child %+v is not reported gone", child)
	}
}
