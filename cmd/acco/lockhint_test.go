package main

import (
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/state"
)

func TestLockedHintNamesWhatWorks(t *testing.T) {
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		holder state.LockInfo
		want   []string
	}{
		{"Hold", state.LockInfo{ID: "h1", Who: "alice@laptop", Operation: "hold"},
			[]string{"operator hold", "acco lock break test h1 --force"}},
		{"Live run elsewhere", state.LockInfo{ID: "r1", Who: "ci@runner", Operation: "apply", Expires: now.Add(50 * time.Second),
			Process: &state.Process{Host: "runner", PID: 4242}},
			[]string{"pid 4242 on runner", "expires at 2026-05-01T10:00:50Z", "--lock-timeout 1m", "acco lock break test r1 --force"}},
		{"Older acco, no process", state.LockInfo{ID: "o1", Who: "bob@ci", Operation: "apply", Expires: now.Add(100 * time.Second)},
			[]string{"--lock-timeout 2m", "acco lock break test o1 --force"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := lockedHint("test", tc.holder, now)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("hint %q lacks %q", got, w)
				}
			}
		})
	}
}
