#!/usr/bin/env bash
# Builds the Debian 12 guest image that internal/localcloud/vm boots for the
# end-to-end SSH/systemd tests: a kernel and initrd for direct kernel boot and a
# compressed qcow2 root disk that each VM uses as a read-only backing file.
#
#   scripts/vm-image.sh [OUTDIR]        (default .acco/vm-image)
#
# The result is cached in OUTDIR, keyed by a hash of this script (plus
# ACCO_VM_IMAGE_EPOCH when set, e.g. a week number so CI picks up security
# updates). A second run with the same key prints "reusing" and exits at once.
#
# Building needs root (mmdebstrap in root mode, chroot); missing host packages
# are installed with apt-get. Packages come from the Debian mirror configured in
# the host's apt sources (override with DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR).
#
# Guest contract (relied on by internal/localcloud/vm):
#   - root on /dev/vda (ext4), kernel arguments root=/dev/vda rw console=ttyS0
#   - user "debian", passwordless sudo, no password login
#   - authorized key from the systemd credential acco.ssh.authorized_keys.debian
#     (SMBIOS type 11) or the kernel argument acco.sshkey=<base64>
#   - acco-vm-firstboot.service, on every boot before ssh.service: generates a
#     missing ed25519 host key and prints the cloud-init style
#     "-----BEGIN SSH HOST KEY FINGERPRINTS-----" and
#     "-----BEGIN SSH HOST KEY KEYS-----" blocks on the console
#   - DHCP on eth0 with systemd-networkd (QEMU user-mode networking)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
out=${1:-.acco/vm-image}
mkdir -p "$out"
out=$(cd "$out" && pwd)

key=$( { cat "$self"; echo "epoch=${ACCO_VM_IMAGE_EPOCH:-}"; } | sha256sum | cut -c1-16)
files=(vmlinuz initrd.img base.qcow2)

complete() {
	[ "$(cat "$out/KEY" 2>/dev/null)" = "$key" ] || return 1
	for f in "${files[@]}"; do [ -s "$out/$f" ] || return 1; done
}

ensure_host_packages() {
	local need=()
	command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
	command -v qemu-img >/dev/null 2>&1 || need+=(qemu-utils)
	if [ "${1:-}" = build ]; then
		command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
		command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
		[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
	fi
	[ ${#need[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "vm-image: missing packages: ${need[*]}; install them with: sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
		return 1
	fi
	echo "vm-image: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

if complete; then
	ensure_host_packages run
	echo "vm-image: reusing $out (key $key)"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "vm-image: building the image needs root (mmdebstrap, chroot); run: sudo $0 $out" >&2
	exit 1
fi
ensure_host_packages build

# Mirrors: the URIs of the host's apt sources (deb822 and one-line styles); the
# stanza whose suites mention "security" gives the security mirror.
read_mirrors() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" { u = ""; for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { u = $i; s = $(i+1); break }
			if (u != "") print ((s ~ /security/) ? "security " : "main ") u }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'function flush() { if (uris != "" && types ~ /(^| )deb( |$)/) { n = split(uris, a, " "); print ((suites ~ /security/) ? "security " : "main ") a[1] } uris = ""; suites = ""; types = "" }
			/^[ \t]*$/ { flush(); next }
			/^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
			/^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
			/^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
			END { flush() }' "$f"
	done
}
mirrors=$(read_mirrors || true)
main_mirror=${DEBIAN_MIRROR:-$(awk '$1 == "main" && $2 ~ /debian\/?$/ { print $2; exit }' <<<"$mirrors")}
main_mirror=${main_mirror:-$(awk '$1 == "main" { print $2; exit }' <<<"$mirrors")}
main_mirror=${main_mirror:-http://deb.debian.org/debian}
sec_mirror=${DEBIAN_SECURITY_MIRROR:-$(awk '$1 == "security" { print $2; exit }' <<<"$mirrors")}
sec_mirror=${sec_mirror:-http://deb.debian.org/debian-security}
echo "vm-image: building into $out from $main_mirror and $sec_mirror" >&2

start=$(date +%s)
rm -rf "$out"/.build.* # left by an interrupted build
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"

# Everything that is done inside the new root file system, run by mmdebstrap
# with the root directory as $1 (proc, sys and dev are mounted there).
cat >"$work/customize.sh" <<'CUSTOMIZE'
set -eu
r=$1
ch() { chroot "$r" "$@"; }

echo acco-vm >"$r/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
# The host name may be set per VM (systemd.hostname=); resolve it without /etc/hosts.
grep -q myhostname "$r/etc/nsswitch.conf" || sed -i 's/^hosts:.*/hosts:          files myhostname dns/' "$r/etc/nsswitch.conf"
printf '/dev/vda\t/\text4\terrors=remount-ro\t0\t1\n' >"$r/etc/fstab"
# QEMU user-mode networking's DNS forwarder; there is no systemd-resolved.
rm -f "$r/etc/resolv.conf"
echo 'nameserver 10.0.2.3' >"$r/etc/resolv.conf"

# Networking: DHCP on eth0 (net.ifnames=0) with systemd-networkd.
mkdir -p "$r/etc/systemd/network"
printf '[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n' >"$r/etc/systemd/network/90-eth0.network"
ch systemctl enable systemd-networkd.service >/dev/null 2>&1

# The login user, as on OVH's Debian images.
ch useradd --create-home --shell /bin/bash --groups sudo debian
ch passwd --lock debian >/dev/null
echo 'debian ALL=(ALL) NOPASSWD:ALL' >"$r/etc/sudoers.d/90-debian"
chmod 0440 "$r/etc/sudoers.d/90-debian"

# sshd: key login only, ed25519 host key only (RSA generation costs ~20 s under TCG).
rm -f "$r"/etc/ssh/ssh_host_*
cat >"$r/etc/ssh/sshd_config.d/10-acco-vm.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF

# First boot (and every boot): host key, authorized key, console banner.
cat >"$r/usr/local/sbin/acco-vm-firstboot" <<'EOF'
#!/bin/sh
# Generates missing SSH host keys, installs the debian user's authorized keys
# from the systemd credential acco.ssh.authorized_keys.debian (or the kernel
# argument acco.sshkey=<base64>), and prints the host keys on the console in
# the framed format cloud-init uses, before ssh.service starts.
set -eu
umask 022
host=$(hostname)
for t in ${ACCO_VM_HOSTKEY_TYPES:-ed25519}; do
	f=/etc/ssh/ssh_host_${t}_key
	[ -s "$f" ] || ssh-keygen -q -t "$t" -N '' -C "root@$host" -f "$f"
done

keys=""
cred=/run/credentials/@system/acco.ssh.authorized_keys.debian
if [ -s "$cred" ]; then
	keys=$(cat "$cred")
else
	for arg in $(cat /proc/cmdline); do
		case $arg in acco.sshkey=*) keys=$(printf '%s' "${arg#acco.sshkey=}" | base64 -d) ;; esac
	done
fi
if [ -n "$keys" ]; then
	install -d -m 0700 -o debian -g debian /home/debian/.ssh
	printf '%s\n' "$keys" >/home/debian/.ssh/authorized_keys.new
	chown debian:debian /home/debian/.ssh/authorized_keys.new
	chmod 0600 /home/debian/.ssh/authorized_keys.new
	mv /home/debian/.ssh/authorized_keys.new /home/debian/.ssh/authorized_keys
fi

banner="-----BEGIN SSH HOST KEY FINGERPRINTS-----
$(for f in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -l -f "$f"; done)
-----END SSH HOST KEY FINGERPRINTS-----
-----BEGIN SSH HOST KEY KEYS-----
$(cat /etc/ssh/ssh_host_*_key.pub)
-----END SSH HOST KEY KEYS-----"
printf '\n%s\n' "$banner" >/dev/console
EOF
chmod 0755 "$r/usr/local/sbin/acco-vm-firstboot"
cat >"$r/etc/systemd/system/acco-vm-firstboot.service" <<'EOF'
[Unit]
Description=acco VM: SSH host keys and authorized keys, host keys printed on the console
Before=ssh.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/acco-vm-firstboot

[Install]
WantedBy=multi-user.target ssh.service
EOF
ch systemctl enable acco-vm-firstboot.service >/dev/null 2>&1

# Units that only cost boot time in a throw-away VM.
ch systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer getty@tty1.service systemd-networkd-wait-online.service >/dev/null 2>&1

# Every VM gets its own machine id (and hence its own DHCP identity).
: >"$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"

# Small initrd: only what direct kernel boot from virtio needs.
echo 'MODULES=list' >"$r/etc/initramfs-tools/conf.d/acco-vm.conf"
printf 'virtio_pci\nvirtio_blk\nvirtio_net\nvirtio_rng\next4\n' >"$r/etc/initramfs-tools/modules"
ch update-initramfs -u -k all >/dev/null 2>&1

ch apt-get clean
rm -rf "$r"/var/lib/apt/lists/* "$r"/var/log/*.log "$r"/tmp/* "$r"/var/tmp/*
CUSTOMIZE

mmdebstrap --quiet --mode=root --variant=minbase --format=directory \
	--include=systemd-sysv,udev,dbus,libpam-systemd,libnss-myhostname,openssh-server,openssh-sftp-server,sudo,ca-certificates,curl,iproute2,procps,python3,linux-image-cloud-amd64,initramfs-tools,zstd \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--customize-hook="sh $work/customize.sh \"\$1\"" \
	bookworm "$root" \
	"deb $main_mirror bookworm main" \
	"deb $main_mirror bookworm-updates main" \
	"deb $sec_mirror bookworm-security main"

kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
chmod 0644 "$work/vmlinuz" "$work/initrd.img"

mkfs.ext4 -q -F -L acco-root -d "$root" "$work/base.raw" 2G 2>&1 | grep -v "^Creating regular file" >&2 || true
qemu-img convert -c -O qcow2 "$work/base.raw" "$work/base.qcow2"
chmod 0444 "$work/base.qcow2"

# Replace the previous image only once the new one is complete.
rm -f "$out/KEY"
for f in "${files[@]}"; do mv -f "$work/$f" "$out/$f"; done
echo "$key" >"$out/KEY"
echo "vm-image: built $out (key $key) in $(($(date +%s) - start)) s: $(cd "$out" && du -ch "${files[@]}" | tail -n1 | cut -f1)"
