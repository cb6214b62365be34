#!/bin/sh
# soak-kill.sh [ROUNDS]: the unattended-recovery soak. Each round destroys
# the test environment of a local cloud, starts acco apply, kills it with
# SIGKILL at a random moment, then runs one plain acco apply --auto-approve
# (no lock command) and checks that the plan is then empty. 30 rounds by
# default; the normal test suite runs 5 (cmd/acco/testdata/script/killapply.txtar).
set -eu
cd "$(dirname "$0")/.."
ACCO_SOAK_ITERATIONS="${1:-30}" exec go test -short -count=1 ./cmd/acco -run 'TestScripts/killapply$' -v -timeout 30m
