package localcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/accoreboot/acco/internal/localcloud/openstack"
	"github.com/accoreboot/acco/internal/localcloud/vm"
)

// DefaultVMPorts are the guest ports forwarded, besides 22, from a VM's
// Ext-Net address to the VM: MQTT (1883, 8883), EMQX's WebSocket listeners
// (8083, 8084) and dashboard (18083), the Node backend (3000) and
// PowerSync (8080).
func DefaultVMPorts() []int { return []int{1883, 8883, 8083, 8084, 3000, 8080, 18083} }

// vmsDir is the directory, under the cloud's, of the VMs' work directories
// (one per server ID: overlay disk, console.log, qemu.stderr).
const vmsDir = "vms"

// vmMachines runs a QEMU VM (package vm) behind every Nova server: the
// openstack.Machines of a cloud started with Options.VMs.
type vmMachines struct {
	dir      string // <Dir>/vms
	imageDir string
	ports    []int
	memoryMB int
	log      io.Writer

	ctx    context.Context // ended by close: every operation stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the machines' workers

	mu       sync.Mutex
	machines map[string]*machine
	closed   bool
}

// machine is the VM of one server, with a worker that runs the operations
// asked of it one after the other.
type machine struct {
	id     string
	dir    string
	ctx    context.Context // ended by Delete and by close
	cancel context.CancelFunc

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []func()
	ended  bool // no more operations: the worker exits once the queue is empty
	seq    int  // bumped by every operation asked; only the last one sets the outcome
	state  openstack.MachineState
	fault  string
	vm     *vm.VM
	remove bool // Delete: the worker removes dir on exit
}

func newVMMachines(dir, imageDir string, ports []int, memoryMB int, log io.Writer) *vmMachines {
	ctx, cancel := context.WithCancel(context.Background())
	return &vmMachines{
		dir: dir, imageDir: imageDir, ports: ports, memoryMB: memoryMB, log: log,
		ctx: ctx, cancel: cancel, machines: map[string]*machine{},
	}
}

func (ms *vmMachines) logf(format string, args ...any) {
	fmt.Fprintf(ms.log, "local cloud: "+format+"\n", args...)
}

// get returns the machine of a server, creating an idle one (state missing)
// when there is none; nil once the cloud is closing.
func (ms *vmMachines) get(id string) *machine {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.closed {
		return nil
	}
	if m := ms.machines[id]; m != nil {
		return m
	}
	ctx, cancel := context.WithCancel(ms.ctx)
	m := &machine{id: id, dir: filepath.Join(ms.dir, id), ctx: ctx, cancel: cancel, state: openstack.MachineMissing}
	m.cond = sync.NewCond(&m.mu)
	ms.machines[id] = m
	ms.wg.Add(1)
	go func() {
		defer ms.wg.Done()
		ms.work(m)
	}()
	return m
}

// work runs a machine's operations in order until it is ended, then kills
// its VM (and removes its directory after a Delete).
func (ms *vmMachines) work(m *machine) {
	for {
		m.mu.Lock()
		for len(m.queue) == 0 && !m.ended {
			m.cond.Wait()
		}
		if len(m.queue) == 0 {
			v, remove := m.vm, m.remove
			m.vm = nil
			m.mu.Unlock()
			if v != nil {
				v.Kill()
			}
			if remove {
				if err := os.RemoveAll(m.dir); err != nil {
					ms.logf("remove the VM of server %s: %v", m.id, err)
				}
			}
			return
		}
		op := m.queue[0]
		m.queue = m.queue[1:]
		m.mu.Unlock()
		op()
	}
}

// ask sets the state a machine shows while an operation runs and queues
// the operation; the operation's result becomes the machine's state unless
// another operation was asked in the meantime.
func (ms *vmMachines) ask(m *machine, shown openstack.MachineState, op func(ctx context.Context) (openstack.MachineState, error)) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended {
		return
	}
	m.seq++
	seq := m.seq
	m.state, m.fault = shown, ""
	m.queue = append(m.queue, func() {
		state, err := op(m.ctx)
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.seq != seq {
			return
		}
		m.state, m.fault = state, ""
		if err != nil {
			ms.logf("VM of server %s: %v", m.id, err)
			m.state, m.fault = openstack.MachineFailed, firstLine(err.Error())
		}
	})
	m.cond.Signal()
}

// firstLine is the first line of s (a fault message; the whole error, with
// the console's tail, goes to the log).
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// current returns the VM of a machine, or nil.
func (m *machine) current() *vm.VM {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.vm
}

// boot boots a new VM for the machine, on its kept disk when keepDisk.
func (ms *vmMachines) boot(ctx context.Context, m *machine, spec openstack.MachineSpec, keepDisk bool) error {
	if ip := net.ParseIP(spec.IPv4); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("server %s has no loopback Ext-Net address (%q) to bind its VM to: create it while the local cloud runs with VMs", spec.ServerID, spec.IPv4)
	}
	if old := m.current(); old != nil {
		old.Kill()
	}
	if !keepDisk {
		// A fresh disk prints new host keys: drop the old boots' console.
		_ = os.Remove(filepath.Join(m.dir, vm.ConsoleFile))
	}
	v, err := vm.Boot(ctx, vm.Options{
		ImageDir:      ms.imageDir,
		WorkDir:       m.dir,
		Name:          spec.Name,
		MemoryMB:      ms.memoryMB,
		AuthorizedKey: spec.AuthorizedKey,
		ExtraHostFwd:  ms.ports,
		HostIP:        spec.IPv4,
		FixedPorts:    true,
		KeepDisk:      keepDisk,
		Logf:          ms.logf,
	})
	if err != nil {
		return fmt.Errorf("boot the VM of server %s: %w", spec.ServerID, err)
	}
	m.mu.Lock()
	m.vm = v
	m.mu.Unlock()
	return nil
}

// Create implements openstack.Machines.
func (ms *vmMachines) Create(spec openstack.MachineSpec) {
	m := ms.get(spec.ServerID)
	ms.ask(m, openstack.MachineBuilding, func(ctx context.Context) (openstack.MachineState, error) {
		return openstack.MachineRunning, ms.boot(ctx, m, spec, false)
	})
}

// Status implements openstack.Machines.
func (ms *vmMachines) Status(serverID string) openstack.MachineStatus {
	ms.mu.Lock()
	m := ms.machines[serverID]
	ms.mu.Unlock()
	if m == nil {
		return openstack.MachineStatus{State: openstack.MachineMissing}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return openstack.MachineStatus{State: m.state, Fault: m.fault}
}

// ConsoleOutput implements openstack.Machines: the console log kept in the
// VM's directory, there even while the VM is stopped or gone with a restart.
func (ms *vmMachines) ConsoleOutput(serverID string) (string, error) {
	b, err := os.ReadFile(filepath.Join(ms.dir, serverID, vm.ConsoleFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the console of server %s: %w", serverID, err)
	}
	return string(b), nil
}

// Reboot implements openstack.Machines.
func (ms *vmMachines) Reboot(spec openstack.MachineSpec, hard bool) {
	m := ms.get(spec.ServerID)
	shown := openstack.MachineRebooting
	if hard {
		shown = openstack.MachineHardRebooting
	}
	ms.ask(m, shown, func(ctx context.Context) (openstack.MachineState, error) {
		v := m.current()
		switch {
		case v == nil:
			return openstack.MachineRunning, ms.boot(ctx, m, spec, true)
		case hard:
			return openstack.MachineRunning, v.PowerCycle(ctx)
		}
		if err := v.Reboot(ctx); err != nil {
			return openstack.MachineFailed, fmt.Errorf("reboot the VM of server %s: %w", spec.ServerID, err)
		}
		return openstack.MachineRunning, nil
	})
}

// Stop implements openstack.Machines: an ACPI shutdown, QEMU killed when
// the guest has not powered off within a minute.
func (ms *vmMachines) Stop(serverID string) {
	m := ms.get(serverID)
	ms.ask(m, openstack.MachineStopping, func(ctx context.Context) (openstack.MachineState, error) {
		if v := m.current(); v != nil {
			ctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			if err := v.Stop(ctx); err != nil {
				ms.logf("stop the VM of server %s: %v", serverID, err)
			}
		}
		return openstack.MachineStopped, nil
	})
}

// Start implements openstack.Machines: the VM's QEMU started again on its
// disk, or, after a restart of the local cloud, a new VM on the kept disk.
func (ms *vmMachines) Start(spec openstack.MachineSpec) {
	m := ms.get(spec.ServerID)
	ms.ask(m, openstack.MachineStarting, func(ctx context.Context) (openstack.MachineState, error) {
		if v := m.current(); v != nil {
			return openstack.MachineRunning, v.PowerCycle(ctx)
		}
		return openstack.MachineRunning, ms.boot(ctx, m, spec, true)
	})
}

// Delete implements openstack.Machines: the operation in flight is
// cancelled, then the worker kills the VM and removes its directory.
func (ms *vmMachines) Delete(serverID string) {
	ms.mu.Lock()
	m := ms.machines[serverID]
	delete(ms.machines, serverID)
	ms.mu.Unlock()
	if m == nil {
		// No machine ran here: remove what an earlier run kept.
		if !ms.isClosed() {
			_ = os.RemoveAll(filepath.Join(ms.dir, serverID))
		}
		return
	}
	m.cancel()
	m.mu.Lock()
	m.ended, m.remove = true, true
	m.cond.Broadcast()
	m.mu.Unlock()
}

// AddressFree implements openstack.AddressProber: every forwarded port
// (22 and ms.ports) can be bound on ip.
func (ms *vmMachines) AddressFree(ip string) bool {
	for _, p := range append([]int{22}, ms.ports...) {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

func (ms *vmMachines) isClosed() bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.closed
}

// close cancels every operation, kills every VM and waits (up to a minute)
// for the workers to finish. The VMs' disks stay, for os-start after a
// restart.
func (ms *vmMachines) close() error {
	ms.mu.Lock()
	ms.closed = true
	all := make([]*machine, 0, len(ms.machines))
	for _, m := range ms.machines {
		all = append(all, m)
	}
	ms.mu.Unlock()
	ms.cancel()
	for _, m := range all {
		m.mu.Lock()
		m.ended = true
		m.cond.Broadcast()
		m.mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		ms.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(time.Minute):
		return errors.New("local cloud: VMs still stopping after a minute")
	}
}

// running counts the machines that are up.
func (ms *vmMachines) running() int {
	ms.mu.Lock()
	all := make([]*machine, 0, len(ms.machines))
	for _, m := range ms.machines {
		all = append(all, m)
	}
	ms.mu.Unlock()
	n := 0
	for _, m := range all {
		m.mu.Lock()
		if m.vm != nil && m.state != openstack.MachineStopped && m.state != openstack.MachineFailed {
			n++
		}
		m.mu.Unlock()
	}
	return n
}
