package envdiff

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/spec"
)

func base() *spec.Environment {
	return &spec.Environment{
		Name:    "a",
		Project: "p1",
		Region:  "GRA11",
		State:   spec.StateConfig{Bucket: "b"},
		Instances: map[string]*spec.Instance{
			"app": {Flavor: "d2-4", SecurityGroups: []string{"app"}},
		},
		SecurityGroups: map[string]*spec.SecurityGroup{
			"app": {Rules: []spec.Rule{{Protocol: "tcp", Ports: []spec.PortRange{{Min: 22, Max: 22}}}}},
		},
		Databases: map[string]*spec.Database{
			"main": {Plan: "essential", Nodes: 1, Timeouts: spec.Timeouts{Create: 40 * time.Minute}},
		},
		Services: spec.Services{
			Host:          "app",
			HealthTimeout: 2 * time.Minute,
			EMQX:          &spec.EMQX{Version: "5.10.4", Listeners: map[string]*spec.Listener{"mqtt": {Type: "tcp", Port: 1883}}},
			Backend:       &spec.Backend{NodeVersion: 24, Env: map[string]string{"LOG_LEVEL": "info", "TOKEN": "s3cret"}},
		},
	}
}

func str(s string) *string { return &s }

func TestCompare(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *spec.Environment)
		hide   func(key, value string) bool
		want   []Group
	}{
		{
			name:   "equal",
			change: func(*spec.Environment) {},
			want:   []Group{},
		},
		{
			name: "identity and state in the environment group, first",
			change: func(e *spec.Environment) {
				e.Instances["app"].Flavor = "b3-16"
				e.Project = "p2"
				e.State.Bucket = "c"
			},
			want: []Group{
				{Resource: "environment", Differences: []Difference{
					{Key: "project", Env1: str("p1"), Env2: str("p2")},
					{Key: "state.bucket", Env1: str("b"), Env2: str("c")},
				}},
				{Resource: "instances.app", Differences: []Difference{
					{Key: "instances.app.flavor", Env1: str("d2-4"), Env2: str("b3-16")},
				}},
			},
		},
		{
			name: "versions, numbers, durations and services' own scalars",
			change: func(e *spec.Environment) {
				e.Services.EMQX.Version = "5.9.0"
				e.Services.Backend.NodeVersion = 22
				e.Databases["main"].Timeouts.Create = 90 * time.Minute
				e.Services.HealthTimeout = 5 * time.Minute
			},
			want: []Group{
				{Resource: "databases.main", Differences: []Difference{
					{Key: "databases.main.timeouts.create", Env1: str("40m"), Env2: str("1h30m")},
				}},
				{Resource: "services", Differences: []Difference{
					{Key: "services.health_timeout", Env1: str("2m"), Env2: str("5m")},
				}},
				{Resource: "services.backend", Differences: []Difference{
					{Key: "services.backend.node_version", Env1: str("24"), Env2: str("22")},
				}},
				{Resource: "services.emqx", Differences: []Difference{
					{Key: "services.emqx.version", Env1: str("5.10.4"), Env2: str("5.9.0")},
				}},
			},
		},
		{
			name: "list items by index, scalar lists as one value, a rule only on one side",
			change: func(e *spec.Environment) {
				sg := e.SecurityGroups["app"]
				sg.Rules[0].Ports = []spec.PortRange{{Min: 22, Max: 22}, {Min: 8000, Max: 8100}}
				sg.Rules = append(sg.Rules, spec.Rule{Protocol: "icmp", From: []string{"0.0.0.0/0"}})
			},
			want: []Group{
				{Resource: "security_groups.app", Differences: []Difference{
					{Key: "security_groups.app.rules[0].ports", Env1: str("[22]"), Env2: str("[22, 8000-8100]")},
					{Key: "security_groups.app.rules[1].from", Env2: str("[0.0.0.0/0]")},
					{Key: "security_groups.app.rules[1].protocol", Env2: str("icmp")},
				}},
			},
		},
		{
			name: "a listener removed: absent on one side, zero values not listed",
			change: func(e *spec.Environment) {
				e.Services.EMQX.Listeners["mqtts"] = &spec.Listener{Type: "ssl", Port: 8883, TLS: &spec.TLSFiles{CertFile: "~/c.crt"}}
			},
			want: []Group{
				{Resource: "services.emqx", Differences: []Difference{
					{Key: "services.emqx.listeners.mqtts.port", Env2: str("8883")},
					{Key: "services.emqx.listeners.mqtts.tls.cert_file", Env2: str("~/c.crt")},
					{Key: "services.emqx.listeners.mqtts.type", Env2: str("ssl")},
				}},
			},
		},
		{
			name: "a zero value present on both sides is compared",
			change: func(e *spec.Environment) {
				e.Databases["main"].Protect = true
			},
			want: []Group{
				{Resource: "databases.main", Differences: []Difference{
					{Key: "databases.main.protect", Env1: str("false"), Env2: str("true")},
				}},
			},
		},
		{
			name: "hidden values are compared but not shown",
			change: func(e *spec.Environment) {
				e.Services.Backend.Env["TOKEN"] = "other"
				e.Services.Backend.Env["LOG_LEVEL"] = "debug"
			},
			hide: func(key, value string) bool { return strings.HasSuffix(key, ".TOKEN") },
			want: []Group{
				{Resource: "services.backend", Differences: []Difference{
					{Key: "services.backend.env.LOG_LEVEL", Env1: str("info"), Env2: str("debug")},
					{Key: "services.backend.env.TOKEN", Env1: str(Hidden), Env2: str(Hidden)},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e2 := base()
			e2.Name = "a"
			tt.change(e2)
			got := Compare(base(), e2, Options{Hide: tt.hide})
			if !reflect.DeepEqual(got.Groups, tt.want) {
				t.Errorf("groups:\n got %s\nwant %s", dump(got.Groups), dump(tt.want))
			}
			if got.Equal != (len(tt.want) == 0) {
				t.Errorf("Equal = %v with %d groups", got.Equal, len(tt.want))
			}
		})
	}
}

func dump(gs []Group) string {
	var b strings.Builder
	for _, g := range gs {
		b.WriteString(g.Resource + ":")
		for _, d := range g.Differences {
			b.WriteString(" " + d.Key + "=" + text(d.Env1) + "|" + text(d.Env2))
		}
		b.WriteString("; ")
	}
	return b.String()
}

func TestLessPath(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"rules[2].ports", "rules[10].ports", true},
		{"rules[10].ports", "rules[2].ports", false},
		{"a.b", "a.b.c", true},
		{"cloud", "name", true},
	}
	for _, tt := range tests {
		if got := lessPath(tt.a, tt.b); got != tt.want {
			t.Errorf("lessPath(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
