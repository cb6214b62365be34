package openstack

import (
	"errors"
	"strings"
	"testing"
)

func TestNewValidatesConfig(t *testing.T) {
	p := Project{ID: "0123456789abcdef0123456789abcdef", Name: "p", User: "u", Password: "pw"}
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"zero value", Config{}, ""},
		{"one project", Config{Projects: []Project{p}, Regions: []string{"GRA9"}}, ""},
		{"repeated region", Config{Regions: []string{"GRA11", "GRA11"}}, "repeated"},
		{"empty region", Config{Regions: []string{""}}, "empty"},
		{"project without password", Config{Projects: []Project{{ID: "x", Name: "p", User: "u"}}}, "needs"},
		{"repeated project ID", Config{Projects: []Project{p, {ID: p.ID, Name: "q", User: "v", Password: "pw"}}}, "repeats id"},
		{"repeated user", Config{Projects: []Project{p, {ID: "y", Name: "q", User: "u", Password: "pw"}}}, "repeats user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestDefaultProjectsLookLikeOVH(t *testing.T) {
	for _, p := range DefaultProjects() {
		if !projectIDPattern.MatchString(p.ID) || !projectIDPattern.MatchString(p.UserID()) {
			t.Errorf("project %s: IDs %s %s are not 32 hex digits", p.Name, p.ID, p.UserID())
		}
	}
}

func TestHostnameOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"acco-test-app", "acco-test-app"},
		{"App_1.prod", "app-1-prod"},
		{"--x--", "x"},
		{"été", "t"},
		{"", "server"},
		{strings.Repeat("a", 70), strings.Repeat("a", 63)},
	} {
		if got := hostnameOf(tc.in); got != tc.want {
			t.Errorf("hostnameOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestAllocIP(t *testing.T) {
	c, err := New(Config{Regions: []string{"GRA11", "SBG5", "DE1", "UK1"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ region, first string }{
		{"GRA11", "198.51.100.2"}, {"SBG5", "203.0.113.2"}, {"DE1", "192.0.2.2"}, {"UK1", "198.18.3.2"},
	} {
		if got, ok := c.allocIP(tc.region); !ok || got != tc.first {
			t.Errorf("first address of %s: %s %v, want %s", tc.region, got, ok, tc.first)
		}
	}
	n := 0
	for {
		ip, ok := c.allocIP("GRA11")
		if !ok {
			break
		}
		c.st.Ports = append(c.st.Ports, &port{scope: scope{Region: "GRA11"}, IP: ip})
		n++
	}
	if n != 253 {
		t.Errorf("%d addresses in a /24, want 253 (.2 to .254)", n)
	}
	c.st.Ports = c.st.Ports[1:]
	if ip, ok := c.allocIP("GRA11"); !ok || ip != "198.51.100.2" {
		t.Errorf("freed address not reused: %s %v", ip, ok)
	}
}

func TestServerHostKeyNotFound(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ServerHostKey(DefaultProjects()[0].ID, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("host key of an unknown server: %v, want ErrNotFound", err)
	}
}
