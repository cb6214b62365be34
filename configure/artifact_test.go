package configure

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarEntry is one member of a test archive: a name ending in / is a
// directory, anything else a regular file holding body.
type tarEntry struct{ name, body string }

func artifactArchive(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hd := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		if strings.HasSuffix(e.name, "/") {
			hd = &tar.Header{Name: e.name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hd); err != nil {
			t.Fatal(err)
		}
		if hd.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestNewArtifact: the host runs npm ci (LockSHA256 set) only for an archive
// that has a package-lock.json and does not bundle its node_modules.
func TestNewArtifact(t *testing.T) {
	const lock = `{"lockfileVersion":3}`
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		strip   int
		lock    bool // LockSHA256 is the lock file's hash (else "")
	}{
		{
			name:    "top dir, lock, no node_modules: npm ci",
			entries: []tarEntry{{"package/", ""}, {"package/package.json", "{}"}, {"package/package-lock.json", lock}, {"package/dist/server.js", "x"}},
			strip:   1, lock: true,
		},
		{
			name: "top dir, lock, node_modules bundled: no npm ci",
			entries: []tarEntry{{"package/", ""}, {"package/package.json", "{}"}, {"package/package-lock.json", lock},
				{"package/node_modules/", ""}, {"package/node_modules/pg/", ""}, {"package/node_modules/pg/package.json", "{}"}},
			strip: 1,
		},
		{
			name: "top dir, lock, node_modules files without directory entries: no npm ci",
			entries: []tarEntry{{"package/package.json", "{}"}, {"package/package-lock.json", lock},
				{"package/node_modules/pg/package.json", "{}"}},
			strip: 1,
		},
		{
			name:    "top dir, lock, empty node_modules directory: no npm ci",
			entries: []tarEntry{{"package/package.json", "{}"}, {"package/package-lock.json", lock}, {"package/node_modules/", ""}},
			strip:   1,
		},
		{
			name:    "top dir with ./ prefix, node_modules bundled: no npm ci",
			entries: []tarEntry{{"./package/", ""}, {"./package/package-lock.json", lock}, {"./package/node_modules/mqtt/index.js", "x"}},
			strip:   1,
		},
		{
			name:    "top dir, node_modules bundled, no lock",
			entries: []tarEntry{{"package/package.json", "{}"}, {"package/node_modules/pg/index.js", "x"}},
			strip:   1,
		},
		{
			name:    "top dir, no lock, no node_modules",
			entries: []tarEntry{{"package/package.json", "{}"}, {"package/dist/server.js", "x"}},
			strip:   1,
		},
		{
			name: "top dir, node_modules only deeper down: npm ci",
			entries: []tarEntry{{"package/package.json", "{}"}, {"package/package-lock.json", lock},
				{"package/dist/node_modules/x.js", "x"}, {"package/node_modules.txt", "not a directory"}},
			strip: 1, lock: true,
		},
		{
			name:    "no top dir, lock, no node_modules: npm ci",
			entries: []tarEntry{{"package.json", "{}"}, {"package-lock.json", lock}, {"dist/server.js", "x"}},
			lock:    true,
		},
		{
			name:    "no top dir, lock, node_modules bundled: no npm ci",
			entries: []tarEntry{{"package.json", "{}"}, {"package-lock.json", lock}, {"dist/server.js", "x"}, {"node_modules/", ""}, {"node_modules/pg/index.js", "x"}},
		},
		{
			name:    "no top dir, ./ prefix, node_modules bundled: no npm ci",
			entries: []tarEntry{{"./package.json", "{}"}, {"./package-lock.json", lock}, {"./node_modules/pg/index.js", "x"}},
		},
		{
			name:    "no top dir, lock, a file named node_modules: npm ci",
			entries: []tarEntry{{"package.json", "{}"}, {"package-lock.json", lock}, {"node_modules", "a file"}},
			lock:    true,
		},
		{
			name:    "no top dir, no lock, node_modules bundled",
			entries: []tarEntry{{"package.json", "{}"}, {"node_modules/pg/index.js", "x"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := artifactArchive(t, tc.entries)
			p := filepath.Join(t.TempDir(), "backend.tar.gz")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := NewArtifact("backend", p, "/opt/acco-backend/app", "acco-backend.service")
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if tc.lock {
				want = sha([]byte(lock))
			}
			if a.Strip != tc.strip || a.LockSHA256 != want {
				t.Errorf("Strip %d, LockSHA256 %q; want Strip %d, LockSHA256 %q", a.Strip, a.LockSHA256, tc.strip, want)
			}
			if a.SHA256 != sha(data) {
				t.Errorf("SHA256 %s is not the archive's hash %s", a.SHA256, sha(data))
			}
			if a.Name != "backend" || a.Dir != "/opt/acco-backend/app" || a.Restart != "acco-backend.service" {
				t.Errorf("artifact %+v", a)
			}
			// A bundled archive needs no npm on the host.
			script := artifactScript(a)
			if got := strings.Contains(script, "npm ci"); got != tc.lock {
				t.Errorf("npm ci in the upload script: %v, want %v:\n%s", got, tc.lock, script)
			}
		})
	}
}
