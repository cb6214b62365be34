package spec

import (
	"net/netip"
	"strings"
)

// PlainTextEnvironment is the one environment whose plain-text listeners
// may face the whole internet without saying so (the team's test phase has
// no certificates).
const PlainTextEnvironment = "test"

// exposure refuses, outside the test environment, a plain-text listener
// (MQTT over tcp or ws, PowerSync's HTTP port) that a security group of the
// services host opens to the whole internet, unless the listener says
// public_plaintext: true.
func (v *validator) exposure(s *Services, host *Instance) {
	if v.e.Name == PlainTextEnvironment || host == nil {
		return
	}
	prefix := ""
	switch s.Broker {
	case BrokerEMQX:
		prefix = "services.emqx.listeners"
	case BrokerMosquitto:
		prefix = "services.mosquitto.listeners"
	}
	ls := v.e.BrokerListeners()
	for _, name := range sortedKeys(ls) {
		l := ls[name]
		if l == nil || !l.PlainText() || l.PublicPlaintext || isLoopback(l.Bind) {
			continue
		}
		rule, src := v.worldRule(host, l.Port)
		if rule == "" {
			continue
		}
		v.add(joinPath(prefix, name), "plain-text MQTT (type %s) on port %d is open to the whole internet: %s admits tcp/%d from %s, so device passwords and positions would cross the internet in clear; "+
			"use a TLS listener (type ssl), or close the port to the world (bind: 127.0.0.1, or narrow that rule's from), or set public_plaintext: true on this listener to accept it",
			l.Type, l.Port, rule, l.Port, src)
	}
	if ps := s.PowerSync; ps != nil && !s.Offline && !ps.PublicPlaintext {
		if rule, src := v.worldRule(host, ps.Port); rule != "" {
			v.add("services.powersync.port", "PowerSync serves plain HTTP on port %d, which is open to the whole internet: %s admits tcp/%d from %s, so app tokens and synced data would cross the internet in clear; "+
				"serve the apps over TLS (services.powersync.tls: {port: 443, cert_file, key_file}, a reverse proxy in front of PowerSync) and open that port instead, or narrow that rule's from, or set services.powersync.public_plaintext: true to accept it",
				ps.Port, rule, ps.Port, src)
		}
	}
}

// worldRule returns the first rule of the host's security groups that admits
// tcp/port from the whole internet (a /0 of IPv4 or IPv6, written or through
// admin_cidrs), as its key path, and that source; "" when none does.
func (v *validator) worldRule(host *Instance, port int) (rule, source string) {
	for _, sgName := range host.SecurityGroups {
		sg := v.e.SecurityGroups[sgName]
		if sg == nil {
			continue
		}
		for i, r := range sg.Rules {
			if r.Protocol != "tcp" || !portIn(r.Ports, port) {
				continue
			}
			for _, src := range r.From {
				list, via := []string{src}, ""
				if src == SourceAdminCIDRs {
					list, via = v.e.AdminCIDRs, " (in admin_cidrs)"
				}
				for _, c := range list {
					if p, msg := parseCIDR(c); msg == "" && p.Bits() == 0 {
						return indexPath(joinPath("security_groups", sgName)+".rules", i), c + via
					}
				}
			}
		}
	}
	return "", ""
}

func portIn(ranges []PortRange, port int) bool {
	for _, pr := range ranges {
		if pr.Min <= port && port <= pr.Max {
			return true
		}
	}
	return false
}

// isLoopback reports whether a listener's bind address is a loopback
// address, which nothing outside the host reaches.
func isLoopback(bind string) bool {
	a, err := netip.ParseAddr(bind)
	return err == nil && a.IsLoopback()
}

// localFile checks a local file path written in the YAML (read when
// planning or configuring): set, and a single line without NUL.
func (v *validator) localFile(path, s, what string) {
	if v.required(path, s, what) && strings.ContainsAny(s, "\x00\n\r") {
		v.add(path, "%q is not a file path", s)
	}
}

// ReachablePlainMQTTPort is the lowest port of the plain (tcp) listeners in
// ls that are not bound to a loopback address, those a device outside the
// host can reach; 0 when there is none.
func ReachablePlainMQTTPort(ls map[string]*Listener) int {
	best := 0
	for _, l := range ls {
		if l != nil && l.Type == "tcp" && !isLoopback(l.Bind) && (best == 0 || l.Port < best) {
			best = l.Port
		}
	}
	return best
}
