package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The files scripts/vm-image.sh writes into the image directory.
const (
	KernelFile = "vmlinuz"
	InitrdFile = "initrd.img"
	DiskFile   = "base.qcow2"
)

// ImageDirEnv overrides DefaultImageDir.
const ImageDirEnv = "ACCO_VM_IMAGE"

// BuildHint tells a reader how to get the image (and QEMU) installed.
const BuildHint = "run `make vm-image` (scripts/vm-image.sh) as root to install QEMU and build the guest image"

// DefaultImageDir is $ACCO_VM_IMAGE, or .acco/vm-image in the module root
// (the nearest directory upwards from the working directory that has a go.mod),
// where `make vm-image` builds it.
func DefaultImageDir() string {
	if d := os.Getenv(ImageDirEnv); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join(".acco", "vm-image")
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, ".acco", "vm-image")
		}
		parent := filepath.Dir(d)
		if parent == d {
			return filepath.Join(wd, ".acco", "vm-image")
		}
		d = parent
	}
}

// ImageAvailable reports why a VM cannot be booted from dir: QEMU missing or
// the image not built. The error says to run `make vm-image`, so tests can
// pass it to t.Skip as it is.
func ImageAvailable(dir string) error {
	var problems []string
	for _, bin := range []string{"qemu-system-x86_64", "qemu-img"} {
		if _, err := exec.LookPath(bin); err != nil {
			problems = append(problems, bin+" not found (Debian packages qemu-system-x86, qemu-utils)")
		}
	}
	var missing []string
	for _, f := range []string{KernelFile, InitrdFile, DiskFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("guest image not built in %s (missing %s)", dir, strings.Join(missing, ", ")))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("vm: cannot boot a VM: %s; %s", strings.Join(problems, "; "), BuildHint)
}
