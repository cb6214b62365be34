package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ProbePrefix starts the keys of the probe objects CheckConditionalWrites
// writes and removes.
const ProbePrefix = ".acco-probe/"

// ConditionalChecker is implemented by the blobs that can check that their
// store honours conditional writes: S3Blob and DirBlob. acco bootstrap and
// acco init call it.
type ConditionalChecker interface {
	// CheckConditionalWrites writes a probe object with the conditions
	// acco's locks and state writes use and checks that each is enforced.
	// When one is ignored the error wraps ErrNoConditionalWrites and says
	// which. The probe object is removed.
	CheckConditionalWrites(ctx context.Context) error
}

// whyConditional is why acco refuses a store without conditional writes.
const whyConditional = "acco's locks and state writes rely on conditional writes: without them two operators can both take the lock of an environment and overwrite each other's state"

// probeConditionalWrites checks on a fresh object that the store refuses a
// create-only write (If-None-Match: *) over an existing object and a write
// with a wrong ETag (If-Match), and accepts a write with the right ETag.
// purge removes the probe object afterwards.
func probeConditionalWrites(ctx context.Context, b Blob, purge func(ctx context.Context, key string) error) (err error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("check conditional writes: %w", err)
	}
	key := ProbePrefix + hex.EncodeToString(id[:])
	defer func() {
		if perr := purge(context.WithoutCancel(ctx), key); perr != nil && err == nil {
			err = fmt.Errorf("check conditional writes: remove the probe object %s: %w", key, perr)
		}
	}()

	etag, err := b.Put(ctx, key, []byte("acco probe 1\n"), IfNoneMatch)
	if err != nil {
		return fmt.Errorf("check conditional writes: write the probe object %s: %w", key, err)
	}
	switch _, err := b.Put(ctx, key, []byte("acco probe 2\n"), IfNoneMatch); {
	case err == nil:
		return fmt.Errorf("the server ignores If-None-Match: * on PutObject (a second create-only write of the probe object %s succeeded): %s: %w",
			key, whyConditional, ErrNoConditionalWrites)
	case !errors.Is(err, ErrPrecondition):
		return fmt.Errorf("check conditional writes: a create-only write over the probe object %s: got %w, want 412 Precondition Failed", key, err)
	}
	wrong := hex.EncodeToString(id[:]) + "00000000" // random: not the probe object's ETag
	switch _, err := b.Put(ctx, key, []byte("acco probe 3\n"), IfMatch(wrong)); {
	case err == nil:
		return fmt.Errorf("the server ignores If-Match on PutObject (a write of the probe object %s with a wrong ETag succeeded): %s: %w",
			key, whyConditional, ErrNoConditionalWrites)
	case !errors.Is(err, ErrPrecondition):
		return fmt.Errorf("check conditional writes: a write with a wrong ETag over the probe object %s: got %w, want 412 Precondition Failed", key, err)
	}
	switch _, err := b.Put(ctx, key, []byte("acco probe 4\n"), IfMatch(etag)); {
	case errors.Is(err, ErrPrecondition):
		return fmt.Errorf("the server refuses If-Match with the probe object's own ETag %s (sent without quotes), so acco could never renew a lock or update state: %w",
			etag, ErrNoConditionalWrites)
	case err != nil:
		return fmt.Errorf("check conditional writes: a write with the right ETag over the probe object %s: %w", key, err)
	}
	return nil
}
