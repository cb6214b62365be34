package pgdump

import "context"

// RestoreAsTimescale is Restore as when the dump holds the timescaledb
// extension, which the local cloud cannot install: the test gives the
// database functions of TimescaleDB's names that record their calls.
func RestoreAsTimescale(ctx context.Context, t Tools, tg Target, dump string) error {
	return restore(ctx, t, tg, dump, true)
}
