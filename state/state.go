package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// FormatVersion is the version of the state format this acco writes and the
// newest it reads.
const FormatVersion = 1

// Resource statuses.
const (
	// StatusTainted marks a resource that exists but is known to be broken
	// (a failed or interrupted creation); the next apply replaces it.
	StatusTainted = "tainted"
)

// State is the envelope stored at <env>/state.json.
//
// Numbers inside Attributes and Output values decode as json.Number, so
// that large integers survive a read and a write unchanged.
type State struct {
	// FormatVersion is the version of this format (see FormatVersion).
	FormatVersion int `json:"format_version"`
	// Lineage identifies the history of the environment's state: a UUID set
	// when the state is first created and never changed.
	Lineage string `json:"lineage"`
	// Serial grows by one at every write (see Store.Write).
	Serial uint64 `json:"serial"`
	// Env is the environment name.
	Env string `json:"env"`
	// AccoVersion is the version of acco that wrote the state.
	AccoVersion string `json:"acco_version"`
	// Resources are the managed resources, sorted by Address when written.
	Resources []Resource `json:"resources"`
	// Outputs are values computed by apply, by name.
	Outputs map[string]Output `json:"outputs"`
	// Hosts are the known SSH host keys, by host name.
	Hosts map[string]Host `json:"hosts"`
	// Pending are intents written before a mutating call, and owed
	// restarts; an entry is removed once the action is known to be done.
	Pending []Pending `json:"pending"`
	// OnDemand records the on-demand databases that acco db stop archived,
	// by cluster name (the key of the YAML's databases map). A cluster
	// with no entry runs as usual. Absent from the JSON when empty.
	OnDemand map[string]DatabaseArchive `json:"on_demand,omitempty"`
}

// Statuses of an on-demand database's archive (DatabaseArchive.Status).
const (
	// ArchiveStopping means the dumps are verified and recorded and the
	// cluster, which may still exist, is being deleted: acco db stop was
	// interrupted and finishes the job when run again.
	ArchiveStopping = "stopping"
	// ArchiveStopped means the cluster is gone; its data is in the dumps.
	ArchiveStopped = "stopped"
	// ArchiveStarting means the cluster is being re-created and restored
	// by acco db start.
	ArchiveStarting = "starting"
)

// DatabaseArchive records an on-demand database cluster that acco db stop
// dumped into the state bucket.
type DatabaseArchive struct {
	// Status is ArchiveStopping, ArchiveStopped or ArchiveStarting.
	Status string `json:"status"`
	// Since is when the stop began (when the dumps were taken).
	Since time.Time `json:"since"`
	// Manifest is the bucket key of the (sealed) manifest of the dumps.
	Manifest string `json:"manifest"`
	// Dumps summarises the dumps, as the manifest lists them.
	Dumps []ArchivedDump `json:"dumps"`
}

// ArchivedDump is one logical database's dump in the state bucket.
type ArchivedDump struct {
	// Database is the logical database's name.
	Database string `json:"database"`
	// Key is the bucket key of the encrypted dump.
	Key string `json:"key"`
	// Size is the dump's size in plaintext bytes.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of the encrypted object as stored.
	SHA256 string `json:"sha256"`
}

// Resource is one managed resource.
type Resource struct {
	// Address is KIND.NAME, e.g. instance.app or database_user.main.emqx.
	Address string `json:"address"`
	// Kind is the resource kind, e.g. instance.
	Kind string `json:"kind"`
	// ID is the provider's ID of the resource.
	ID string `json:"id"`
	// Status is "" when the resource is fine, or StatusTainted.
	Status string `json:"status,omitempty"`
	// Attributes are the resource's recorded attributes.
	Attributes map[string]any `json:"attributes,omitempty"`
	// Secrets are values sealed with a Sealer, never clear text.
	Secrets map[string]string `json:"secrets,omitempty"`
	// DependsOn are the addresses of the resources this one depends on.
	DependsOn []string `json:"depends_on,omitempty"`
}

// Output is a value computed by apply.
type Output struct {
	// Value is the output's value.
	Value any `json:"value"`
	// Sensitive outputs are not printed unless asked for.
	Sensitive bool `json:"sensitive,omitempty"`
}

// Host records the SSH host keys known for a host.
type Host struct {
	// Address is the address the host is reached at.
	Address string `json:"address"`
	// HostKeys are the host's public keys in authorized_keys format.
	HostKeys []string `json:"host_keys"`
}

// Pending is an action started and not known to be finished: an intent
// recorded before a mutating call, or a restart that is owed.
type Pending struct {
	// Address is the address of the resource (or service) concerned.
	Address string `json:"address"`
	// Action is what was started, e.g. create, delete, restart.
	Action string `json:"action"`
	// Started is when the action was recorded.
	Started time.Time `json:"started"`
	// Detail is free text for the operator.
	Detail string `json:"detail,omitempty"`
}

// New returns an empty state for env with a fresh lineage and serial 0.
func New(env, accoVersion string) *State {
	return &State{
		FormatVersion: FormatVersion,
		Lineage:       uuid.NewString(),
		Env:           env,
		AccoVersion:   accoVersion,
		Resources:     []Resource{},
		Outputs:       map[string]Output{},
		Hosts:         map[string]Host{},
		Pending:       []Pending{},
	}
}

// Decode parses a state written by Encode. It refuses data that is not a
// single JSON object, has unknown fields, has no format version or lineage,
// has a format version newer than FormatVersion (the error wraps ErrFormat
// and tells to upgrade acco), or has two resources with one address.
// Resources are returned sorted by address.
func Decode(data []byte) (*State, error) {
	// Look at the format version first, so that a newer format gets the
	// "upgrade acco" message rather than a complaint about its new fields.
	// This also refuses anything but one JSON value.
	var head struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	switch {
	case head.FormatVersion == nil:
		return nil, errors.New("decode state: no format_version: this is not an acco state")
	case *head.FormatVersion > FormatVersion:
		return nil, fmt.Errorf("state format_version %d is newer than this acco understands (%d): upgrade acco: %w",
			*head.FormatVersion, FormatVersion, ErrFormat)
	case *head.FormatVersion < 1:
		return nil, fmt.Errorf("decode state: invalid format_version %d", *head.FormatVersion)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var s State
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if s.Lineage == "" {
		return nil, errors.New("decode state: no lineage")
	}
	s.normalize()
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	return &s, nil
}

// normalize gives empty collections one representation (empty at the top
// level, nil inside resources), so that Decode(Encode(s)) equals s.
func (s *State) normalize() {
	if s.Resources == nil {
		s.Resources = []Resource{}
	}
	if s.Outputs == nil {
		s.Outputs = map[string]Output{}
	}
	if s.Hosts == nil {
		s.Hosts = map[string]Host{}
	}
	if s.Pending == nil {
		s.Pending = []Pending{}
	}
	for i := range s.Resources {
		r := &s.Resources[i]
		if len(r.Attributes) == 0 {
			r.Attributes = nil
		}
		if len(r.Secrets) == 0 {
			r.Secrets = nil
		}
		if len(r.DependsOn) == 0 {
			r.DependsOn = nil
		}
	}
	sortResources(s.Resources)
	if len(s.OnDemand) == 0 {
		s.OnDemand = nil
	}
	for name, a := range s.OnDemand {
		if a.Dumps == nil {
			a.Dumps = []ArchivedDump{}
			s.OnDemand[name] = a
		}
	}
}

// check validates what Encode and Decode require beyond JSON syntax. The
// resources must be sorted.
func (s *State) check() error {
	for i, r := range s.Resources {
		if r.Address == "" {
			return fmt.Errorf("resource %d has no address", i)
		}
		if i > 0 && s.Resources[i-1].Address == r.Address {
			return fmt.Errorf("resource %s appears twice", r.Address)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.OnDemand)) {
		a := s.OnDemand[name]
		switch {
		case name == "":
			return errors.New("on_demand has an entry with no cluster name")
		case a.Status != ArchiveStopping && a.Status != ArchiveStopped && a.Status != ArchiveStarting:
			return fmt.Errorf("on_demand.%s: status %q is not %s, %s or %s", name, a.Status, ArchiveStopping, ArchiveStopped, ArchiveStarting)
		case a.Manifest == "" && a.Status != ArchiveStarting:
			return fmt.Errorf("on_demand.%s is %s and names no manifest: where its dumps are is lost", name, a.Status)
		}
		for i, d := range a.Dumps {
			if d.Database == "" || d.Key == "" {
				return fmt.Errorf("on_demand.%s: dump %d names no database or no key", name, i)
			}
		}
	}
	return nil
}

// Encode returns the state as indented JSON with resources sorted by
// address and a trailing newline. The same state always encodes to the same
// bytes. The format version written is always FormatVersion; a state with
// a newer one is refused (ErrFormat). Encode does not modify s.
func (s *State) Encode() ([]byte, error) {
	if s.Lineage == "" {
		return nil, errors.New("encode state: no lineage")
	}
	if s.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("encode state: format_version %d: %w", s.FormatVersion, ErrFormat)
	}
	c := *s
	c.FormatVersion = FormatVersion
	c.Resources = slices.Clone(s.Resources)
	c.OnDemand = maps.Clone(s.OnDemand)
	c.normalize()
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return buf.Bytes(), nil
}

func sortResources(rs []Resource) {
	slices.SortStableFunc(rs, func(a, b Resource) int { return strings.Compare(a.Address, b.Address) })
}

// find returns the index of the resource at addr, or -1.
func (s *State) find(addr string) int {
	return slices.IndexFunc(s.Resources, func(r Resource) bool { return r.Address == addr })
}

// Resource returns the resource at addr. The pointer refers into s and is
// valid until the next SetResource or RemoveResource.
func (s *State) Resource(addr string) (*Resource, bool) {
	i := s.find(addr)
	if i < 0 {
		return nil, false
	}
	return &s.Resources[i], true
}

// SetResource inserts r, or replaces the resource with r's address, and
// leaves resources sorted by address.
func (s *State) SetResource(r Resource) {
	if i := s.find(r.Address); i >= 0 {
		s.Resources[i] = r
	} else {
		s.Resources = append(s.Resources, r)
	}
	sortResources(s.Resources)
}

// RemoveResource removes the resource at addr and reports whether there
// was one.
func (s *State) RemoveResource(addr string) bool {
	i := s.find(addr)
	if i >= 0 {
		s.Resources = slices.Delete(s.Resources, i, i+1)
	}
	return i >= 0
}
