#!/usr/bin/env bash
# soak.sh: the unattended-recovery trials of the README's "Reliability"
# section, each printing its figure. Long (about 25 minutes on 2 cores);
# the test suite runs shorter versions of each.
#   SOAK_ROUNDS  rounds of kill-and-resume (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${SOAK_ROUNDS:-30}"

echo "== kill and resume: $rounds rounds of acco apply killed with SIGKILL at a random moment, then one plain acco apply"
ACCO_SOAK_ITERATIONS="$rounds" go test -short -count=1 ./cmd/acco -run 'TestScripts/killapply$' -v -timeout 90m |
	grep -E 'converged=|killed while running|^(ok|FAIL)'

echo "== fault rate: the lifecycle under 20 % injected faults (cloud APIs and the S3 state), 10 seeds, each on its first run"
go test -count=1 ./provision -run 'TestLifecycleUnderFaultsWithS3State$' -v -timeout 60m |
	grep -E 'seeds|^(ok|FAIL)'

echo "== db stop and db start killed with SIGKILL after each of their requests, then run once more: rows compared"
ACCO_DBKILL_ROUNDS=0 go test -count=1 ./cmd/acco -run 'TestScripts/db_kill$' -v -timeout 60m |
	grep -E 'converged=|FAILED|^(ok|FAIL)'

echo "== black holes (Keystone, OVH API, S3 accept and never answer) and a rolled-back state"
go test -short -count=1 ./cmd/acco -run 'TestScripts/(blackhole|rollback)$' -v -timeout 20m |
	grep -E -- '--- (PASS|FAIL)|^(ok|FAIL)'
