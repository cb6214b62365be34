#!/usr/bin/env bash
# Installs the Debian packages acco's tests use, only those that are missing,
# then the local cloud's PostgreSQL 17 (scripts/ensure-postgres.sh).
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
pg_have() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

have git || need+=(git)
have make || need+=(make)
pg_have || need+=(postgresql)
have openstack || need+=(python3-openstackclient)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
have mosquitto || need+=(mosquitto mosquitto-clients)
have systemd-analyze || need+=(systemd)
# nginx -t checks the TLS proxy acco puts in front of PowerSync (templates).
[ -x /usr/sbin/nginx ] || need+=(nginx)
have npm || need+=(npm)
# gpg checks the pinned fingerprints of apt keys (configure's tests).
have gpg || need+=(gpg)
[ -x /usr/bin/aws ] || need+=(awscli)
# GNU time measures the peak memory of acco in make bench-peer.
[ -x /usr/bin/time ] || need+=(time)
# Graphviz's dot renders acco graph --format svg (envgraph's tests).
have dot || need+=(graphviz)

if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
		exit 1
	fi
	echo "installing: ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The local cloud's managed clusters run PostgreSQL 17, as OVH's do; Debian's
# PostgreSQL (above) is the fallback when it cannot be had.
"$(dirname "$0")/ensure-postgres.sh"
"$(dirname "$0")/ensure-pgclient.sh" # pg_dump 17 for acco db (bookworm has 15)
