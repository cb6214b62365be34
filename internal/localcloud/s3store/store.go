package s3store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// journalName is the file, under the store's directory, holding the journal.
const journalName = "journal.jsonl"

// record is one line of the journal: a mutation that succeeded.
type record struct {
	Op         string              `json:"op"`
	Time       time.Time           `json:"t"`
	Seed       int64               `json:"seed,omitempty"`
	Bucket     string              `json:"bucket,omitempty"`
	Key        string              `json:"key,omitempty"`
	Keys       []string            `json:"keys,omitempty"`
	Objects    []gofakes3.ObjectID `json:"objects,omitempty"`
	Version    string              `json:"version,omitempty"`
	Meta       map[string]string   `json:"meta,omitempty"`
	Data       []byte              `json:"data,omitempty"`
	Versioning string              `json:"versioning,omitempty"`
}

// Store is a gofakes3 backend persisted through a journal. Reads are served
// by the embedded in-memory backend; mutations are forwarded to it and, when
// they succeed, written to the journal before the caller sees the result.
type Store struct {
	*s3mem.Backend

	mu      sync.Mutex // orders mutations so journal order = version order
	clock   *clock
	journal *os.File
}

var (
	_ gofakes3.Backend          = (*Store)(nil)
	_ gofakes3.VersionedBackend = (*Store)(nil)
)

// clock hands the in-memory backend the time each mutation happened at,
// live or replayed.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) Since(t time.Time) time.Duration { return time.Since(t) }

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Open opens (creating when needed) the store kept under dir and replays
// its journal.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create s3 store %s: %w", dir, err)
	}
	path := filepath.Join(dir, journalName)
	recs, valid, err := readJournal(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open s3 journal %s: %w", path, err)
	}
	if err := f.Truncate(valid); err != nil {
		f.Close()
		return nil, fmt.Errorf("drop torn tail of s3 journal %s: %w", path, err)
	}
	var seed int64
	if len(recs) > 0 && recs[0].Op == "init" {
		seed = recs[0].Seed
	} else {
		seed = rand.Int64()
		init := record{Op: "init", Time: time.Now().UTC(), Seed: seed}
		if err := appendRecord(f, init); err != nil {
			f.Close()
			return nil, err
		}
		recs = append([]record{init}, recs...)
	}
	c := &clock{}
	s := &Store{Backend: s3mem.New(s3mem.WithTimeSource(c), s3mem.WithVersionSeed(seed)), clock: c}
	for i, r := range recs {
		if r.Op == "init" {
			continue
		}
		if err := s.apply(r); err != nil {
			f.Close()
			return nil, fmt.Errorf("replay s3 journal %s, record %d (%s %s/%s): %w", path, i+1, r.Op, r.Bucket, r.Key, err)
		}
	}
	c.set(time.Time{})
	s.journal = f
	return s, nil
}

// Close closes the journal.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.Close()
	s.journal = nil
	return err
}

// readJournal reads the journal at path. It returns the records and the
// length of the valid prefix: a torn last line (a write cut short by a
// kill) is dropped, since its client never saw the mutation acknowledged.
func readJournal(path string) ([]record, int64, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read s3 journal %s: %w", path, err)
	}
	var recs []record
	var valid int64
	for line := 1; len(data) > 0; line++ {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break // torn last line
		}
		var r record
		if err := json.Unmarshal(data[:i], &r); err != nil {
			if i == len(data)-1 {
				break // torn last line
			}
			return nil, 0, fmt.Errorf("s3 journal %s line %d: %w", path, line, err)
		}
		recs = append(recs, r)
		valid += int64(i + 1)
		data = data[i+1:]
	}
	return recs, valid, nil
}

func appendRecord(f *os.File, r record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode s3 journal record: %w", err)
	}
	line = append(line, '\n')
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("write s3 journal: %w", err)
	}
	return nil
}

// apply runs a recorded mutation against the in-memory backend at its
// recorded time.
func (s *Store) apply(r record) error {
	s.clock.set(r.Time)
	var err error
	switch r.Op {
	case "create_bucket":
		err = s.Backend.CreateBucket(r.Bucket)
	case "delete_bucket":
		err = s.Backend.DeleteBucket(r.Bucket)
	case "force_delete_bucket":
		err = s.Backend.ForceDeleteBucket(r.Bucket)
	case "put":
		_, err = s.Backend.PutObject(r.Bucket, r.Key, r.Meta, bytes.NewReader(r.Data), int64(len(r.Data)), nil)
	case "delete":
		_, err = s.Backend.DeleteObject(r.Bucket, r.Key)
	case "delete_multi":
		_, err = s.Backend.DeleteMulti(r.Bucket, r.Keys...)
	case "delete_multi_versions":
		_, err = s.Backend.DeleteMultiVersions(r.Bucket, r.Objects...)
	case "delete_version":
		_, err = s.Backend.DeleteObjectVersion(r.Bucket, r.Key, gofakes3.VersionID(r.Version))
	case "versioning":
		err = s.Backend.SetVersioningConfiguration(r.Bucket, gofakes3.VersioningConfiguration{Status: gofakes3.VersioningStatus(r.Versioning)})
	default:
		err = fmt.Errorf("unknown operation %q", r.Op)
	}
	return err
}

// mutate runs op at the current time and journals r when op succeeds.
func (s *Store) mutate(r record, op func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return errors.New("s3 store is closed")
	}
	r.Time = time.Now().UTC()
	s.clock.set(r.Time)
	defer s.clock.set(time.Time{})
	if err := op(); err != nil {
		return err
	}
	return appendRecord(s.journal, r)
}

// CreateBucket creates a bucket.
func (s *Store) CreateBucket(name string) error {
	return s.mutate(record{Op: "create_bucket", Bucket: name}, func() error { return s.Backend.CreateBucket(name) })
}

// DeleteBucket deletes an empty bucket.
func (s *Store) DeleteBucket(name string) error {
	return s.mutate(record{Op: "delete_bucket", Bucket: name}, func() error { return s.Backend.DeleteBucket(name) })
}

// ForceDeleteBucket deletes a bucket and everything in it.
func (s *Store) ForceDeleteBucket(name string) error {
	return s.mutate(record{Op: "force_delete_bucket", Bucket: name}, func() error { return s.Backend.ForceDeleteBucket(name) })
}

// PutObject writes an object, honouring the conditions.
func (s *Store) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, conditions *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	data, err := gofakes3.ReadAll(input, size)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	var res gofakes3.PutObjectResult
	err = s.mutate(record{Op: "put", Bucket: bucket, Key: key, Meta: meta, Data: data}, func() error {
		var perr error
		res, perr = s.Backend.PutObject(bucket, key, meta, bytes.NewReader(data), int64(len(data)), conditions)
		return perr
	})
	return res, err
}

// CopyObject copies an object through PutObject, so the copy is journaled.
func (s *Store) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(s, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// DeleteObject deletes an object (a delete marker when versioning is on).
func (s *Store) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	var res gofakes3.ObjectDeleteResult
	err := s.mutate(record{Op: "delete", Bucket: bucket, Key: key}, func() error {
		var derr error
		res, derr = s.Backend.DeleteObject(bucket, key)
		return derr
	})
	return res, err
}

// DeleteMulti deletes several objects.
func (s *Store) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	err := s.mutate(record{Op: "delete_multi", Bucket: bucket, Keys: keys}, func() error {
		var derr error
		res, derr = s.Backend.DeleteMulti(bucket, keys...)
		return derr
	})
	return res, err
}

// DeleteMultiVersions deletes several object versions.
func (s *Store) DeleteMultiVersions(bucket string, objects ...gofakes3.ObjectID) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	err := s.mutate(record{Op: "delete_multi_versions", Bucket: bucket, Objects: objects}, func() error {
		var derr error
		res, derr = s.Backend.DeleteMultiVersions(bucket, objects...)
		return derr
	})
	return res, err
}

// DeleteObjectVersion deletes one version of an object.
func (s *Store) DeleteObjectVersion(bucket, key string, version gofakes3.VersionID) (gofakes3.ObjectDeleteResult, error) {
	var res gofakes3.ObjectDeleteResult
	err := s.mutate(record{Op: "delete_version", Bucket: bucket, Key: key, Version: string(version)}, func() error {
		var derr error
		res, derr = s.Backend.DeleteObjectVersion(bucket, key, version)
		return derr
	})
	return res, err
}

// SetVersioningConfiguration turns versioning on or suspends it.
func (s *Store) SetVersioningConfiguration(bucket string, v gofakes3.VersioningConfiguration) error {
	return s.mutate(record{Op: "versioning", Bucket: bucket, Versioning: string(v.Status)}, func() error {
		return s.Backend.SetVersioningConfiguration(bucket, v)
	})
}
