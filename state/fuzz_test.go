package state_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/accoreboot/acco/state"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts
// survives Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	if data, err := sample().Encode(); err == nil {
		f.Add(data)
	}
	if data, err := stoppedSample().Encode(); err == nil {
		f.Add(data)
	}
	if data, err := state.New("test", "v").Encode(); err == nil {
		f.Add(data)
	}
	for _, s := range []string{
		`{"format_version":1,"lineage":"l"}`,
		`{"format_version":1,"lineage":"l","resources":[{"address":"b.x","attributes":{"n":1e400}},{"address":"a.y","secrets":{}}]}`,
		`{"format_version":1,"lineage":"l","outputs":{"o":{"value":[1,"x",null,{"k":-0.5}]}},"hosts":{"h":{"address":"a","host_keys":null}}}`,
		`{"format_version":1,"lineage":"l","pending":[{"address":"a","action":"restart","started":"2026-05-01T10:00:00+02:00"}]}`,
		`{"format_version":1,"lineage":"l","on_demand":{"main":{"status":"starting","since":"2026-12-06T05:15:00+01:00","manifest":"","dumps":null}}}`,
		`{"format_version":1,"lineage":"l","on_demand":{}}`,
		`{"format_version":2,"lineage":"l"}`,
		`{"format_version":1}`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := state.Decode(data)
		if err != nil {
			return
		}
		enc, err := st.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded state: %v", err)
		}
		st2, err := state.Decode(enc)
		if err != nil {
			t.Fatalf("Decode of an encoded state: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(st, st2) {
			t.Fatalf("round trip changed the state:\n%#v\n%#v", st, st2)
		}
		enc2, err := st2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("second encoding differs (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}
