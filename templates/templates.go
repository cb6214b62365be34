// Package templates renders the files acco puts on the services host: systemd
// units and drop-ins, the EMQX HOCON, the Mosquitto configuration, the
// PowerSync YAML, environment files, journald limits and unattended upgrades.
//
// The templates are embedded (files/*.tmpl) and rendered with text/template.
// Rendering is deterministic: maps are walked in sorted key order and nothing
// depends on time or randomness, so the same environment and inputs give the
// same bytes, and the bytes (or their SHA-256) can be compared with the host.
//
// Secrets (passwords, the Erlang cookie, API tokens, TLS keys) come in through
// Inputs. Inputs.Secrets lists their values so callers mask them in every diff
// and log; files whose whole content is secret are marked File.Sensitive.
package templates

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
)

//go:embed files/*.tmpl
var FS embed.FS

// Roles, in the order their services start and restart.
const (
	RoleCommon    = "common"
	RoleEMQX      = "emqx"
	RoleMosquitto = "mosquitto"
	RolePowerSync = "powersync"
	RoleBackend   = "backend"
)

// Units acco manages.
const (
	UnitJournald  = "systemd-journald.service"
	UnitTimesyncd = "systemd-timesyncd.service"
	UnitEMQX      = "emqx.service"
	UnitMosquitto = "mosquitto.service"
	UnitPowerSync = "powersync.service"
	UnitBackend   = "acco-backend.service"
	UnitDocker    = "docker.service"
	UnitNginx     = "nginx.service"
)

// Where the TLS proxy in front of PowerSync keeps its configuration and
// certificate.
const (
	NginxPowerSyncConf = "/etc/nginx/conf.d/acco-powersync.conf"
	NginxCertDir       = "/etc/nginx/acco"
)

// BackendUser is the system user the Node backend runs as.
const BackendUser = "acco-backend"

// File is one rendered file and where it goes.
type File struct {
	// Role is the role-like unit the file belongs to (RoleCommon, ...).
	Role string
	// Path is the absolute path on the host.
	Path string
	// Owner, Group and Mode are applied before the file is renamed into place.
	Owner, Group string
	Mode         fs.FileMode
	// Content is the rendered bytes.
	Content []byte
	// Restart is the unit restarted when the file changes, or "".
	Restart string
	// Sensitive marks a file whose whole content is secret (keys, passwords,
	// environment files with credentials): no diff shows its content.
	Sensitive bool
}

// DB is what provisioning learnt about a managed database cluster.
type DB struct {
	// Host and Port are the cluster's endpoint.
	Host string
	Port int
	// CACert is the cluster's CA certificate (PEM), as OVH returns it.
	CACert string
}

// TLS is the PEM content of a listener's certificate files.
type TLS struct {
	Cert, Key, CA string
}

// Inputs are the values that are not in the environment's YAML: endpoints
// learnt when provisioning and secrets kept sealed in state.
type Inputs struct {
	// Databases are the clusters by name (databases.NAME).
	Databases map[string]DB
	// Passwords are the database users' passwords by "cluster.user".
	Passwords map[string]string
	// EMQXDashboardPassword is the dashboard admin password (first boot).
	EMQXDashboardPassword string
	// EMQXCookie is the Erlang distribution cookie.
	EMQXCookie string
	// PowerSyncAPIToken is PowerSync's admin API token.
	PowerSyncAPIToken string
	// PowerSyncVerifyKey is the public key acco verify's client tokens are
	// signed with, added to PowerSync's client_auth (nil: none).
	PowerSyncVerifyKey ed25519.PublicKey
	// MQTTBackendPassword is the backend's MQTT password.
	MQTTBackendPassword string
	// MQTTUsers are the rows of the device table (trackers and acco's own
	// MQTT users), read from the database: Mosquitto's password file is
	// made from them. The backend's login is added from
	// MQTTBackendPassword when the table does not hold it yet.
	MQTTUsers []MQTTUser
	// TLS are the MQTT listeners' certificates by listener name.
	TLS map[string]TLS
	// SyncRules is the application's sync config, read from the file
	// services.powersync.sync_rules names (nil when it names none).
	SyncRules *SyncRules
	// PowerSyncTLS is the certificate of the TLS proxy in front of
	// PowerSync (services.powersync.tls; CA unused).
	PowerSyncTLS TLS
}

// PowerSyncVerifyKeyID is the kid of acco verify's key in PowerSync's
// client_auth.
const PowerSyncVerifyKeyID = "acco-verify"

// MQTTUser is one row of the device table.
type MQTTUser struct {
	Name string
	Hash devicecred.Hash
}

// Secrets returns every secret value of the inputs, longest first, for
// masking.
func (in Inputs) Secrets() []string {
	var s []string
	add := func(v string) {
		if v != "" {
			s = append(s, v)
		}
	}
	for _, p := range in.Passwords {
		add(p)
		add(url.QueryEscape(p))
		add(url.PathEscape(p))
	}
	add(in.EMQXDashboardPassword)
	add(in.EMQXCookie)
	add(in.PowerSyncAPIToken)
	add(in.MQTTBackendPassword)
	for _, t := range in.TLS {
		add(strings.TrimSpace(t.Key))
	}
	add(strings.TrimSpace(in.PowerSyncTLS.Key))
	sort.Slice(s, func(i, j int) bool {
		if len(s[i]) != len(s[j]) {
			return len(s[i]) > len(s[j])
		}
		return s[i] < s[j]
	})
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

var tmpl = template.Must(template.New("").Option("missingkey=error").Funcs(template.FuncMap{
	"hocon":      hoconString,
	"yamlstr":    yamlString,
	"indent":     indent,
	"envquote":   envQuote,
	"systemdArg": systemdArg,
	"unitValue":  unitValue,
}).ParseFS(FS, "files/*.tmpl"))

// Render executes the named template (its file name without .tmpl) with data.
func Render(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, name+".tmpl", data); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// Names lists the templates, sorted.
func Names() []string {
	var n []string
	for _, t := range tmpl.Templates() {
		if name, ok := strings.CutSuffix(t.Name(), ".tmpl"); ok {
			n = append(n, name)
		}
	}
	sort.Strings(n)
	return n
}

// Files renders every file the environment's services host needs, in role
// order (common, broker, powersync, backend) and by path within a role.
func Files(env *spec.Environment, in Inputs) ([]File, error) {
	d, err := newData(env, in)
	if err != nil {
		return nil, err
	}
	var files []File
	add := func(role, name, path, owner, group string, mode fs.FileMode, restart string, sensitive bool) error {
		b, err := Render(name, d)
		if err != nil {
			return err
		}
		files = append(files, File{Role: role, Path: path, Owner: owner, Group: group, Mode: mode, Content: b, Restart: restart, Sensitive: sensitive})
		return nil
	}
	raw := func(role, path, owner, group string, mode fs.FileMode, content, restart string, sensitive bool) {
		files = append(files, File{Role: role, Path: path, Owner: owner, Group: group, Mode: mode, Content: []byte(content), Restart: restart, Sensitive: sensitive})
	}
	type item struct {
		role, name, path, owner, group string
		mode                           fs.FileMode
		restart                        string
		sensitive                      bool
	}
	items := []item{
		{RoleCommon, "journald.conf", "/etc/systemd/journald.conf.d/acco.conf", "root", "root", 0o644, UnitJournald, false},
		{RoleCommon, "20auto-upgrades", "/etc/apt/apt.conf.d/20auto-upgrades", "root", "root", 0o644, "", false},
		{RoleCommon, "52acco-unattended-upgrades", "/etc/apt/apt.conf.d/52acco-unattended-upgrades", "root", "root", 0o644, "", false},
		{RoleCommon, "sysusers.conf", "/etc/sysusers.d/acco.conf", "root", "root", 0o644, "", false},
	}
	switch env.Services.Broker {
	case spec.BrokerEMQX:
		items = append(items,
			item{RoleEMQX, "emqx.list", "/etc/apt/sources.list.d/emqx.list", "root", "root", 0o644, "", false},
			item{RoleEMQX, "emqx.conf", "/etc/emqx/emqx.conf", "emqx", "emqx", 0o600, UnitEMQX, false},
			item{RoleEMQX, "emqx-acl.conf", "/etc/emqx/acl.conf", "emqx", "emqx", 0o640, UnitEMQX, false},
			item{RoleEMQX, "emqx-override.conf", "/etc/systemd/system/emqx.service.d/acco.conf", "root", "root", 0o644, UnitEMQX, false},
		)
	case spec.BrokerMosquitto:
		items = append(items,
			item{RoleMosquitto, "mosquitto.conf", "/etc/mosquitto/conf.d/acco.conf", "root", "root", 0o644, UnitMosquitto, false},
			item{RoleMosquitto, "mosquitto.acl", "/etc/mosquitto/acco.acl", "root", "mosquitto", 0o640, UnitMosquitto, false},
		)
	}
	if env.Services.PowerSync != nil {
		items = append(items,
			item{RolePowerSync, "powersync.yaml", "/etc/powersync/powersync.yaml", "root", "root", 0o644, UnitPowerSync, false},
			item{RolePowerSync, "sync-config.yaml", "/etc/powersync/sync-config.yaml", "root", "root", 0o644, UnitPowerSync, false},
			item{RolePowerSync, "powersync.env", "/etc/powersync/powersync.env", "root", "root", 0o600, UnitPowerSync, true},
			item{RolePowerSync, "powersync.service", "/etc/systemd/system/powersync.service", "root", "root", 0o644, UnitPowerSync, false},
		)
		if d.PowerSync.Proxy != nil {
			items = append(items, item{RolePowerSync, "nginx-powersync.conf", NginxPowerSyncConf, "root", "root", 0o644, UnitNginx, false})
		}
	}
	if env.Services.Backend != nil {
		items = append(items,
			item{RoleBackend, "nodesource.list", "/etc/apt/sources.list.d/nodesource.list", "root", "root", 0o644, "", false},
			item{RoleBackend, "backend.env", "/etc/acco/backend.env", "root", BackendUser, 0o640, UnitBackend, true},
			item{RoleBackend, "acco-backend.service", "/etc/systemd/system/acco-backend.service", "root", "root", 0o644, UnitBackend, false},
		)
	}
	for _, it := range items {
		if err := add(it.role, it.name, it.path, it.owner, it.group, it.mode, it.restart, it.sensitive); err != nil {
			return nil, err
		}
	}
	// Files that are not templates: secrets, certificates, password files.
	if e := d.EMQX; e != nil {
		for _, s := range e.SecretFiles {
			raw(RoleEMQX, s.Path, "emqx", "emqx", 0o400, s.Content, UnitEMQX, true)
		}
		for _, c := range e.CAFiles {
			raw(RoleEMQX, c.Path, "emqx", "emqx", 0o644, c.Content, UnitEMQX, false)
		}
		for _, l := range e.Listeners {
			if l.TLS != nil {
				tlsFiles(&files, RoleEMQX, "emqx", "emqx", l.TLS, UnitEMQX)
			}
		}
	}
	if m := d.Mosquitto; m != nil {
		raw(RoleMosquitto, "/etc/mosquitto/acco.passwd", "root", "mosquitto", 0o640, m.Passwd, UnitMosquitto, true)
		for _, l := range m.Listeners {
			if l.TLS != nil {
				tlsFiles(&files, RoleMosquitto, "root", "mosquitto", l.TLS, UnitMosquitto)
			}
		}
	}
	if p := d.PowerSync; p != nil && p.Proxy != nil {
		// nginx's master process reads them as root.
		raw(RolePowerSync, p.Proxy.CertPath, "root", "root", 0o644, p.Proxy.cert, UnitNginx, false)
		raw(RolePowerSync, p.Proxy.KeyPath, "root", "root", 0o600, p.Proxy.key, UnitNginx, true)
	}
	if b := d.Backend; b != nil {
		for _, c := range b.CAFiles {
			raw(RoleBackend, c.Path, "root", "root", 0o644, c.Content, UnitBackend, false)
		}
	}
	order := map[string]int{RoleCommon: 0, RoleEMQX: 1, RoleMosquitto: 1, RolePowerSync: 2, RoleBackend: 3}
	sort.SliceStable(files, func(i, j int) bool {
		if order[files[i].Role] != order[files[j].Role] {
			return order[files[i].Role] < order[files[j].Role]
		}
		return files[i].Path < files[j].Path
	})
	return files, nil
}

func tlsFiles(files *[]File, role, owner, group string, t *listenerTLS, restart string) {
	*files = append(*files,
		File{Role: role, Path: t.CertPath, Owner: owner, Group: group, Mode: 0o644, Content: []byte(t.cert), Restart: restart},
		File{Role: role, Path: t.KeyPath, Owner: owner, Group: group, Mode: 0o400, Content: []byte(t.key), Restart: restart, Sensitive: true},
	)
	if t.CAPath != "" {
		*files = append(*files, File{Role: role, Path: t.CAPath, Owner: owner, Group: group, Mode: 0o644, Content: []byte(t.ca), Restart: restart})
	}
}

// hoconString quotes s as a HOCON (JSON-compatible) quoted string. Inside
// quotes ${...} is literal, which EMQX's SQL templates rely on.
func hoconString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// yamlString quotes s as a YAML double-quoted scalar.
func yamlString(s string) string { return strconv.Quote(s) }

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

// MosquittoHash returns a Mosquitto 2 password-file hash ($7$: PBKDF2-SHA512,
// 101 iterations, as mosquitto_passwd writes). The salt is derived from the
// user name and password so that rendering stays deterministic; it is still
// unique per user and per password.
func MosquittoHash(user, password string) (string, error) {
	m := hmac.New(sha256.New, []byte("acco mosquitto salt"))
	m.Write([]byte(user + "\x00" + password))
	salt := m.Sum(nil)[:12]
	const iter = 101
	key, err := pbkdf2.Key(sha512.New, password, salt, iter, 64)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$7$%d$%s$%s", iter, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key)), nil
}

func hostPort(h string, p int) string { return net.JoinHostPort(h, strconv.Itoa(p)) }
