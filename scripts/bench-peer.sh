#!/usr/bin/env bash
# bench-peer.sh: acco's apply from nothing, no-op plan and destroy against a
# throwaway local cloud, at each injected latency and for each number of
# instances, with wall time, requests (the local cloud's request log) and peak
# memory, printed beside the OpenTofu figures recorded in issue 14.
#
#   scripts/bench-peer.sh                 (make bench-peer builds bin/acco first)
#   RUNS=1 scripts/bench-peer.sh          one run of each instead of the median of 3
#
# Variables (defaults in brackets):
#   RUNS        runs of each measurement; the table shows medians [3]
#   LATENCIES   latencies added to every request of the local cloud [0 50ms]
#   COUNTS      numbers of instances (the services host plus COUNT-1 alike
#               instances declared with count:) [1 50]
#   PARALLELISM acco's --parallelism [acco's default]
#   ACCO        the acco binary [bin/acco]
#   KEEP=1      keep the temporary directory (clouds, environments, logs)
#
# It needs nothing from the internet: bin/acco and its local cloud, on free
# ports of 127.0.0.1, in a new temporary directory; the clouds it starts are
# stopped when it ends, however it ends. The local cloud has its default
# delays (server build 2 s, address 1 s, database create 5 s, delete 2 s) and
# no PostgreSQL behind its clusters (--postgres off): acco is measured, not
# initdb. Peak memory is GNU time's maximum resident set size of the acco
# process.
set -euo pipefail

RUNS=${RUNS:-3}
LATENCIES=${LATENCIES:-"0 50ms"}
COUNTS=${COUNTS:-"1 50"}
PARALLELISM=${PARALLELISM:-}
root=$(cd "$(dirname "$0")/.." && pwd)
acco=${ACCO:-bin/acco}
case $acco in /*) ;; *) acco=$root/$acco ;; esac

die() { echo "bench-peer: $*" >&2; exit 1; }
[ -x "$acco" ] || die "$acco is missing: build it first (make build, or make bench-peer, which builds it)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS=$RUNS: want a number of runs, 1 or more"
for n in $COUNTS; do
	[[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -le 101 ] || die "COUNTS: $n is not a number of instances from 1 to 101"
done
timer=
if [ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1; then
	timer=/usr/bin/time
else
	echo "bench-peer: GNU time (/usr/bin/time) is missing: peak memory is not measured (apt-get install time; make deps installs it)" >&2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/acco-bench-peer.XXXXXX")
clouds=()
cleanup() {
	local rc=$? d
	for d in "${clouds[@]}"; do
		"$acco" local down --dir "$d" >/dev/null 2>&1 || echo "bench-peer: could not stop the local cloud in $d (acco local down --dir $d)" >&2
	done
	if [ "${KEEP:-}" = 1 ] || [ $rc -ne 0 ]; then
		echo "bench-peer: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The environments: the local environment (environments/local.yaml, the
# services host app and the database main) under another name and project,
# with COUNT-1 more instances declared as one entry with count:.
envdir=$tmp/environments
mkdir -p "$envdir"
cp "$root/environments/defaults.yaml" "$envdir/"
for n in $COUNTS; do
	name=bench$n
	sed -e "s/^name: local\$/name: $name/" \
		-e "s/^project: .*/project: \"$(printf 'be0c%028x' "$n")\"/" \
		-e "s/^cloud: .*/cloud: acco-$name/" \
		"$root/environments/local.yaml" >"$envdir/$name.yaml"
	if [ "$n" -gt 1 ]; then
		# after the first "    flavor: d2-4" (instances.app's)
		awk -v n=$((n - 1)) '{ print } !done && /^    flavor: d2-4$/ {
			print "  worker:"; print "    count: " n; print "    flavor: d2-4"; print "    image: Debian 12"
			print "    keypair: deploy"; print "    security_groups: [app]"; done = 1 }' \
			"$envdir/$name.yaml" >"$envdir/$name.yaml.new"
		mv "$envdir/$name.yaml.new" "$envdir/$name.yaml"
	fi
	grep -q "^name: $name\$" "$envdir/$name.yaml" || die "environments/local.yaml changed shape: cannot derive $name.yaml from it"
done
export ACCO_ENVIRONMENTS=$envdir
for n in $COUNTS; do
	"$acco" validate "bench$n" >/dev/null || die "environment bench$n does not validate (see above)"
done

# measure CLOUD ENV OP WANT_EXIT ARGS...: runs acco once; appends
# "wall requests peak_kib" to $tmp/results/<latency>-<count>-<op>.
measure() {
	local cloud=$1 env=$2 op=$3 want=$4
	shift 4
	local log=$cloud/requests.jsonl before after rc=0 t0 t1 wall mem=-
	local out=$tmp/logs/$(basename "$cloud")-$env-$op.log
	before=$(wc -l <"$log")
	t0=$(date +%s.%N)
	if [ -n "$timer" ]; then
		$timer -f %M -o "$tmp/mem" "$acco" "$@" >>"$out" 2>&1 || rc=$?
	else
		"$acco" "$@" >>"$out" 2>&1 || rc=$?
	fi
	t1=$(date +%s.%N)
	if [ "$rc" -ne "$want" ]; then
		tail -n 30 "$out" >&2
		die "acco $* exited $rc, not $want (log: $out)"
	fi
	sleep 0.3 # the cloud logs a request once its answer is sent
	after=$(wc -l <"$log")
	[ -n "$timer" ] && mem=$(tail -n 1 "$tmp/mem")
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	echo "$wall $((after - before)) $mem" >>"$tmp/results/$(basename "$cloud")-$env-$op"
}

mkdir -p "$tmp/results" "$tmp/logs"
par=()
[ -n "$PARALLELISM" ] && par=(--parallelism "$PARALLELISM")
started=$(date -u +%Y-%m-%dT%H:%MZ)
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD 2>/dev/null || echo '+changes')"
for lat in $LATENCIES; do
	cloud=$tmp/cloud-$lat
	clouds+=("$cloud")
	echo "bench-peer: local cloud with latency $lat in $cloud" >&2
	"$acco" local up --dir "$cloud" --postgres off --latency "$lat" \
		--build-delay 2s --address-delay 1s --db-create-delay 5s --db-delete-delay 2s >"$tmp/logs/up-$lat.log" 2>&1 ||
		{ cat "$tmp/logs/up-$lat.log" >&2; die "acco local up failed"; }
	for n in $COUNTS; do
		env=bench$n
		(
			eval "$("$acco" local env --dir "$cloud" --env "$env")"
			"$acco" bootstrap >>"$tmp/logs/bootstrap.log" 2>&1 || die "acco bootstrap failed (log: $tmp/logs/bootstrap.log)"
			for r in $(seq "$RUNS"); do
				echo "bench-peer: latency $lat, $n instance(s), run $r of $RUNS" >&2
				measure "$cloud" "$env" apply 0 apply "$env" --auto-approve "${par[@]}"
				measure "$cloud" "$env" plan 0 plan "$env" --detailed-exitcode
				measure "$cloud" "$env" destroy 0 destroy "$env" --auto-approve "${par[@]}"
			done
		)
	done
done

# median FILE COLUMN: the median of a column (the mean of the middle two for
# an even number of runs); - when the column holds none.
median() {
	awk -v c="$2" '$c != "-" { print $c }' "$1" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR == 0) { print "-"; exit } m = int((NR + 1) / 2); x = (NR % 2) ? v[m] : (v[m] + v[m + 1]) / 2; print x }'
}

# OpenTofu 1.12.6 (+ the OpenStack and OVH providers) as issue 14 records it,
# against the same local cloud and delays: "wall; requests; memory; wall
# without the OVH provider's fixed sleeps", - where not recorded.
tofu() {
	case $1 in
	apply-0-1) echo "44.9 s (14.9 s without its sleeps)" ;;
	apply-50ms-1) echo "46.1 s (16.1 s without its sleeps)" ;;
	apply-50ms-50) echo "61.9 s (31.9 s without its sleeps)" ;;
	plan-0-1) echo "1.04 s, 28 requests, 93 MiB" ;;
	plan-50ms-1) echo "1.91 s" ;;
	plan-50ms-50) echo "3.23 s, 273 requests" ;;
	destroy-50ms-50) echo "45.7 s (15.7 s without its sleeps)" ;;
	*) echo "-" ;;
	esac
}

echo
echo "$("$acco" version 2>/dev/null | head -n 1 || echo acco), commit $commit (when it started), $(nproc) cores, $started"
echo "local cloud: build 2 s, address 1 s, database create 5 s, delete 2 s, --postgres off; medians of $RUNS run(s)"
echo
printf '| %-10s | %-7s | %-9s | %-10s | %-8s | %-9s | %-46s |\n' operation latency instances "wall (s)" requests "peak MiB" "OpenTofu 1.12.6, recorded in issue 14, not re-measured"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------ --------- ----------- ------------ ---------- ----------- ------------------------------------------------
for op in apply plan destroy; do
	for lat in $LATENCIES; do
		for n in $COUNTS; do
			f=$tmp/results/cloud-$lat-bench$n-$op
			wall=$(median "$f" 1)
			[ "$wall" != - ] && wall=$(awk -v s="$wall" 'BEGIN { printf "%.2f", s }')
			req=$(median "$f" 2)
			mem=$(median "$f" 3)
			[ "$mem" != - ] && mem=$(awk -v k="$mem" 'BEGIN { printf "%.0f", k / 1024 }')
			label=$op
			[ "$op" = plan ] && label="no-op plan"
			[ "$op" = apply ] && label="apply"
			printf '| %-10s | %-7s | %-9s | %-10s | %-8s | %-9s | %-46s |\n' "$label" "$lat" "$n" "$wall" "$req" "$mem" "$(tofu "$op-$lat-$n")"
		done
	done
done
