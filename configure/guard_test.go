package configure

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRunRefusesASecretOnTheCommandLine: the engine refuses to send a
// script whose text holds a secret it masks, names the step and never the
// value, and runs nothing of it; a secret in a file's content (standard
// input) is fine.
func TestRunRefusesASecretOnTheCommandLine(t *testing.T) {
	const secret = "S3CRET-on-the-command-line"
	file := func(f File) File {
		f.Path, f.Owner, f.Group, f.Mode = "/etc/acco/x.conf", "root", "root", 0o600
		if f.Content == nil {
			f.Content = []byte("x\n")
		}
		return f
	}
	cases := []struct {
		name string
		d    Desired
		what string // the step the error names; "" means accepted
	}{
		{"in a file's Post", Desired{Files: []File{file(File{Post: "set-password " + secret})}}, "write /etc/acco/x.conf"},
		{"in a file's validation", Desired{Files: []File{file(File{Validate: "check --password=" + secret + " {}"})}}, "write /etc/acco/x.conf"},
		{"in a command", Desired{Commands: []Command{{Name: "set-key", Creates: "/etc/acco/key", Script: "touch /etc/acco/key # " + secret}}}, "run set-key"},
		{"in a file's content (stdin)", Desired{Files: []File{file(File{Content: []byte("password=" + secret + "\n")})}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := newFakeHost()
			conn := &fakeConnector{hosts: map[string]*fakeHost{"app": host}}
			_, err := Run(context.Background(), conn, []Target{{Host: Host{Name: "app"}, Desired: tc.d}}, Options{Journal: newMemJournal(nil), Secrets: []string{secret}})
			if tc.what == "" {
				if err != nil {
					t.Fatalf("a secret on stdin refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("a script with a secret in its text was run: %q", host.mutations())
			}
			if !errors.Is(err, ErrSecretOnCommandLine) {
				t.Errorf("err = %v, want ErrSecretOnCommandLine", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.what) || strings.Contains(msg, secret) {
				t.Errorf("error %q: want the step %q named and the secret not shown", msg, tc.what)
			}
			for _, m := range host.mutations() {
				if strings.Contains(m, "x.conf") || strings.Contains(m, "/etc/acco/key") {
					t.Errorf("the host ran it: %q", m)
				}
			}
		})
	}
}

// TestSSHRunnerRefusesASecretOnTheCommandLine: the SSH runner itself, the
// last step before sudo, refuses a script holding a secret it masks,
// before it opens a session.
func TestSSHRunnerRefusesASecretOnTheCommandLine(t *testing.T) {
	const secret = "S3CRET-for-the-runner"
	r := &sshRunner{masker: NewMasker([]string{secret})}
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = nil
				t.Errorf("the runner tried to run it (panicked without a connection: %v)", p)
			}
		}()
		_, err = r.Run(context.Background(), "echo "+secret, nil)
	}()
	if !errors.Is(err, ErrSecretOnCommandLine) || strings.Contains(err.Error(), secret) {
		t.Errorf("err = %v: want ErrSecretOnCommandLine, without the secret", err)
	}
}
