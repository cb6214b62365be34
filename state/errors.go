package state

import "errors"

// Sentinel errors. Errors returned by this package wrap them with context;
// test with errors.Is.
var (
	// ErrNotFound means the object (state, lock) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrPrecondition means a conditional write or delete was refused
	// because the object was not in the state the condition required.
	ErrPrecondition = errors.New("precondition failed")
	// ErrConflict means the stored state changed since the caller read it.
	// It wraps ErrPrecondition.
	ErrConflict error = conflictError{}
	// ErrLineage means a state was about to replace a state of another
	// lineage (another history of the environment).
	ErrLineage = errors.New("state lineage differs")
	// ErrSerial means a state was about to replace a state with a higher
	// serial (a newer one).
	ErrSerial = errors.New("state serial would go back")
	// ErrRollback means a state is older than the environment's history:
	// below its high-water mark (see MarkKey), of another lineage, or
	// missing. The error is a *RollbackError.
	ErrRollback = errors.New("state rollback")
	// ErrFormat means a state has a format version newer than this acco
	// understands.
	ErrFormat = errors.New("state format is newer than this acco understands")
	// ErrLocked means the environment is locked by someone else. The error
	// is a *LockError naming the holder.
	ErrLocked = errors.New("state is locked")
	// ErrCorrupt means a stored state cannot be read: it is not valid
	// JSON, not an acco state, or not the environment's. The error is a
	// *CorruptError naming the versions to restore from.
	ErrCorrupt = errors.New("state damaged")
	// ErrLockLost means a lease is no longer held: it expired and was taken
	// over, or it was broken.
	ErrLockLost = errors.New("lock lost")
	// ErrLockMismatch means a lock ID given by the operator is not the ID
	// of the current lock.
	ErrLockMismatch = errors.New("lock ID does not match the current lock")
	// ErrForeignBucket means the bucket (or directory) meant for acco's
	// state exists and was not created by acco.
	ErrForeignBucket = errors.New("bucket not created by acco")
	// ErrNoConditionalWrites means the store does not honour conditional
	// writes (If-None-Match: *, If-Match), on which locks and state writes
	// rely: it cannot hold acco's state safely.
	ErrNoConditionalWrites = errors.New("the store does not honour conditional writes")
	// ErrCredentials means the S3 service refused the credentials acco
	// signed with: an unknown access key, a wrong secret, or a key that may
	// not use the bucket.
	ErrCredentials = errors.New("S3 credentials refused")
	// ErrUnseal means a sealed secret could not be opened: wrong key, or
	// the value was altered or sealed for another place.
	ErrUnseal = errors.New("cannot open sealed value")
)

// conflictError is the type of ErrConflict, so that it can wrap
// ErrPrecondition while keeping a plain message.
type conflictError struct{}

func (conflictError) Error() string { return "state changed since it was read" }
func (conflictError) Unwrap() error { return ErrPrecondition }
