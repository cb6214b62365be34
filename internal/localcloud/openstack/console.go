package openstack

import (
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// hostnameOf turns a server name into the hostname cloud-init gives the
// instance: lower case letters, digits and dashes, at most 63 characters.
func hostnameOf(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-")
	}
	if h == "" {
		h = "server"
	}
	return h
}

// consoleLog is the serial console of a server at now, shaped like what an
// OVH Debian or Ubuntu image prints: kernel lines, cloud-init stages, and,
// once cloud-init's final stage ran (when the address shows), the SSH host
// key fingerprints and keys blocks. Each boot appends to the log; the host
// key blocks print on the first boot only, as cloud-init prints them once
// per instance.
func (c *Cloud) consoleLog(s *server, now time.Time) string {
	img, _ := findImage(s.Region, s.ImageID)
	kernel, banner, ciVersion := "6.1.0-31-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.128-1 (2025-02-07)",
		"Debian GNU/Linux 12", "22.4.2"
	if img.Distro == "ubuntu" {
		kernel, banner, ciVersion = "6.8.0-60-generic (buildd@lcy02-amd64-054) (x86_64-linux-gnu-gcc-13 (Ubuntu 13.3.0-6ubuntu2~24.04) 13.3.0, GNU ld (GNU Binutils for Ubuntu) 2.42) #63-Ubuntu SMP PREEMPT_DYNAMIC Tue Apr 15 19:04:15 UTC 2025",
			"Ubuntu 24.04.2 LTS", "25.1.2-0ubuntu0~24.04.1"
	}
	host := hostnameOf(s.Name)
	user := img.User
	if user == "" {
		user = "debian"
	}
	var ip, mac string
	if ports := c.serverPorts(s); len(ports) > 0 {
		ip, mac = ports[0].IP, ports[0].MAC
	}

	var b strings.Builder
	kline := func(up float64, format string, args ...any) {
		fmt.Fprintf(&b, "[%12.6f] %s\n", up, fmt.Sprintf(format, args...))
	}
	ciline := func(up float64, pid int, format string, args ...any) {
		kline(up, "cloud-init[%d]: %s", pid, fmt.Sprintf(format, args...))
	}
	wall := func(start time.Time, up float64) string {
		return start.Add(time.Duration(up * float64(time.Second))).Format("Mon, 02 Jan 2006 15:04:05 -0700")
	}
	syslog := func(start time.Time, up float64, line string) {
		fmt.Fprintf(&b, "<14>%s cloud-init: %s\n", start.Add(time.Duration(up*float64(time.Second))).Format(time.Stamp), line)
	}

	for boot := 1; boot <= s.Boots; boot++ {
		// Uptime 12 s is about when the first boot turns ACTIVE; later
		// boots are all dated from the last one (the only one kept).
		start := s.ActiveAt.Add(-12 * time.Second)
		if boot > 1 {
			start = s.BootedAt
		}
		kline(0, "Linux version %s", kernel)
		kline(0, "Command line: BOOT_IMAGE=/boot/vmlinuz root=LABEL=cloudimg-rootfs ro console=tty0 console=ttyS0,115200 earlyprintk=ttyS0,115200 consoleblank=0")
		kline(0.000000, "BIOS-provided physical RAM map:")
		kline(0.012418, "DMI: OpenStack Foundation OpenStack Nova, BIOS 1.16.3-debian-1.16.3-2 04/01/2014")
		kline(0.412055, "Hypervisor detected: KVM")
		kline(1.201877, "virtio_blk virtio2: [vda] 104857600 512-byte logical blocks (53.7 GB/50.0 GiB)")
		kline(2.803114, "EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.")
		kline(3.512006, "systemd[1]: Hostname set to <%s>.", host)
		ciline(5.124871, 421, "Cloud-init v. %s running 'init-local' at %s. Up 5.12 seconds.", ciVersion, wall(start, 5.12))
		ciline(7.301556, 480, "Cloud-init v. %s running 'init' at %s. Up 7.30 seconds.", ciVersion, wall(start, 7.30))
		ciline(7.402113, 480, "ci-info: ++++++++++++++++++++++++++++++++++++++Net device info++++++++++++++++++++++++++++++++++++++")
		ciline(7.402113, 480, "ci-info: +--------+------+-----------------+-----------------+--------+-------------------+")
		ciline(7.402113, 480, "ci-info: | Device |  Up  |     Address     |       Mask      | Scope  |     Hw-Address    |")
		ciline(7.402113, 480, "ci-info: +--------+------+-----------------+-----------------+--------+-------------------+")
		if ip != "" {
			ciline(7.402113, 480, "ci-info: |  ens3  | True | %-15s | 255.255.255.255 | global | %s |", ip, mac)
		}
		ciline(7.402113, 480, "ci-info: |   lo   | True |    127.0.0.1    |    255.0.0.0    |  host  |         .         |")
		ciline(7.402113, 480, "ci-info: +--------+------+-----------------+-----------------+--------+-------------------+")
		signer, err := ssh.ParsePrivateKey([]byte(s.HostKey))
		if boot == 1 && err == nil {
			fp := ssh.FingerprintSHA256(signer.PublicKey())
			ciline(8.114020, 480, "Generating public/private ed25519 key pair.")
			ciline(8.114020, 480, "Your identification has been saved in /etc/ssh/ssh_host_ed25519_key")
			ciline(8.114020, 480, "Your public key has been saved in /etc/ssh/ssh_host_ed25519_key.pub")
			ciline(8.114020, 480, "The key fingerprint is:")
			ciline(8.114020, 480, "%s root@%s", fp, host)
		}
		if boot == 1 && s.AuthorizedKey != "" {
			if pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(s.AuthorizedKey)); err == nil {
				ciline(9.020331, 480, "ci-info: +++++++++++++++++++++++++++++++++++++Authorized keys from /home/%s/.ssh/authorized_keys for user %s++++++++++++++++++++++++++++++++++++++", user, user)
				ciline(9.020331, 480, "ci-info: +---------+-------------------------------------------------+---------+---------+")
				ciline(9.020331, 480, "ci-info: | Keytype |                Fingerprint (sha256)             | Options | Comment |")
				ciline(9.020331, 480, "ci-info: +---------+-------------------------------------------------+---------+---------+")
				ciline(9.020331, 480, "ci-info: | %s | %s |    -    | %s |", pub.Type(), strings.TrimPrefix(ssh.FingerprintSHA256(pub), "SHA256:"), comment)
				ciline(9.020331, 480, "ci-info: +---------+-------------------------------------------------+---------+---------+")
			}
		}
		if now.Before(s.AddressAt) {
			// cloud-init's final stage has not run yet.
			return b.String()
		}
		ciline(11.962407, 598, "Cloud-init v. %s running 'modules:config' at %s. Up 11.96 seconds.", ciVersion, wall(start, 11.96))
		ciline(12.953094, 612, "Cloud-init v. %s running 'modules:final' at %s. Up 12.95 seconds.", ciVersion, wall(start, 12.95))
		if boot == 1 && err == nil {
			pub := signer.PublicKey()
			syslog(start, 13.02, "#############################################################")
			syslog(start, 13.02, "-----BEGIN SSH HOST KEY FINGERPRINTS-----")
			syslog(start, 13.02, fmt.Sprintf("256 %s root@%s (ED25519)", ssh.FingerprintSHA256(pub), host))
			syslog(start, 13.02, "-----END SSH HOST KEY FINGERPRINTS-----")
			syslog(start, 13.02, "#############################################################")
			b.WriteString("-----BEGIN SSH HOST KEY KEYS-----\n")
			fmt.Fprintf(&b, "%s root@%s\n", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), host)
			b.WriteString("-----END SSH HOST KEY KEYS-----\n")
		}
		ciline(13.104551, 612, "Cloud-init v. %s finished at %s. Datasource DataSourceOpenStackLocal [net,ver=2].  Up 13.10 seconds", ciVersion, wall(start, 13.10))
		fmt.Fprintf(&b, "\n%s %s ttyS0\n\n%s login: \n", banner, host, host)
	}
	return b.String()
}
