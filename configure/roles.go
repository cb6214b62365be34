package configure

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/templates"
)

// ServicesOptions adjust Services.
type ServicesOptions struct {
	// Artifact overrides the backend archive path of the YAML.
	Artifact string
	// NoArtifact leaves the backend archive out (plan files and units only).
	NoArtifact bool
	// Offline keeps to what a host without internet access can install
	// (the local VM): Node.js from Debian instead of NodeSource, and no
	// PowerSync (its image comes from Docker Hub). The broker must then be
	// mosquitto; EMQX's packages are on the internet too. services.offline
	// in the YAML sets it too.
	Offline bool
}

// Services builds what the services host of env needs, role by role:
// common (packages, service users, time sync, unattended upgrades, journald
// limits), the broker (EMQX or Mosquitto), PowerSync and the backend.
func Services(env *spec.Environment, in templates.Inputs, opts ServicesOptions) (Desired, error) {
	rendered, err := templates.Files(env, in)
	if err != nil {
		return Desired{}, err
	}
	var d Desired
	s := env.Services
	opts.Offline = opts.Offline || s.Offline
	if opts.Offline && s.Broker == spec.BrokerEMQX {
		return Desired{}, fmt.Errorf("services.broker: emqx cannot be installed offline; use mosquitto")
	}
	timeout := s.HealthTimeout

	// common
	for _, p := range []string{"ca-certificates", "curl", "iproute2", "systemd-timesyncd", "unattended-upgrades"} {
		d.Packages = append(d.Packages, Package{Name: p})
	}
	d.Units = append(d.Units,
		Unit{Name: templates.UnitJournald, Health: Health{Timeout: timeout}},
		Unit{Name: templates.UnitTimesyncd, Enable: true, Health: Health{Timeout: timeout}},
	)

	switch s.Broker {
	case spec.BrokerEMQX:
		e := s.EMQX
		key, err := emqxAptKey(e)
		if err != nil {
			return Desired{}, err
		}
		d.addAptKey(key)
		d.Packages = append(d.Packages, Package{Name: "emqx-enterprise", Version: e.Version, Repo: true, Restart: templates.UnitEMQX})
		dash := e.Dashboard.Port
		if dash == 0 {
			dash = spec.DefaultDashboardPort
		}
		d.Units = append(d.Units, Unit{Name: templates.UnitEMQX, Enable: true, Health: Health{
			Port: spec.PlainMQTTPort(e.Listeners), HTTP: "http://127.0.0.1:" + strconv.Itoa(dash) + "/status", Timeout: timeout,
		}})
		d.Files = append(d.Files, emqxDashboardPasswordFile(in.EMQXDashboardPassword))
	case spec.BrokerMosquitto:
		d.Packages = append(d.Packages, Package{Name: "mosquitto", Restart: templates.UnitMosquitto})
		d.Units = append(d.Units, Unit{Name: templates.UnitMosquitto, Enable: true, Health: Health{Port: spec.PlainMQTTPort(s.Mosquitto.Listeners), Timeout: timeout}})
	}

	if p := s.PowerSync; p != nil && !opts.Offline {
		port := p.Port
		if port == 0 {
			port = spec.DefaultPowerSyncPort
		}
		d.Packages = append(d.Packages, Package{Name: "docker.io"})
		d.Units = append(d.Units,
			Unit{Name: templates.UnitDocker, Enable: true, Health: Health{Timeout: timeout}},
			Unit{Name: templates.UnitPowerSync, Enable: true, Health: Health{Port: port, HTTP: "http://127.0.0.1:" + strconv.Itoa(port) + "/probes/liveness", Timeout: timeout}},
		)
		if t := p.TLS; t != nil {
			// nginx from Debian's archive serves PowerSync over TLS. Its
			// health: PowerSync's liveness answers through it, over TLS
			// on loopback (the certificate is made for the public name,
			// so it is not checked there).
			tlsPort := t.Port
			if tlsPort == 0 {
				tlsPort = spec.DefaultProxyTLSPort
			}
			d.Packages = append(d.Packages, Package{Name: "nginx", Restart: templates.UnitNginx})
			d.Units = append(d.Units, Unit{Name: templates.UnitNginx, Enable: true, Health: Health{
				Port: tlsPort, HTTP: "https://127.0.0.1:" + strconv.Itoa(tlsPort) + "/probes/liveness", Insecure: true, Timeout: timeout,
			}})
		}
	}

	if b := s.Backend; b != nil {
		if opts.Offline {
			d.Packages = append(d.Packages, Package{Name: "nodejs", Restart: templates.UnitBackend})
		} else {
			d.addAptKey(AptKey{
				Name:         "nodesource-apt-key",
				URL:          "https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key",
				Keyring:      "/usr/share/keyrings/nodesource.asc",
				Fingerprints: []string{NodeSourceKeyFingerprint},
				Hint:         "NodeSource changed its key or the download was tampered with: check https://github.com/nodesource/distributions before trusting another key (acco's NodeSourceKeyFingerprint)",
			})
			d.Packages = append(d.Packages, Package{Name: "nodejs", Version: strconv.Itoa(b.NodeVersion) + ".*", Repo: true, Restart: templates.UnitBackend})
		}
		port := b.Port
		if port == 0 {
			port = spec.DefaultBackendPort
		}
		d.Units = append(d.Units, Unit{Name: templates.UnitBackend, Enable: true, Health: Health{Port: port, Timeout: timeout}})
		if !opts.NoArtifact {
			path := opts.Artifact
			if path == "" {
				path, err = env.LocalPath(b.Artifact)
				if err != nil {
					return Desired{}, fmt.Errorf("services.backend.artifact: %w", err)
				}
			}
			a, err := NewArtifact("backend", path, "/opt/acco-backend/app", templates.UnitBackend)
			if err != nil {
				return Desired{}, fmt.Errorf("services.backend.artifact: %w", err)
			}
			a.InstallScripts, a.User = b.InstallScripts, templates.BackendUser
			d.Artifacts = append(d.Artifacts, a)
		}
	}

	for _, f := range rendered {
		if opts.Offline && (f.Role == templates.RolePowerSync || f.Path == "/etc/apt/sources.list.d/nodesource.list") {
			continue
		}
		cf := File{
			Path: f.Path, Owner: f.Owner, Group: f.Group, Mode: f.Mode, Content: f.Content,
			Restart: f.Restart, Sensitive: f.Sensitive,
			Early: strings.HasPrefix(f.Path, "/etc/apt/sources.list.d/"),
		}
		switch {
		case f.Path == "/etc/emqx/emqx.conf":
			// check_config reads the fixed path: put the file in place,
			// check, and restore the old one if the check fails.
			cf.Validate = "if [ -x /usr/bin/emqx ]; then /usr/bin/emqx check_config; fi"
			cf.ValidateInPlace = true
		case strings.HasPrefix(f.Path, "/etc/systemd/system/") && strings.HasSuffix(f.Path, ".service"):
			cf.Validate = "systemd-analyze verify --man=no {}"
			cf.StrictStderr = true
		case f.Path == templates.NginxPowerSyncConf:
			// nginx -t reads the whole configuration from its fixed
			// place (the certificate files are written before it).
			cf.Validate = "if [ -x /usr/sbin/nginx ]; then /usr/sbin/nginx -t -q; fi"
			cf.ValidateInPlace = true
		case f.Path == "/etc/sysusers.d/acco.conf":
			cf.Post = "systemd-sysusers"
		case f.Path == MosquittoPasswdPath:
			// Devices come and go (acco device add|remove): Mosquitto
			// re-reads its password file on SIGHUP, without dropping the
			// trackers that stay. Not running yet: nothing to tell.
			cf.Restart = ""
			cf.Post = "systemctl try-reload-or-restart " + templates.UnitMosquitto
		}
		d.Files = append(d.Files, cf)
	}
	return d, nil
}

// EMQXDashboardPasswordPath holds the EMQX dashboard's admin password,
// readable by EMQX only, as its database passwords are: a running node
// reads it itself when told the password changed.
const EMQXDashboardPasswordPath = "/etc/emqx/secrets/dashboard-admin.pass"

// emqxDashboardPasswordFile puts the dashboard password where EMQX reads
// it. dashboard.default_password (emqx.conf) only takes effect when the
// node first boots; when the file changes on a running node, its Post has
// the node read the file and change the admin's password
// (emqx_dashboard_admin:change_password_trusted/2, what `emqx ctl admins
// passwd` calls, in EMQX 5.9 and 5.10). The password is never on a command
// line: `emqx ctl admins passwd admin PASSWORD` would put it in sudo's
// log, in ps (its argv) and in EMQX's audit log, and the REST API needs
// the old password. `emqx eval` carries only the code, which reads the
// file inside the node. When the change fails the file is removed, so the
// next run writes it again and retries. It also removes the hash marker
// older acco versions kept.
func emqxDashboardPasswordFile(password string) File {
	code := `{ok, Password} = file:read_file("` + EMQXDashboardPasswordPath + `"), ` +
		`case emqx_dashboard_admin:change_password_trusted(<<"admin">>, Password) of ` +
		`{ok, _} -> ok; {error, Reason} -> error({dashboard_password_not_changed, Reason}) end`
	return File{
		Path: EMQXDashboardPasswordPath, Owner: "emqx", Group: "emqx", Mode: 0o400,
		Content:   []byte(password),
		Sensitive: true,
		Post: "rm -f /var/lib/acco/emqx-dashboard-password.sha256\n" +
			"if systemctl is-active --quiet " + templates.UnitEMQX + " && ! /usr/bin/emqx eval " + shellQuote(code) + " >&2; then\n" +
			"  rm -f " + shellQuote(EMQXDashboardPasswordPath) + "\n" +
			"  echo 'the running EMQX did not take the new dashboard password: the next acco configure tries again' >&2\n" +
			"  exit 1\nfi",
	}
}

// emqxAptKey is the key of EMQX's packagecloud repository, pinned by the
// fingerprint in services.emqx.apt_key_fingerprint (acco ships none).
func emqxAptKey(e *spec.EMQX) (AptKey, error) {
	k := AptKey{
		Name:    "emqx-apt-key",
		URL:     "https://packagecloud.io/emqx/emqx-enterprise5/gpgkey",
		Keyring: "/usr/share/keyrings/emqx-enterprise5.asc",
		Hint: "acco ships no fingerprint for EMQX's packagecloud key (none could be confirmed from a primary source): " +
			"check this fingerprint with EMQX (support, or a copy of the key you trust), then set it as services.emqx.apt_key_fingerprint",
	}
	if e.AptKeyFingerprint != "" {
		fp, err := NormalizeFingerprint(e.AptKeyFingerprint)
		if err != nil {
			return AptKey{}, fmt.Errorf("services.emqx.apt_key_fingerprint: %w", err)
		}
		k.Fingerprints = []string{fp}
	}
	return k, nil
}

// addAptKey adds the command that installs a pinned repository key, and
// gpg, which checks it.
func (d *Desired) addAptKey(k AptKey) {
	d.Commands = append(d.Commands, k.Command())
	for _, p := range d.Packages {
		if p.Name == "gpg" {
			return
		}
	}
	d.Packages = append(d.Packages, Package{Name: "gpg"})
}

// MosquittoPasswdPath is Mosquitto's password file, made from the device
// table.
const MosquittoPasswdPath = "/etc/mosquitto/acco.passwd"

// ServicesHost returns the services host of env, reached at address (the
// instance's public IPv4 address, from state), as its image's login user.
func ServicesHost(env *spec.Environment, address string) Host {
	user := spec.DefaultSSHUser
	if i := env.HostInstance(); i != nil && i.SSHUser != "" {
		user = i.SSHUser
	}
	return Host{Name: env.Services.Host, Address: address, Port: 22, User: user}
}

// NewArtifact describes a local .tar.gz to unpack into dir on the host: its
// hash, whether its files sit under one top directory (npm pack's package/),
// which is stripped, and the hash of its package-lock.json, which makes the
// host run npm ci. An archive that bundles its node_modules (a node_modules
// entry at its top level, below the stripped directory) gets no lock hash:
// its dependencies are already there, and the host may have no npm registry.
func NewArtifact(name, path, dir, restart string) (Artifact, error) {
	f, err := os.Open(path)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha256.New()
	gz, err := gzip.NewReader(io.TeeReader(f, h))
	if err != nil {
		return Artifact{}, fmt.Errorf("%s: not a gzip archive: %w", path, err)
	}
	tr := tar.NewReader(gz)
	top := ""
	common := true
	locks := map[string]string{}
	// modules holds the top-level paths under which a node_modules entry
	// sits: "" (the archive's root) or the first path element.
	modules := map[string]bool{}
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Artifact{}, fmt.Errorf("%s: %w", path, err)
		}
		n := strings.TrimPrefix(hd.Name, "./")
		if n == "" {
			continue
		}
		first, rest, nested := strings.Cut(n, "/")
		if !nested && hd.Typeflag != tar.TypeDir {
			common = false
		}
		if top == "" {
			top = first
		} else if first != top {
			common = false
		}
		base := n
		if nested {
			base = rest
		}
		isDir := hd.Typeflag == tar.TypeDir
		if first == "node_modules" && (nested || isDir) {
			modules[""] = true
		}
		if nested && (strings.HasPrefix(rest, "node_modules/") || rest == "node_modules" && isDir) {
			modules[first] = true
		}
		if strings.TrimSuffix(base, "/") == "package-lock.json" || n == "package-lock.json" {
			lh := sha256.New()
			if _, err := io.Copy(lh, tr); err != nil {
				return Artifact{}, err
			}
			locks[n] = hex.EncodeToString(lh.Sum(nil))
		}
	}
	// drain the rest so the archive hash covers the whole file
	if _, err := io.Copy(io.Discard, io.TeeReader(f, h)); err != nil {
		return Artifact{}, err
	}
	a := Artifact{Name: name, Dir: dir, SHA256: hex.EncodeToString(h.Sum(nil)), Restart: restart}
	if common && top != "" {
		a.Strip = 1
		a.LockSHA256 = locks[top+"/package-lock.json"]
		if modules[top] {
			a.LockSHA256 = ""
		}
	} else {
		a.LockSHA256 = locks["package-lock.json"]
		if modules[""] {
			a.LockSHA256 = ""
		}
	}
	a.Open = func() (io.ReadCloser, error) { return os.Open(path) }
	return a, nil
}
