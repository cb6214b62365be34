package state_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/accoreboot/acco/state"
)

// The archive of these tests.
const (
	arcCluster = "main"
	arcStamp   = "20261206T041500Z"
)

var arcKey = state.DumpKey(testEnv, arcCluster, arcStamp, "acco")

func TestArchiveKeys(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{state.DumpPrefix("prod", "main"), "prod/dumps/main/"},
		{state.DumpKey("prod", "main", arcStamp, "acco"), "prod/dumps/main/20261206T041500Z/acco.dump.sealed"},
		{state.ManifestKey("prod", "main", arcStamp), "prod/dumps/main/20261206T041500Z/manifest.json.sealed"},
		{state.NewStamp(time.Date(2026, 12, 6, 5, 15, 0, 7, time.FixedZone("CET", 3600))), arcStamp},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestCheckArchiveName(t *testing.T) {
	for _, tc := range []struct {
		kind, name string
		ok         bool
	}{
		{"environment", "prod", true},
		{"cluster", "main-db", true},
		{"database", "acco_2", true},
		{"database", "_private", true},
		{"database", "Mixed", true},
		{"stamp", arcStamp, true},
		{"database", "", false},
		{"database", "a/b", false},
		{"database", "..", false},
		{"database", "a.b", false},
		{"database", "-x", false},
		{"database", "with space", false},
		{"database", "été", false},
		{"database", strings.Repeat("a", 64), false},
		{"stamp", "2026-12-06", false},
		{"stamp", "20261206T041500", false},
		{"stamp", "20261306T041500Z", false},
	} {
		err := state.CheckArchiveName(tc.kind, tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckArchiveName(%s, %q) = %v, want ok=%v", tc.kind, tc.name, err, tc.ok)
		}
	}
}

// fileSealer returns a Sealer for the test environment.
func fileSealer(t testing.TB, key string) *state.Sealer {
	t.Helper()
	s, err := state.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s.For(testEnv, testLineage)
}

// randomFile writes n random bytes to a new file and returns its path.
func randomFile(t testing.TB, n int) string {
	t.Helper()
	data := make([]byte, n)
	_, _ = rand.Read(data)
	p := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileSum(t testing.TB, p string) string {
	t.Helper()
	sum, _, err := state.FileDigest(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func TestSealFileRoundTrip(t *testing.T) {
	const c = state.SealedFileChunkSize
	s := fileSealer(t, testKey)
	for _, n := range []int{0, 1, c - 1, c, c + 1, 3 * c, 3*c + 17} {
		src := randomFile(t, n)
		dir := t.TempDir()
		sealed, opened := filepath.Join(dir, "sealed"), filepath.Join(dir, "opened")
		if err := s.SealFile(t.Context(), src, sealed, arcKey); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		// Other lineage, same environment: dumps outlive the lineage.
		if err := s.For(testEnv, "another-lineage").OpenFile(t.Context(), sealed, opened, arcKey); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if fileSum(t, src) != fileSum(t, opened) {
			t.Errorf("%d bytes: the opened file differs from the original", n)
		}
		fi, err := os.Stat(opened)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%d bytes: plaintext mode %v, want 0600", n, fi.Mode().Perm())
		}
		assertOnly(t, dir, "opened", "sealed")
	}
}

// assertOnly checks that dir holds exactly names (no temporary files).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

// The layout of a sealed file, for the tamper cases.
const (
	hdrSize   = 16 + 1 + 4 + 32
	tagSize   = 16
	chunkSize = state.SealedFileChunkSize + tagSize
)

func TestOpenFileRefusesTampering(t *testing.T) {
	s := fileSealer(t, testKey)
	src := randomFile(t, 3*state.SealedFileChunkSize+100) // chunks 0, 1, 2 full, 3 short
	sealedPath := filepath.Join(t.TempDir(), "sealed")
	if err := s.SealFile(t.Context(), src, sealedPath, arcKey); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(sealedPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := hdrSize + 3*chunkSize + 100 + tagSize; len(good) != want {
		t.Fatalf("sealed size %d, want %d", len(good), want)
	}
	// exact is a file whose plaintext is a whole number of chunks.
	exactSrc := randomFile(t, 2*state.SealedFileChunkSize)
	exactPath := filepath.Join(t.TempDir(), "sealed")
	if err := s.SealFile(t.Context(), exactSrc, exactPath, arcKey); err != nil {
		t.Fatal(err)
	}
	exact, err := os.ReadFile(exactPath)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		b = slices.Clone(b)
		b[i] ^= 0x01
		return b
	}
	chunk := func(b []byte, i int) []byte { return b[hdrSize+i*chunkSize : hdrSize+(i+1)*chunkSize] }
	otherKey := fileSealer(t, otherKey)

	for _, tc := range []struct {
		name   string
		data   []byte
		sealer *state.Sealer
		key    string
		want   string
	}{
		{name: "Intact", data: good},
		{name: "MagicBit", data: flip(good, 3), want: "not a sealed file"},
		{name: "VersionBit", data: flip(good, 16), want: "format version 0"},
		{name: "ChunkSizeBit", data: flip(good, 20), want: "chunk 0 does not authenticate"},
		{name: "SaltBit", data: flip(good, 40), want: "chunk 0 does not authenticate"},
		{name: "FirstChunkBit", data: flip(good, hdrSize+5), want: "chunk 0 does not authenticate"},
		{name: "MiddleChunkBit", data: flip(good, hdrSize+chunkSize+1000), want: "chunk 1 does not authenticate"},
		{name: "TagBit", data: flip(good, len(good)-1), want: "chunk 3 does not authenticate"},
		{name: "CutAtChunkBoundary", data: good[:hdrSize+3*chunkSize], want: "cut short: it ends after chunk 2, which is not its last"},
		{name: "CutAtChunkBoundaryExact", data: exact[:hdrSize+chunkSize], want: "cut short: it ends after chunk 0, which is not its last"},
		{name: "CutLastChunkAway", data: exact[:hdrSize+chunkSize+8], want: "cut short: it ends 8 bytes into chunk 1"},
		{name: "CutMidChunk", data: good[:hdrSize+chunkSize+500], want: "chunk 1 does not authenticate"},
		{name: "CutInHeader", data: good[:20], want: "cut short in its header"},
		{name: "HeaderOnly", data: good[:hdrSize], want: "it ends right after its header"},
		{name: "Empty", data: nil, want: "not a sealed file"},
		{name: "AppendedChunk", data: slices.Concat(good, chunk(good, 0)), want: "does not authenticate"},
		{name: "AppendedAfterFullLast", data: slices.Concat(exact, chunk(exact, 0)), want: "data after its last chunk (chunk 1)"},
		{name: "Reordered", data: slices.Concat(good[:hdrSize], chunk(good, 1), chunk(good, 0), good[hdrSize+2*chunkSize:]), want: "chunk 0 does not authenticate"},
		{name: "DuplicatedChunk", data: slices.Concat(good[:hdrSize], chunk(good, 0), good[hdrSize:]), want: "chunk 1 does not authenticate"},
		{name: "OtherObjectKey", data: good, key: state.DumpKey(testEnv, arcCluster, arcStamp, "other"), want: "chunk 0 does not authenticate"},
		{name: "OtherEnvironment", data: good, sealer: s.For("prod", testLineage), want: "chunk 0 does not authenticate"},
		{name: "WrongStateKey", data: good, sealer: otherKey, want: "wrong ACCO_STATE_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sealer, key := s, arcKey
			if tc.sealer != nil {
				sealer = tc.sealer
			}
			if tc.key != "" {
				key = tc.key
			}
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
			if err := os.WriteFile(in, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			// An earlier file at out must survive a refused open.
			if err := os.WriteFile(out, []byte("before"), 0o600); err != nil {
				t.Fatal(err)
			}
			err := sealer.OpenFile(t.Context(), in, out, key)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, state.ErrUnseal) {
				t.Fatalf("OpenFile = %v, want an ErrUnseal saying %q", err, tc.want)
			}
			if got, _ := os.ReadFile(out); string(got) != "before" {
				t.Errorf("a refused open changed %s", out)
			}
			assertOnly(t, dir, "in", "out")
		})
	}
}

func TestSealFileNeedsBinding(t *testing.T) {
	unbound, err := state.NewSealer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	src := randomFile(t, 10)
	dst := filepath.Join(t.TempDir(), "sealed")
	if err := unbound.SealFile(t.Context(), src, dst, arcKey); err == nil || !strings.Contains(err.Error(), "not bound to an environment") {
		t.Errorf("SealFile with an unbound sealer = %v", err)
	}
	if err := fileSealer(t, testKey).SealFile(t.Context(), src, dst, ""); err == nil {
		t.Error("SealFile without an object key succeeded")
	}
}

func TestSealFileCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	src := randomFile(t, 3*state.SealedFileChunkSize)
	dir := t.TempDir()
	if err := fileSealer(t, testKey).SealFile(ctx, src, filepath.Join(dir, "sealed"), arcKey); !errors.Is(err, context.Canceled) {
		t.Errorf("SealFile = %v, want context.Canceled", err)
	}
	assertOnly(t, dir)
}

// marker is a plaintext the sealed forms must not show.
const marker = "PLAINTEXT-MARKER-4f1c"

// markerFile writes a file of size bytes full of marker.
func markerFile(t testing.TB, size int) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "plain")
	data := bytes.Repeat([]byte(marker), size/len(marker)+1)[:size]
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// archiveStores are the stores the archive is tested on: the S3 of the
// local cloud (gofakes3 over HTTP, as state/s3_test.go starts it) and a
// directory.
func archiveStores() []struct {
	name string
	open func(t *testing.T) state.FileStore
} {
	return []struct {
		name string
		open func(t *testing.T) state.FileStore
	}{
		{"S3", func(t *testing.T) state.FileStore {
			b := newFakeS3(t).blob(t, "acco-state", nil)
			if _, err := b.EnsureBucket(t.Context()); err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"Dir", func(t *testing.T) state.FileStore { return newDirBlob(t).(*state.DirBlob) }},
	}
}

// TestArchiveRoundTrip takes a 20 MiB file through SealFile, PutFile,
// GetFile and OpenFile on each store, and checks the stored object is the
// sealed file and does not show the plaintext.
func TestArchiveRoundTrip(t *testing.T) {
	for _, st := range archiveStores() {
		t.Run(st.name, func(t *testing.T) {
			ctx := t.Context()
			fs := st.open(t)
			s := fileSealer(t, testKey)
			src := markerFile(t, 20<<20)
			// Random bytes too, so that a reordering would show.
			f, err := os.OpenFile(src, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			tail := make([]byte, 1<<20)
			_, _ = rand.Read(tail)
			if _, err := f.Write(tail); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}

			dir := t.TempDir()
			sealed := filepath.Join(dir, "acco.dump.sealed")
			if err := s.SealFile(ctx, src, sealed, arcKey); err != nil {
				t.Fatal(err)
			}
			etag, err := fs.PutFile(ctx, arcKey, sealed)
			if err != nil {
				t.Fatal(err)
			}
			sealedData, err := os.ReadFile(sealed)
			if err != nil {
				t.Fatal(err)
			}
			var wantETag string
			if st.name == "S3" {
				sum := md5.Sum(sealedData)
				wantETag = hex.EncodeToString(sum[:])
			} else {
				sum := sha256.Sum256(sealedData)
				wantETag = hex.EncodeToString(sum[:])
			}
			if etag != wantETag {
				t.Errorf("ETag %s, want %s", etag, wantETag)
			}
			stored, _, err := fs.(state.Blob).Get(ctx, arcKey)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored, sealedData) {
				t.Fatal("the stored object differs from the sealed file")
			}
			if bytes.Contains(stored, []byte(marker)) || bytes.Contains(stored, tail[:64]) {
				t.Fatal("the stored object shows the plaintext")
			}

			got := filepath.Join(dir, "got.sealed")
			if err := fs.GetFile(ctx, arcKey, got); err != nil {
				t.Fatal(err)
			}
			if fileSum(t, got) != fileSum(t, sealed) {
				t.Fatal("GetFile gave another content")
			}
			opened := filepath.Join(dir, "acco.dump")
			if err := s.OpenFile(ctx, got, opened, arcKey); err != nil {
				t.Fatal(err)
			}
			if fileSum(t, opened) != fileSum(t, src) {
				t.Fatal("the round trip changed the content")
			}
			keys, err := fs.List(ctx, state.DumpPrefix(testEnv, arcCluster))
			if err != nil || !slices.Equal(keys, []string{arcKey}) {
				t.Errorf("List = %q, %v; want %q", keys, err, arcKey)
			}
			assertOnly(t, dir, "acco.dump", "acco.dump.sealed", "got.sealed")

			// A missing object: ErrNotFound, nothing written.
			missing := filepath.Join(dir, "missing")
			if err := fs.GetFile(ctx, arcKey+".nope", missing); !errors.Is(err, state.ErrNotFound) {
				t.Errorf("GetFile of a missing object = %v, want ErrNotFound", err)
			}
			assertOnly(t, dir, "acco.dump", "acco.dump.sealed", "got.sealed")
			if err := fs.Delete(ctx, arcKey, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFileStoreCancelled(t *testing.T) {
	for _, st := range archiveStores() {
		t.Run(st.name, func(t *testing.T) {
			fs := st.open(t)
			src := randomFile(t, 1<<20)
			if _, err := fs.PutFile(t.Context(), arcKey, src); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			if _, err := fs.PutFile(ctx, arcKey, src); !errors.Is(err, context.Canceled) {
				t.Errorf("PutFile = %v, want context.Canceled", err)
			}
			dir := t.TempDir()
			if err := fs.GetFile(ctx, arcKey, filepath.Join(dir, "got")); !errors.Is(err, context.Canceled) {
				t.Errorf("GetFile = %v, want context.Canceled", err)
			}
			assertOnly(t, dir)
		})
	}
}

// TestS3PutFileHeaders: PutFile sends Content-Length and Content-MD5 and
// none of the flexible checksum headers OVH refuses, over TLS as with OVH.
func TestS3PutFileHeaders(t *testing.T) {
	ctx := t.Context()
	srv := httptest.NewTLSServer(gofakes3.New(s3mem.New(), gofakes3.WithAutoBucket(false)).Server())
	t.Cleanup(srv.Close)
	rec := &recorder{base: srv.Client().Transport}
	b, err := state.NewS3Blob(ctx, state.S3Config{
		Bucket: "acco-state", Region: testRegion, Endpoint: srv.URL, PathStyle: true,
		HTTPClient: &http.Client{Transport: rec}, Credentials: testCredentials(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	src := randomFile(t, 200<<10)
	if _, err := b.PutFile(ctx, arcKey, src); err != nil {
		t.Fatal(err)
	}
	if err := b.GetFile(ctx, arcKey, filepath.Join(t.TempDir(), "got")); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	puts := 0
	for _, r := range rec.reqs {
		for name, values := range r.header {
			h := strings.ToLower(name)
			if strings.HasPrefix(h, "x-amz-checksum-") || h == "x-amz-sdk-checksum-algorithm" || h == "x-amz-trailer" {
				t.Errorf("%s %s sends %s: %s", r.method, r.path, name, values)
			}
		}
		if v := r.header.Get("X-Amz-Content-Sha256"); strings.HasPrefix(v, "STREAMING-") {
			t.Errorf("%s %s sends x-amz-content-sha256: %s", r.method, r.path, v)
		}
		if r.method == http.MethodPut && strings.HasSuffix(r.path, "/"+arcKey) {
			puts++
			if got, want := r.header.Get("Content-Md5"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
				t.Errorf("Content-MD5 %q, want %q", got, want)
			}
			if !bytes.Equal(r.body, data) {
				t.Errorf("PUT body of %d bytes differs from the file (%d bytes)", len(r.body), len(data))
			}
		}
	}
	if puts != 1 {
		t.Errorf("%d PUTs of the object, want 1", puts)
	}
}

// TestS3PutFileRetries: an attempt whose body was partly read and then
// answered 503 is retried with the whole body again; a GET whose body
// breaks off is started again.
func TestS3PutFileRetries(t *testing.T) {
	ctx := t.Context()
	backend := gofakes3.New(s3mem.New()).Server()
	var puts, gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/"+arcKey) {
			switch r.Method {
			case http.MethodPut:
				if puts.Add(1) <= 2 {
					_, _ = io.CopyN(io.Discard, r.Body, 1000)
					w.Header().Set("Retry-After", "0")
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
			case http.MethodGet:
				if gets.Add(1) == 1 {
					// Announce the whole object, send part of it.
					rec := httptest.NewRecorder()
					backend.ServeHTTP(rec, r)
					for k, v := range rec.Header() {
						w.Header()[k] = v
					}
					w.WriteHeader(rec.Code)
					_, _ = w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
					return
				}
			}
		}
		backend.ServeHTTP(w, r)
	}))
	defer srv.Close()
	b, err := state.NewS3Blob(ctx, state.S3Config{
		Bucket: "acco-state", Region: testRegion, Endpoint: srv.URL, PathStyle: true, Credentials: testCredentials(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	src := randomFile(t, 300<<10)
	if _, err := b.PutFile(ctx, arcKey, src); err != nil {
		t.Fatal(err)
	}
	if got := puts.Load(); got != 3 {
		t.Errorf("%d PUT attempts, want 3", got)
	}
	got := filepath.Join(t.TempDir(), "got")
	if err := b.GetFile(ctx, arcKey, got); err != nil {
		t.Fatal(err)
	}
	if n := gets.Load(); n != 2 {
		t.Errorf("%d GETs, want 2", n)
	}
	if fileSum(t, got) != fileSum(t, src) {
		t.Error("the object read back differs from the file")
	}
}

func testManifest() state.Manifest {
	zero := strings.Repeat("0", 64)
	return state.Manifest{
		FormatVersion: state.ManifestFormatVersion,
		Env:           testEnv,
		Cluster:       arcCluster,
		Stamp:         arcStamp,
		Created:       time.Date(2026, 12, 6, 4, 15, 0, 0, time.UTC),
		ServerVersion: "17.6",
		Extensions:    map[string]map[string]string{"acco": {"timescaledb": "2.21.1"}},
		Dumps: []state.ManifestDump{
			{Database: "acco", Key: arcKey, Size: 1234, SHA256: zero, PlainSHA256: zero},
			{Database: "powersync", Key: state.DumpKey(testEnv, arcCluster, arcStamp, "powersync"), Size: 5, SHA256: zero, PlainSHA256: zero},
		},
		Tool: "pg_dump (PostgreSQL) 17.12",
	}
}

func TestManifestRoundTrip(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	s := fileSealer(t, testKey)
	m := testManifest()
	key := state.ManifestKey(testEnv, arcCluster, arcStamp)
	if _, err := state.WriteManifest(ctx, b, s, key, m); err != nil {
		t.Fatal(err)
	}
	raw, _, err := b.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("powersync")) || bytes.Contains(raw, []byte("timescaledb")) {
		t.Error("the stored manifest shows the database names")
	}
	got, err := state.ReadManifest(ctx, b, s.For(testEnv, "another-lineage"), key)
	if err != nil {
		t.Fatal(err)
	}
	if got.Stamp != m.Stamp || !got.Created.Equal(m.Created) || !slices.Equal(got.Dumps, m.Dumps) ||
		got.Extensions["acco"]["timescaledb"] != "2.21.1" || got.Tool != m.Tool || got.ServerVersion != m.ServerVersion {
		t.Errorf("read back %+v, want %+v", got, m)
	}

	// Copied under another stamp, it does not open.
	other := state.ManifestKey(testEnv, arcCluster, "20261207T000000Z")
	if _, err := b.Put(ctx, other, raw, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := state.ReadManifest(ctx, b, s, other); !errors.Is(err, state.ErrUnseal) {
		t.Errorf("ReadManifest of a moved manifest = %v, want ErrUnseal", err)
	}
	if _, err := state.ReadManifest(ctx, b, fileSealer(t, otherKey), key); !errors.Is(err, state.ErrUnseal) {
		t.Errorf("ReadManifest with another key = %v, want ErrUnseal", err)
	}
	if _, err := state.ReadManifest(ctx, b, s, state.ManifestKey(testEnv, arcCluster, "20250101T000000Z")); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("ReadManifest of a missing manifest = %v, want ErrNotFound", err)
	}
}

func TestWriteManifestRefuses(t *testing.T) {
	key := state.ManifestKey(testEnv, arcCluster, arcStamp)
	for _, tc := range []struct {
		name   string
		edit   func(m *state.Manifest)
		key    string
		sealer *state.Sealer
		want   string
	}{
		{name: "Version", edit: func(m *state.Manifest) { m.FormatVersion = 2 }, want: "format version 2"},
		{name: "Stamp", edit: func(m *state.Manifest) { m.Stamp = "yesterday" }, want: "invalid archive stamp"},
		{name: "Cluster", edit: func(m *state.Manifest) { m.Cluster = "a/b" }, want: "invalid cluster name"},
		{name: "DumpKey", edit: func(m *state.Manifest) { m.Dumps[1].Key = arcKey }, want: "dumps[1] (powersync): key"},
		{name: "Twice", edit: func(m *state.Manifest) { m.Dumps[1] = m.Dumps[0] }, want: "appears twice"},
		{name: "Digest", edit: func(m *state.Manifest) { m.Dumps[0].SHA256 = "abc" }, want: "not a hex SHA-256"},
		{name: "Size", edit: func(m *state.Manifest) { m.Dumps[0].Size = -1 }, want: "negative size"},
		{name: "Key", key: state.ManifestKey(testEnv, arcCluster, "20261207T000000Z"), want: "belongs at"},
		{name: "SealerEnv", sealer: fileSealer(t, testKey).For("prod", testLineage), want: "bound to environment prod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testManifest()
			if tc.edit != nil {
				tc.edit(&m)
			}
			k, s := key, fileSealer(t, testKey)
			if tc.key != "" {
				k = tc.key
			}
			if tc.sealer != nil {
				s = tc.sealer
			}
			b := newDirBlob(t)
			_, err := state.WriteManifest(t.Context(), b, s, k, m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("WriteManifest = %v, want an error saying %q", err, tc.want)
			}
			if keys, _ := b.List(t.Context(), testEnv+"/"); len(keys) != 0 {
				t.Errorf("a refused manifest left %q", keys)
			}
		})
	}
}

func TestListArchives(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	s := fileSealer(t, testKey)
	for _, stamp := range []string{"20261206T041500Z", "20251231T235959Z", "20261207T000000Z"} {
		m := testManifest()
		m.Stamp = stamp
		for i := range m.Dumps {
			m.Dumps[i].Key = state.DumpKey(testEnv, arcCluster, stamp, m.Dumps[i].Database)
		}
		if _, err := state.WriteManifest(ctx, b, s, state.ManifestKey(testEnv, arcCluster, stamp), m); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{
		arcKey, // a dump
		state.DumpPrefix(testEnv, arcCluster) + "junk/manifest.json.sealed",
		state.ManifestKey(testEnv, "main-2", arcStamp),
		state.ManifestKey("prod", arcCluster, arcStamp),
	} {
		if _, err := b.Put(ctx, k, []byte("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	got, err := state.ListArchives(ctx, b, testEnv, arcCluster)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		state.ManifestKey(testEnv, arcCluster, "20261207T000000Z"),
		state.ManifestKey(testEnv, arcCluster, "20261206T041500Z"),
		state.ManifestKey(testEnv, arcCluster, "20251231T235959Z"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListArchives = %q, want %q", got, want)
	}
	if got, err := state.ListArchives(ctx, b, testEnv, "none"); err != nil || len(got) != 0 {
		t.Errorf("ListArchives of a cluster without archives = %q, %v", got, err)
	}
	if _, err := state.ListArchives(ctx, b, testEnv, "../x"); err == nil {
		t.Error("ListArchives accepted a cluster name with a slash")
	}
}

func BenchmarkSealFile(b *testing.B) {
	const size = 16 << 20
	s := fileSealer(b, testKey)
	src := randomFile(b, size)
	dst := filepath.Join(b.TempDir(), "sealed")
	b.SetBytes(size)
	for b.Loop() {
		if err := s.SealFile(b.Context(), src, dst, arcKey); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenFile(b *testing.B) {
	const size = 16 << 20
	s := fileSealer(b, testKey)
	src := randomFile(b, size)
	dir := b.TempDir()
	sealed := filepath.Join(dir, "sealed")
	if err := s.SealFile(b.Context(), src, sealed, arcKey); err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(dir, "opened")
	b.SetBytes(size)
	for b.Loop() {
		if err := s.OpenFile(b.Context(), sealed, dst, arcKey); err != nil {
			b.Fatal(err)
		}
	}
}
