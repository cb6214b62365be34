package configure

import (
	"context"
	"slices"
	"testing"

	"github.com/accoreboot/acco/state"
)

func TestStateJournal(t *testing.T) {
	st := state.New("test", "dev")
	saves := 0
	j := &StateJournal{State: st, Save: func(context.Context) error { saves++; return nil }}
	ctx := context.Background()
	if err := j.Owe(ctx, "app", []string{"emqx.service", "acco-backend.service"}, "r"); err != nil {
		t.Fatal(err)
	}
	if err := j.Owe(ctx, "app", []string{"emqx.service"}, "r"); err != nil {
		t.Fatal(err)
	}
	if saves != 1 {
		t.Errorf("%d saves, want 1 (the second Owe added nothing)", saves)
	}
	if got := j.Owed("app"); !slices.Equal(got, []string{"acco-backend.service", "emqx.service"}) {
		t.Errorf("Owed = %v", got)
	}
	if st.Pending[0].Address != "host.app:unit:emqx.service" || st.Pending[0].Action != "restart" {
		t.Errorf("pending = %+v", st.Pending[0])
	}
	if len(j.Owed("other")) != 0 {
		t.Error("another host owes restarts")
	}
	if err := j.Paid(ctx, "app", "emqx.service"); err != nil {
		t.Fatal(err)
	}
	if got := j.Owed("app"); !slices.Equal(got, []string{"acco-backend.service"}) || saves != 2 {
		t.Errorf("after Paid: %v, %d saves", got, saves)
	}
	keys := &StateKeys{State: st}
	if err := keys.PinHostKeys(ctx, "app", "192.0.2.1", []string{"ssh-ed25519 AAAA"}); err != nil {
		t.Fatal(err)
	}
	if got := keys.HostKeys("app"); !slices.Equal(got, []string{"ssh-ed25519 AAAA"}) || st.Hosts["app"].Address != "192.0.2.1" {
		t.Errorf("pinned %v %+v", got, st.Hosts)
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"
	b := "1\n2\nthree\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n"
	want := "--- f\n+++ f\n@@ -1,6 +1,6 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n@@ -10,3 +10,4 @@\n 10\n 11\n 12\n+13\n"
	if got := UnifiedDiff("f", a, b); got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if UnifiedDiff("f", a, a) != "" {
		t.Error("equal texts differ")
	}
	if got := UnifiedDiff("f", "", "x\n"); got != "--- f\n+++ f\n@@ -0,0 +1 @@\n+x\n" {
		t.Errorf("new file diff:\n%s", got)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":            "''",
		"/etc/a.conf": "/etc/a.conf",
		"it's":        `'it'\''s'`,
		"a b":         "'a b'",
		"$(x)":        "'$(x)'",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
