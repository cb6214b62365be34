package pgdump

import "context"

// RestoreAsTimescale is Restore as when the dump holds the timescaledb
// extension, which the local cloud cannot install: the test gives the
// database functions of TimescaleDB's names that record their calls.
func RestoreAsTimescale(ctx context.Context, t Tools, tg Target, dump string) error {
	entries, err := List(ctx, t, dump)
	if err != nil {
		return err
	}
	return restore(ctx, t, tg, dump, entries, true)
}
