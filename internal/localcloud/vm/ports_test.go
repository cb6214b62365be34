package vm

import (
	"net"
	"strings"
	"testing"
)

// TestForwardedPorts checks the host side of the forwards: free ports on
// 127.0.0.1 by default, the guest's own ports on HostIP with FixedPorts, and
// a clear error when a fixed port is taken.
func TestForwardedPorts(t *testing.T) {
	netdev := func(v *VM) string {
		args := v.qemuArgs(AccelTCG)
		for i, a := range args {
			if a == "-netdev" {
				return args[i+1]
			}
		}
		t.Fatalf("no -netdev in %v", args)
		return ""
	}

	def := &VM{opts: Options{Name: "t", HostIP: "127.0.0.1", ExtraHostFwd: []int{8080}}}
	if err := def.pickPorts(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(def.SSHAddr(), "127.0.0.1:") || def.SSHAddr() == "127.0.0.1:22" || def.HostAddr(8080) == "127.0.0.1:8080" {
		t.Errorf("default forwards: ssh %s, 8080 %s", def.SSHAddr(), def.HostAddr(8080))
	}

	if l, err := net.Listen("tcp", "127.0.0.77:22"); err != nil {
		t.Skipf("cannot listen on port 22 here (not root?): %v", err)
	} else {
		l.Close()
	}
	fixed := &VM{opts: Options{Name: "t", HostIP: "127.0.0.77", FixedPorts: true, ExtraHostFwd: []int{18083}}}
	if err := fixed.pickPorts(); err != nil {
		t.Fatal(err)
	}
	if fixed.SSHAddr() != "127.0.0.77:22" || fixed.HostAddr(18083) != "127.0.0.77:18083" || fixed.HostAddr(1883) != "" {
		t.Errorf("fixed forwards: ssh %s, 18083 %s, 1883 %q", fixed.SSHAddr(), fixed.HostAddr(18083), fixed.HostAddr(1883))
	}
	if nd := netdev(fixed); !strings.Contains(nd, "hostfwd=tcp:127.0.0.77:22-:22") || !strings.Contains(nd, "hostfwd=tcp:127.0.0.77:18083-:18083") {
		t.Errorf("netdev = %s", nd)
	}

	l, err := net.Listen("tcp", "127.0.0.78:18083")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.78: %v", err)
	}
	defer l.Close()
	taken := &VM{opts: Options{Name: "t", HostIP: "127.0.0.78", FixedPorts: true, ExtraHostFwd: []int{18083}}}
	if err := taken.pickPorts(); err == nil || !strings.Contains(err.Error(), "18083") {
		t.Errorf("a taken fixed port: %v", err)
	}
}
