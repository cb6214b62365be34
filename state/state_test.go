package state_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/state"
)

func sample() *state.State {
	st := state.New("test", "v1.2.3")
	st.Lineage = "0b7e0d1c-6d5f-4d8e-9a57-1f0e8e0b2c11"
	st.Serial = 7
	st.SetResource(state.Resource{Address: "network.main", Kind: "network", ID: "n-1"})
	st.SetResource(state.Resource{
		Address:    "instance.app",
		Kind:       "instance",
		ID:         "i-1",
		Attributes: map[string]any{"flavor": "b3-8", "ports": []any{22, 443}, "big": json.Number("12345678901234567890")},
		Secrets:    map[string]string{"password": "acco-sealed:v1:AAAA"},
		DependsOn:  []string{"network.main"},
	})
	st.Outputs["url"] = state.Output{Value: "https://app.example.test/<x>"}
	st.Hosts["app"] = state.Host{Address: "203.0.113.7", HostKeys: []string{"ssh-ed25519 AAAAC3Nza test"}}
	st.Pending = append(st.Pending, state.Pending{Address: "service.emqx", Action: "restart", Started: time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)})
	return st
}

func TestEncodeDeterministic(t *testing.T) {
	st := sample()
	a, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Same content, resources inserted in the other order.
	st2 := sample()
	st2.Resources = []state.Resource{st.Resources[1], st.Resources[0]}
	b, err := st2.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("encodings differ:\n%s\n%s", a, b)
	}
	if !bytes.HasSuffix(a, []byte("}\n")) || !bytes.Contains(a, []byte("\n  \"lineage\"")) {
		t.Errorf("not indented with a trailing newline:\n%s", a)
	}
	if i, j := bytes.Index(a, []byte("instance.app")), bytes.Index(a, []byte("network.main\"")); i > j {
		t.Errorf("resources not sorted:\n%s", a)
	}
	if !bytes.Contains(a, []byte("12345678901234567890")) || !bytes.Contains(a, []byte("/<x>")) {
		t.Errorf("number or text altered:\n%s", a)
	}
	if st2.Resources[0].Address != "network.main" {
		t.Error("Encode reordered the caller's resources")
	}
}

func TestRoundTrip(t *testing.T) {
	a, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("round trip changed the encoding:\n%s\n%s", a, b)
	}
	if n, ok := st.Resources[0].Attributes["big"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Errorf("big number decoded as %#v", st.Resources[0].Attributes["big"])
	}
}

func TestNewEncodesEmptyCollections(t *testing.T) {
	data, err := state.New("test", "v").Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"resources": []`, `"outputs": {}`, `"hosts": {}`, `"pending": []`, `"format_version": 1`, `"serial": 0`} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("encoding lacks %s:\n%s", want, data)
		}
	}
	a, b := state.New("test", "v"), state.New("test", "v")
	if a.Lineage == b.Lineage || len(a.Lineage) != 36 {
		t.Errorf("lineages %q and %q: want two fresh UUIDs", a.Lineage, b.Lineage)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       string
		wantErr    error
	}{
		{"NotJSON", `{"format_version":1,`, "decode state", nil},
		{"Array", `[]`, "decode state", nil},
		{"NoFormat", `{"lineage":"l"}`, "not an acco state", nil},
		{"ZeroFormat", `{"format_version":0,"lineage":"l"}`, "invalid format_version", nil},
		{"NewerFormat", `{"format_version":2,"lineage":"l","whatever":true}`,
			"state format_version 2 is newer than this acco understands (1): upgrade acco", state.ErrFormat},
		{"NoLineage", `{"format_version":1,"env":"test"}`, "no lineage", nil},
		{"UnknownField", `{"format_version":1,"lineage":"l","extra":1}`, "unknown field", nil},
		{"TrailingData", `{"format_version":1,"lineage":"l"} {}`, "after top-level value", nil},
		{"DuplicateAddress", `{"format_version":1,"lineage":"l","resources":[{"address":"a.b"},{"address":"a.b"}]}`, "appears twice", nil},
		{"EmptyAddress", `{"format_version":1,"lineage":"l","resources":[{"kind":"x"}]}`, "no address", nil},
		{"WrongType", `{"format_version":1,"lineage":"l","serial":"7"}`, "decode state", nil},
		{"OnDemandBadStatus", `{"format_version":1,"lineage":"l","on_demand":{"main":{"status":"paused","manifest":"m"}}}`, `on_demand.main: status "paused" is not stopping, stopped or starting`, nil},
		{"OnDemandNoManifest", `{"format_version":1,"lineage":"l","on_demand":{"main":{"status":"stopped"}}}`, "on_demand.main is stopped and names no manifest", nil},
		{"OnDemandNoName", `{"format_version":1,"lineage":"l","on_demand":{"":{"status":"stopped","manifest":"m"}}}`, "no cluster name", nil},
		{"OnDemandDumpNoKey", `{"format_version":1,"lineage":"l","on_demand":{"main":{"status":"stopped","manifest":"m","dumps":[{"database":"acco"}]}}}`, "on_demand.main: dump 0 names no database or no key", nil},
		{"OnDemandUnknownField", `{"format_version":1,"lineage":"l","on_demand":{"main":{"status":"stopped","manifest":"m","extra":1}}}`, "unknown field", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := state.Decode([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode: got %v, want an error containing %q", err, tc.want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Decode: %v does not wrap %v", err, tc.wantErr)
			}
		})
	}
}

func TestDecodeSortsAndFills(t *testing.T) {
	st, err := state.Decode([]byte(`{"format_version":1,"lineage":"l","resources":[{"address":"z.a"},{"address":"a.z","attributes":{}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if st.Resources[0].Address != "a.z" || st.Outputs == nil || st.Hosts == nil || st.Pending == nil {
		t.Errorf("Decode = %+v: want sorted resources and empty, non-nil collections", st)
	}
}

func TestEncodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   *state.State
	}{
		{"NoLineage", &state.State{FormatVersion: 1}},
		{"NewerFormat", &state.State{FormatVersion: 2, Lineage: "l"}},
		{"Duplicate", &state.State{Lineage: "l", Resources: []state.Resource{{Address: "a.b"}, {Address: "a.b"}}}},
		{"Unencodable", &state.State{Lineage: "l", Outputs: map[string]state.Output{"f": {Value: func() {}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.st.Encode(); err == nil {
				t.Fatal("Encode succeeded")
			}
		})
	}
}

func TestResources(t *testing.T) {
	addrs := func(st *state.State) []string {
		var out []string
		for _, r := range st.Resources {
			out = append(out, r.Address)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		change func(st *state.State) bool
		want   []string
		ok     bool
	}{
		{"InsertSorted", func(st *state.State) bool {
			st.SetResource(state.Resource{Address: "database.main", Kind: "database"})
			return true
		}, []string{"database.main", "instance.app", "network.main"}, true},
		{"Replace", func(st *state.State) bool {
			st.SetResource(state.Resource{Address: "instance.app", Kind: "instance", ID: "i-2"})
			r, ok := st.Resource("instance.app")
			return ok && r.ID == "i-2"
		}, []string{"instance.app", "network.main"}, true},
		{"Remove", func(st *state.State) bool { return st.RemoveResource("instance.app") }, []string{"network.main"}, true},
		{"RemoveMissing", func(st *state.State) bool { return st.RemoveResource("volume.x") }, []string{"instance.app", "network.main"}, false},
		{"LookupMissing", func(st *state.State) bool { _, ok := st.Resource("volume.x"); return ok }, []string{"instance.app", "network.main"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := sample()
			if ok := tc.change(st); ok != tc.ok {
				t.Errorf("result %v, want %v", ok, tc.ok)
			}
			if got := addrs(st); !slices.Equal(got, tc.want) {
				t.Errorf("addresses = %q, want %q", got, tc.want)
			}
		})
	}
}

// stoppedSample is sample with a stopped on-demand database.
func stoppedSample() *state.State {
	st := sample()
	st.OnDemand = map[string]state.DatabaseArchive{"main": {
		Status:   state.ArchiveStopped,
		Since:    time.Date(2026, 12, 6, 4, 15, 0, 0, time.UTC),
		Manifest: "test/dumps/main/20261206T041500Z/manifest.json.sealed",
		Dumps: []state.ArchivedDump{{Database: "acco", Key: "test/dumps/main/20261206T041500Z/acco.dump.sealed", Size: 1 << 20,
			SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},
	}}
	return st
}

func TestOnDemandRoundTrip(t *testing.T) {
	plain, err := sample().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain, []byte("on_demand")) {
		t.Errorf("a state with no on-demand database mentions on_demand:\n%s", plain)
	}
	// An empty map is the same state as none.
	empty := sample()
	empty.OnDemand = map[string]state.DatabaseArchive{}
	if b, err := empty.Encode(); err != nil || !bytes.Equal(b, plain) {
		t.Errorf("an empty on_demand changes the encoding (%v):\n%s", err, b)
	}

	st := stoppedSample()
	a, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"on_demand": {`, `"status": "stopped"`, `"since": "2026-12-06T04:15:00Z"`, `"manifest": "test/dumps/main/20261206T041500Z/manifest.json.sealed"`, `"size": 1048576`} {
		if !bytes.Contains(a, []byte(want)) {
			t.Errorf("encoding lacks %s:\n%s", want, a)
		}
	}
	got, err := state.Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	if arch := got.OnDemand["main"]; arch.Status != state.ArchiveStopped || !arch.Since.Equal(st.OnDemand["main"].Since) || len(arch.Dumps) != 1 || arch.Dumps[0].Size != 1<<20 {
		t.Errorf("decoded record %+v", arch)
	}
	if b, err := got.Encode(); err != nil || !bytes.Equal(a, b) {
		t.Errorf("round trip changed the encoding (%v):\n%s\n%s", err, a, b)
	}

	// A record with no dumps (a start with --empty) encodes them as [].
	st.OnDemand["main"] = state.DatabaseArchive{Status: state.ArchiveStarting, Since: time.Date(2026, 12, 6, 4, 15, 0, 0, time.UTC)}
	if a, err = st.Encode(); err != nil || !bytes.Contains(a, []byte(`"dumps": []`)) {
		t.Errorf("starting record with no dumps (%v):\n%s", err, a)
	}
	if st.OnDemand["main"].Dumps != nil {
		t.Error("Encode modified the caller's record")
	}
}

func TestEncodeRefusesBadOnDemand(t *testing.T) {
	st := stoppedSample()
	arch := st.OnDemand["main"]
	arch.Manifest = ""
	st.OnDemand["main"] = arch
	if _, err := st.Encode(); err == nil || !strings.Contains(err.Error(), "names no manifest") {
		t.Fatalf("Encode of a stopped record with no manifest: %v", err)
	}
}
