package configure

import (
	"io"
	"io/fs"
	"strings"
	"time"
)

// Desired is what one host should have. Roles (Common, EMQX, ...) add to it.
type Desired struct {
	// Packages from Debian (Repo false) are installed first; packages from
	// a third-party repository (Repo true) after the Commands and the apt
	// source files.
	Packages []Package
	// Commands run once: when the file they create is missing (keyrings).
	Commands []Command
	// Files are written when their content, owner, group or mode differ.
	Files []File
	// Artifacts are uploaded when their hash differs.
	Artifacts []Artifact
	// Units are enabled, kept running and gated by health checks, in order.
	Units []Unit
}

// Package is a Debian package.
type Package struct {
	Name string
	// Version is an apt version pattern ("5.10.4", "24.*"); empty means any.
	Version string
	// Repo marks a package from a repository acco adds (its source file and
	// key must be in place first).
	Repo bool
	// Restart is the unit restarted when the package is installed or changes
	// version.
	Restart string
}

// Command is a one-off step, run when Creates does not exist.
type Command struct {
	Name    string
	Creates string
	Script  string
}

// File is a file to put on the host.
type File struct {
	Path         string
	Owner, Group string
	Mode         fs.FileMode
	Content      []byte
	// Restart is the unit restarted when the file changes.
	Restart string
	// Sensitive hides the content from diffs entirely.
	Sensitive bool
	// Early files (apt sources) are written before repository packages are
	// installed.
	Early bool
	// Validate is a shell command run on the staged file before it is
	// renamed into place; {} stands for the staged path. A non-zero exit
	// fails it (and with StrictStderr, any output on stderr). Empty means no
	// validation.
	Validate     string
	StrictStderr bool
	// ValidateInPlace runs Validate with the new file at its final path
	// (EMQX's check_config reads a fixed path) and puts the old file back if
	// it fails.
	ValidateInPlace bool
	// Post runs after the file changed (systemd-sysusers after its
	// configuration).
	Post string
}

// Artifact is an application archive unpacked into a directory.
type Artifact struct {
	// Name names the change: host.NAME:artifact:Name.
	Name string
	// Dir is where it is unpacked (replaced atomically).
	Dir string
	// SHA256 is the archive's hash, recorded on the host in Dir+".sha256".
	SHA256 string
	// LockSHA256 is the hash of package-lock.json in the archive, or ""
	// when it has none; `npm ci --omit=dev` runs only when it changed.
	LockSHA256 string
	// InstallScripts lets npm ci run the dependencies' install scripts, as
	// User in a staging directory User owns, given back to root before it
	// goes live. Without it npm ci runs as root with --ignore-scripts.
	InstallScripts bool
	// User is the service user npm ci runs as with InstallScripts.
	User string
	// Strip is tar's --strip-components (1 for an npm pack archive, whose
	// files are under package/).
	Strip int
	// Open returns the .tar.gz archive.
	Open func() (io.ReadCloser, error)
	// Restart is the unit restarted when the artifact changes.
	Restart string
}

func (a Artifact) marker() string     { return strings.TrimRight(a.Dir, "/") + ".sha256" }
func (a Artifact) lockMarker() string { return strings.TrimRight(a.Dir, "/") + ".lock.sha256" }

// scripts tells whether npm ci runs and runs install scripts.
func (a Artifact) scripts() bool { return a.InstallScripts && a.LockSHA256 != "" }

// markerValue is what the host's marker holds once the artifact is in
// place: the archive's hash, and whether npm ci ran install scripts, so
// that turning them on or off installs the dependencies again.
func (a Artifact) markerValue() string {
	if a.scripts() {
		return a.SHA256 + " install-scripts"
	}
	return a.SHA256
}

// lockValue is what the lock marker holds: node_modules is kept from the
// previous upload only when it was installed from the same lock file the
// same way.
func (a Artifact) lockValue() string {
	if a.scripts() {
		return a.LockSHA256 + " install-scripts"
	}
	return a.LockSHA256
}

// Unit is a systemd unit acco keeps enabled and running.
type Unit struct {
	Name string
	// Enable runs systemctl enable when the unit is not enabled (static
	// units such as systemd-journald are not enabled).
	Enable bool
	// Health is checked after each start or restart.
	Health Health
}

// Health is what makes a unit healthy: active, plus optionally a listening
// TCP port and an HTTP URL answering 2xx (probed from the host with curl).
type Health struct {
	Port int
	HTTP string
	// Insecure skips the certificate check of an https HTTP probe (a
	// probe on loopback of a certificate made for the public name).
	Insecure bool
	Timeout  time.Duration
}
