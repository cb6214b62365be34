#!/usr/bin/env bash
# Installs PostgreSQL 17 client tools (pg_dump, pg_restore, psql) without
# root: pg_dump must be at least the server's major version, the managed
# clusters run PostgreSQL 17, and Debian 12 (bookworm) packages only 15.
#
# It takes postgresql-client-17 and the libraries it needs from Debian 13
# (trixie), unpacked with dpkg-deb -x (no maintainer script runs), into:
#   as root:     /usr/local/lib/acco/pgclient-17
#   otherwise:   ${XDG_CACHE_HOME:-$HOME/.cache}/acco/pgclient-17
# and writes bin/pg_dump, bin/pg_restore and bin/psql there: small wrappers
# that run the unpacked program through the unpacked dynamic loader, with
# only the unpacked libraries, so trixie's glibc is used and nothing of the
# system is replaced. internal/pgdump.DefaultDirs looks there.
#
# Trust: trixie's InRelease is verified with gpgv against bookworm's
# /usr/share/keyrings/debian-archive-keyring.gpg (which holds the trixie
# archive keys); Packages.xz is checked against the sha256 InRelease gives,
# and every .deb against the SHA256 its Packages entry gives.
#
# Safe to run repeatedly: quiet, and does nothing, when installed. When the
# tools cannot be had (not x86-64 Linux, no network, ...) it says so in one
# line and exits 0; acco then says how to get a pg_dump when it needs one.
set -euo pipefail

mirror=${ACCO_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=trixie
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
want=postgresql-client-17
name=pgclient-17
# Dependencies not unpacked: maintainer-script and wrapper helpers (the
# wrappers below replace pg_wrapper), data-only or essential packages the
# programs do not load.
skip=" postgresql-client-common sensible-utils debconf debconf-2.0 perl perl-base readline-common libc-bin base-files tzdata "

if [ "$(id -u)" -eq 0 ]; then
	root=/usr/local/lib/acco
else
	cache=${XDG_CACHE_HOME:-}
	case "$cache" in
	/*) ;;
	*) cache=$HOME/.cache ;; # unset or relative: as Go's os.UserCacheDir
	esac
	root=$cache/acco
fi
dest=$root/$name

say() { echo "ensure-pgclient: $*" >&2; }
giveup() {
	say "$* (PostgreSQL 17 client tools not installed; acco db needs them)"
	exit 0
}

# ok DIR: DIR/bin holds a pg_dump, pg_restore and psql of PostgreSQL 17
# that run.
ok() {
	local b v
	for b in pg_dump pg_restore psql; do
		v=$("$1/bin/$b" --version 2>/dev/null) || return 1
		case "$v" in *"(PostgreSQL) 17."*) ;; *) return 1 ;; esac
	done
}

if ok "$dest"; then
	exit 0
fi
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || giveup "only x86-64 Linux is supported, not $(uname -s) $(uname -m)"
for c in curl gpgv xz dpkg-deb sha256sum awk; do
	command -v "$c" >/dev/null 2>&1 || giveup "$c is not installed"
done
[ -r "$keyring" ] || giveup "$keyring is missing (apt-get install debian-archive-keyring)"

umask 022
tmp=$(mktemp -d)
stage=
cleanup() {
	rm -rf "$tmp"
	if [ -n "$stage" ]; then rm -rf "$stage"; fi
}
trap cleanup EXIT

fetch() { # fetch URL FILE
	curl -fsSL --retry 2 --connect-timeout 20 --max-time 600 -o "$2" "$1" 2>"$tmp/curl.err" ||
		giveup "cannot download $1: $(tr -s '\n' ' ' <"$tmp/curl.err" | sed 's/ *$//')"
}

fetch "$mirror/dists/$suite/InRelease" "$tmp/InRelease"
# InRelease carries several signatures: it is trusted when one is good by a
# key of the keyring and none is bad, expired or revoked (a signature by a
# key the keyring lacks, say a newer release's, is ignored).
gpgv --status-fd 3 --keyring "$keyring" --output "$tmp/Release" "$tmp/InRelease" 2>"$tmp/gpgv.err" 3>"$tmp/gpgv.status" || true
if grep -qE '^\[GNUPG:\] (BADSIG|EXPKEYSIG|REVKEYSIG) ' "$tmp/gpgv.status"; then
	say "$mirror/dists/$suite/InRelease: bad signature ($(grep -m1 -iE 'bad|expired|revoked' "$tmp/gpgv.err" || echo gpgv failed)); refusing to install"
	exit 1
fi
if ! grep -qE '^\[GNUPG:\] VALIDSIG ' "$tmp/gpgv.status" || [ ! -s "$tmp/Release" ]; then
	giveup "$mirror/dists/$suite/InRelease is signed by no key of $keyring"
fi
sum=$(awk '/^SHA256:/{s=1; next} /^[^ ]/{s=0} s && $3 == "main/binary-amd64/Packages.xz" {print $1; exit}' "$tmp/Release")
[ -n "$sum" ] || giveup "InRelease of $suite lists no main/binary-amd64/Packages.xz"
fetch "$mirror/dists/$suite/main/binary-amd64/Packages.xz" "$tmp/Packages.xz"
if [ "$(sha256sum "$tmp/Packages.xz" | cut -d' ' -f1)" != "$sum" ]; then
	say "$suite Packages.xz does not match the sha256 its signed InRelease gives; refusing to install"
	exit 1
fi
xz -dc "$tmp/Packages.xz" >"$tmp/Packages"

# One line a package: name, then Filename, SHA256, then its dependencies
# (Pre-Depends and Depends, first alternative, no version), space-separated;
# and "provides NAME PKG" lines for virtual packages.
awk '
function flush() {
	if (p != "" && !(p in seen)) {
		seen[p] = 1
		print "pkg", p, f, s, d
		n = split(pv, a, /, */)
		for (i = 1; i <= n; i++) { sub(/ .*/, "", a[i]); if (a[i] != "") print "provides", a[i], p }
	}
	p = f = s = d = pv = ""
}
function deps(v,    n, a, i, x) {
	n = split(v, a, /, */)
	for (i = 1; i <= n; i++) {
		x = a[i]; sub(/ *\|.*/, "", x); sub(/ *\(.*/, "", x); sub(/:any$/, "", x)
		if (x != "") d = d " " x
	}
}
/^$/ { flush(); next }
/^Package: / { p = $2 }
/^Filename: / { f = $2 }
/^SHA256: / { s = $2 }
/^Provides: / { pv = substr($0, 11) }
/^(Pre-)?Depends: / { deps(substr($0, index($0, ":") + 2)) }
END { flush() }
' "$tmp/Packages" >"$tmp/index"

# Resolve the dependencies of $want, breadth first.
queue=($want)
declare -A done=()
debs=()
while [ ${#queue[@]} -gt 0 ]; do
	p=${queue[0]}
	queue=("${queue[@]:1}")
	[ -z "${done[$p]:-}" ] || continue
	done[$p]=1
	case "$skip" in *" $p "*) continue ;; esac
	line=$(awk -v p="$p" '$1 == "pkg" && $2 == p {print; exit}' "$tmp/index")
	if [ -z "$line" ]; then
		real=$(awk -v p="$p" '$1 == "provides" && $2 == p {print $3; exit}' "$tmp/index")
		[ -n "$real" ] || giveup "$suite has no package $p (needed by $want)"
		queue+=("$real")
		continue
	fi
	read -r _ _ file sha rest <<<"$line"
	debs+=("$p $file $sha")
	for d in $rest; do
		[ -n "${done[$d]:-}" ] || queue+=("$d")
	done
done

mkdir -p "$root"
chmod 755 "$root"
stage=$(mktemp -d "$root/.$name.XXXXXX")
mkdir -p "$stage/root" "$stage/bin"
for e in "${debs[@]}"; do
	read -r p file sha <<<"$e"
	fetch "$mirror/$file" "$tmp/deb"
	if [ "$(sha256sum "$tmp/deb" | cut -d' ' -f1)" != "$sha" ]; then
		say "$file does not match the SHA256 of the signed $suite index; refusing to install"
		exit 1
	fi
	dpkg-deb -x "$tmp/deb" "$stage/root"
	echo "$p $(basename "$file") $sha" >>"$stage/packages"
done

ld=$stage/root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
[ -e "$ld" ] || giveup "libc6 of $suite has no usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
for b in pg_dump pg_restore psql; do
	[ -x "$stage/root/usr/lib/postgresql/17/bin/$b" ] || giveup "$want has no usr/lib/postgresql/17/bin/$b"
	# The wrapper finds its directory at run time, so the installation
	# can be moved into place after it is written.
	cat >"$stage/bin/$b" <<EOF
#!/bin/sh
# PostgreSQL 17 $b from Debian $suite, run with $suite's own C library and
# libraries (written by scripts/ensure-pgclient.sh).
r=\$(CDPATH= cd -- "\$(dirname -- "\$0")/.." && pwd -P)/root
exec "\$r/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "\$r/usr/lib/x86_64-linux-gnu:\$r/lib/x86_64-linux-gnu" "\$r/usr/lib/postgresql/17/bin/$b" "\$@"
EOF
	chmod 755 "$stage/bin/$b"
done
chmod -R a+rX "$stage"
chmod 755 "$stage"
ok "$stage" || giveup "the unpacked tools do not run: $("$stage/bin/pg_dump" --version 2>&1 | head -n 1)"

# Another run may have finished first: keep whichever is complete.
if ok "$dest"; then
	exit 0
fi
rm -rf "$dest"
mv -T "$stage" "$dest"
stage=
say "installed $("$dest/bin/pg_dump" --version) from Debian $suite ($want) in $dest"
