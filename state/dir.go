package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names DirBlob keeps for itself inside its directory.
const (
	dirLockName  = ".acco-blob.lock"
	dirTempStart = ".acco-tmp-"
)

// DirBlob is a Blob over a local directory, for file:// state URLs: key
// "test/state.json" is the file DIR/test/state.json and the ETag of an
// object is the hex SHA-256 of its content.
//
// Conditional writes and deletes hold an exclusive flock on
// DIR/.acco-blob.lock while they check and write, so they are atomic
// between processes of one machine (not on network file systems whose
// flock is not shared). Files are replaced by writing a temporary file,
// syncing it and renaming it over the old one.
//
// Each write of a key named state.json first copies the content it
// replaces to versions/state.SERIAL.json next to it, as versioning does on
// a bucket.
type DirBlob struct {
	root string
}

var (
	_ Blob         = (*DirBlob)(nil)
	_ Bootstrapper = (*DirBlob)(nil)
)

// NewDirBlob returns a DirBlob over dir. The directory must exist before
// objects are read or written; EnsureBucket creates it.
func NewDirBlob(dir string) *DirBlob {
	return &DirBlob{root: filepath.Clean(dir)}
}

// Dir returns the directory of the blob.
func (d *DirBlob) Dir() string { return d.root }

func (d *DirBlob) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

func (d *DirBlob) checkKey(key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if base := path.Base(key); base == dirLockName || strings.HasPrefix(base, dirTempStart) {
		return fmt.Errorf("invalid key %q: name reserved by the directory store", key)
	}
	return nil
}

// checkRoot gives a clear error when the directory itself is missing.
func (d *DirBlob) checkRoot() error {
	fi, err := os.Stat(d.root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("state directory %s does not exist: run acco bootstrap", d.root)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("state directory %s is not a directory", d.root)
	}
	return nil
}

func dirETag(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Get implements Blob.
func (d *DirBlob) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := d.checkKey(key); err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	data, err := os.ReadFile(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		if rerr := d.checkRoot(); rerr != nil {
			return nil, "", fmt.Errorf("get %s: %w", key, rerr)
		}
		return nil, "", fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	return data, dirETag(data), nil
}

// read returns the current content of key, or nil, false if absent.
func (d *DirBlob) read(key string) ([]byte, bool, error) {
	data, err := os.ReadFile(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

func checkCond(cond Cond, cur []byte, exists bool) error {
	if cond == IfNoneMatch && exists {
		return fmt.Errorf("object exists: %w", ErrPrecondition)
	}
	if want, ok := cond.Match(); ok {
		if !exists {
			return fmt.Errorf("object does not exist: %w", ErrPrecondition)
		}
		if dirETag(cur) != want {
			return fmt.Errorf("ETag is not %s: %w", want, ErrPrecondition)
		}
	}
	return nil
}

// Put implements Blob.
func (d *DirBlob) Put(ctx context.Context, key string, data []byte, cond Cond) (string, error) {
	if err := d.put(ctx, key, data, cond); err != nil {
		return "", fmt.Errorf("put %s (%s): %w", key, cond, err)
	}
	return dirETag(data), nil
}

func (d *DirBlob) put(ctx context.Context, key string, data []byte, cond Cond) error {
	if err := d.checkKey(key); err != nil {
		return err
	}
	if err := cond.valid(); err != nil {
		return err
	}
	if err := d.checkRoot(); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(d.root, dirLockName))
	if err != nil {
		return err
	}
	defer unlock()

	cur, exists, err := d.read(key)
	if err != nil {
		return err
	}
	if err := checkCond(cond, cur, exists); err != nil {
		return err
	}
	if exists && path.Base(key) == "state.json" && !bytes.Equal(cur, data) {
		if err := d.keepVersion(key, cur); err != nil {
			return fmt.Errorf("keep previous version: %w", err)
		}
	}
	return writeFileAtomic(d.path(key), data)
}

// keepVersion copies the old content of a state.json key to
// versions/state.SERIAL.json beside it (a timestamp when the serial cannot
// be read or the name is taken).
func (d *DirBlob) keepVersion(key string, old []byte) error {
	var head struct {
		Serial *uint64 `json:"serial"`
	}
	name := ""
	if json.Unmarshal(old, &head) == nil && head.Serial != nil {
		name = fmt.Sprintf("state.%d.json", *head.Serial)
	}
	dir := filepath.Join(filepath.Dir(d.path(key)), "versions")
	if name == "" || fileExists(filepath.Join(dir, name)) {
		name = "state." + time.Now().UTC().Format("20060102T150405.000000000Z") + ".json"
	}
	return writeFileAtomic(filepath.Join(dir, name), old)
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// writeFileAtomic replaces p with data: temporary file in the same
// directory, fsync, rename, fsync of the directory (writeFileVia).
func writeFileAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return writeFileVia(p, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Delete implements Blob.
func (d *DirBlob) Delete(ctx context.Context, key string, cond Cond) error {
	if err := d.delete(ctx, key, cond); err != nil {
		return fmt.Errorf("delete %s (%s): %w", key, cond, err)
	}
	return nil
}

func (d *DirBlob) delete(ctx context.Context, key string, cond Cond) error {
	if err := d.checkKey(key); err != nil {
		return err
	}
	if err := cond.valid(); err != nil {
		return err
	}
	if cond == IfNoneMatch {
		return errors.New("delete takes no If-None-Match condition")
	}
	if err := d.checkRoot(); err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(d.root, dirLockName))
	if err != nil {
		return err
	}
	defer unlock()

	cur, exists, err := d.read(key)
	if err != nil {
		return err
	}
	if !exists {
		return nil
	}
	if err := checkCond(cond, cur, exists); err != nil {
		return err
	}
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(d.path(key)))
}

// List implements Blob. It leaves out the files the store keeps for itself.
func (d *DirBlob) List(ctx context.Context, prefix string) ([]string, error) {
	if err := d.checkRoot(); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	var keys []string
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if base := path.Base(key); base == dirLockName || strings.HasPrefix(base, dirTempStart) {
			return nil
		}
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// EnsureBucket creates the directory and its marker object. A directory
// that exists without the marker is adopted if empty, and refused
// (ErrForeignBucket) otherwise. Old state versions are always kept, so
// VersioningEnabled is never reported.
func (d *DirBlob) EnsureBucket(ctx context.Context) (BootstrapReport, error) {
	var rep BootstrapReport
	fi, err := os.Stat(d.root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(d.root, 0o700); err != nil {
			return rep, fmt.Errorf("create state directory %s: %w", d.root, err)
		}
		rep.BucketCreated = true
	case err != nil:
		return rep, fmt.Errorf("state directory %s: %w", d.root, err)
	case !fi.IsDir():
		return rep, fmt.Errorf("state directory %s is not a directory", d.root)
	}
	if _, _, err := d.Get(ctx, MarkerKey); err == nil {
		return rep, nil
	} else if !errors.Is(err, ErrNotFound) {
		return rep, err
	}
	keys, err := d.List(ctx, "")
	if err != nil {
		return rep, err
	}
	if len(keys) > 0 {
		return rep, fmt.Errorf("state directory %s holds files and was not created by acco (no %s): %w; choose another directory for state in environments/defaults.yaml",
			d.root, MarkerKey, ErrForeignBucket)
	}
	switch _, err := d.Put(ctx, MarkerKey, markerBody(time.Now()), IfNoneMatch); {
	case errors.Is(err, ErrPrecondition): // another bootstrap just wrote it
	case err != nil:
		return rep, err
	default:
		rep.MarkerWritten = true
	}
	return rep, nil
}

// CheckConditionalWrites implements ConditionalChecker. A DirBlob enforces
// the conditions itself, so this checks acco's own code and the file
// system's locking.
func (d *DirBlob) CheckConditionalWrites(ctx context.Context) error {
	return probeConditionalWrites(ctx, d, func(ctx context.Context, key string) error {
		if err := d.Delete(ctx, key, ""); err != nil {
			return err
		}
		// The directory of the probe objects, when it is empty now.
		_ = os.Remove(filepath.Dir(d.path(key)))
		return nil
	})
}

// markerBody is the content of MarkerKey.
func markerBody(now time.Time) []byte {
	b, _ := json.MarshalIndent(struct {
		CreatedBy string    `json:"created_by"`
		Created   time.Time `json:"created"`
	}{"acco", now.UTC()}, "", "  ")
	return append(b, '\n')
}

// PutFile implements FileStore: the file is copied to a temporary file in
// the store, synced, then renamed over key under the store's lock, so that
// readers see the old object or the new one whole. The ETag is the hex
// SHA-256 of the content, as with Put; a state.json key keeps its previous
// version as Put does.
func (d *DirBlob) PutFile(ctx context.Context, key, path string) (string, error) {
	etag, err := d.putFile(ctx, key, path)
	if err != nil {
		return "", fmt.Errorf("put %s from %s: %w", key, path, err)
	}
	return etag, nil
}

func (d *DirBlob) putFile(ctx context.Context, key, src string) (etag string, err error) {
	if err := d.checkKey(key); err != nil {
		return "", err
	}
	if err := d.checkRoot(); err != nil {
		return "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dst := d.path(key)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, dirTempStart+"*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, in}); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	etag = hex.EncodeToString(h.Sum(nil))

	unlock, err := lockFile(ctx, filepath.Join(d.root, dirLockName))
	if err != nil {
		return "", err
	}
	defer unlock()
	if path.Base(key) == "state.json" {
		cur, exists, err := d.read(key)
		if err != nil {
			return "", err
		}
		if exists && dirETag(cur) != etag {
			if err := d.keepVersion(key, cur); err != nil {
				return "", fmt.Errorf("keep previous version: %w", err)
			}
		}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	return etag, syncDir(dir)
}

// GetFile implements FileStore: the object is copied to a temporary file
// beside path, renamed to path once complete.
func (d *DirBlob) GetFile(ctx context.Context, key, path string) error {
	if err := d.getFile(ctx, key, path); err != nil {
		return fmt.Errorf("get %s into %s: %w", key, path, err)
	}
	return nil
}

func (d *DirBlob) getFile(ctx context.Context, key, dst string) error {
	if err := d.checkKey(key); err != nil {
		return err
	}
	in, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		if rerr := d.checkRoot(); rerr != nil {
			return rerr
		}
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFileVia(dst, func(w io.Writer) error {
		_, err := io.Copy(w, ctxReader{ctx, in})
		return err
	})
}
