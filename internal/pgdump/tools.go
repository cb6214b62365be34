package pgdump

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

// Tools are the PostgreSQL client programs Dump, List and Restore run.
type Tools struct {
	// PgDump and PgRestore are the paths of pg_dump and pg_restore.
	PgDump, PgRestore string
	// Version is pg_dump's version, such as "17.12".
	Version string
}

// Major returns the major version of Version (17 for "17.12"), or 0 when
// Version is not a PostgreSQL version.
func (t Tools) Major() int {
	m, _ := majorOf(t.Version)
	return m
}

// String describes the tools as pg_dump --version does, for instance
// "pg_dump (PostgreSQL) 17.12".
func (t Tools) String() string { return "pg_dump (PostgreSQL) " + t.Version }

// The directories scripts/ensure-pgclient.sh installs into (keep in step
// with that script).
const (
	// SystemInstallDir is where ensure-pgclient.sh installs as root.
	SystemInstallDir = "/usr/local/lib/acco/pgclient-17"
	// cacheInstallDir is where it installs otherwise, under the user's
	// cache directory.
	cacheInstallDir = "acco/pgclient-17"
	// debianBinGlob is where Debian installs each PostgreSQL version's
	// programs.
	debianBinGlob = "/usr/lib/postgresql/*/bin"
)

// InstallHint says how to get client tools recent enough.
const InstallHint = "install PostgreSQL 17 client tools with make deps (scripts/ensure-pgclient.sh, no root needed) " +
	"or apt-get install postgresql-client-17 (PostgreSQL's apt repository or Debian 13), " +
	"or set ACCO_PG_BIN to a directory holding pg_dump and pg_restore of the server's major version or later"

// DefaultDirs returns the bin directories scripts/ensure-pgclient.sh
// installs the tools into: the system one, then the one under the user's
// cache directory userCache (as $XDG_CACHE_HOME or ~/.cache; "" leaves it
// out). Pass them, after any directory the user names, to FindTools.
func DefaultDirs(userCache string) []string {
	dirs := []string{filepath.Join(SystemInstallDir, "bin")}
	if filepath.IsAbs(userCache) {
		dirs = append(dirs, filepath.Join(userCache, cacheInstallDir, "bin"))
	}
	return dirs
}

// versionPattern finds the version in pg_dump --version's output, such as
// "pg_dump (PostgreSQL) 17.12 (Debian 17.12-0+deb13u1)".
var versionPattern = regexp.MustCompile(`\(PostgreSQL\) ([0-9]+(?:\.[0-9]+)?)`)

// parseVersion returns the version pg_dump or pg_restore --version prints.
func parseVersion(out string) (string, error) {
	m := versionPattern.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("not a PostgreSQL version: %q", strings.TrimSpace(out))
	}
	return m[1], nil
}

// majorOf returns the major version of a PostgreSQL 10+ version ("17.12",
// "17").
func majorOf(version string) (int, error) {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a PostgreSQL version: %q", version)
	}
	return n, nil
}

// programVersion runs path --version and returns the version it prints.
func programVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = toolEnv(os.Environ())
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", path, err)
	}
	return parseVersion(string(out))
}

// candidateDirs lists the directories to try, in order: dirs, then the one
// of the pg_dump in PATH (inPath, "" if none), then Debian's per-version
// directories, newest first; each once.
func candidateDirs(dirs []string, inPath string, debian []string) []string {
	var all []string
	all = append(all, dirs...)
	if inPath != "" {
		all = append(all, filepath.Dir(inPath))
	}
	slices.SortFunc(debian, func(a, b string) int {
		ma, _ := majorOf(filepath.Base(filepath.Dir(a)))
		mb, _ := majorOf(filepath.Base(filepath.Dir(b)))
		return mb - ma
	})
	all = append(all, debian...)
	var out []string
	seen := map[string]bool{}
	for _, d := range all {
		if d == "" || !filepath.IsAbs(d) {
			continue // a relative directory would depend on the working directory
		}
		d = filepath.Clean(d)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// FindTools returns the first pg_dump and pg_restore, of the same major
// version, at least minMajor (the server's major version), found in dirs (in
// order), then in PATH, then in /usr/lib/postgresql/*/bin (newest first).
// Its error names what was found, the version needed and how to install it.
func FindTools(ctx context.Context, dirs []string, minMajor int) (Tools, error) {
	debian, _ := filepath.Glob(debianBinGlob)
	inPath, err := exec.LookPath("pg_dump")
	if err != nil {
		inPath = ""
	}
	searched := strings.Join(append(slices.Clone(dirs), "PATH", debianBinGlob), ", ")
	return findIn(ctx, candidateDirs(dirs, inPath, debian), minMajor, searched)
}

// findIn is FindTools over the directories dirs; searched names them in
// its error.
func findIn(ctx context.Context, dirs []string, minMajor int, searched string) (Tools, error) {
	var found []string
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return Tools{}, err
		}
		dump, restore := filepath.Join(d, "pg_dump"), filepath.Join(d, "pg_restore")
		if !isExecutable(dump) {
			continue
		}
		v, err := programVersion(ctx, dump)
		if err != nil {
			found = append(found, err.Error())
			continue
		}
		major, _ := majorOf(v)
		if major < minMajor {
			found = append(found, fmt.Sprintf("%s is %s", dump, v))
			continue
		}
		if !isExecutable(restore) {
			found = append(found, fmt.Sprintf("%s is %s but there is no %s", dump, v, restore))
			continue
		}
		rv, err := programVersion(ctx, restore)
		if err != nil {
			found = append(found, err.Error())
			continue
		}
		if rm, _ := majorOf(rv); rm != major {
			found = append(found, fmt.Sprintf("%s is %s but %s is %s", dump, v, restore, rv))
			continue
		}
		return Tools{PgDump: dump, PgRestore: restore, Version: v}, nil
	}
	what := "no pg_dump was found"
	if len(found) > 0 {
		what = "found only: " + strings.Join(found, "; ")
	}
	return Tools{}, fmt.Errorf("pgdump: the server runs PostgreSQL %d, which needs pg_dump and pg_restore %d or later; %s (searched %s); %s",
		minMajor, minMajor, what, searched, InstallHint)
}

// isExecutable reports whether path is a regular file someone may execute.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// toolEnv is the environment of the client programs: this process's without
// the PG* variables, which would otherwise change how they connect (a
// PGSERVICE, PGSSLMODE, PGHOSTADDR...) behind the connection string's back.
func toolEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// errNoTools is returned by Dump, List and Restore given no tools.
var errNoTools = errors.New("pgdump: no pg_dump/pg_restore (use FindTools)")
