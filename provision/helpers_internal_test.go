package provision

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/accoreboot/acco/provision/openstack"
)

func TestRuleKeyRoundTrip(t *testing.T) {
	for _, r := range []openstack.Rule{
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: 22, PortMax: 22, RemoteIPPrefix: "192.0.2.0/24"},
		{Direction: "ingress", EtherType: "IPv6", Protocol: "udp", PortMin: 8000, PortMax: 8100, RemoteIPPrefix: "::/0"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", RemoteIPPrefix: "0.0.0.0/0"},
		{Direction: "ingress", EtherType: "IPv4", RemoteIPPrefix: "10.0.0.0/8"},
	} {
		k := ruleKey(r)
		back, err := parseRuleKey(k)
		if err != nil || back != r {
			t.Errorf("ruleKey %q parses to %+v, %v; want %+v", k, back, err, r)
		}
	}
	for _, bad := range []string{"", "IPv4", "IPv4 tcp x-y 0.0.0.0/0", "a b c d e"} {
		if _, err := parseRuleKey(bad); err == nil {
			t.Errorf("parseRuleKey(%q) accepted", bad)
		}
	}
}

func TestNormalizers(t *testing.T) {
	for _, tc := range []struct {
		f        func(string) string
		in, want string
	}{
		{normalizeKey, "ssh-ed25519 AAAA deploy@laptop\n", "ssh-ed25519 AAAA"},
		{normalizeKey, "  ssh-rsa  BBBB  ", "ssh-rsa BBBB"},
		{normalizeTime, "02:00", "02:00:00"},
		{normalizeTime, "02:00:30", "02:00:30"},
		{normalizeTime, "", ""},
	} {
		if got := tc.f(tc.in); got != tc.want {
			t.Errorf("%q -> %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEqualValueAcrossJSON(t *testing.T) {
	// State attributes come back from JSON as json.Number and []any; they
	// must compare equal to the Go values a plan computes.
	var decoded map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"n": 80, "l": ["a", "b"], "b": true, "s": "x"}`))
	dec.UseNumber()
	if err := dec.Decode(&decoded); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": 80, "l": []string{"a", "b"}, "b": true, "s": "x"}
	for k := range want {
		if !equalValue(want[k], decoded[k]) {
			t.Errorf("%s: %v != %v", k, want[k], decoded[k])
		}
	}
	if equalValue([]string{"a", "b"}, []any{"b", "a"}) {
		t.Error("lists in another order compare equal")
	}
	if attrInt(decoded, "n") != 80 || len(attrStrings(decoded, "l")) != 2 {
		t.Errorf("attrInt/attrStrings on decoded state: %v", decoded)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"d2-2", "d2-4", "d2-8", "b3-8", "c3-4"}
	if got := suggest("d2-44", names); got != " (did you mean d2-2, d2-4, d2-8?)" {
		t.Errorf("suggest = %q", got)
	}
	if got := suggest("zz", names); got != "" {
		t.Errorf("suggest for nothing close = %q", got)
	}
}

func TestKnownFromTakesLiveValuesForUnknowns(t *testing.T) {
	for _, tc := range []struct {
		name          string
		after, before map[string]any
		want          map[string]any
	}{
		{"Live address replaces the placeholder", map[string]any{"ipv4": Unknown, "flavor": "b3-8"}, map[string]any{"ipv4": "10.0.0.5", "flavor": "b3-8"},
			map[string]any{"ipv4": "10.0.0.5", "flavor": "b3-8"}},
		{"Nothing live stays unknown", map[string]any{"ipv4": Unknown}, map[string]any{"ipv4": ""}, map[string]any{"ipv4": Unknown}},
		{"Desired values win", map[string]any{"flavor": "b3-16"}, map[string]any{"flavor": "b3-8"}, map[string]any{"flavor": "b3-16"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := knownFrom(tc.after, tc.before)
			if len(got) != len(tc.want) {
				t.Fatalf("knownFrom = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("knownFrom[%s] = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}
