package pgserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DebianBinGlob is where Debian installs the PostgreSQL binaries.
const DebianBinGlob = "/usr/lib/postgresql/*/bin"

// ErrNoBinaries is returned when no PostgreSQL installation is found.
var ErrNoBinaries = errors.New("pgserver: no PostgreSQL binaries (initdb, pg_ctl, postgres) under " + DebianBinGlob +
	"; install them, e.g. apt-get install postgresql")

// requiredBinaries must all be in a bin directory.
var requiredBinaries = []string{"initdb", "pg_ctl", "postgres"}

// FindBinDir returns the bin directory of the newest PostgreSQL installed
// in Debian's layout, or ErrNoBinaries.
func FindBinDir() (string, error) {
	return findBinDir(DebianBinGlob)
}

// findBinDir returns the directory matching glob, with every required
// binary, whose version (the path element above bin) is the highest.
func findBinDir(glob string) (string, error) {
	dirs, err := filepath.Glob(glob)
	if err != nil {
		return "", fmt.Errorf("pgserver: %w", err)
	}
	var usable []string
	for _, d := range dirs {
		if hasBinaries(d) {
			usable = append(usable, d)
		}
	}
	if len(usable) == 0 {
		return "", ErrNoBinaries
	}
	slices.SortFunc(usable, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	return usable[len(usable)-1], nil
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
