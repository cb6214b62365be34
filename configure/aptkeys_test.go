package configure

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/spec"
)

// fakeCurl puts a curl on PATH that "downloads" key (whatever the URL)
// into the -o file.
func fakeCurl(t *testing.T, dir, key string) {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\nout=\nwhile [ $# -gt 0 ]; do\n  case \"$1\" in -o) out=$2; shift ;; esac\n  shift\ndone\ncp " + shellQuote(key) + " \"$out\"\n"
	if err := os.WriteFile(filepath.Join(bin, "curl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

// TestAptKeysOfServicesArePinned: a repository key that is not the
// pinned one is refused and never becomes a keyring apt trusts, for every
// key configure downloads (EMQX's packagecloud key, NodeSource's).
func TestAptKeysOfServicesArePinned(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("no gpg (apt-get install gpg)")
	}
	env, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Services(env, secretInputs(t), ServicesOptions{NoArtifact: true})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range d.Commands {
		names[c.Name] = true
	}
	if !names["emqx-apt-key"] || !names["nodesource-apt-key"] {
		t.Fatalf("commands %v: want emqx-apt-key and nodesource-apt-key", names)
	}
	key, err := filepath.Abs("testdata/apt-key-a.asc")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range d.Commands {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			fakeCurl(t, dir, key)
			keyrings := filepath.Join(dir, "keyrings") + "/"
			if err := os.MkdirAll(keyrings, 0o755); err != nil {
				t.Fatal(err)
			}
			script := strings.ReplaceAll("set -e\n"+c.Script, "/usr/share/keyrings/", keyrings)
			_, err := (&localRunner{}).Run(context.Background(), script, nil)
			if err == nil {
				t.Error("a key that is not the pinned one was accepted")
			}
			if _, serr := os.Stat(strings.ReplaceAll(c.Creates, "/usr/share/keyrings/", keyrings)); serr == nil {
				t.Error("the unpinned key became a keyring")
			}
		})
	}
}

// TestAptKeyCommand runs the key command locally against test keys: only
// a download whose every key is pinned becomes the keyring; a refusal
// shows the fingerprints it saw and what to do.
func TestAptKeyCommand(t *testing.T) {
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("no gpg (apt-get install gpg)")
	}
	const (
		fpA = "A453DDC8EF345625DB93598A9154FFDE06822B4B" // testdata/apt-key-a.asc
		fpB = "9C4AAFB0E6790101B0E4E0F705CD30A37062AB92" // testdata/apt-key-b.asc
	)
	read := func(n string) string {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	a, b := read("apt-key-a.asc"), read("apt-key-b.asc")
	for _, tc := range []struct {
		name     string
		download string
		pins     []string
		want     string // "" means accepted
	}{
		{"pinned key", a, []string{fpA}, ""},
		{"one of two pins", b, []string{fpA, fpB}, ""},
		{"another key", b, []string{fpA}, "key " + fpB + " is not the pinned key (" + fpA + ")"},
		{"pinned key plus another", a + b, []string{fpA}, "key " + fpB + " is not the pinned key"},
		{"nothing pinned", a, nil, "key " + fpA + " is not the pinned key (none pinned): do this"},
		{"not a key", "<html>maintenance</html>\n", []string{fpA}, "no OpenPGP public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "download")
			if err := os.WriteFile(src, []byte(tc.download), 0o644); err != nil {
				t.Fatal(err)
			}
			fakeCurl(t, dir, src)
			k := AptKey{Name: "test-apt-key", URL: "https://example.invalid/gpgkey", Keyring: filepath.Join(dir, "keyrings", "test.asc"), Fingerprints: tc.pins, Hint: "do this"}
			c := k.Command()
			if c.Creates != k.Keyring {
				t.Errorf("creates %s", c.Creates)
			}
			_, err := (&localRunner{}).Run(context.Background(), "set -e\n"+c.Script, nil)
			got, rerr := os.ReadFile(k.Keyring)
			if tc.want == "" {
				if err != nil || string(got) != tc.download {
					t.Errorf("refused a pinned key: %v (keyring %v)", err, rerr)
				}
				if st, err := os.Stat(k.Keyring); err == nil && st.Mode().Perm() != 0o644 {
					t.Errorf("keyring mode %o, want 644 (apt reads it as _apt)", st.Mode().Perm())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
			if rerr == nil {
				t.Error("a refused key became the keyring")
			}
			left, _ := os.ReadDir(filepath.Dir(k.Keyring))
			if len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

func TestNormalizeFingerprint(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"6F71F525282841EEDAF851B42F59B5F99B1BE0B4", NodeSourceKeyFingerprint},
		{"6f71 f525 2828 41ee daf8  51b4 2f59 b5f9 9b1b e0b4", NodeSourceKeyFingerprint},
		{"2F59B5F99B1BE0B4", ""},
		{"6F71F525282841EEDAF851B42F59B5F99B1BE0BX", ""},
		{"", ""},
	} {
		got, err := NormalizeFingerprint(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("NormalizeFingerprint(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestEMQXAptKeyFromYAML: services.emqx.apt_key_fingerprint pins EMQX's
// key (normalized); NodeSource's is pinned by acco; gpg is installed to
// check them.
func TestEMQXAptKeyFromYAML(t *testing.T) {
	env, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	in := secretInputs(t)
	for _, tc := range []struct{ yaml, pinned, err string }{
		{"", "'  '", ""},
		{"a453 ddc8 ef34 5625 db93 598a 9154 ffde 0682 2b4b", "' A453DDC8EF345625DB93598A9154FFDE06822B4B '", ""},
		{"not hex", "", "services.emqx.apt_key_fingerprint"},
	} {
		env.Services.EMQX.AptKeyFingerprint = tc.yaml
		d, err := Services(env, in, ServicesOptions{NoArtifact: true})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v", tc.yaml, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		scripts := map[string]string{}
		for _, c := range d.Commands {
			scripts[c.Name] = c.Script
		}
		if !strings.Contains(scripts["emqx-apt-key"], "\npinned="+tc.pinned+"\n") {
			t.Errorf("%q: emqx-apt-key pins:\n%s", tc.yaml, scripts["emqx-apt-key"])
		}
		if !strings.Contains(scripts["nodesource-apt-key"], "\npinned=' "+NodeSourceKeyFingerprint+" '\n") {
			t.Errorf("nodesource-apt-key pins:\n%s", scripts["nodesource-apt-key"])
		}
		gpg := false
		for _, p := range d.Packages {
			gpg = gpg || p.Name == "gpg" && !p.Repo
		}
		if !gpg {
			t.Error("gpg is not installed to check the keys")
		}
	}
}
