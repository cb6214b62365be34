#!/usr/bin/env bash
# make demo: acco's job, end to end, on the local cloud. No OVH account needed.
# Starts the local cloud (kept running afterwards; `bin/acco local down` stops it),
# points every client at it, and walks through what acco does today.
set -euo pipefail
cd "$(dirname "$0")/.."

ACCO=${ACCO:-bin/acco}
DIR=${ACCO_LOCAL_DIR:-.acco/local}
ENV=${ENV:-local}
# The local environment's instance is a real VM (qemu) that acco configures;
# other environments get servers that are only API objects.
VMS=()
[ "$ENV" = local ] && VMS=(--vms)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "Start the local cloud (OpenStack, OVH API, PostgreSQL, S3${VMS:+, VMs behind Nova servers}) in $DIR"
run "$ACCO" local up --dir "$DIR" "${VMS[@]}"

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

# The deploy key the instance gets is the local cloud's own (deploy-key.pub in
# $DIR, ACCO_DEPLOY_PUBLIC_KEY_FILE and ACCO_SSH_KEY from local env), and the
# backend is the example one (ACCO_BACKEND_ARTIFACT): the same after the demo.
echo "(deploy key $ACCO_DEPLOY_PUBLIC_KEY_FILE, backend $ACCO_BACKEND_ARTIFACT)"

step "Plan $ENV: what apply would create (exit 2: changes present)"
set +e
"$ACCO" plan "$ENV" --detailed-exitcode
echo "exit code: $?"
set -e

step "Apply $ENV: keypair, security group, instance, database with its users and databases"
run "$ACCO" apply "$ENV" --auto-approve

step "Plan again: nothing to do (exit 0)"
run "$ACCO" plan "$ENV" --detailed-exitcode

step "Outputs: addresses and the database URI, never a password"
run "$ACCO" output "$ENV"
run "$ACCO" state list "$ENV"

if command -v openstack >/dev/null 2>&1; then
	step "Someone deletes the SSH rule by hand: plan names the drift (exit 2) and apply repairs it"
	rule=$(openstack security group rule list "acco-$ENV-app" -f value -c ID -c "Port Range" | awk '$2 == "22:22" {print $1; exit}')
	run openstack security group rule delete "$rule"
	set +e
	"$ACCO" plan "$ENV" --detailed-exitcode
	echo "exit code: $?"
	set -e
	run "$ACCO" apply "$ENV" --auto-approve
fi

if [ "$ENV" = local ]; then
	step "Configure the instance over SSH: host key checked against its console, packages, units, database (minutes the first time under TCG)"
	run "$ACCO" configure "$ENV"

	step "Configure again: nothing to change, nothing restarted, one round trip"
	run "$ACCO" configure "$ENV"

	step "Change a value in the YAML: --check --diff shows one file and one restart, and changes nothing"
	changed=$(mktemp -d)
	cp environments/*.yaml "$changed"
	sed -i 's/LOG_LEVEL: debug/LOG_LEVEL: info/' "$changed/local.yaml"
	printf '$ %s --environments %s configure %s --check --diff --detailed-exitcode   # LOG_LEVEL: info\n' "$ACCO" "$changed" "$ENV"
	set +e
	"$ACCO" --environments "$changed" configure "$ENV" --check --diff --detailed-exitcode
	echo "exit code: $?"
	set -e
	rm -rf "$changed"

	step "The data flow: a position published as a tracker reaches PostgreSQL and the backend"
	run "$ACCO" verify "$ENV"

	step "Register a tracker: its MQTT password is printed once, acco keeps only its hash"
	"$ACCO" device remove "$ENV" demo-tracker >/dev/null 2>&1 || true
	printf '$ %s device add %s demo-tracker\n' "$ACCO" "$ENV"
	pw=$("$ACCO" device add "$ENV" demo-tracker)
	echo "(password: ${#pw} characters, kept in a shell variable)"
	ip=$("$ACCO" output "$ENV" instance.app.ipv4 2>/dev/null || true)
	if command -v mosquitto_pub >/dev/null 2>&1 && [ -n "$ip" ]; then
		printf '$ mosquitto_pub -h %s -u demo-tracker -P "$pw" -q 1 -t trackers/demo-tracker/position -m {"ts":…,"lat":45.76,"lon":4.83}\n' "$ip"
		mosquitto_pub -h "$ip" -p 1883 -u demo-tracker -P "$pw" -q 1 -t trackers/demo-tracker/position -m "{\"ts\":$(date +%s%3N),\"lat\":45.76,\"lon\":4.83}"
	fi
	run "$ACCO" device list "$ENV"
fi

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
	step "The OpenStack CLI sees what acco made in the project of $ENV"
	run openstack server list
	run openstack security group list
fi

step "What the local cloud holds"
run "$ACCO" local status --dir "$DIR"

if [ "$ENV" = local ]; then
	step "The team's reboot test: reboot the instance through Nova, then prove the whole flow again"
	run "$ACCO" verify "$ENV" --reboot
fi

printf '\n%s stays applied and the local cloud keeps running. Next, in your shell:\n' "$ENV"
dirflag=""
[ "$DIR" = .acco/local ] || dirflag=" --dir $DIR"
printf '  eval "$(%s local env%s)"   # the cloud, its deploy key, the example backend: nothing else to set\n' "$ACCO" "$dirflag"
if [ "$ENV" = local ]; then
	printf '  %s plan %s; %s configure %s; %s verify %s\n' "$ACCO" "$ENV" "$ACCO" "$ENV" "$ACCO" "$ENV"
else
	printf '  %s plan %s\n' "$ACCO" "$ENV"
fi
printf 'Remove it all with: make destroy ENV=%s (asks first), then make local-down\n' "$ENV"
