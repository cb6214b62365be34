package vm

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

const (
	edKey    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILFNRKIxOUjbNbKhnIyS8nSl4NRj2DO1UKgs+invuhk2 root@x"
	ecdsaKey = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIqoiOfLHtY4e8w7ciZqyS0bkuNseDbtXy1V40aw/rAt02kOeQ5l/u4c/Xn0RtC3QWEgf4QoCG4keX35m6cuLpQ= root@x"
	// A key that only appears outside the block (like cloud-init's ci-info table).
	otherKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH52TFudOJt4zc39hK3jUCEA4QDD+jjwRhzi/42x19Wr root@acco-vm"
)

func block(lines ...string) string {
	return "-----BEGIN SSH HOST KEY KEYS-----\n" + strings.Join(lines, "\n") + "\n-----END SSH HOST KEY KEYS-----\n"
}

func TestParseConsoleHostKeys(t *testing.T) {
	tests := []struct {
		name    string
		console string
		want    []string // key types, in order
		wantErr error
	}{
		{name: "empty", console: "", wantErr: ErrNoHostKeys},
		{name: "our first-boot unit",
			console: "[  OK  ] Started foo\n\n-----BEGIN SSH HOST KEY FINGERPRINTS-----\n256 SHA256:abc root@x (ED25519)\n" +
				"-----END SSH HOST KEY FINGERPRINTS-----\n" + block(edKey) + "\nDebian GNU/Linux 12 acco-vm ttyS0\n",
			want: []string{"ssh-ed25519"}},
		{name: "cloud-init noise: CRLF, prefixes, key table outside the block",
			console: "ci-info: | ssh-ed25519 | " + otherKey + " |\r\n" +
				"<14>Nov 26 06:20:01 cloud-init: -----BEGIN SSH HOST KEY KEYS-----\r\n" +
				"<14>Nov 26 06:20:01 cloud-init: " + ecdsaKey + "\r\n" +
				"[  179.878] cloud-init[608]: " + edKey + "\r\n" +
				"<14>Nov 26 06:20:01 cloud-init: -----END SSH HOST KEY KEYS-----\r\n",
			want: []string{"ecdsa-sha2-nistp256", "ssh-ed25519"}},
		{name: "the last complete block wins",
			console: block(otherKey, ecdsaKey) + "reboot: Restarting system\n" + block(edKey) + "-----BEGIN SSH HOST KEY KEYS-----\n" + ecdsaKey + "\n",
			want:    []string{"ssh-ed25519"}},
		{name: "incomplete block only", console: "-----BEGIN SSH HOST KEY KEYS-----\n" + edKey + "\n", wantErr: ErrNoHostKeys},
		{name: "empty block", console: block(""), wantErr: ErrNoHostKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseConsoleHostKeys(tt.console)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.Type())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("key types = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseConsoleHostKeysBadLine(t *testing.T) {
	if _, err := ParseConsoleHostKeys(block("ssh-ed25519 AAAAnotbase64!!")); err == nil || errors.Is(err, ErrNoHostKeys) {
		t.Fatalf("a garbled key line must be an error of its own, got %v", err)
	}
}

func TestPinnedHostKeys(t *testing.T) {
	keys, err := ParseConsoleHostKeys(block(edKey, ecdsaKey))
	if err != nil {
		t.Fatal(err)
	}
	cb := PinnedHostKeys(keys)
	for _, k := range keys {
		if err := cb("127.0.0.1:22", nil, k); err != nil {
			t.Errorf("pinned %s refused: %v", k.Type(), err)
		}
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := cb("127.0.0.1:22", nil, other); err == nil {
		t.Error("an unpinned key was accepted")
	}
	if err := PinnedHostKeys(nil)("127.0.0.1:22", nil, keys[0]); err == nil {
		t.Error("with nothing pinned every key must be refused")
	}
}

func TestHostname(t *testing.T) {
	for in, want := range map[string]string{
		"acco-vm":               "acco-vm",
		"TestBoot/sub_1":        "testboot-sub-1",
		"--":                    "acco-vm",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := hostname(in); got != want {
			t.Errorf("hostname(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImageAvailableMissing(t *testing.T) {
	err := ImageAvailable(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "make vm-image") {
		t.Fatalf("ImageAvailable(empty dir) = %v, want an error that says to run make vm-image", err)
	}
}
