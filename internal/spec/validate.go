package spec

import (
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/accoreboot/acco/state"
)

// Validate checks the environment against acco's rules: names, formats and
// ranges of every value, every cross reference (instance to keypair and
// security groups, database allow-list to instances, services to host,
// clusters, logical databases and users), and the rules of the platform and
// the services (PostgreSQL at most 17 with TimescaleDB, EMQX at least 5.9,
// PowerSync's replication role and publication, prod protecting its
// databases). It returns an ErrorList, sorted by position, or nil.
//
// Environments from Load carry the positions of their keys; an Environment
// built in code gets problems with a key path but no position.
func (e *Environment) Validate() error {
	v := &validator{e: e, pos: e.pos, refused: map[string]bool{}}
	v.checkText()
	v.top()
	v.state()
	v.keypairs()
	v.securityGroups()
	v.instances()
	v.databases()
	v.services()
	v.errs.sortByPosition(e.Files)
	return v.errs.err()
}

type validator struct {
	e    *Environment
	pos  *positions
	errs ErrorList
	// refused are the paths whose value is not text (see checkText):
	// reported once, not again by the field's own rules.
	refused map[string]bool
}

// add reports a problem with the value at path.
func (v *validator) add(path, format string, args ...any) {
	if v.refused[path] {
		return
	}
	v.errs = append(v.errs, newError(v.pos.at(path), path, format, args...))
}

// addKey reports a problem with the key at path (a name).
func (v *validator) addKey(path, format string, args ...any) {
	if v.refused[path] {
		return
	}
	v.errs = append(v.errs, newError(v.pos.keyAt(path), path, format, args...))
}

// required reports a missing value and returns false when s is empty.
func (v *validator) required(path, s, what string) bool {
	if s == "" {
		v.add(path, "missing: %s", what)
		return false
	}
	return true
}

func (v *validator) name(path, name string) {
	if !validResourceName(name) {
		v.addKey(path, "invalid name %q: %s", name, resourceNameRule)
	}
}

func (v *validator) port(path string, p int) {
	if p < 1 || p > 65535 {
		v.add(path, "port %d is out of range: ports are 1 to 65535", p)
	}
}

func (v *validator) cidr(path, s string) {
	if _, msg := parseCIDR(s); msg != "" {
		v.add(path, "%s", msg)
	}
}

func (v *validator) bindAddr(path, s string) {
	if v.required(path, s, "the address to listen on, e.g. 0.0.0.0 or 127.0.0.1") {
		if a, err := netip.ParseAddr(s); err != nil {
			v.add(path, "%q is not an IP address such as 0.0.0.0 or 127.0.0.1", s)
		} else if a.Zone() != "" {
			v.add(path, "%q has an IPv6 zone (%%%s): write the address alone", s, a.Zone())
		}
	}
}

func (v *validator) oneOf(path, s string, allowed ...string) bool {
	if s == "" {
		v.add(path, "missing: one of %s", strings.Join(allowed, ", "))
		return false
	}
	if !slices.Contains(allowed, s) {
		v.add(path, "unknown value %q: use one of %s", s, strings.Join(allowed, ", "))
		return false
	}
	return true
}

func (v *validator) positive(path string, d time.Duration) {
	if d <= 0 {
		v.add(path, "must be a positive duration, such as 90s or 40m")
	}
}

func (v *validator) noDuplicates(path string, items []string) {
	seen := map[string]bool{}
	for i, s := range items {
		if seen[s] {
			v.add(indexPath(path, i), "%q is listed twice", s)
		}
		seen[s] = true
	}
}

func (v *validator) top() {
	e := v.e
	if v.required("name", e.Name, "the environment's name (the name of its file)") && !validEnvName(e.Name) {
		v.add("name", "invalid environment name %q: %s", e.Name, envNameRule)
	}
	if v.required("project", e.Project, "the OVH Public Cloud project ID (32 hexadecimal digits)") && !isProjectID(e.Project) {
		v.add("project", "%q is not an OVH project ID: expected 32 lowercase hexadecimal digits (the serviceName of the OVH API, which is also the OpenStack project ID)", e.Project)
	}
	if v.required("cloud", e.Cloud, "the clouds.yaml entry with this environment's OpenStack credentials, e.g. acco-"+e.Name) &&
		strings.ContainsAny(e.Cloud, " \t\n/") {
		v.add("cloud", "%q is not a clouds.yaml entry name (no spaces or slashes)", e.Cloud)
	}
	if v.required("region", e.Region, "the OpenStack region, e.g. GRA11") && !isUpperName(e.Region, true) {
		v.add("region", "%q is not an OpenStack region name: OVH's are upper case, such as GRA11 or EU-WEST-PAR", e.Region)
	}
	for i, c := range e.AdminCIDRs {
		v.cidr(indexPath("admin_cidrs", i), c)
	}
}

func (v *validator) state() {
	s := v.e.State
	if v.required("state.bucket", s.Bucket, "the S3 bucket holding state and locks, e.g. accoreboot-acco-state") {
		if msg := bucketProblem(s.Bucket); msg != "" {
			v.add("state.bucket", "invalid bucket name %q: %s", s.Bucket, msg)
		} else if strings.Contains(s.Bucket, ".") && !s.PathStyle {
			v.add("state.bucket", "bucket name %q has dots, which break TLS with virtual-hosted addressing; set path_style: true or drop the dots", s.Bucket)
		}
	}
	if v.required("state.region", s.Region, "the Object Storage region in lower case, e.g. gra") && !isLowerName(s.Region) {
		v.add("state.region", "%q is not an Object Storage region: they are lower case, such as gra or eu-west-par", s.Region)
	}
	if v.required("state.endpoint", s.Endpoint, "the S3 endpoint, e.g. https://s3.gra.io.cloud.ovh.net") {
		if msg := endpointProblem(s.Endpoint, s.Region); msg != "" {
			v.add("state.endpoint", "%s", msg)
		}
	}
	if s.Project != "" && !isProjectID(s.Project) {
		v.add("state.project", "%q is not an OVH project ID: expected 32 lowercase hexadecimal digits", s.Project)
	}
}

// bucketProblem applies the S3 bucket naming rules.
func bucketProblem(b string) string {
	switch {
	case len(b) < 3 || len(b) > 63:
		return "a bucket name has 3 to 63 characters"
	case !(isLower(b[0]) || isDigit(b[0])) || !(isLower(b[len(b)-1]) || isDigit(b[len(b)-1])):
		return "a bucket name starts and ends with a lowercase letter or a digit"
	case strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-."):
		return "dots cannot be next to another dot or a dash"
	case strings.HasPrefix(b, "xn--") || strings.HasPrefix(b, "sthree-") ||
		strings.HasSuffix(b, "-s3alias") || strings.HasSuffix(b, "--ol-s3"):
		return "the prefixes xn-- and sthree- and the suffixes -s3alias and --ol-s3 are reserved"
	}
	for i := range len(b) {
		if c := b[i]; !isLower(c) && !isDigit(c) && c != '-' && c != '.' {
			return "use only lowercase letters, digits, dashes and dots"
		}
	}
	if a, err := netip.ParseAddr(b); err == nil && a.Is4() {
		return "a bucket name cannot look like an IP address"
	}
	return ""
}

// endpointProblem checks an S3 endpoint URL, and that an OVH endpoint matches
// the region.
func endpointProblem(endpoint, region string) string {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("%q is not an endpoint URL such as https://s3.gra.io.cloud.ovh.net", endpoint)
	}
	host := u.Hostname()
	if !isURLHost(host) {
		return fmt.Sprintf("%q is not an endpoint URL such as https://s3.gra.io.cloud.ovh.net (its host is not a DNS name or an IP address)", endpoint)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !state.PlainHTTPAllowed(host) {
			return fmt.Sprintf("%s uses http; state travels over https except to a local server (localhost)", endpoint)
		}
	default:
		return fmt.Sprintf("%q is not an endpoint URL such as https://s3.gra.io.cloud.ovh.net", endpoint)
	}
	// OVH endpoints are s3.<region>.io.cloud.ovh.net (and the legacy .perf.).
	if rest, ok := strings.CutPrefix(host, "s3."); ok && strings.Contains(rest, ".cloud.ovh.") {
		r, _, _ := strings.Cut(rest, ".")
		if region != "" && r != region {
			return fmt.Sprintf("%s is the endpoint of region %s, not %s; write https://s3.%s.io.cloud.ovh.net", endpoint, r, region, region)
		}
	}
	return ""
}

func (v *validator) keypairs() {
	for _, name := range sortedKeys(v.e.Keypairs) {
		p := joinPath("keypairs", name)
		v.name(p, name)
		kp := v.e.Keypairs[name]
		if kp == nil {
			kp = &Keypair{}
		}
		switch {
		case kp.PublicKey != "" && kp.PublicKeyFile != "":
			v.add(p+".public_key", "set public_key or public_key_file, not both")
		case kp.PublicKey != "":
			if msg := publicKeyProblem(kp.PublicKey); msg != "" {
				v.add(p+".public_key", "%s", msg)
			}
		case kp.PublicKeyFile != "":
			f := kp.PublicKeyFile
			if strings.ContainsAny(f, "\x00\n") {
				v.add(p+".public_key_file", "%q is not a file path", f)
			} else if !strings.HasSuffix(f, ".pub") {
				v.add(p+".public_key_file", "%q does not end in .pub: point at the public half of the key pair (the private key stays on your machine)", f)
			}
		default:
			v.add(p, "missing: set public_key_file (a local .pub file, read when planning) or public_key")
		}
	}
}

// publicKeyProblem checks a key in authorized_keys format: type, base64 blob
// whose first field repeats the type, optional comment.
func publicKeyProblem(k string) string {
	if strings.Contains(k, "PRIVATE KEY") {
		return "this is a private key; give the public key (the .pub file) and keep the private key secret"
	}
	fields := strings.Fields(k)
	if len(fields) < 2 {
		return "not a public key: expected \"ssh-ed25519 AAAA... comment\""
	}
	typ := fields[0]
	switch typ {
	case "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
	default:
		return fmt.Sprintf("unsupported key type %q: use ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp256/384/521", typ)
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil || len(blob) < 4 {
		return "not a public key: the key data is not valid base64"
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(n) > uint64(len(blob)-4) || string(blob[4:4+n]) != typ {
		return fmt.Sprintf("not a public key: the key data is not a %s key", typ)
	}
	return ""
}

func (v *validator) securityGroups() {
	for _, name := range sortedKeys(v.e.SecurityGroups) {
		p := joinPath("security_groups", name)
		v.name(p, name)
		if name == "default" {
			v.addKey(p, "the default group is OVH's: it allows everything and OVH's automation resets it; pick another name")
		}
		sg := v.e.SecurityGroups[name]
		if sg == nil {
			continue
		}
		if len(sg.Description) > 255 {
			v.add(p+".description", "too long: at most 255 characters")
		}
		for i, r := range sg.Rules {
			v.rule(indexPath(p+".rules", i), r)
		}
	}
}

func (v *validator) rule(p string, r Rule) {
	if len(r.Description) > 255 {
		v.add(p+".description", "too long: at most 255 characters")
	}
	switch r.Protocol {
	case "tcp", "udp":
		if len(r.Ports) == 0 {
			v.add(p+".ports", "missing: the ports to open, e.g. [22] or [\"8000-8100\"]")
		}
	case "icmp":
		if len(r.Ports) > 0 {
			v.add(p+".ports", "icmp has no ports; remove ports")
		}
	case "":
		v.add(p+".protocol", "missing: tcp, udp or icmp")
	default:
		hint := ""
		if l := strings.ToLower(r.Protocol); l != r.Protocol && slices.Contains([]string{"tcp", "udp", "icmp"}, l) {
			hint = fmt.Sprintf(" (write %s in lower case)", l)
		}
		v.add(p+".protocol", "unknown protocol %q: use tcp, udp or icmp%s", r.Protocol, hint)
	}
	for i, pr := range r.Ports {
		pp := indexPath(p+".ports", i)
		switch {
		case pr.Min < 1 || pr.Min > 65535:
			v.port(pp, pr.Min)
		case pr.Max < 1 || pr.Max > 65535:
			v.port(pp, pr.Max)
		case pr.Min > pr.Max:
			v.add(pp, "range %d-%d is reversed; write \"%d-%d\"", pr.Min, pr.Max, pr.Max, pr.Min)
		}
	}
	if len(r.From) == 0 {
		v.add(p+".from", "missing: the sources to admit, e.g. [admin_cidrs] or [0.0.0.0/0, \"::/0\"]")
	}
	for i, src := range r.From {
		sp := indexPath(p+".from", i)
		if src == SourceAdminCIDRs {
			if len(v.e.AdminCIDRs) == 0 {
				v.add(sp, "admin_cidrs is empty: list the operators' networks at the top level")
			}
			continue
		}
		if _, msg := parseCIDR(src); msg != "" {
			v.add(sp, "%s (or admin_cidrs)", msg)
		}
	}
	v.noDuplicates(p+".from", r.From)
}

func (v *validator) instances() {
	e := v.e
	for _, name := range sortedKeys(e.Instances) {
		p := joinPath("instances", name)
		v.name(p, name)
		in := e.Instances[name]
		if in == nil {
			in = &Instance{}
		}
		v.count(p, name, in)
		if v.required(p+".flavor", in.Flavor, "the OpenStack flavor, e.g. d2-4 or b3-8") && !isFlavor(in.Flavor) {
			v.add(p+".flavor", "%q is not a flavor name such as d2-4 or b3-8", in.Flavor)
		}
		v.required(p+".image", in.Image, "the image name, e.g. Debian 12")
		v.required(p+".network", in.Network, "the network of the public port, "+DefaultNetwork)
		if v.required(p+".keypair", in.Keypair, "the keypair to install, e.g. deploy") {
			v.ref(p+".keypair", "keypair", in.Keypair, sortedKeys(e.Keypairs))
		}
		if len(in.SecurityGroups) == 0 {
			v.add(p+".security_groups", "missing: at least one security group (they replace OVH's allow-all default group)")
		}
		for i, sg := range in.SecurityGroups {
			v.ref(indexPath(p+".security_groups", i), "security group", sg, sortedKeys(e.SecurityGroups))
		}
		v.noDuplicates(p+".security_groups", in.SecurityGroups)
		if v.required(p+".ssh_user", in.SSHUser, "the image's login user, e.g. debian") && !isUnixUser(in.SSHUser) {
			v.add(p+".ssh_user", "%q is not a user name", in.SSHUser)
		}
	}
}

// ref reports a name that does not resolve among known.
func (v *validator) ref(path, kind, name string, known []string) bool {
	if slices.Contains(known, name) {
		return true
	}
	hint := ""
	if s := suggest(name, known); s != "" {
		hint = fmt.Sprintf("; did you mean %s?", s)
	} else {
		hint = fmt.Sprintf(" (%ss: %s)", kind, listOrNone(known))
	}
	v.add(path, "no %s %q%s", kind, name, hint)
	return false
}

func isFlavor(s string) bool {
	// Lowercase words of letters and digits joined by dashes, ending in a
	// number: d2-4, b3-8, db1-15, win-b2-7.
	if !isDashName(s, 64) {
		return false
	}
	i := strings.LastIndexByte(s, '-')
	_, err := strconv.Atoi(s[i+1:])
	return i > 0 && err == nil
}

func isUnixUser(s string) bool {
	if s == "" || len(s) > 32 || !(isLower(s[0]) || s[0] == '_') {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Database plans of OVH and their generation.
var planGeneration = map[string]int{
	"essential": 2, "business": 2, "enterprise": 2,
	"production": 3, "advanced": 3,
}

// nodesOfPlan is the fixed node count of the Gen 2 plans.
var nodesOfPlan = map[string]int{"essential": 1, "business": 2, "enterprise": 3}

func (v *validator) databases() {
	e := v.e
	for _, name := range sortedKeys(e.Databases) {
		p := joinPath("databases", name)
		v.name(p, name)
		db := e.Databases[name]
		if db == nil {
			db = &Database{}
		}
		if v.required(p+".engine", db.Engine, DefaultEngine) && db.Engine != DefaultEngine {
			v.add(p+".engine", "engine %q is not supported: acco manages postgresql", db.Engine)
		}
		v.pgVersion(p, db)
		v.plan(p, db)
		if v.required(p+".region", db.Region, "the database region, e.g. GRA") && !isUpperName(db.Region, false) {
			hint := ""
			if t := strings.TrimRight(db.Region, "0123456789"); t != db.Region && isUpperName(t, false) {
				hint = fmt.Sprintf("; database regions have no number: write %s", t)
			}
			v.add(p+".region", "%q is not a database region such as GRA or EU-WEST-PAR%s", db.Region, hint)
		}
		if db.DiskGB < 0 {
			v.add(p+".disk_gb", "disk size %d is negative; leave disk_gb out to keep the flavor's included storage", db.DiskGB)
		}
		for i, x := range db.Extensions {
			if !isExtension(x) {
				v.add(indexPath(p+".extensions", i), "%q is not an extension name such as timescaledb", x)
			}
		}
		v.noDuplicates(p+".extensions", db.Extensions)
		for i, ld := range db.LogicalDatabases {
			lp := indexPath(p+".logical_databases", i)
			switch {
			case !isIdent(ld):
				v.add(lp, "invalid database name %q: %s", ld, identRule)
			case slices.Contains([]string{"defaultdb", "postgres", "template0", "template1", "_aiven"}, ld):
				v.add(lp, "%s exists in every OVH cluster and is not managed by acco; pick another name", ld)
			}
		}
		v.noDuplicates(p+".logical_databases", db.LogicalDatabases)
		v.users(p, db)
		v.allowFrom(p, db)
		v.protection(p, db)
		v.timeOfDay(p+".backup_time", db.BackupTime)
		v.timeOfDay(p+".maintenance_time", db.MaintenanceTime)
		v.positive(p+".timeouts.create", db.Timeouts.Create)
		v.positive(p+".timeouts.update", db.Timeouts.Update)
		v.positive(p+".timeouts.delete", db.Timeouts.Delete)
	}
}

func (v *validator) pgVersion(p string, db *Database) {
	vp := p + ".version"
	if !v.required(vp, db.Version, `the PostgreSQL major version, e.g. "17"`) {
		return
	}
	major, err := strconv.Atoi(db.Version)
	if err != nil || major < 1 || strconv.Itoa(major) != db.Version {
		v.add(vp, "%q is not a PostgreSQL major version: write the major version only, e.g. \"17\"", db.Version)
		return
	}
	if major < 14 {
		v.add(vp, "PostgreSQL %d is not offered by OVH: use 14 or later", major)
	}
	if major > 17 && slices.Contains(db.Extensions, "timescaledb") {
		v.add(vp, "PostgreSQL %d is not allowed with extension timescaledb: OVH offers TimescaleDB on PostgreSQL up to 17, not yet on %d; set version: \"17\"", major, major)
	}
}

func (v *validator) plan(p string, db *Database) {
	gen, known := planGeneration[db.Plan]
	switch {
	case db.Plan == "":
		v.add(p+".plan", "missing: the OVH plan, e.g. essential, business or production")
	case !known:
		v.add(p+".plan", "unknown plan %q: use essential, business or enterprise (Gen 2, db1-* flavors), or production or advanced (Gen 3, b3-* flavors)", db.Plan)
	}
	if v.required(p+".flavor", db.Flavor, "the node flavor, e.g. db1-4 or b3-8") {
		switch {
		case !isFlavor(db.Flavor):
			v.add(p+".flavor", "%q is not a flavor name such as db1-4 or b3-8", db.Flavor)
		case gen == 2 && !strings.HasPrefix(db.Flavor, "db"):
			v.add(p+".flavor", "plan %s is a Gen 2 plan, which takes db1-* flavors, not %s", db.Plan, db.Flavor)
		case gen == 3 && strings.HasPrefix(db.Flavor, "db"):
			v.add(p+".flavor", "plan %s is a Gen 3 plan, which takes b3-* flavors, not %s", db.Plan, db.Flavor)
		}
	}
	np := p + ".nodes"
	switch want, fixed := nodesOfPlan[db.Plan]; {
	case db.Nodes == 0 && !v.pos.has(np):
		v.add(np, "missing: the number of nodes (essential 1, business 2, enterprise 3, production and advanced at least 2)")
	case db.Nodes < 1:
		v.add(np, "%d nodes: a cluster has at least 1 node", db.Nodes)
	case fixed && db.Nodes != want:
		v.add(np, "plan %s runs %s; set nodes: %d", db.Plan, plural(want, "node"), want)
	case gen == 3 && db.Nodes < 2:
		v.add(np, "plan %s runs at least 2 nodes; set nodes: 2", db.Plan)
	}
}

func isExtension(s string) bool {
	if s == "" || len(s) > 63 || !isLower(s[0]) {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Privileges by grant level.
var privilegesOf = map[string][]string{
	"database": {"connect", "create", "temporary", "all"},
	"schema":   {"usage", "create", "all"},
	"table":    {"select", "insert", "update", "delete", "truncate", "references", "trigger", "all"},
}

func (v *validator) users(p string, db *Database) {
	for _, name := range sortedKeys(db.Users) {
		up := joinPath(p+".users", name)
		switch {
		case !isIdent(name):
			v.addKey(up, "invalid user name %q: %s", name, identRule)
		case name == "avnadmin" || name == "postgres" || strings.HasPrefix(name, "pg_") || strings.HasPrefix(name, "_aiven"):
			v.addKey(up, "user name %q is reserved by PostgreSQL or OVH (avnadmin is the admin acco uses itself)", name)
		}
		u := db.Users[name]
		if u == nil {
			continue
		}
		for i, r := range u.Roles {
			if r != "replication" {
				v.add(indexPath(up+".roles", i), "unknown role %q: OVH offers only the replication role", r)
			}
		}
		v.noDuplicates(up+".roles", u.Roles)
		for i, g := range u.Grants {
			v.grant(indexPath(up+".grants", i), db, g)
		}
	}
}

func (v *validator) grant(p string, db *Database, g Grant) {
	if v.required(p+".database", g.Database, "the logical database the grant is in") {
		v.logicalDB(p+".database", db, g.Database)
	}
	level := "database"
	switch {
	case len(g.Tables) > 0 && g.Schema != "":
		v.add(p+".schema", "set schema (schema privileges) or tables (table privileges), not both; qualify tables as schema.table")
		return
	case len(g.Tables) > 0:
		level = "table"
		for i, t := range g.Tables {
			if _, _, ok := splitTable(t, true); !ok {
				v.add(indexPath(p+".tables", i), "%q is not a table such as positions, public.positions, * or public.*", t)
			}
		}
	case g.Schema != "":
		level = "schema"
		if !isIdent(g.Schema) {
			v.add(p+".schema", "invalid schema name %q: %s", g.Schema, identRule)
		}
	}
	if len(g.Privileges) == 0 {
		v.add(p+".privileges", "missing: the %s privileges to grant (%s)", level, strings.Join(privilegesOf[level], ", "))
	}
	for i, pr := range g.Privileges {
		if slices.Contains(privilegesOf[level], pr) {
			continue
		}
		hint := ""
		switch {
		case level != "table" && slices.Contains(privilegesOf["table"], pr):
			hint = fmt.Sprintf(" (%s is a table privilege: list the tables)", pr)
		case level == "database" && slices.Contains(privilegesOf["schema"], pr):
			hint = fmt.Sprintf(" (%s is a schema privilege: name the schema)", pr)
		}
		v.add(indexPath(p+".privileges", i), "%q is not a %s privilege: use %s%s", pr, level, strings.Join(privilegesOf[level], ", "), hint)
	}
}

// logicalDB reports a logical database missing from the cluster.
func (v *validator) logicalDB(path string, db *Database, name string) bool {
	if slices.Contains(db.LogicalDatabases, name) {
		return true
	}
	v.add(path, "no logical database %q in this cluster's logical_databases (%s)", name, listOrNone(db.LogicalDatabases))
	return false
}

func (v *validator) allowFrom(p string, db *Database) {
	ap := p + ".allow_from"
	if len(db.AllowFrom) == 0 {
		v.add(ap, "missing: the database is unreachable until its allow-list admits something, e.g. [instance.app]")
	}
	for i, a := range db.AllowFrom {
		ip := indexPath(ap, i)
		if name, ok := strings.CutPrefix(a, KindInstance+"."); ok {
			v.ref(ip, "instance", name, v.instanceRefs())
			continue
		}
		if _, err := netip.ParsePrefix(a); err != nil && strings.Contains(a, ".") && !strings.ContainsAny(a, "0123456789:/") {
			v.add(ip, "%q is neither instance.NAME nor a CIDR", a)
			continue
		}
		v.cidr(ip, a)
	}
	v.noDuplicates(ap, db.AllowFrom)
}

func (v *validator) protection(p string, db *Database) {
	if v.e.Name == "prod" && !db.Protect && !v.e.AllowProdDatabaseDestroy {
		v.add(p+".protect", "prod must protect its databases from destroy: set protect: true (or allow_prod_database_destroy: true at the top level, to lift this on purpose)")
	}
	if db.OnDemand && db.Protect {
		v.add(p+".on_demand", "on_demand stops the database by deleting the cluster after a dump (OVH cannot stop one), which protect forbids; set one of them to false")
	}
}

func (v *validator) timeOfDay(path, s string) {
	if s == "" {
		return
	}
	if _, err := time.Parse("15:04:05", s); err == nil && len(s) == 8 {
		return
	}
	if _, err := time.Parse("15:04", s); err == nil && len(s) == 5 {
		return
	}
	v.add(path, "%q is not a time of day: write HH:MM or HH:MM:SS (UTC), e.g. \"02:30\"", s)
}

func (v *validator) services() {
	e := v.e
	s := &e.Services
	var host *Instance
	if v.required("services.host", s.Host, "the instance the services run on, e.g. app") {
		if name, ok := strings.CutPrefix(s.Host, KindInstance+"."); ok {
			v.add("services.host", "write the instance's name (%s), not its address", name)
		} else if v.ref("services.host", "instance", s.Host, v.instanceRefs()) && v.servicesHost(s.Host) {
			host = e.Instances[s.Host]
		}
	}
	if host != nil {
		v.sshReachable("instances."+s.Host+".security_groups", host)
	}
	if s.Broker != "" && !slices.Contains([]string{BrokerEMQX, BrokerMosquitto}, s.Broker) {
		v.add("services.broker", "unknown broker %q: use emqx (production) or mosquitto (offline tests)", s.Broker)
	}
	v.required("services.broker", s.Broker, "emqx or mosquitto")
	if s.Offline && s.Broker == BrokerEMQX {
		v.add("services.offline", "EMQX's packages are only on the internet: set broker: mosquitto, or offline: false")
	}
	v.positive("services.health_timeout", s.HealthTimeout)

	switch {
	case s.Broker == BrokerEMQX && s.EMQX == nil:
		v.add("services.emqx", "missing: broker is emqx")
	case s.Broker == BrokerEMQX:
		v.emqx("services.emqx", s.EMQX)
	case s.Broker == BrokerMosquitto && s.Mosquitto == nil:
		v.add("services.mosquitto", "missing: broker is mosquitto")
	case s.Broker == BrokerMosquitto:
		v.mosquitto("services.mosquitto", s.Mosquitto)
	}
	if s.PowerSync == nil {
		v.add("services.powersync", "missing: the PowerSync service settings")
	} else {
		v.powersync("services.powersync", s.PowerSync)
	}
	if s.Backend == nil {
		v.add("services.backend", "missing: the Node.js backend settings")
	} else {
		v.backend("services.backend", s.Backend)
	}
	v.ports(s)
	if host != nil {
		v.hostAllowed(s)
		v.exposure(s, host)
	}
}

// sshReachable checks that some security group of the host admits tcp/22.
func (v *validator) sshReachable(path string, in *Instance) {
	for _, name := range in.SecurityGroups {
		sg := v.e.SecurityGroups[name]
		if sg == nil {
			continue
		}
		for _, r := range sg.Rules {
			if r.Protocol != "tcp" {
				continue
			}
			for _, pr := range r.Ports {
				if pr.Min <= 22 && 22 <= pr.Max {
					return
				}
			}
		}
	}
	if len(in.SecurityGroups) > 0 {
		v.add(path, "no security group of the services host admits SSH (tcp/22), and acco configures the host over SSH; add a rule such as {protocol: tcp, ports: [22], from: [admin_cidrs]}")
	}
}

// hostAllowed checks that every cluster the services use admits the host.
func (v *validator) hostAllowed(s *Services) {
	var clusters []string
	add := func(r PostgresRef) {
		if r.Cluster != "" && !slices.Contains(clusters, r.Cluster) {
			clusters = append(clusters, r.Cluster)
		}
	}
	if s.Broker == BrokerEMQX && s.EMQX != nil {
		if s.EMQX.Positions != nil {
			add(s.EMQX.Positions.Postgres)
		}
		if s.EMQX.DeviceAuth.Postgres != nil {
			add(*s.EMQX.DeviceAuth.Postgres)
		}
	}
	if s.PowerSync != nil {
		add(s.PowerSync.Source)
		add(s.PowerSync.Storage)
	}
	if s.Backend != nil {
		add(s.Backend.Postgres)
	}
	slices.Sort(clusters)
	addr := Address(KindInstance, s.Host)
	for _, c := range clusters {
		db := v.e.Databases[c]
		if db == nil || slices.Contains(db.AllowFrom, addr) {
			continue
		}
		v.add(joinPath("databases", c)+".allow_from", "the services run on %s, which this allow-list does not admit; add %s", addr, addr)
	}
}

// postgres resolves a reference to a cluster, logical database and user.
func (v *validator) postgres(p string, r PostgresRef) (*Database, *DatabaseUser) {
	if !v.required(p+".cluster", r.Cluster, "the database cluster, e.g. main") ||
		!v.ref(p+".cluster", "database cluster", r.Cluster, sortedKeys(v.e.Databases)) {
		return nil, nil
	}
	db := v.e.Databases[r.Cluster]
	if db == nil {
		return nil, nil
	}
	dbOK := v.required(p+".database", r.Database, "the logical database, e.g. acco") &&
		v.logicalDB(p+".database", db, r.Database)
	if !v.required(p+".user", r.User, "the database user") {
		return nil, nil
	}
	u, ok := db.Users[r.User]
	if !ok {
		v.add(p+".user", "no user %q in databases.%s.users (%s)", r.User, r.Cluster, listOrNone(sortedKeys(db.Users)))
		return nil, nil
	}
	if u == nil {
		u = &DatabaseUser{}
	}
	if !dbOK {
		return nil, nil
	}
	return db, u
}

// tablePrivilege reports whether the user's grants give priv on schema.table
// in database.
func tablePrivilege(u *DatabaseUser, database, table, priv string) bool {
	schema, name, _ := splitTable(table, false)
	for _, g := range u.Grants {
		if g.Database != database || len(g.Tables) == 0 ||
			!(slices.Contains(g.Privileges, priv) || slices.Contains(g.Privileges, "all")) {
			continue
		}
		for _, t := range g.Tables {
			if s, n, _ := splitTable(t, true); s == schema && (n == name || n == "*") {
				return true
			}
		}
	}
	return false
}

// databasePrivilege reports whether the user's grants give priv on database.
func databasePrivilege(u *DatabaseUser, database, priv string) bool {
	for _, g := range u.Grants {
		if g.Database == database && len(g.Tables) == 0 && g.Schema == "" &&
			(slices.Contains(g.Privileges, priv) || slices.Contains(g.Privileges, "all")) {
			return true
		}
	}
	return false
}

func (v *validator) emqx(p string, m *EMQX) {
	if v.required(p+".version", m.Version, `the EMQX version, e.g. "5.10.4"`) {
		major, minor, ok := parseVersion(m.Version)
		switch {
		case !ok:
			v.add(p+".version", "%q is not an EMQX version such as 5.10.4", m.Version)
		case major < 5 || (major == 5 && minor < 9):
			v.add(p+".version", "EMQX %s cannot write positions to PostgreSQL: the PostgreSQL sink is free only from 5.9 (single node); set version: \"5.9.0\" or later", m.Version)
		}
	}
	if v.required(p+".edition", m.Edition, DefaultEMQXEdition) && m.Edition != DefaultEMQXEdition {
		v.add(p+".edition", "edition %q: from 5.9 EMQX ships one edition, the Debian package emqx-enterprise; set edition: enterprise", m.Edition)
	}
	v.listeners(p+".listeners", m.Listeners)
	v.bindAddr(p+".dashboard.bind", m.Dashboard.Bind)
	v.port(p+".dashboard.port", m.Dashboard.Port)
	if m.AllowAnonymous && v.e.Name == "prod" {
		v.add(p+".allow_anonymous", "prod must authenticate devices; set allow_anonymous: false")
	}
	if fp := m.AptKeyFingerprint; fp != "" && !fingerprintPattern.MatchString(strings.ReplaceAll(fp, " ", "")) {
		v.add(p+".apt_key_fingerprint", "%q: an OpenPGP fingerprint, 40 hex digits (as gpg --show-keys prints it)", fp)
	}
	da := p + ".device_auth"
	v.oneOf(da+".backend", m.DeviceAuth.Backend, "built_in_database", "postgresql")
	v.oneOf(da+".user_id_type", m.DeviceAuth.UserIDType, "username", "clientid")
	v.oneOf(da+".password_hash", m.DeviceAuth.PasswordHash, "bcrypt", "pbkdf2", "sha256")
	v.oneOf(da+".acl_no_match", m.DeviceAuth.ACLNoMatch, "deny", "allow")
	switch {
	case m.DeviceAuth.Backend == "postgresql" && m.DeviceAuth.Postgres == nil:
		v.add(da+".postgres", "missing: where device credentials live (cluster, database, user), since backend is postgresql")
	case m.DeviceAuth.Backend == "postgresql":
		v.postgres(da+".postgres", *m.DeviceAuth.Postgres)
		if ph := m.DeviceAuth.PasswordHash; ph != "" && ph != "pbkdf2" {
			v.add(da+".password_hash", "%q: the device table holds PBKDF2-SHA512 hashes (acco device add, and Mosquitto reads the same rows); set password_hash: pbkdf2", ph)
		}
	case m.DeviceAuth.Postgres != nil:
		v.add(da+".postgres", "applies only to backend: postgresql")
	}
	if m.Positions == nil {
		v.add(p+".positions", "missing: the rule that writes tracker positions to PostgreSQL (topic, postgres, table)")
		return
	}
	v.positions(p+".positions", m.Positions)
}

func (v *validator) positions(p string, s *PositionsSink) {
	if v.required(p+".topic", s.Topic, "the MQTT topic filter of positions, e.g. trackers/+/position") {
		if msg := cmp.Or(topicFilterProblem(s.Topic), topicTextProblem(s.Topic)); msg != "" {
			v.add(p+".topic", "%s", msg)
		}
	}
	_, u := v.postgres(p+".postgres", s.Postgres)
	tables := []struct{ key, name string }{{"table", s.Table}, {"latest_table", s.LatestTable}}
	for _, t := range tables {
		tp := p + "." + t.key
		if t.name == "" {
			if t.key == "table" {
				v.add(tp, "missing: the positions table, e.g. positions")
			}
			continue
		}
		if _, _, ok := splitTable(t.name, false); !ok {
			v.add(tp, "%q is not a table name such as positions or public.positions", t.name)
			continue
		}
		if u == nil {
			continue
		}
		privs := []string{"insert"}
		if t.key == "latest_table" {
			privs = []string{"insert", "update"} // an upsert
		}
		for _, pr := range privs {
			if !tablePrivilege(u, s.Postgres.Database, t.name, pr) {
				v.add(tp, "user %s has no %s grant on %s in database %s; add it to databases.%s.users.%s.grants",
					s.Postgres.User, pr, t.name, s.Postgres.Database, s.Postgres.Cluster, s.Postgres.User)
				break
			}
		}
	}
}

// topicFilterProblem checks an MQTT topic filter: + and # take a whole
// level, and # only the last.
func topicFilterProblem(t string) string {
	if strings.ContainsAny(t, "\x00") || len(t) > 65535 {
		return fmt.Sprintf("%q is not an MQTT topic filter", t)
	}
	levels := strings.Split(t, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && len(l) > 1 {
			return fmt.Sprintf("%q is not an MQTT topic filter: + and # stand for a whole level", t)
		}
		if l == "#" && i != len(levels)-1 {
			return fmt.Sprintf("%q is not an MQTT topic filter: # must be the last level", t)
		}
	}
	return ""
}

func parseVersion(s string) (major, minor int, ok bool) {
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, false
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || strconv.Itoa(n) != p {
			return 0, 0, false
		}
		nums[i] = n
	}
	return nums[0], nums[1], true
}

func (v *validator) listeners(p string, ls map[string]*Listener) {
	if len(ls) == 0 {
		v.add(p, "missing: at least one MQTT listener, e.g. mqtt: {type: tcp, port: 1883}")
	}
	for _, name := range sortedKeys(ls) {
		lp := joinPath(p, name)
		v.name(lp, name)
		l := ls[name]
		if l == nil {
			l = &Listener{}
		}
		v.oneOf(lp+".type", l.Type, "tcp", "ssl", "ws", "wss")
		v.bindAddr(lp+".bind", l.Bind)
		v.port(lp+".port", l.Port)
		tlsType := l.Type == "ssl" || l.Type == "wss"
		switch {
		case tlsType && l.TLS == nil:
			v.add(lp+".tls", "missing: listeners of type %s need tls.cert_file and tls.key_file", l.Type)
		case tlsType:
			v.required(lp+".tls.cert_file", l.TLS.CertFile, "the certificate chain (a local PEM file)")
			v.required(lp+".tls.key_file", l.TLS.KeyFile, "the private key (a local PEM file)")
		case l.TLS != nil && l.Type != "":
			v.add(lp+".tls", "listeners of type %s have no TLS; use type ssl (or wss) for TLS", l.Type)
		}
		if l.PublicPlaintext && tlsType {
			v.add(lp+".public_plaintext", "applies only to plain-text listeners (type tcp or ws); a listener of type %s is encrypted: remove public_plaintext", l.Type)
		}
	}
}

func (v *validator) mosquitto(p string, m *Mosquitto) {
	v.listeners(p+".listeners", m.Listeners)
	if m.AllowAnonymous && v.e.Name == "prod" {
		v.add(p+".allow_anonymous", "prod must authenticate devices; set allow_anonymous: false")
	}
}

// imageRepoPattern is an image repository as the distribution reference
// grammar writes it: [host[:port]/]component(/component)*, each component
// lower-case alphanumerics joined by '.', '_', '__' or dashes.
var imageRepoPattern = regexp.MustCompile(`^([a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?/)?[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)

func (v *validator) powersync(p string, ps *PowerSync) {
	if v.required(p+".image", ps.Image, DefaultPowerSyncImage) {
		last := ps.Image[strings.LastIndexByte(ps.Image, '/')+1:]
		switch {
		case strings.ContainsAny(last, ":@"):
			v.add(p+".image", "%q: give the repository only; the version goes in tag", ps.Image)
		case !imageRepoPattern.MatchString(ps.Image):
			// The unit runs it through the shell (pull when missing): only
			// the reference grammar's characters may reach it.
			v.add(p+".image", "%q is not an image repository such as %s (lower-case letters, digits, '.', '_', '-', '/', and a registry host[:port]/ first)", ps.Image, DefaultPowerSyncImage)
		}
	}
	if v.required(p+".tag", ps.Tag, `a pinned release, e.g. "1.25.0"`) {
		switch {
		case ps.Tag == "latest" || ps.Tag == "next" || strings.HasSuffix(ps.Tag, "-next"):
			v.add(p+".tag", "tag %s moves to new releases, across major versions too; pin a stable release such as \"1.25.0\"", ps.Tag)
		case !isImageTag(ps.Tag):
			v.add(p+".tag", "%q is not an image tag such as 1.25.0", ps.Tag)
		}
	}
	v.port(p+".port", ps.Port)

	src, srcUser := v.postgres(p+".source", ps.Source)
	if srcUser != nil && !srcUser.HasRole("replication") {
		v.add(p+".source.user", "user %s needs the replication role for logical replication; add roles: [replication] to databases.%s.users.%s",
			ps.Source.User, ps.Source.Cluster, ps.Source.User)
	}
	stor, storUser := v.postgres(p+".storage", ps.Storage)
	if stor != nil && stor == src {
		if major, err := strconv.Atoi(stor.Version); err == nil && major < 14 {
			v.add(p+".storage.cluster", "PowerSync keeps its storage on the replicated server only from PostgreSQL 14; use another cluster or version 14+")
		}
	}
	if storUser != nil && !databasePrivilege(storUser, ps.Storage.Database, "create") {
		v.add(p+".storage.user", "user %s needs create on database %s (PowerSync creates its schema powersync there); add a grant {database: %s, privileges: [create]}",
			ps.Storage.User, ps.Storage.Database, ps.Storage.Database)
	}
	if v.required(p+".publication", ps.Publication, DefaultPublication) && ps.Publication != DefaultPublication {
		v.add(p+".publication", "PowerSync replicates only from a publication named powersync; set publication: powersync")
	}

	var hypertable string
	if m := v.e.Services.EMQX; m != nil && m.Positions != nil && m.Positions.Postgres.Cluster == ps.Source.Cluster && m.Positions.Postgres.Database == ps.Source.Database {
		hypertable = m.Positions.Table
	}
	if len(ps.Tables) == 0 {
		v.add(p+".tables", "missing: the tables to publish (an explicit list: FOR ALL TABLES needs a superuser, which OVH does not give, and blocks TimescaleDB hypertables)")
	}
	for i, t := range ps.Tables {
		tp := indexPath(p+".tables", i)
		s, n, ok := splitTable(t, false)
		switch {
		case !ok:
			v.add(tp, "%q is not a table name such as devices or public.devices", t)
		case hypertable != "" && sameTable(s, n, hypertable):
			v.add(tp, "%s is the positions hypertable (services.emqx.positions.table), which PowerSync cannot replicate (TimescaleDB); publish services.emqx.positions.latest_table instead", t)
		case srcUser != nil && !tablePrivilege(srcUser, ps.Source.Database, t, "select"):
			v.add(tp, "user %s has no select grant on %s in database %s; add it to databases.%s.users.%s.grants",
				ps.Source.User, t, ps.Source.Database, ps.Source.Cluster, ps.Source.User)
		}
	}
	v.noDuplicates(p+".tables", ps.Tables)
	v.oneOf(p+".sslmode", ps.SSLMode, "verify-full", "verify-ca", "disable")
	if f := ps.SyncRules; f != "" {
		if strings.ContainsAny(f, "\x00\n\r") {
			v.add(p+".sync_rules", "%q is not a file path", f)
		} else if !strings.HasSuffix(f, ".yaml") && !strings.HasSuffix(f, ".yml") {
			v.add(p+".sync_rules", "%q is not a YAML file (.yaml or .yml): name the application's sync config, e.g. ../backend/sync-rules.yaml", f)
		}
	}
	if t := ps.TLS; t != nil {
		v.port(p+".tls.port", t.Port)
		v.localFile(p+".tls.cert_file", t.CertFile, "the certificate chain the apps are served (a local PEM file)")
		v.localFile(p+".tls.key_file", t.KeyFile, "the certificate's private key (a local PEM file)")
	}
	if ca := ps.ClientAuth; ca != nil {
		if v.required(p+".client_auth.jwks_uri", ca.JWKSURI, "where PowerSync fetches the keys that sign app tokens") {
			if u, err := url.Parse(ca.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || !isURLHost(u.Hostname()) {
				v.add(p+".client_auth.jwks_uri", "%q is not an http(s) URL", ca.JWKSURI)
			}
		}
		for i, a := range ca.Audience {
			if a == "" {
				v.add(indexPath(p+".client_auth.audience", i), "empty audience")
			}
		}
	}
}

func sameTable(schema, name, other string) bool {
	s, n, _ := splitTable(other, false)
	return s == schema && n == name
}

func isImageTag(s string) bool {
	if s == "" || len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isLower(c) && !isUpper(c) && !isDigit(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// reservedBackendEnv are the variables acco writes into the backend's
// environment itself.
var reservedBackendEnv = []string{"HOST", "PORT", "DATABASE_URL", "MQTT_URL", "MQTT_USERNAME", "MQTT_PASSWORD",
	"MQTT_TOPIC", "MQTT_SUBSCRIPTION", "POSITIONS_TABLE", "LATEST_TABLE", "BACKEND_WRITES_POSITIONS"}

// verifyPathPattern is what services.backend.verify_url_path may hold: it
// is put in an HTTP request line with {device} replaced by a device name.
// fingerprintPattern is an OpenPGP v4 fingerprint, spaces removed.
var fingerprintPattern = regexp.MustCompile(`^[0-9A-Fa-f]{40}$`)

var verifyPathPattern = regexp.MustCompile(`^/[A-Za-z0-9._/-]*\{device\}[A-Za-z0-9._/-]*$`)

func (v *validator) backend(p string, b *Backend) {
	if v.required(p+".artifact", b.Artifact, "the built backend, a local .tar.gz") &&
		!strings.HasSuffix(b.Artifact, ".tar.gz") && !strings.HasSuffix(b.Artifact, ".tgz") {
		v.add(p+".artifact", "%q is not a .tar.gz or .tgz archive", b.Artifact)
	}
	if v.required(p+".entrypoint", b.Entrypoint, "the script node runs, relative to the artifact, e.g. dist/server.js") {
		if msg := entrypointProblem(b.Entrypoint); msg != "" {
			v.add(p+".entrypoint", "%s", msg)
		}
	}
	switch n := b.NodeVersion; {
	case n == 0:
		v.add(p+".node_version", "missing: the Node.js major version, e.g. 24")
	case n < 20:
		v.add(p+".node_version", "Node.js %d is past its end of life; use 20 or later (PowerSync's image runs 24)", n)
	case n%2 == 1:
		v.add(p+".node_version", "Node.js %d is never a long-term-support release; use an even major such as %d", n, n+1)
	}
	v.bindAddr(p+".bind", b.Bind)
	v.port(p+".port", b.Port)
	v.postgres(p+".postgres", b.Postgres)
	if u := b.VerifyURLPath; u != "" && !verifyPathPattern.MatchString(u) {
		v.add(p+".verify_url_path", "%q: an absolute URL path of letters, digits and / . _ - with {device} once, e.g. /devices/{device}/last-position", u)
	}
	for _, k := range sortedKeys(b.Env) {
		kp := joinPath(p+".env", k)
		switch {
		case !isEnvVarName(k):
			v.addKey(kp, "invalid variable name %q: use upper-case letters, digits and _, not starting with a digit", k)
		case slices.Contains(reservedBackendEnv, k):
			v.addKey(kp, "acco sets %s itself (%s are reserved)", k, strings.Join(reservedBackendEnv, ", "))
		}
	}
}

func isEnvVarName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !isUpper(c) && !isDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// ports checks that no two services of the host listen on the same port.
func (v *validator) ports(s *Services) {
	type claim struct {
		path, owner string
		port        int
	}
	claims := []claim{{owner: "sshd", port: 22}}
	if s.Broker == BrokerEMQX && s.EMQX != nil {
		for _, name := range sortedKeys(s.EMQX.Listeners) {
			if l := s.EMQX.Listeners[name]; l != nil {
				p := "services.emqx.listeners." + name + ".port"
				claims = append(claims, claim{p, p, l.Port})
			}
		}
		claims = append(claims,
			claim{"services.emqx.dashboard.port", "services.emqx.dashboard.port", s.EMQX.Dashboard.Port},
			claim{owner: "EMQX's Erlang distribution (always on)", port: 4370},
			claim{owner: "EMQX's cluster RPC (always on)", port: 5370})
	}
	if s.Broker == BrokerMosquitto && s.Mosquitto != nil {
		for _, name := range sortedKeys(s.Mosquitto.Listeners) {
			if l := s.Mosquitto.Listeners[name]; l != nil {
				p := "services.mosquitto.listeners." + name + ".port"
				claims = append(claims, claim{p, p, l.Port})
			}
		}
	}
	if s.PowerSync != nil {
		claims = append(claims, claim{"services.powersync.port", "services.powersync.port", s.PowerSync.Port})
	}
	if s.Backend != nil {
		claims = append(claims, claim{"services.backend.port", "services.backend.port", s.Backend.Port})
	}
	if s.PowerSync != nil && s.PowerSync.TLS != nil {
		claims = append(claims, claim{"services.powersync.tls.port", "services.powersync.tls.port", s.PowerSync.TLS.Port})
	}
	taken := map[int]string{}
	for _, c := range claims {
		if c.port < 1 || c.port > 65535 {
			continue // reported where the port is checked
		}
		if owner, ok := taken[c.port]; ok && c.path != "" {
			v.add(c.path, "port %d is already taken on the host by %s", c.port, owner)
			continue
		}
		taken[c.port] = c.owner
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
