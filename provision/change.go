package provision

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
)

// Action is what a plan does to a resource. The string values are the one
// vocabulary of plans, event streams, state and reports.
type Action string

// Actions.
const (
	// Create makes a resource that does not exist. Before is nil.
	Create Action = "create"
	// Update changes a resource in place. Before and After are set.
	Update Action = "update"
	// Replace deletes a resource and creates it again, because a change
	// cannot be made in place (Reason says which).
	Replace Action = "replace"
	// Delete removes a resource that the environment no longer declares.
	// After is nil.
	Delete Action = "delete"
	// NoOp means the resource is as declared.
	NoOp Action = "noop"
	// Read means something changed outside acco and only the state needs
	// to learn it (an adopted orphan, a resource deleted out of band that
	// is no longer wanted); nothing is done in the cloud.
	Read Action = "read"
)

// Mutates reports whether the action changes something in the cloud.
func (a Action) Mutates() bool {
	switch a {
	case Create, Update, Replace, Delete:
		return true
	case NoOp, Read:
		return false
	}
	return false
}

// Symbol is the one-character marker of the action in human plans.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case Replace:
		return "-/+"
	case Delete:
		return "-"
	case Read:
		return "<="
	case NoOp:
		return " "
	}
	return "?"
}

// Sensitive is the value shown in place of a secret.
const Sensitive = "(sensitive)"

// Unknown is the value shown for an attribute known only after apply.
const Unknown = "(known after apply)"

// Change is the plan for one resource.
//
// Before is the resource as observed in the cloud (nil for create); After
// is the resource as it will be (nil for delete). Both are flat maps of
// attribute values; secrets never appear in them. ID is the provider's ID
// of the existing resource (empty for create), which update, replace and
// delete act on; Adopt says the resource was found by its name and not yet
// in state.
type Change struct {
	Address string         `json:"address"`
	Kind    string         `json:"kind"`
	Action  Action         `json:"action"`
	Reason  string         `json:"reason,omitempty"`
	Before  map[string]any `json:"before"`
	After   map[string]any `json:"after"`
	ID      string         `json:"id,omitempty"`
	Adopt   bool           `json:"adopt,omitempty"`
	// DependsOn are the addresses this resource needs (recorded in state).
	DependsOn []string `json:"depends_on,omitempty"`
}

// Drift is a difference between the state and the cloud made outside acco.
type Drift struct {
	Address string `json:"address"`
	Message string `json:"message"`
}

// Summary counts the changes by action.
type Summary struct {
	Create  int `json:"create"`
	Update  int `json:"update"`
	Replace int `json:"replace"`
	Delete  int `json:"delete"`
}

// Plan is the result of PlanChanges: what apply will do.
type Plan struct {
	// Env is the environment's name.
	Env string `json:"env"`
	// Lineage and Serial identify the state the plan was made from; a
	// saved plan is applied only to that state.
	Lineage string `json:"lineage"`
	Serial  uint64 `json:"serial"`
	// Destroy is set for plans that delete everything.
	Destroy bool `json:"destroy,omitempty"`
	// RefreshOnly plans only record drift in state.
	RefreshOnly bool `json:"refresh_only,omitempty"`
	// Changes are sorted in apply order (see Apply), one per address.
	Changes []Change `json:"changes"`
	// Drift lists what changed outside acco.
	Drift []Drift `json:"drift"`
	// Interrupted lists the operations an earlier apply started and did
	// not finish (intents left in state), as "ACTION ADDRESS"; this plan
	// adopts or finishes what they left.
	Interrupted []string `json:"interrupted,omitempty"`
	// Stopped lists the on-demand databases that acco db stop archived
	// (state's on_demand records) and that this plan leaves alone: a
	// stopped cluster is neither drift nor created; one being stopped is
	// neither created, updated nor adopted. A destroy plan lists every
	// record, to say what becomes of the dumps.
	Stopped []StoppedDatabase `json:"stopped,omitempty"`
	// Adoptable lists the resources of the project that acco does not
	// manage and that could be what the plan creates (see Adoptables).
	// They inform only: they change neither the changes nor HasChanges,
	// and nothing is adopted without acco import.
	Adoptable []Adoptable `json:"adoptable,omitempty"`
}

// StoppedDatabase is an on-demand database cluster recorded in state as
// archived by acco db stop (see state.DatabaseArchive).
type StoppedDatabase struct {
	// Address is database.NAME.
	Address string `json:"address"`
	// Status is the record's: state.ArchiveStopped, state.ArchiveStopping
	// or (in destroy plans only) state.ArchiveStarting.
	Status string `json:"status"`
	// Since is when the stop began.
	Since time.Time `json:"since"`
	// Manifest is the bucket key of the dumps' manifest.
	Manifest string `json:"manifest"`
	// Dumps is how many logical databases' dumps the record lists, and
	// DumpPrefix the bucket prefix that holds them.
	Dumps      int    `json:"dumps"`
	DumpPrefix string `json:"dump_prefix"`
	// DeleteDumps is set in a destroy plan made with
	// PlanOptions.DeleteDumps: once everything else is destroyed, apply
	// deletes every object under DumpPrefix and drops the record.
	DeleteDumps bool `json:"delete_dumps,omitempty"`
}

// Cluster returns the cluster's name (the YAML key).
func (s StoppedDatabase) Cluster() string {
	return strings.TrimPrefix(s.Address, spec.KindDatabase+".")
}

// Message says, for people, what a plan of env does about the database
// (destroy: a destroy plan).
func (s StoppedDatabase) Message(env string, destroy bool) string {
	since := s.Since.UTC().Format("2006-01-02 15:04 UTC")
	dumps := fmt.Sprintf("its %d dump(s) stay in the state bucket under %s (acco destroy %s --delete-dumps deletes them)", s.Dumps, s.DumpPrefix, env)
	if s.DeleteDumps {
		dumps = fmt.Sprintf("once the rest is destroyed, its dumps under %s in the state bucket are deleted and its record dropped", s.DumpPrefix)
	}
	switch {
	case !destroy && s.Status == state.ArchiveStopping:
		return fmt.Sprintf("%s is being stopped; run acco db stop %s to finish (its dumps are in the state bucket since %s; acco leaves the cluster alone meanwhile)", s.Address, env, since)
	case !destroy:
		return fmt.Sprintf("%s is stopped (on demand) since %s; `acco db start %s` brings it back", s.Address, since, env)
	case s.Status == state.ArchiveStopped:
		return fmt.Sprintf("%s is stopped (on demand) since %s: nothing to delete in the cloud; %s", s.Address, since, dumps)
	}
	return fmt.Sprintf("%s is recorded as %s (on demand, since %s): its cluster is destroyed like the rest; %s", s.Address, s.Status, since, dumps)
}

// Summary counts the plan's changes.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			s.Create++
		case Update:
			s.Update++
		case Replace:
			s.Replace++
		case Delete:
			s.Delete++
		case NoOp, Read:
		}
	}
	return s
}

// HasChanges reports whether applying the plan would change the cloud, the
// state or the state bucket (dumps to delete), or drift was seen.
func (p *Plan) HasChanges() bool {
	if len(p.Drift) > 0 || slices.ContainsFunc(p.Stopped, func(s StoppedDatabase) bool { return s.DeleteDumps }) {
		return true
	}
	for _, c := range p.Changes {
		if c.Action != NoOp {
			return true
		}
	}
	return false
}

// Unsettled reports whether the plan has changes or drift (HasChanges), or
// leaves an on-demand database half stopped (acco db stop was interrupted
// and is to be run again): what plan --detailed-exitcode reports as 2.
func (p *Plan) Unsettled() bool {
	return p.HasChanges() || slices.ContainsFunc(p.Stopped, func(s StoppedDatabase) bool {
		return s.Status == state.ArchiveStopping && !p.Destroy
	})
}

// Change returns the change for addr, or nil.
func (p *Plan) Change(addr string) *Change {
	for i := range p.Changes {
		if p.Changes[i].Address == addr {
			return &p.Changes[i]
		}
	}
	return nil
}

// kindOrder is the dependency order of kinds: a kind depends only on kinds
// before it.
var kindOrder = []string{"keypair", "security_group", "instance", "database", "database_db", "database_user"}

// kindRank returns the position of a kind in kindOrder.
func kindRank(kind string) int {
	if i := slices.Index(kindOrder, kind); i >= 0 {
		return i
	}
	return len(kindOrder)
}

// kindOf returns the kind of an address (KIND.NAME...).
func kindOf(addr string) string {
	k, _, _ := strings.Cut(addr, ".")
	return k
}

// sortChanges orders changes by kind rank, then address.
func sortChanges(cs []Change) {
	slices.SortStableFunc(cs, func(a, b Change) int {
		if d := kindRank(a.Kind) - kindRank(b.Kind); d != 0 {
			return d
		}
		return strings.Compare(a.Address, b.Address)
	})
}

// CloudName is the deterministic name acco gives a resource in the cloud:
// acco-<env>-<name>.
func CloudName(env, name string) string {
	return fmt.Sprintf("acco-%s-%s", env, name)
}

// Tags acco puts on the security groups it owns.
func Tags(env string) []string {
	return []string{"acco", "acco-env=" + env}
}

// Metadata keys acco puts on the instances it owns.
const (
	MetaEnv  = "acco_env"
	MetaName = "acco_name"
)
