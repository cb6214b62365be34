package spec

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "x", "B": "y", "EMPTY": ""}
	tests := []struct {
		in, want, problem string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x"},
		{in: "pre-${A}-post", want: "pre-x-post"},
		{in: "${A}${B}", want: "xy"},
		{in: "${UNSET:-d}", want: "d"},
		{in: "${EMPTY:-d}", want: "d"},
		{in: "${A:-d}", want: "x"},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "${UNSET:-~/.ssh/id.pub}", want: "~/.ssh/id.pub"},
		{in: "$${A}", want: "${A}"},
		{in: "$A and $", want: "$A and $"},
		{in: "${UNSET}", problem: "environment variable UNSET is not set"},
		{in: "${EMPTY}", problem: "environment variable EMPTY is set but empty"},
		{in: "${A", problem: "unterminated ${"},
		{in: "${}", problem: "bad variable reference ${}"},
		{in: "${1A}", problem: "bad variable reference ${1A}"},
		{in: "${A-B}", problem: "bad variable reference ${A-B}"},
		{in: "${A:=d}", problem: "bad variable reference ${A:=d}"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, problem := expand(tt.in, mapLookup(vars))
			if tt.problem != "" {
				if !strings.Contains(problem, tt.problem) {
					t.Errorf("expand(%q) problem = %q, want it to contain %q", tt.in, problem, tt.problem)
				}
				return
			}
			if problem != "" || got != tt.want {
				t.Errorf("expand(%q) = %q, %q; want %q", tt.in, got, problem, tt.want)
			}
		})
	}
}

func TestExpandNilLookup(t *testing.T) {
	if got, p := expand("${X:-d}", nil); got != "d" || p != "" {
		t.Errorf("expand with nil lookup = %q, %q; want the default", got, p)
	}
	if _, p := expand("${X}", nil); p == "" {
		t.Error("expand(${X}) with nil lookup: want a problem")
	}
}

// TestLoadExpandsVariables checks that the keys marked for it read the
// operator's variables, and the defaults apply when they are unset.
func TestLoadExpandsVariables(t *testing.T) {
	env := minimalEnv + `
  backend:
    env:
      API_KEY: ${ACCO_TEST_API_KEY:-none}
      LITERAL: "$${NOT_A_VAR}"
`
	tests := []struct {
		name  string
		vars  map[string]string
		check func(*Environment) (got, want string)
	}{
		{"admin_cidrs default", nil, func(e *Environment) (string, string) {
			return e.AdminCIDRs[0], "203.0.113.0/24"
		}},
		{"admin_cidrs from the environment", map[string]string{"ACCO_ADMIN_CIDR": "198.51.100.7/32"}, func(e *Environment) (string, string) {
			return e.AdminCIDRs[0], "198.51.100.7/32"
		}},
		{"public key file", map[string]string{"ACCO_DEPLOY_PUBLIC_KEY_FILE": "/keys/deploy.pub"}, func(e *Environment) (string, string) {
			return e.Keypairs["deploy"].PublicKeyFile, "/keys/deploy.pub"
		}},
		{"backend artifact", map[string]string{"ACCO_BACKEND_ARTIFACT": "/build/backend.tgz"}, func(e *Environment) (string, string) {
			return e.Services.Backend.Artifact, "/build/backend.tgz"
		}},
		{"backend env value", map[string]string{"ACCO_TEST_API_KEY": "s3cret"}, func(e *Environment) (string, string) {
			return e.Services.Backend.Env["API_KEY"], "s3cret"
		}},
		{"backend env default", nil, func(e *Environment) (string, string) {
			return e.Services.Backend.Env["API_KEY"], "none"
		}},
		{"escaped dollar", nil, func(e *Environment) (string, string) {
			return e.Services.Backend.Env["LITERAL"], "${NOT_A_VAR}"
		}},
		{"inherited env keeps merging", nil, func(e *Environment) (string, string) {
			return e.Services.Backend.Env["LOG_LEVEL"], "info"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := tt.check(loadString(t, env, tt.vars))
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

// TestLoadExpandedValueIsValidated checks that a value read from the
// environment is validated like a written one, at the key's position.
func TestLoadExpandedValueIsValidated(t *testing.T) {
	_, err := load(shippedFS(t, map[string]string{"test.yaml": minimalEnv}), "environments", "test",
		mapLookup(map[string]string{"ACCO_ADMIN_CIDR": "10.0.0.1/8"}))
	want := `environments/defaults.yaml:`
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "admin_cidrs[0]: 10.0.0.1/8 has host bits set; write 10.0.0.0/8") {
		t.Errorf("err = %v, want the bad CIDR reported at admin_cidrs[0] in defaults.yaml", err)
	}
}
