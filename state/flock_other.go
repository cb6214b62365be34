//go:build !unix

package state

import (
	"context"
	"errors"
)

// lockFile is not available: DirBlob needs flock.
func lockFile(context.Context, string) (func(), error) {
	return nil, errors.New("file:// state needs flock, which this system lacks: use an s3:// state URL")
}
