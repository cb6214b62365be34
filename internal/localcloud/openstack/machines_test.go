package openstack

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
)

// fakeMachines records what the cloud asks and reports the states a test
// sets.
type fakeMachines struct {
	mu     sync.Mutex
	calls  []string
	specs  map[string]MachineSpec
	states map[string]MachineStatus
}

func newFakeMachines() *fakeMachines {
	return &fakeMachines{specs: map[string]MachineSpec{}, states: map[string]MachineStatus{}}
}

func (f *fakeMachines) record(call string, spec MachineSpec, st MachineState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	if spec.ServerID != "" {
		f.specs[spec.ServerID] = spec
	}
	f.states[spec.ServerID] = MachineStatus{State: st}
}

func (f *fakeMachines) set(id string, st MachineStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[id] = st
}

func (f *fakeMachines) Create(spec MachineSpec) { f.record("create", spec, MachineBuilding) }
func (f *fakeMachines) Status(id string) MachineStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st, ok := f.states[id]; ok {
		return st
	}
	return MachineStatus{State: MachineMissing}
}
func (f *fakeMachines) ConsoleOutput(id string) (string, error) {
	return "console of " + id + "\nline 2\n", nil
}
func (f *fakeMachines) Reboot(spec MachineSpec, hard bool) {
	if hard {
		f.record("hard-reboot", spec, MachineHardRebooting)
	} else {
		f.record("reboot", spec, MachineRebooting)
	}
}
func (f *fakeMachines) Stop(id string)         { f.record("stop", MachineSpec{ServerID: id}, MachineStopping) }
func (f *fakeMachines) Start(spec MachineSpec) { f.record("start", spec, MachineStarting) }
func (f *fakeMachines) Delete(id string) {
	f.record("delete", MachineSpec{ServerID: id}, MachineMissing)
}
func (f *fakeMachines) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}
func (f *fakeMachines) Spec(id string) MachineSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.specs[id]
}

// TestMachines checks that with Config.Machines a server's status, console
// and actions follow its machine, and that Ext-Net hands out loopback
// addresses unique across regions.
func TestMachines(t *testing.T) {
	ctx := t.Context()
	fm := newFakeMachines()
	e := newTestEnv(t, Config{Machines: fm})
	p := project(t, "test")
	pc := e.login(t, p, false)
	gra, sbg := serviceClients(t, pc, "GRA11"), serviceClients(t, pc, "SBG5")
	for _, cl := range []clients{gra, sbg} {
		if _, err := keypairs.Create(ctx, cl.compute, keypairs.CreateOpts{Name: "deploy", PublicKey: testPublicKey}).Extract(); err != nil {
			t.Fatal(err)
		}
	}

	// Ext-Net's subnet is the loopback range.
	netID, _, _ := lookup(t, gra, "Debian 12", "d2-2")
	pages, err := subnets.List(gra.network, subnets.ListOpts{NetworkID: netID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sns, err := subnets.ExtractSubnets(pages)
	if err != nil || len(sns) != 1 {
		t.Fatalf("subnets: %v %v", sns, err)
	}
	if sn := sns[0]; sn.CIDR != "127.0.0.0/24" || sn.GatewayIP != "127.0.0.1" || sn.AllocationPools[0].Start != "127.0.0.2" {
		t.Errorf("Ext-Net subnet = %s gw %s pools %v", sn.CIDR, sn.GatewayIP, sn.AllocationPools)
	}

	status := func(cl clients, id string) *servers.Server {
		t.Helper()
		s, err := servers.Get(ctx, cl.compute, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := createServer(t, gra, "app-a", "default", nil)
	b := createServer(t, sbg, "app-b", "default", nil)
	if got := status(gra, a.ID); got.Status != "BUILD" {
		t.Errorf("new server is %s, want BUILD", got.Status)
	}
	// The address is there from the start, unique across regions.
	if ip := waitAddress(t, gra, a.ID); ip != "127.0.0.2" {
		t.Errorf("first server's address %s, want 127.0.0.2", ip)
	}
	if ip := waitAddress(t, sbg, b.ID); ip != "127.0.0.3" {
		t.Errorf("second server's address (other region) %s, want 127.0.0.3", ip)
	}
	if spec := fm.Spec(a.ID); spec.IPv4 != "127.0.0.2" || spec.Name != "app-a" || spec.AuthorizedKey != testPublicKey {
		t.Errorf("machine spec = %+v", spec)
	}
	if _, err := servers.ShowConsoleOutput(ctx, gra.compute, a.ID, servers.ShowConsoleOutputOpts{}).Extract(); statusOf(err) != 409 {
		t.Errorf("console while BUILD: %v, want 409", err)
	}

	fm.set(a.ID, MachineStatus{State: MachineRunning})
	if got := status(gra, a.ID); got.Status != "ACTIVE" {
		t.Errorf("running machine: server %s, want ACTIVE", got.Status)
	}
	out, err := servers.ShowConsoleOutput(ctx, gra.compute, a.ID, servers.ShowConsoleOutputOpts{Length: 1}).Extract()
	if err != nil || out != "line 2\n" {
		t.Errorf("console output (last line) = %q, %v", out, err)
	}

	steps := []struct {
		action func() error
		shown  string
		done   MachineState
		want   string
	}{
		{func() error {
			return servers.Reboot(ctx, gra.compute, a.ID, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
		}, "REBOOT", MachineRunning, "ACTIVE"},
		{func() error {
			return servers.Reboot(ctx, gra.compute, a.ID, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr()
		}, "HARD_REBOOT", MachineRunning, "ACTIVE"},
		{func() error { return servers.Stop(ctx, gra.compute, a.ID).ExtractErr() }, "ACTIVE", MachineStopped, "SHUTOFF"},
		{func() error { return servers.Start(ctx, gra.compute, a.ID).ExtractErr() }, "SHUTOFF", MachineRunning, "ACTIVE"},
	}
	for i, st := range steps {
		if err := st.action(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := status(gra, a.ID); got.Status != st.shown {
			t.Errorf("step %d: during: %s, want %s", i, got.Status, st.shown)
		}
		fm.set(a.ID, MachineStatus{State: st.done})
		if got := status(gra, a.ID); got.Status != st.want {
			t.Errorf("step %d: after: %s, want %s", i, got.Status, st.want)
		}
	}

	// A machine that fails puts its server in ERROR with its fault.
	fm.set(b.ID, MachineStatus{State: MachineFailed, Fault: "vm app-b: qemu exited"})
	if got := status(sbg, b.ID); got.Status != "ERROR" || !strings.Contains(got.Fault.Message, "qemu exited") {
		t.Errorf("failed machine: %s %+v", got.Status, got.Fault)
	}
	// A machine gone with a restart shows SHUTOFF; os-start boots it.
	fm.set(b.ID, MachineStatus{State: MachineMissing})
	if got := status(sbg, b.ID); got.Status != "SHUTOFF" {
		t.Errorf("missing machine: %s, want SHUTOFF", got.Status)
	}
	if err := servers.Start(ctx, sbg.compute, b.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{a.ID, b.ID} {
		cl := gra
		if id == b.ID {
			cl = sbg
		}
		if err := servers.Delete(ctx, cl.compute, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"create", "create", "reboot", "hard-reboot", "stop", "start", "start", "delete", "delete"}
	if got := fm.Calls(); !slices.Equal(got, want) {
		t.Errorf("machine calls = %v, want %v", got, want)
	}
	// Addresses are free again.
	c := createServer(t, gra, "app-c", "default", nil)
	if ip := waitAddress(t, gra, c.ID); ip != "127.0.0.2" {
		t.Errorf("address after deletes: %s, want 127.0.0.2", ip)
	}
}
