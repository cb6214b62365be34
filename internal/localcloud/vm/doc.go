// Package vm boots throw-away Debian 12 virtual machines under QEMU that stand
// in for an OVHcloud instance in end-to-end tests: a real sshd, a real systemd,
// real reboots.
//
// The guest image (kernel, initrd and a qcow2 root disk) is built by
// scripts/vm-image.sh (`make vm-image`) into .acco/vm-image. Each VM boots that
// kernel directly, with a copy-on-write overlay on the shared disk, user-mode
// networking with a loopback port forwarded to the guest's port 22, and its
// serial console appended to a log file.
//
// Options.HostIP and Options.FixedPorts put the host side of the forwards
// elsewhere: with FixedPorts each guest port P listens on HostIP:P, so a VM
// given its own loopback address (127.0.0.N) answers SSH there on port 22.
//
// Host keys are verified the way acco verifies a new instance: the guest's
// first-boot unit prints them on the console, framed like cloud-init
// ("-----BEGIN SSH HOST KEY KEYS-----"), before sshd starts; Boot reads them
// from the console log and every SSH connection pins them.
//
// The accelerator is KVM when /dev/kvm is usable and the host's KVM is not
// kvm_pvm (a nested paravirtual KVM that cannot boot a stock Debian kernel);
// otherwise, or when a KVM boot fails, TCG with -cpu qemu64. Under TCG a boot
// to SSH takes about 20 s and a reboot about 25-30 s.
package vm
