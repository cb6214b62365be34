package state

import (
	"context"
	"fmt"
)

// DeleteDumps deletes every object under DumpPrefix(env, cluster) (dumps
// and manifests of every stop of the cluster) and returns how many it
// deleted. It refuses names that would widen the prefix.
func DeleteDumps(ctx context.Context, b Blob, env, cluster string) (int, error) {
	if err := checkEnv(env); err != nil {
		return 0, fmt.Errorf("delete dumps: %w", err)
	}
	if err := CheckArchiveName("cluster", cluster); err != nil {
		return 0, fmt.Errorf("delete dumps: %w", err)
	}
	prefix := DumpPrefix(env, cluster)
	keys, err := b.List(ctx, prefix)
	if err != nil {
		return 0, fmt.Errorf("listing the dumps under %s: %w", prefix, err)
	}
	for i, k := range keys {
		if err := b.Delete(ctx, k, ""); err != nil {
			return i, fmt.Errorf("deleting the dump %s: %w", k, err)
		}
	}
	return len(keys), nil
}
