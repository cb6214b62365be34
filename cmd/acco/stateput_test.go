package main

import (
	"context"
	"fmt"
	"os"

	"github.com/accoreboot/acco/state"
)

// stateput is a test program: `stateput KEY FILE` writes FILE at KEY in the
// state store $ACCO_STATE, unconditionally, as an operator restoring an
// object by hand would, so scripts can put an older state back.
func stateput() int {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: stateput KEY FILE")
		return 2
	}
	ctx := context.Background()
	data, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	blob, err := state.OpenBlob(ctx, os.Getenv("ACCO_STATE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := blob.Put(ctx, os.Args[1], data, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
