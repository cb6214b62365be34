package main

import (
	"strings"
	"testing"

	"github.com/accoreboot/acco/state"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"release freeze", "release freeze"},
		{"café ☕", "café ☕"},
		{"\x1b[2J\x1b[31mred", `\x1b[2J\x1b[31mred`},
		{"two\nlines", `two\nlines`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"bad \xff byte", `bad \xff byte`},
		{"bell\a del\x7f c1\u0085", `bell\a del\x7f c1\u0085`},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := printableLines("Error: x\n\ty\x1b]0;title\a"); got != "Error: x\n\ty\\x1b]0;title\\a" {
		t.Errorf("printableLines kept %q", got)
	}
}

func TestCheckOperatorText(t *testing.T) {
	for _, tc := range []struct {
		in, wantErr string
	}{
		{"release freeze until Monday", ""},
		{"gel des déploiements", ""},
		{"\x1b[31mred", "control character U+001B at byte 0"},
		{"a\nb", "control character U+000A"},
		{"tab\there", "control character U+0009"},
		{"\u202eevil", "control character U+202E"},
		{"\xff", "not valid UTF-8"},
		{strings.Repeat("x", maxOperatorText+1), "keep it under"},
	} {
		err := checkOperatorText("--reason", tc.in)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("checkOperatorText(%q) = %v, want nil", tc.in, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("checkOperatorText(%q) = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

func TestTookOverMessageEscapes(t *testing.T) {
	prev := &state.LockInfo{ID: "id\x1b[2J", Who: "mallory\x1b]0;owned\a@host", Operation: "apply", Reason: "fix\nnow \u202eevil"}
	for _, tc := range []struct {
		gone    bool
		process *state.Process
		want    string
	}{
		{false, nil, `Took over the expired lock id\x1b[2J of mallory\x1b]0;owned\a@host (apply, reason: fix\nnow \u202eevil).`},
		{true, &state.Process{PID: 42, Host: "ci\x1b[1m"}, `Took over the lock id\x1b[2J of mallory\x1b]0;owned\a@host (apply, reason: fix\nnow \u202eevil): its holder, pid 42 on ci\x1b[1m, is gone.`},
	} {
		p := *prev
		p.Process = tc.process
		got := tookOverMessage(&p, tc.gone)
		if got != tc.want {
			t.Errorf("tookOverMessage:\n got %s\nwant %s", got, tc.want)
		}
		if strings.ContainsFunc(got, unsafeRune) {
			t.Errorf("tookOverMessage kept a control character: %q", got)
		}
	}
	if got := tookOverMessage(&state.LockInfo{ID: "abc", Who: "ops@ci", Operation: "destroy"}, false); got != "Took over the expired lock abc of ops@ci (destroy)." {
		t.Errorf("plain: %s", got)
	}
}
