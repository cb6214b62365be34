package state_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/accoreboot/acco/state"
	"github.com/accoreboot/acco/state/statetest"
)

// dirFaults redelivers with a wrapper: a directory has no client that could
// retry on its own, so the wrapper performs the Put twice, which is what a
// duplicated delivery looks like to the store.
type dirFaults struct{}

func (dirFaults) Redeliver(_ *testing.T, b state.Blob, key string) state.Blob {
	return statetest.RedeliverBlob(b, key)
}

func newDirBlob(t *testing.T) state.Blob {
	b := state.NewDirBlob(filepath.Join(t.TempDir(), "state"))
	if _, err := b.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDirConformance(t *testing.T) {
	statetest.Run(t, newDirBlob, dirFaults{})
}

func TestDirEnsureBucket(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, dir string)
		want    state.BootstrapReport
		wantErr error
	}{
		{"Missing", func(*testing.T, string) {}, state.BootstrapReport{BucketCreated: true, MarkerWritten: true}, nil},
		{"EmptyIsAdopted", func(t *testing.T, dir string) { mkdir(t, dir) }, state.BootstrapReport{MarkerWritten: true}, nil},
		{"Foreign", func(t *testing.T, dir string) {
			mkdir(t, dir)
			writeFile(t, filepath.Join(dir, "notes.txt"), "mine")
		}, state.BootstrapReport{}, state.ErrForeignBucket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			tc.prepare(t, dir)
			b := state.NewDirBlob(dir)
			rep, err := b.EnsureBucket(ctx)
			if !errors.Is(err, tc.wantErr) || rep != tc.want {
				t.Fatalf("EnsureBucket = %+v, %v; want %+v, %v", rep, err, tc.want, tc.wantErr)
			}
			if err != nil {
				return
			}
			rep, err = b.EnsureBucket(ctx)
			if err != nil || rep != (state.BootstrapReport{}) {
				t.Fatalf("second EnsureBucket = %+v, %v; want nothing done", rep, err)
			}
		})
	}
}

func TestDirMissingRoot(t *testing.T) {
	b := state.NewDirBlob(filepath.Join(t.TempDir(), "nope"))
	_, _, err := b.Get(t.Context(), "test/state.json")
	if err == nil || errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get in a missing directory: got %v, want an error saying to bootstrap", err)
	}
	if _, err := b.Put(t.Context(), "test/state.json", []byte("{}"), ""); err == nil {
		t.Fatal("Put in a missing directory succeeded")
	}
}

func TestDirKeys(t *testing.T) {
	b := newDirBlob(t)
	for _, key := range []string{"", "/abs", "../up", "a/../b", "a//b", `a\b`, ".acco-blob.lock", "x/.acco-tmp-1"} {
		if _, err := b.Put(t.Context(), key, []byte("x"), ""); err == nil {
			t.Errorf("Put(%q) succeeded", key)
		}
	}
	keys, err := b.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{state.MarkerKey}; !slices.Equal(keys, want) {
		t.Errorf("List = %q, want %q (no lock or temporary files)", keys, want)
	}
}

func TestDirKeepsStateVersions(t *testing.T) {
	ctx := t.Context()
	b := newDirBlob(t)
	s := state.NewStore(b)
	st := state.New("test", "v")
	etag := ""
	var err error
	for range 3 {
		if etag, err = s.Write(ctx, "test", st, etag); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := b.List(ctx, "test/versions/")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"test/versions/state.1.json", "test/versions/state.2.json"}; !slices.Equal(keys, want) {
		t.Fatalf("versions = %q, want %q", keys, want)
	}
	data, _, err := b.Get(ctx, "test/versions/state.2.json")
	if err != nil {
		t.Fatal(err)
	}
	old, err := state.Decode(data)
	if err != nil || old.Serial != 2 {
		t.Fatalf("kept version = %+v, %v; want serial 2", old, err)
	}
}

// TestDirAcrossProcesses runs two processes that each add 1 to a counter
// object many times with IfMatch, retrying on ErrPrecondition: no increment
// may be lost.
func TestDirAcrossProcesses(t *testing.T) {
	if os.Getenv("ACCO_STATE_HELPER_DIR") != "" {
		t.Skip("in helper")
	}
	const procs, each = 2, 25
	dir := filepath.Join(t.TempDir(), "state")
	b := state.NewDirBlob(dir)
	if _, err := b.EnsureBucket(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(t.Context(), "counter", []byte("0"), ""); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestDirHelperProcess$")
		cmd.Env = append(os.Environ(), "ACCO_STATE_HELPER_DIR="+dir, "ACCO_STATE_HELPER_N="+strconv.Itoa(each))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	data, _, err := b.Get(t.Context(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), strconv.Itoa(procs*each); got != want {
		t.Fatalf("counter = %s, want %s", got, want)
	}
}

func TestDirHelperProcess(t *testing.T) {
	dir := os.Getenv("ACCO_STATE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper for TestDirAcrossProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("ACCO_STATE_HELPER_N"))
	if err := increment(t.Context(), state.NewDirBlob(dir), n); err != nil {
		t.Fatal(err)
	}
}

func increment(ctx context.Context, b state.Blob, n int) error {
	for range n {
		for {
			data, etag, err := b.Get(ctx, "counter")
			if err != nil {
				return err
			}
			v, err := strconv.Atoi(string(data))
			if err != nil {
				return err
			}
			_, err = b.Put(ctx, "counter", []byte(strconv.Itoa(v+1)), state.IfMatch(etag))
			if errors.Is(err, state.ErrPrecondition) {
				continue
			}
			if err != nil {
				return fmt.Errorf("increment: %w", err)
			}
			break
		}
	}
	return nil
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
