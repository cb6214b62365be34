package openstack

import "net/netip"

// Machines runs a real machine (a VM) behind every server of a Cloud whose
// Config sets it. Its methods are called with the cloud's lock held: they
// must return at once and do their work (booting, rebooting, stopping) in
// the background, and must not call back into the Cloud. The cloud derives
// each server's Nova status from Status.
//
// With Machines set, Ext-Net hands out loopback addresses (127.0.0.2 and up,
// unique across regions and projects; see MachineNet) that the machines
// bind their forwarded ports to, so a client reaches a server's SSH at the
// IPv4 address Nova reports, on port 22.
type Machines interface {
	// Create starts booting the machine of a new server.
	Create(spec MachineSpec)
	// Status reports the state of a server's machine; MachineMissing for a
	// server it runs no machine for (one created before a restart of the
	// local cloud, say).
	Status(serverID string) MachineStatus
	// ConsoleOutput is everything the machine wrote on its serial console.
	ConsoleOutput(serverID string) (string, error)
	// Reboot reboots the machine: a reboot from within the guest when hard
	// is false, a power cycle when true. A hard reboot of a machine that is
	// stopped or missing boots it.
	Reboot(spec MachineSpec, hard bool)
	// Stop shuts the machine down.
	Stop(serverID string)
	// Start boots a machine that is stopped or missing, on its kept disk
	// when it has one.
	Start(spec MachineSpec)
	// Delete kills the machine and removes what it kept on disk.
	Delete(serverID string)
}

// MachineSpec describes the machine of a server.
type MachineSpec struct {
	ServerID string
	// Name is the server's name; the machine's host name derives from it.
	Name string
	// IPv4 is the server's Ext-Net address, a loopback address the machine
	// binds its forwarded ports to.
	IPv4 string
	// AuthorizedKey is the public key of the server's key pair (an
	// authorized_keys line), or "" when it has none.
	AuthorizedKey string
}

// MachineState is the state of a machine as Machines reports it.
type MachineState string

// Machine states.
const (
	MachineMissing       MachineState = "missing"        // no machine runs for the server
	MachineBuilding      MachineState = "building"       // first boot, until SSH answers
	MachineRunning       MachineState = "running"        // up, SSH answers
	MachineRebooting     MachineState = "rebooting"      // soft reboot in progress
	MachineHardRebooting MachineState = "hard-rebooting" // power cycle in progress
	MachineStopping      MachineState = "stopping"       // shutting down
	MachineStopped       MachineState = "stopped"        // shut down, disk kept
	MachineStarting      MachineState = "starting"       // booting after a stop
	MachineFailed        MachineState = "failed"         // a boot failed: see Fault
)

// MachineStatus is what Machines.Status reports.
type MachineStatus struct {
	State MachineState
	// Fault says why, for MachineFailed.
	Fault string
}

// machineNet is the Ext-Net range of a cloud with Machines: loopback
// addresses, the gateway 127.0.0.1 being the host itself.
var machineNet = netip.MustParsePrefix("127.0.0.0/24")

// MachineNet returns the range Ext-Net addresses come from when Config sets
// Machines: 127.0.0.0/24, gateway 127.0.0.1, servers 127.0.0.2 and up.
func MachineNet() netip.Prefix { return machineNet }

// machineSpec is the MachineSpec of a server.
func (c *Cloud) machineSpec(s *server) MachineSpec {
	spec := MachineSpec{ServerID: s.ID, Name: s.Name, AuthorizedKey: s.AuthorizedKey}
	if ports := c.serverPorts(s); len(ports) > 0 {
		spec.IPv4 = ports[0].IP
	}
	return spec
}

// machineState maps the state of a server's machine to Nova's.
func machineState(m MachineStatus) serverState {
	switch m.State {
	case MachineBuilding:
		return serverState{Status: "BUILD", VMState: "building", Task: "spawning", Power: 0}
	case MachineRunning:
		return serverState{Status: "ACTIVE", VMState: "active", Power: 1}
	case MachineRebooting:
		return serverState{Status: "REBOOT", VMState: "active", Task: "reboot_started", Power: 1}
	case MachineHardRebooting:
		return serverState{Status: "HARD_REBOOT", VMState: "active", Task: "reboot_started_hard", Power: 1}
	case MachineStopping:
		return serverState{Status: "ACTIVE", VMState: "active", Task: "powering-off", Power: 1}
	case MachineStarting:
		return serverState{Status: "SHUTOFF", VMState: "stopped", Task: "powering-on", Power: 4}
	case MachineFailed:
		fault := m.Fault
		if fault == "" {
			fault = "the server's machine failed"
		}
		return serverState{Status: "ERROR", VMState: "error", Power: 0, Fault: fault}
	}
	// Stopped, missing (lost with a restart of the local cloud) and unknown
	// states: shut off, so that os-start boots it.
	return serverState{Status: "SHUTOFF", VMState: "stopped", Power: 4}
}

// allocMachineIP returns the lowest free address of machineNet, unique
// across regions and projects, or false when the range is exhausted.
func (c *Cloud) allocMachineIP() (string, bool) {
	used := map[string]bool{}
	for _, p := range c.st.Ports {
		used[p.IP] = true
	}
	free, probes := c.cfg.Machines.(AddressProber)
	gw := machineNet.Addr().Next()
	for a := gw.Next(); machineNet.Contains(a.Next()); a = a.Next() {
		if used[a.String()] {
			continue
		}
		// Another local cloud on this machine may use the address.
		if probes && !free.AddressFree(a.String()) {
			continue
		}
		return a.String(), true
	}
	return "", false
}

// AddressProber is an optional interface of Machines: AddressFree reports
// whether a machine could bind its ports on an address that no server of
// this cloud has (another local cloud on the same host may hold it).
type AddressProber interface {
	AddressFree(ip string) bool
}
