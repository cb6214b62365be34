#!/usr/bin/env bash
# make demo: acco's job, end to end, on the local cloud. No OVH account needed.
# Starts the local cloud (kept running afterwards; `bin/acco local down` stops it),
# points every client at it, and walks through what acco does today.
set -euo pipefail
cd "$(dirname "$0")/.."

ACCO=${ACCO:-bin/acco}
DIR=${ACCO_LOCAL_DIR:-.acco/local}
ENV=${ENV:-test}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Start the local cloud (OpenStack, OVH API, PostgreSQL, S3) in $DIR"
run "$ACCO" local up --dir "$DIR"

step "Point acco, gophercloud, go-ovh and the OpenStack and AWS CLIs at it"
printf '$ eval "$(%s local env --dir %s --env %s)"\n' "$ACCO" "$DIR" "$ENV"
eval "$("$ACCO" local env --dir "$DIR" --env "$ENV")"

step "Validate every environment, offline"
run "$ACCO" validate

step "Create the state bucket (twice: the second run has nothing to do)"
run "$ACCO" bootstrap "$ENV"
run "$ACCO" bootstrap "$ENV"

step "Check that $ENV is ready: YAML, credentials, state"
run "$ACCO" init "$ENV"

step "Freeze $ENV, see who holds it, and release it"
id=$("$ACCO" lock hold "$ENV" --reason "demo: release freeze")
run "$ACCO" lock status "$ENV"
printf '$ %s lock hold %s --reason other   # refused: exit 3\n' "$ACCO" "$ENV"
set +e
"$ACCO" lock hold "$ENV" --reason other
code=$?
set -e
echo "exit code: $code"
run "$ACCO" lock break "$ENV" "$id" --force

if command -v openstack >/dev/null 2>&1; then
	step "The OpenStack CLI sees the project of $ENV"
	run openstack flavor list
	run openstack image list
fi

step "What the local cloud holds"
run "$ACCO" local status --dir "$DIR"

printf '\nThe local cloud keeps running; stop it with: %s local down --dir %s\n' "$ACCO" "$DIR"
