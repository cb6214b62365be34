package main

import (
	"slices"
	"strings"
	"testing"
)

// TestCheckStream: the checks the --json streams of long commands pass in
// the scripts, on good and bad streams.
func TestCheckStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		types  []string
		err    string
	}{
		{"deploy, nothing to do",
			`{"type":"plan","operation":"deploy","format_version":"1","env":"local","changes":[],"drift":[],"summary":{},"hosts":[]}` + "\n" +
				`{"type":"summary","operation":"deploy","nothing_to_do":true}` + "\n",
			[]string{"plan", "summary"}, ""},
		{"failed run ends with its error document",
			`{"type":"apply_start","address":"keypair.deploy"}` + "\n" + "{\n  \"error\": \"boom\",\n  \"exit_code\": 1\n}\n",
			[]string{"apply_start", "error"}, ""},
		{"unknown type", `{"type":"progress"}` + "\n", nil, `type "progress" is not of the stream's vocabulary`},
		{"plan without format_version", `{"type":"plan","env":"x","changes":[],"drift":[],"summary":{}}` + "\n", nil, `format_version`},
		{"summary without operation", `{"type":"summary"}` + "\n", nil, "summary without operation"},
		{"indented object", "{\n\"type\":\"diagnostic\"\n}\n", []string{"diagnostic"}, "line 1 is not one JSON object"},
		{"object after the error", `{"error":"x","exit_code":1}` + "\n" + `{"type":"diagnostic"}` + "\n", []string{"error"}, "follows the error document"},
		{"not JSON", "Apply complete\n", nil, "not a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			types, err := checkStream([]byte(tc.stream))
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("checkStream: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("checkStream error = %v, want one containing %q", err, tc.err)
			}
			if !slices.Equal(types, tc.types) {
				t.Errorf("types = %v, want %v", types, tc.types)
			}
		})
	}
}
