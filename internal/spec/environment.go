package spec

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Addresses returns the addresses of every resource the environment declares,
// sorted: keypair.NAME, security_group.NAME, instance.NAME, database.NAME,
// database_db.CLUSTER.NAME and database_user.CLUSTER.NAME.
func (e *Environment) Addresses() []string {
	var out []string
	for _, n := range sortedKeys(e.Keypairs) {
		out = append(out, Address(KindKeypair, n))
	}
	for _, n := range sortedKeys(e.SecurityGroups) {
		out = append(out, Address(KindSecurityGroup, n))
	}
	for _, n := range sortedKeys(e.Instances) {
		out = append(out, Address(KindInstance, n))
	}
	for _, n := range sortedKeys(e.Databases) {
		out = append(out, Address(KindDatabase, n))
		db := e.Databases[n]
		if db == nil {
			continue
		}
		for _, ld := range db.LogicalDatabases {
			out = append(out, Address(KindDatabaseDB, n, ld))
		}
		for _, u := range sortedKeys(db.Users) {
			out = append(out, Address(KindDatabaseUser, n, u))
		}
	}
	slices.Sort(out)
	return out
}

// RuleSources returns the networks a rule admits, with admin_cidrs replaced
// by the top-level list. It expects a validated environment and skips
// sources that do not parse.
func (e *Environment) RuleSources(r Rule) []netip.Prefix {
	var out []netip.Prefix
	for _, src := range r.From {
		list := []string{src}
		if src == SourceAdminCIDRs {
			list = e.AdminCIDRs
		}
		for _, s := range list {
			if p, msg := parseCIDR(s); msg == "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// AllowList splits a database's allow_from into the instances (by name)
// whose public IPv4 address is admitted and the CIDRs admitted as written.
func (db *Database) AllowList() (instances []string, cidrs []netip.Prefix) {
	for _, a := range db.AllowFrom {
		if name, ok := strings.CutPrefix(a, KindInstance+"."); ok {
			instances = append(instances, name)
		} else if p, msg := parseCIDR(a); msg == "" {
			cidrs = append(cidrs, p)
		}
	}
	return instances, cidrs
}

// HostInstance returns the instance the services run on, or nil.
func (e *Environment) HostInstance() *Instance {
	return e.Instances[e.Services.Host]
}

// LocalPath resolves a local file path written in the YAML
// (public_key_file, artifact, tls files): "~/" is the user's home directory,
// and a relative path is relative to the environments directory (Dir).
func (e *Environment) LocalPath(p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "~/"); ok || p == "~" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", p, err)
		}
		return filepath.Join(home, rest), nil
	}
	if filepath.IsAbs(p) {
		return p, nil
	}
	return filepath.Join(e.Dir, p), nil
}

// Position returns where the value at a key path (such as
// databases.main.version) was written, or where the missing key belongs.
// The file is empty when the environment was not loaded from files.
func (e *Environment) Position(path string) (file string, line, column int) {
	p := e.pos.at(path)
	return p.file, p.line, p.column
}
