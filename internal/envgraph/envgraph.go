// Package envgraph builds the dependency graph of an environment from its
// resolved YAML: its cloud resources (keypairs, security groups, instances,
// database clusters, their logical databases and users) and the services of
// its services host, and renders it as Graphviz dot, Mermaid or SVG.
//
// An edge goes from what is needed to what needs it, in the order acco
// creates things: a keypair and a security group before the instance that
// uses them, an instance before the database whose IP allow-list admits it,
// a cluster before its logical databases and users, the host and a
// database user before a service that runs there or logs in as that user.
package envgraph

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
)

// KindService is the kind of a service node (service.NAME); resource nodes
// have the kinds of spec (spec.KindInstance, ...).
const KindService = "service"

// Service names, the NAME of service.NAME.
const (
	ServiceEMQX      = "emqx"
	ServiceMosquitto = "mosquitto"
	ServicePowerSync = "powersync"
	ServiceBackend   = "backend"
	ServiceNginx     = "nginx"
)

// Edge labels: why the edge's target needs its source. They are plain
// words, safe in both languages without quoting.
const (
	LabelAdmits = "admits" // an instance the database's allow-list admits
	LabelLogin  = "login"  // a database user a service logs in as
	LabelProxy  = "proxy"  // nginx terminates TLS in front of PowerSync
)

// Node is a resource or a service.
type Node struct {
	// ID is the node's identifier in dot and Mermaid: letters, digits and
	// underscores, unique in the graph.
	ID string `json:"id"`
	// Address is the resource address (instance.app) or service.NAME.
	Address string `json:"address"`
	// Kind is the resource kind, or KindService.
	Kind string `json:"kind"`
	// Detail is a short description (flavor, version, port), possibly "".
	Detail string `json:"detail,omitempty"`
	// OnHost is true for the services of the services host.
	OnHost bool `json:"on_host,omitempty"`
	// Action is what a plan does to the resource (create, update,
	// replace, delete; see Mark), "" when nothing or unknown.
	Action string `json:"action,omitempty"`
}

// Edge says that To needs From.
type Edge struct {
	// From and To are node IDs.
	From string `json:"from"`
	To   string `json:"to"`
	// Label is one of the Label constants, or "".
	Label string `json:"label,omitempty"`
}

// Graph is an environment's nodes (resources in address order, then the
// services) and its edges (sorted).
type Graph struct {
	// Env is the environment's name.
	Env string `json:"env"`
	// Host is the address of the services host ("" when there is none).
	Host  string `json:"host,omitempty"`
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Build returns the graph of a loaded, validated environment.
func Build(env *spec.Environment) Graph {
	b := &builder{g: Graph{Env: env.Name}, ids: map[string]string{}, used: map[string]bool{}}
	for _, addr := range env.Addresses() {
		kind, _, _ := strings.Cut(addr, ".")
		b.node(Node{Address: addr, Kind: kind, Detail: resourceDetail(env, addr)})
	}
	for _, n := range slices.Sorted(maps.Keys(env.Instances)) {
		inst := env.Instances[n]
		if inst == nil {
			continue
		}
		to := spec.Address(spec.KindInstance, n)
		b.edge(spec.Address(spec.KindKeypair, inst.Keypair), to, "")
		for _, g := range inst.SecurityGroups {
			b.edge(spec.Address(spec.KindSecurityGroup, g), to, "")
		}
	}
	for _, n := range slices.Sorted(maps.Keys(env.Databases)) {
		db := env.Databases[n]
		if db == nil {
			continue
		}
		addr := spec.Address(spec.KindDatabase, n)
		instances, _ := db.AllowList()
		for _, i := range instances {
			b.edge(spec.Address(spec.KindInstance, i), addr, LabelAdmits)
		}
		for _, ld := range db.LogicalDatabases {
			b.edge(addr, spec.Address(spec.KindDatabaseDB, n, ld), "")
		}
		for u := range db.Users {
			b.edge(addr, spec.Address(spec.KindDatabaseUser, n, u), "")
		}
	}
	b.services(env)
	slices.SortFunc(b.g.Edges, func(x, y Edge) int {
		return strings.Compare(x.From+" "+x.To+" "+x.Label, y.From+" "+y.To+" "+y.Label)
	})
	b.g.Edges = slices.Compact(b.g.Edges)
	return b.g
}

// Plan actions that Mark records and the renderers colour.
const (
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionReplace = "replace"
	ActionDelete  = "delete"
)

// Mark records a plan's actions, by resource address, on the nodes. Other
// actions (noop, read) are left out. A resource the plan deletes that the
// YAML no longer declares becomes a node of its own, without edges.
func (g *Graph) Mark(actions map[string]string) {
	b := &builder{g: *g, ids: map[string]string{}, used: map[string]bool{}}
	for _, n := range g.Nodes {
		b.ids[n.Address] = n.ID
		b.used[n.ID] = true
	}
	for _, addr := range slices.Sorted(maps.Keys(actions)) {
		act := actions[addr]
		if act != ActionCreate && act != ActionUpdate && act != ActionReplace && act != ActionDelete {
			continue
		}
		if _, ok := b.ids[addr]; !ok {
			if act != ActionDelete {
				continue
			}
			kind, _, _ := strings.Cut(addr, ".")
			b.node(Node{Address: addr, Kind: kind})
		}
		for i := range b.g.Nodes {
			if b.g.Nodes[i].Address == addr {
				b.g.Nodes[i].Action = act
			}
		}
	}
	*g = b.g
}

// services adds the services of the host, each needing the host and the
// database users it logs in as.
func (b *builder) services(env *spec.Environment) {
	s := env.Services
	if env.HostInstance() == nil {
		return
	}
	host := spec.Address(spec.KindInstance, s.Host)
	b.g.Host = host
	add := func(name, detail string, logins ...spec.PostgresRef) {
		addr := spec.Address(KindService, name)
		b.node(Node{Address: addr, Kind: KindService, Detail: detail, OnHost: true})
		b.edge(host, addr, "")
		for _, r := range logins {
			b.edge(spec.Address(spec.KindDatabaseUser, r.Cluster, r.User), addr, LabelLogin)
		}
	}
	switch {
	case s.Broker == spec.BrokerEMQX && s.EMQX != nil:
		var logins []spec.PostgresRef
		if s.EMQX.Positions != nil {
			logins = append(logins, s.EMQX.Positions.Postgres)
		}
		if d := s.EMQX.DeviceAuth; d.Backend == "postgresql" && d.Postgres != nil {
			logins = append(logins, *d.Postgres)
		}
		add(ServiceEMQX, "EMQX "+s.EMQX.Version+listenerPorts(s.EMQX.Listeners), logins...)
	case s.Broker == spec.BrokerMosquitto && s.Mosquitto != nil:
		// Mosquitto logs in to no database: acco writes its password
		// file from the device table.
		add(ServiceMosquitto, "Mosquitto"+listenerPorts(s.Mosquitto.Listeners))
	}
	// An offline host runs no PowerSync (its image is on Docker Hub).
	if p := s.PowerSync; p != nil && !s.Offline {
		add(ServicePowerSync, fmt.Sprintf("PowerSync %s :%d", p.Tag, p.Port), p.Source, p.Storage)
		if p.TLS != nil {
			add(ServiceNginx, fmt.Sprintf("nginx TLS :%d", p.TLS.Port))
			b.edge(spec.Address(KindService, ServicePowerSync), spec.Address(KindService, ServiceNginx), LabelProxy)
		}
	}
	if be := s.Backend; be != nil {
		add(ServiceBackend, fmt.Sprintf("Node.js %d backend :%d", be.NodeVersion, be.Port), be.Postgres)
	}
}

// listenerPorts formats the ports of MQTT listeners, " :1883 :8883".
func listenerPorts(ls map[string]*spec.Listener) string {
	var ports []int
	for _, l := range ls {
		if l != nil {
			ports = append(ports, l.Port)
		}
	}
	slices.Sort(ports)
	var sb strings.Builder
	for _, p := range slices.Compact(ports) {
		fmt.Fprintf(&sb, " :%d", p)
	}
	return sb.String()
}

// resourceDetail describes a resource in a few words.
func resourceDetail(env *spec.Environment, addr string) string {
	parts := strings.Split(addr, ".")
	switch parts[0] {
	case spec.KindSecurityGroup:
		if g := env.SecurityGroups[parts[1]]; g != nil {
			return fmt.Sprintf("%d ingress rule(s)", len(g.Rules))
		}
	case spec.KindInstance:
		if i := env.Instances[parts[1]]; i != nil {
			return i.Flavor + ", " + i.Image
		}
	case spec.KindDatabase:
		if d := env.Databases[parts[1]]; d != nil {
			return fmt.Sprintf("%s %s, %s %s x%d", d.Engine, d.Version, d.Plan, d.Flavor, d.Nodes)
		}
	case spec.KindDatabaseUser:
		if d := env.Databases[parts[1]]; d != nil && d.Users[parts[2]].HasRole("replication") {
			return "replication"
		}
	}
	return ""
}

type builder struct {
	g    Graph
	ids  map[string]string // address → ID
	used map[string]bool   // IDs taken
}

// node adds n with an ID derived from its address.
func (b *builder) node(n Node) {
	if _, ok := b.ids[n.Address]; ok {
		return
	}
	n.ID = b.newID(n.Address)
	b.ids[n.Address] = n.ID
	b.g.Nodes = append(b.g.Nodes, n)
}

// edge adds an edge between two addresses; one that names no node (an
// invalid environment) is left out.
func (b *builder) edge(from, to, label string) {
	f, ok1 := b.ids[from]
	t, ok2 := b.ids[to]
	if ok1 && ok2 {
		b.g.Edges = append(b.g.Edges, Edge{From: f, To: t, Label: label})
	}
}

// newID maps an address to letters, digits and underscores, with a number
// appended when two addresses map to the same ID. Every address starts
// with its kind, so no ID is a keyword of either language (such as end).
func (b *builder) newID(addr string) string {
	id := strings.Map(func(r rune) rune {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, addr)
	for i, base := 2, id; b.used[id]; i++ {
		id = fmt.Sprintf("%s_%d", base, i)
	}
	b.used[id] = true
	return id
}
