package spec

import (
	"strings"
	"testing"
)

func TestTextProblem(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the problem; "" for good text
	}{
		{"dist/server.js", ""},
		{`quotes " ' ` + "` $(id) ${X} ; % %% { } [ ] # : - | > & * !", ""},
		{"héllo wörld ✓ 日本", ""},
		{"\uFFFD is a real replacement character", ""},
		{"a\nb", "line break (U+000A"},
		{"a\rb", "line break (U+000D"},
		{"a\tb", "control character U+0009"},
		{"a\x00b", "control character U+0000"},
		{"a\x1bb", "control character U+001B"},
		{"a\x7fb", "control character U+007F"},
		{"a\u0085b", "control character U+0085"},
		{"a\u2028b", "line separator (U+2028"},
		{"a\u2029b", "line separator (U+2029"},
		{"a\xffb", "not valid UTF-8 (byte 0xff at offset 1)"},
		{"\xc3", "not valid UTF-8"},
	}
	for _, tt := range tests {
		got := textProblem(tt.in)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("textProblem(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEntrypointProblem(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the problem; "" for a good path
	}{
		{"dist/server.js", ""},
		{"./dist/server.mjs", ""},
		{"lib/@scope/main+v2.cjs", ""},
		{"server.js", ""},
		{"/opt/server.js", "inside the artifact"},
		{"../server.js", "inside the artifact"},
		{"dist/../../server.js", "inside the artifact"},
		{"dist/server.ts", "not a JavaScript file"},
		{"dist/a/../server.js", "relative path of letters"},
		{"dist//server.js", "relative path of letters"},
		{"dist/my server.js", "relative path of letters"},
		{"dist/$(id).js", "relative path of letters"},
		{"dist/%n.js", "relative path of letters"},
		{`dist/"x".js`, "relative path of letters"},
		{"dist/x;y.js", "relative path of letters"},
		{`dist\x.js`, "relative path of letters"},
	}
	for _, tt := range tests {
		got := entrypointProblem(tt.in)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("entrypointProblem(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestIsURLHost(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"s3.gra.io.cloud.ovh.net", true},
		{"localhost", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"example.com.", true},
		{"", false},
		{"fe80::1%eth0", false},
		{"s3.gra.io.cloud.ovh.net'", false},
		{"s3$HOME.example", false},
		{"a;b.example", false},
		{"-a.example", false},
		{"a..example", false},
		{"a_b.example", false},
	}
	for _, tt := range tests {
		if got := isURLHost(tt.in); got != tt.want {
			t.Errorf("isURLHost(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
