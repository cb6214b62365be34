package state

// TODO merge: state/archive.go (branch archive) defines DumpPrefix too, with
// the same contract; keep one of the two when both branches land.

import (
	"context"
	"fmt"
	"strings"
)

// DumpPrefix returns the bucket prefix under which the dumps of an
// on-demand database cluster are kept: <env>/dumps/<cluster>/.
func DumpPrefix(env, cluster string) string { return env + "/dumps/" + cluster + "/" }

// DeleteDumps deletes every object under DumpPrefix(env, cluster) (dumps
// and manifests of every stop of the cluster) and returns how many it
// deleted. It refuses names that would widen the prefix.
func DeleteDumps(ctx context.Context, b Blob, env, cluster string) (int, error) {
	if err := checkEnv(env); err != nil {
		return 0, fmt.Errorf("delete dumps: %w", err)
	}
	if cluster == "" || cluster == "." || cluster == ".." || strings.ContainsAny(cluster, `/\`) {
		return 0, fmt.Errorf("delete dumps: invalid cluster name %q", cluster)
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
