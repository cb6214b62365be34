package state

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Archives of stopped databases: the dumps of an on-demand PostgreSQL
// cluster, sealed with the state key, and their manifest, kept in the state
// bucket under
//
//	<env>/dumps/<cluster>/<stamp>/<db>.dump.sealed
//	<env>/dumps/<cluster>/<stamp>/manifest.json.sealed

// DumpPrefix returns the prefix of every archive object of a cluster:
// "<env>/dumps/<cluster>/". The names are not checked here: check them with
// CheckArchiveName first (Manifest.Validate and ListArchives do).
func DumpPrefix(env, cluster string) string {
	return env + "/dumps/" + cluster + "/"
}

// DumpKey returns the key of the sealed dump of database db taken at stamp:
// "<env>/dumps/<cluster>/<stamp>/<db>.dump.sealed".
func DumpKey(env, cluster, stamp, db string) string {
	return DumpPrefix(env, cluster) + stamp + "/" + db + dumpSuffix
}

// ManifestKey returns the key of the sealed manifest of the archive taken
// at stamp: "<env>/dumps/<cluster>/<stamp>/manifest.json.sealed".
func ManifestKey(env, cluster, stamp string) string {
	return DumpPrefix(env, cluster) + stamp + "/" + manifestName
}

const (
	dumpSuffix   = ".dump.sealed"
	manifestName = "manifest.json.sealed"
)

// StampLayout is the time layout of an archive stamp, in UTC:
// 20261206T041500Z. Stamps sort as the times they stand for.
const StampLayout = "20060102T150405Z"

// NewStamp returns the archive stamp of t (in UTC, to the second).
func NewStamp(t time.Time) string { return t.UTC().Format(StampLayout) }

// maxArchiveName is the longest name accepted in an archive key (that of a
// PostgreSQL identifier).
const maxArchiveName = 63

// CheckArchiveName checks a name that goes into an archive key: kind says
// what it is ("environment", "cluster", "database" or "stamp"). A stamp
// must be in StampLayout; other names may hold what a name in the YAML
// can: 1 to 63 ASCII letters, digits, underscores and dashes, starting with
// a letter, a digit or an underscore. Slashes, dots and anything else that
// could change the key's meaning are refused.
func CheckArchiveName(kind, name string) error {
	if kind == "stamp" {
		if _, err := time.Parse(StampLayout, name); err != nil || len(name) != len(StampLayout) {
			return fmt.Errorf("invalid archive stamp %q: want a UTC time such as 20261206T041500Z", name)
		}
		return nil
	}
	ok := name != "" && len(name) <= maxArchiveName && name[0] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("invalid %s name %q for an archive key: use 1 to %d letters, digits, underscores and dashes, not starting with a dash", kind, name, maxArchiveName)
	}
	return nil
}

// checkArchiveNames checks the names of an archive (db may be empty).
func checkArchiveNames(env, cluster, stamp, db string) error {
	errs := []error{CheckArchiveName("environment", env), CheckArchiveName("cluster", cluster)}
	if stamp != "" {
		errs = append(errs, CheckArchiveName("stamp", stamp))
	}
	if db != "" {
		errs = append(errs, CheckArchiveName("database", db))
	}
	return errors.Join(errs...)
}

// FileStore is the large-object I/O of a state store, implemented by
// *S3Blob and *DirBlob: objects are streamed from and to files, never held
// in memory whole.
type FileStore interface {
	// PutFile writes the content of the file at path to key
	// (unconditionally) and returns the object's new ETag.
	PutFile(ctx context.Context, key, path string) (etag string, err error)
	// GetFile writes the object key to the file at path, through a
	// temporary file renamed into place once the whole object arrived; a
	// missing object gives an error wrapping ErrNotFound.
	GetFile(ctx context.Context, key, path string) error
	// Delete is Blob.Delete.
	Delete(ctx context.Context, key string, cond Cond) error
	// List is Blob.List.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Lister lists the keys of a store that start with a prefix, sorted: a
// Blob or a FileStore.
type Lister interface {
	List(ctx context.Context, prefix string) ([]string, error)
}

var (
	_ FileStore = (*S3Blob)(nil)
	_ FileStore = (*DirBlob)(nil)
)

// Sealed files.
//
// A sealed file is a header followed by chunks. The header is the magic
// "acco-sealed-file", a version byte (1), the chunk size (uint32, big
// endian) and a random 32-byte salt. Each file has its own AES-256-GCM key,
// derived with HKDF-SHA256 from the Sealer's file key (itself derived from
// ACCO_STATE_KEY with an info string of its own, distinct from that of
// Seal) and the salt. Chunk i holds ChunkSize bytes of plaintext (the last
// one 0 to ChunkSize) and its 16-byte tag; its nonce is i (uint64, big
// endian), three zero bytes and a byte that is 1 for the last chunk and 0
// for the others. The additional data of every chunk is the header, the
// environment and the associated string (the object key), each of the last
// two preceded by its length. So a flipped bit anywhere, a missing,
// reordered or extra chunk, a file cut short at a chunk boundary or not,
// and an object moved to another key or environment all fail to open.
const (
	// SealedFileMagic starts every sealed file.
	SealedFileMagic = "acco-sealed-file"
	// SealedFileChunkSize is the plaintext size of the chunks SealFile
	// writes (the last one may be shorter).
	SealedFileChunkSize = 64 << 10

	sealedFileVersion  = 1
	sealedFileSaltSize = 32
	sealedFileHeader   = len(SealedFileMagic) + 1 + 4 + sealedFileSaltSize
	maxSealedFileChunk = 16 << 20
	gcmTagSize         = 16

	fileInfoV1      = "acco-sealed-file:v1 master key"
	fileChunkInfoV1 = "acco-sealed-file:v1 AES-256-GCM chunk key"
)

// fileMasterKey derives the key of sealed files from the 32 bytes of
// ACCO_STATE_KEY.
func fileMasterKey(raw []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, raw, []byte(sealSalt), fileInfoV1, 32)
	if err != nil {
		return nil, fmt.Errorf("derive state file key: %w", err)
	}
	return k, nil
}

// fileAEAD returns the AEAD of the sealed file with salt salt.
func (s *Sealer) fileAEAD(salt []byte) (cipher.AEAD, error) {
	if len(s.file) == 0 {
		return nil, errors.New("the sealer has no key (use NewSealer)")
	}
	k, err := hkdf.Key(sha256.New, s.file, salt, fileChunkInfoV1, 32)
	if err != nil {
		return nil, fmt.Errorf("derive file key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// fileAD is the additional data of every chunk of a sealed file.
func (s *Sealer) fileAD(header []byte, associated string) []byte {
	ad := slices.Clone(header)
	for _, f := range []string{s.env, associated} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(f)))
		ad = append(ad, f...)
	}
	return ad
}

// chunkNonce is the nonce of chunk i.
func chunkNonce(nonce []byte, i uint64, last bool) []byte {
	clear(nonce)
	binary.BigEndian.PutUint64(nonce, i)
	if last {
		nonce[len(nonce)-1] = 1
	}
	return nonce
}

// fileBound refuses a Sealer without an environment or an empty associated
// string.
func (s *Sealer) fileBound(associated string) error {
	if s == nil {
		return errors.New("no state key (ACCO_STATE_KEY)")
	}
	if s.env == "" {
		return errors.New("the sealer is not bound to an environment (Sealer.For)")
	}
	if associated == "" {
		return errors.New("no associated object key")
	}
	return nil
}

// SealFile encrypts the file src into dst with the state key, in chunks
// (see SealedFileMagic for the format), never holding the file in memory.
// associated is the bucket key the sealed object is stored under; OpenFile
// must be given the same one.
//
// The Sealer must be bound to an environment (For), which is bound into
// the file with associated. The state lineage is not: a sealed dump is
// the data of a stopped database, and must still open when the state it
// was recorded in is replaced by another lineage (state lost and rebuilt,
// or imported), as long as it is the same environment, key and object.
//
// dst is written through a temporary file in its directory, renamed into
// place when complete. A cancelled ctx stops the work and leaves no dst.
func (s *Sealer) SealFile(ctx context.Context, src, dst, associated string) error {
	if err := s.fileBound(associated); err != nil {
		return fmt.Errorf("seal %s: %w", src, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("seal %s: %w", src, err)
	}
	defer in.Close()
	err = writeFileVia(dst, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, SealedFileChunkSize+gcmTagSize)
		if err := s.sealStream(ctx, in, bw, associated); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("seal %s into %s: %w", src, dst, err)
	}
	return nil
}

// OpenFile decrypts the sealed file src, made by SealFile for the same
// environment and associated string with the same key, into dst. The
// plaintext goes to a temporary file (mode 0600) beside dst, renamed to dst
// only once every chunk, the last included, has been authenticated: a
// damaged, truncated or misplaced object never leaves a partial dst (an
// existing dst stays as it was). Failures to authenticate wrap ErrUnseal
// and say which chunk and what probably happened.
func (s *Sealer) OpenFile(ctx context.Context, src, dst, associated string) error {
	if err := s.fileBound(associated); err != nil {
		return fmt.Errorf("open sealed file %s: %w", src, err)
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open sealed file %s: %w", src, err)
	}
	defer in.Close()
	err = writeFileVia(dst, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, SealedFileChunkSize)
		if err := s.openStream(ctx, in, bw, associated); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("open sealed file %s (object %s): %w", src, associated, err)
	}
	return nil
}

// sealStream writes the sealed form of r to w.
func (s *Sealer) sealStream(ctx context.Context, r io.Reader, w io.Writer, associated string) error {
	header := make([]byte, 0, sealedFileHeader)
	header = append(header, SealedFileMagic...)
	header = append(header, sealedFileVersion)
	header = binary.BigEndian.AppendUint32(header, SealedFileChunkSize)
	salt := make([]byte, sealedFileSaltSize)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	header = append(header, salt...)
	aead, err := s.fileAEAD(salt)
	if err != nil {
		return err
	}
	ad := s.fileAD(header, associated)
	if _, err := w.Write(header); err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, SealedFileChunkSize)
	plain := make([]byte, SealedFileChunkSize)
	out := make([]byte, 0, SealedFileChunkSize+gcmTagSize)
	nonce := make([]byte, aead.NonceSize())
	for i := uint64(0); ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(br, plain)
		last := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			last = true
		case err != nil:
			return err
		default:
			if _, perr := br.Peek(1); perr == io.EOF {
				last = true
			} else if perr != nil {
				return perr
			}
		}
		out = aead.Seal(out[:0], chunkNonce(nonce, i, last), plain[:n], ad)
		if _, err := w.Write(out); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// openStream authenticates and decrypts a sealed stream from r to w. What
// reached w before an error must be thrown away.
func (s *Sealer) openStream(ctx context.Context, r io.Reader, w io.Writer, associated string) error {
	header := make([]byte, sealedFileHeader)
	if n, err := io.ReadFull(r, header); err != nil {
		if n >= len(SealedFileMagic) && string(header[:len(SealedFileMagic)]) == SealedFileMagic {
			return fmt.Errorf("the sealed file is cut short in its header (%d bytes): %w", n, ErrUnseal)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return fmt.Errorf("not a sealed file: %d bytes, shorter than a header: %w", n, ErrUnseal)
		}
		return err
	}
	if string(header[:len(SealedFileMagic)]) != SealedFileMagic {
		return fmt.Errorf("not a sealed file (it does not start with %s): %w", SealedFileMagic, ErrUnseal)
	}
	rest := header[len(SealedFileMagic):]
	if v := rest[0]; v != sealedFileVersion {
		return fmt.Errorf("sealed file format version %d: this acco reads version %d only (a newer acco made it, or the header is damaged): %w", v, sealedFileVersion, ErrUnseal)
	}
	chunk := int(binary.BigEndian.Uint32(rest[1:5]))
	if chunk < 1 || chunk > maxSealedFileChunk {
		return fmt.Errorf("sealed file header is damaged (chunk size %d): %w", chunk, ErrUnseal)
	}
	aead, err := s.fileAEAD(rest[5:])
	if err != nil {
		return err
	}
	ad := s.fileAD(header, associated)
	br := bufio.NewReaderSize(r, chunk+gcmTagSize+1)
	sealed := make([]byte, chunk+gcmTagSize)
	plain := make([]byte, 0, chunk)
	nonce := make([]byte, aead.NonceSize())
	for i := uint64(0); ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := io.ReadFull(br, sealed)
		last := false
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			last = true
		case err != nil:
			return err
		default:
			if _, perr := br.Peek(1); perr == io.EOF {
				last = true
			} else if perr != nil {
				return perr
			}
		}
		if n < gcmTagSize {
			return fmt.Errorf("the sealed file is cut short: it ends %s, without its last chunk: %w", where(i, n), ErrUnseal)
		}
		out, err := aead.Open(plain[:0], chunkNonce(nonce, i, last), sealed[:n], ad)
		if err != nil {
			// Tell a cut or an extension from other damage.
			if _, e := aead.Open(plain[:0], chunkNonce(nonce, i, !last), sealed[:n], ad); e == nil {
				if last {
					return fmt.Errorf("the sealed file is cut short: it ends after chunk %d, which is not its last: %w", i, ErrUnseal)
				}
				return fmt.Errorf("the sealed file has data after its last chunk (chunk %d): %w", i, ErrUnseal)
			}
			return fmt.Errorf("chunk %d does not authenticate: wrong ACCO_STATE_KEY, or the object was altered, cut or reordered, or it was sealed for another environment or object key and moved here: %w", i, ErrUnseal)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// where says where a sealed file ends, for messages.
func where(chunk uint64, n int) string {
	switch {
	case n == 0 && chunk == 0:
		return "right after its header"
	case n == 0:
		return fmt.Sprintf("after chunk %d", chunk-1)
	}
	return fmt.Sprintf("%d bytes into chunk %d", n, chunk)
}

// writeFileVia makes dst with fill: fill writes to a temporary file (mode
// 0600) in dst's directory, which is synced and renamed to dst only if
// fill succeeds, and removed otherwise.
func writeFileVia(dst string, fill func(w io.Writer) error) (err error) {
	dir := filepath.Dir(dst)
	f, err := os.CreateTemp(dir, dirTempStart+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return err
	}
	return syncDir(dir)
}

// ctxReader is a reader that stops once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// FileDigest returns the hex SHA-256 and the size of the file at path (for
// ManifestDump.SHA256, PlainSHA256 and Size).
func FileDigest(ctx context.Context, path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("digest: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", 0, fmt.Errorf("digest %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ManifestFormatVersion is the format version of the manifests this acco
// writes and reads.
const ManifestFormatVersion = 1

// Manifest describes one archive of a cluster: the sealed dump of each of
// its logical databases, taken at Stamp, and what is needed to restore
// them. It is stored sealed (it names the databases) at ManifestKey.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	Env           string    `json:"env"`
	Cluster       string    `json:"cluster"`
	Stamp         string    `json:"stamp"` // StampLayout, UTC
	Created       time.Time `json:"created"`
	// ServerVersion is the PostgreSQL version of the dumped server.
	ServerVersion string `json:"server_version"`
	// Extensions maps each database to its extensions and their versions.
	Extensions map[string]map[string]string `json:"extensions"`
	Dumps      []ManifestDump               `json:"dumps"`
	// Tool is the version line of the pg_dump that made the dumps, e.g.
	// "pg_dump (PostgreSQL) 17.12".
	Tool string `json:"tool"`
}

// ManifestDump is the sealed dump of one database in a Manifest.
type ManifestDump struct {
	Database string `json:"database"`
	// Key is the bucket key of the sealed dump (DumpKey).
	Key string `json:"key"`
	// Size is the size of the plaintext dump in bytes.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of the sealed object as stored.
	SHA256 string `json:"sha256"`
	// PlainSHA256 is the hex SHA-256 of the plaintext dump.
	PlainSHA256 string `json:"plain_sha256"`
}

// Validate checks a manifest: its format version, names and stamp, each
// dump's key (DumpKey of its database), digests and size, and that no
// database appears twice.
func (m *Manifest) Validate() error {
	if m.FormatVersion != ManifestFormatVersion {
		return fmt.Errorf("manifest format version %d: this acco knows version %d", m.FormatVersion, ManifestFormatVersion)
	}
	if err := checkArchiveNames(m.Env, m.Cluster, m.Stamp, ""); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	seen := map[string]bool{}
	for i, d := range m.Dumps {
		if err := CheckArchiveName("database", d.Database); err != nil {
			return fmt.Errorf("manifest dumps[%d]: %w", i, err)
		}
		if seen[d.Database] {
			return fmt.Errorf("manifest dumps[%d]: database %s appears twice", i, d.Database)
		}
		seen[d.Database] = true
		if want := DumpKey(m.Env, m.Cluster, m.Stamp, d.Database); d.Key != want {
			return fmt.Errorf("manifest dumps[%d] (%s): key %q, want %q", i, d.Database, d.Key, want)
		}
		if d.Size < 0 {
			return fmt.Errorf("manifest dumps[%d] (%s): negative size %d", i, d.Database, d.Size)
		}
		for name, sum := range map[string]string{"sha256": d.SHA256, "plain_sha256": d.PlainSHA256} {
			if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("manifest dumps[%d] (%s): %s %q is not a hex SHA-256", i, d.Database, name, sum)
			}
		}
	}
	return nil
}

// WriteManifest seals m with s (bound to m.Env with For) and writes it
// (unconditionally) at key, which must be ManifestKey of m. It returns the
// object's ETag. The manifest is sealed as a sealed file is, bound to the
// environment and key, not to the state lineage (see SealFile).
func WriteManifest(ctx context.Context, b Blob, s *Sealer, key string, m Manifest) (string, error) {
	if err := m.Validate(); err != nil {
		return "", fmt.Errorf("write manifest %s: %w", key, err)
	}
	if want := ManifestKey(m.Env, m.Cluster, m.Stamp); key != want {
		return "", fmt.Errorf("write manifest %s: the manifest of %s/%s at %s belongs at %s", key, m.Env, m.Cluster, m.Stamp, want)
	}
	if err := s.fileBound(key); err != nil {
		return "", fmt.Errorf("write manifest %s: %w", key, err)
	}
	if s.env != m.Env {
		return "", fmt.Errorf("write manifest %s: the sealer is bound to environment %s, the manifest is of %s", key, s.env, m.Env)
	}
	plain, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", fmt.Errorf("write manifest %s: %w", key, err)
	}
	var sealed bytes.Buffer
	if err := s.sealStream(ctx, bytes.NewReader(plain), &sealed, key); err != nil {
		return "", fmt.Errorf("write manifest %s: %w", key, err)
	}
	etag, err := b.Put(ctx, key, sealed.Bytes(), "")
	if err != nil {
		return "", fmt.Errorf("write manifest: %w", err)
	}
	return etag, nil
}

// maxManifest bounds the plaintext of a manifest read back.
const maxManifest = 4 << 20

// ReadManifest reads the manifest at key, opens it with s (bound to its
// environment) and checks it (Manifest.Validate, and that it belongs at
// key). A manifest that does not open wraps ErrUnseal; a missing one
// ErrNotFound; one of a newer format ErrFormat.
func ReadManifest(ctx context.Context, b Blob, s *Sealer, key string) (Manifest, error) {
	var m Manifest
	if err := s.fileBound(key); err != nil {
		return m, fmt.Errorf("read manifest %s: %w", key, err)
	}
	data, _, err := b.Get(ctx, key)
	if err != nil {
		return m, fmt.Errorf("read manifest: %w", err)
	}
	var plain bytes.Buffer
	if err := s.openStream(ctx, bytes.NewReader(data), &limitWriter{w: &plain, n: maxManifest}, key); err != nil {
		return m, fmt.Errorf("read manifest %s: %w", key, err)
	}
	var head struct {
		FormatVersion int `json:"format_version"`
	}
	if err := json.Unmarshal(plain.Bytes(), &head); err != nil {
		return m, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if head.FormatVersion > ManifestFormatVersion {
		return m, fmt.Errorf("read manifest %s: format version %d, this acco knows %d: upgrade acco: %w", key, head.FormatVersion, ManifestFormatVersion, ErrFormat)
	}
	if err := json.Unmarshal(plain.Bytes(), &m); err != nil {
		return m, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if want := ManifestKey(m.Env, m.Cluster, m.Stamp); key != want {
		return m, fmt.Errorf("read manifest %s: it is the manifest of %s/%s at %s, which belongs at %s", key, m.Env, m.Cluster, m.Stamp, want)
	}
	return m, nil
}

// limitWriter fails once more than n bytes were written.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("more than %d bytes", maxManifest)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// ListArchives returns the keys of the manifests of the archives of
// cluster in env, newest (latest stamp) first. Objects under the prefix
// that are not manifests (the dumps, or anything else) are left out.
func ListArchives(ctx context.Context, l Lister, env, cluster string) ([]string, error) {
	if err := checkArchiveNames(env, cluster, "", ""); err != nil {
		return nil, fmt.Errorf("list archives: %w", err)
	}
	prefix := DumpPrefix(env, cluster)
	keys, err := l.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list archives of %s in %s: %w", cluster, env, err)
	}
	var stamps []string
	for _, k := range keys {
		stamp, ok := strings.CutSuffix(strings.TrimPrefix(k, prefix), "/"+manifestName)
		if ok && CheckArchiveName("stamp", stamp) == nil {
			stamps = append(stamps, stamp)
		}
	}
	slices.Sort(stamps)
	slices.Reverse(stamps)
	out := make([]string, 0, len(stamps))
	for _, st := range slices.Compact(stamps) {
		out = append(out, ManifestKey(env, cluster, st))
	}
	return out, nil
}
