package templates

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
)

// MQTTBackendUser is the MQTT user the backend logs in as.
const MQTTBackendUser = devicecred.BackendUser

// data is what the templates see. Every list is sorted.
type data struct {
	Env       string
	EMQX      *emqxData
	Mosquitto *mosquittoData
	PowerSync *powersyncData
	Backend   *backendData
	Users     []sysUser
}

type sysUser struct{ Name, Description, Home string }

type content struct{ Path, Content string }

type listenerTLS struct {
	CertPath, KeyPath, CAPath string
	cert, key, ca             string
}

type listener struct {
	Name, Type, Bind string
	Port             int
	WebSockets       bool
	TLS              *listenerTLS
}

// BindAddr is host:port.
func (l listener) BindAddr() string { return hostPort(l.Bind, l.Port) }

type pgConn struct {
	Server, Host, Database, Username, PasswordFile, CAFile string
}

type authData struct {
	Backend, UserIDType, HashBlock, ACLNoMatch, Query string
	Postgres                                          *pgConn
}

type action struct{ Name, SQL string }

type positionsData struct {
	Ref, Connector, Rule, Table, RuleSQL string
	Conn                                 pgConn
	Actions                              []action
}

type emqxData struct {
	Cookie, DashboardPassword, DashboardBind string
	DisabledDefaults                         []string
	Listeners                                []listener
	AllowAnonymous                           bool
	Auth                                     authData
	Positions                                *positionsData
	ACL                                      []string
	SecretFiles, CAFiles                     []content
}

type mosquittoData struct {
	AllowAnonymous bool
	Listeners      []listener
	ACL            []string
	Passwd         string
}

type powersyncData struct {
	Image, SSLMode, SourceCA, StorageCA string
	SourceURI, StorageURI, APIToken     string
	Port                                int
	// SyncConfig is the sync config (sync-config.yaml): the
	// application's, with acco verify's bucket.
	SyncConfig string
	ClientAuth *spec.ClientAuth
	// VerifyKeyX is acco verify's Ed25519 public key (JWK x) and
	// VerifyKeyID its kid, when PowerSync checks client tokens.
	VerifyKeyX, VerifyKeyID string
	// Proxy is the TLS proxy in front of PowerSync, or nil.
	Proxy *proxyData
}

// proxyData is nginx serving PowerSync over TLS: its port, the upstream
// (PowerSync on loopback) and its certificate files.
type proxyData struct {
	Port              int
	Upstream          string
	CertPath, KeyPath string
	cert, key         string
}

type envVar struct{ Name, Value string }

type backendData struct {
	Entrypoint, After string
	NodeVersion       int
	Env               []envVar
	CAFiles           []content
}

func newData(env *spec.Environment, in Inputs) (*data, error) {
	d := &data{Env: env.Name}
	s := env.Services
	switch s.Broker {
	case spec.BrokerEMQX:
		if s.EMQX == nil {
			return nil, fmt.Errorf("services.emqx: missing while broker is emqx")
		}
		e, err := newEMQX(s.EMQX, in)
		if err != nil {
			return nil, err
		}
		d.EMQX = e
	case spec.BrokerMosquitto:
		if s.Mosquitto == nil {
			return nil, fmt.Errorf("services.mosquitto: missing while broker is mosquitto")
		}
		m, err := newMosquitto(s.Mosquitto, in)
		if err != nil {
			return nil, err
		}
		d.Mosquitto = m
	default:
		return nil, fmt.Errorf("services.broker: unknown broker %q", s.Broker)
	}
	if p := s.PowerSync; p != nil {
		// acco verify reads the verification device's latest position
		// from the sync stream, with its own token, where PowerSync
		// checks tokens and publishes that table.
		verifyTable := ""
		if f := env.DataFlow(); f != nil && f.LatestTable != "" && p.ClientAuth != nil && slices.Contains(p.Tables, f.LatestTable) {
			verifyTable = f.LatestTable
		}
		ps, err := newPowerSync(env.Name, p, in, verifyTable)
		if err != nil {
			return nil, err
		}
		d.PowerSync = ps
	}
	if b := s.Backend; b != nil {
		bd, err := newBackend(env, b, in)
		if err != nil {
			return nil, err
		}
		d.Backend = bd
		d.Users = append(d.Users, sysUser{Name: BackendUser, Description: "acco Node backend", Home: "/var/lib/acco-backend"})
	}
	return d, nil
}

func sortedListeners(m map[string]*spec.Listener, certDir string, in Inputs) ([]listener, error) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []listener
	for _, n := range names {
		l := m[n]
		bind := l.Bind
		if bind == "" {
			bind = spec.DefaultListenerBind
		}
		// Mosquitto's listener line takes the address unquoted.
		if a, err := netip.ParseAddr(bind); err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("listener %s: bind %q is not an IP address without a zone", n, bind)
		}
		li := listener{Name: n, Type: l.Type, Bind: bind, Port: l.Port, WebSockets: l.Type == "ws" || l.Type == "wss"}
		if l.TLS != nil {
			t, ok := in.TLS[n]
			if !ok || t.Cert == "" || t.Key == "" {
				return nil, fmt.Errorf("listener %s: no certificate and key given (read from its tls files)", n)
			}
			lt := &listenerTLS{CertPath: certDir + "/" + n + ".crt", KeyPath: certDir + "/" + n + ".key", cert: t.Cert, key: t.Key}
			if l.TLS.CAFile != "" {
				if t.CA == "" {
					return nil, fmt.Errorf("listener %s: no client CA given (read from its ca_file)", n)
				}
				lt.CAPath, lt.ca = certDir+"/"+n+"-client-ca.crt", t.CA
			}
			li.TLS = lt
		}
		out = append(out, li)
	}
	return out, nil
}

func (in Inputs) conn(ref spec.PostgresRef, secretDir, certDir string) (pgConn, DB, string, error) {
	db, ok := in.Databases[ref.Cluster]
	if !ok || db.Host == "" {
		return pgConn{}, DB{}, "", fmt.Errorf("database %s: endpoint unknown (provision it first)", ref.Cluster)
	}
	pw, ok := in.Passwords[ref.Cluster+"."+ref.User]
	if !ok || pw == "" {
		return pgConn{}, DB{}, "", fmt.Errorf("database user %s.%s: password unknown (provision it first)", ref.Cluster, ref.User)
	}
	return pgConn{
		Server:       hostPort(db.Host, db.Port),
		Host:         db.Host,
		Database:     ref.Database,
		Username:     ref.User,
		PasswordFile: "file://" + secretDir + "/" + ref.Cluster + "." + ref.User + ".pass",
		CAFile:       certDir + "/" + ref.Cluster + "-ca.pem",
	}, db, pw, nil
}

func newEMQX(e *spec.EMQX, in Inputs) (*emqxData, error) {
	if in.EMQXCookie == "" || in.EMQXDashboardPassword == "" {
		return nil, fmt.Errorf("emqx: the Erlang cookie and dashboard password are needed (sealed in state)")
	}
	d := &emqxData{
		Cookie:            in.EMQXCookie,
		DashboardPassword: in.EMQXDashboardPassword,
		DashboardBind:     hostPort(orDefault(e.Dashboard.Bind, spec.DefaultDashboardBind), intOr(e.Dashboard.Port, spec.DefaultDashboardPort)),
		AllowAnonymous:    e.AllowAnonymous,
	}
	ls, err := sortedListeners(e.Listeners, "/etc/emqx/certs", in)
	if err != nil {
		return nil, fmt.Errorf("emqx: %w", err)
	}
	d.Listeners = ls
	for _, t := range []string{"ssl", "tcp", "ws", "wss"} {
		own := false
		for _, l := range ls {
			own = own || (l.Type == t && l.Name == "default")
		}
		if !own {
			d.DisabledDefaults = append(d.DisabledDefaults, t)
		}
	}
	da := e.DeviceAuth
	d.Auth = authData{
		Backend:    orDefault(da.Backend, spec.DefaultAuthBackend),
		UserIDType: orDefault(da.UserIDType, spec.DefaultUserIDType),
		ACLNoMatch: orDefault(da.ACLNoMatch, spec.DefaultACLNoMatch),
	}
	switch orDefault(da.PasswordHash, spec.DefaultPasswordHash) {
	case "bcrypt":
		d.Auth.HashBlock = "{name = bcrypt, salt_rounds = 10}"
	case "pbkdf2":
		d.Auth.HashBlock = devicecred.EMQXAlgorithm()
	case "sha256":
		d.Auth.HashBlock = "{name = sha256, salt_position = suffix}"
	default:
		return nil, fmt.Errorf("emqx: unknown password hash %q", da.PasswordHash)
	}
	secrets := map[string]content{}
	cas := map[string]content{}
	addConn := func(ref spec.PostgresRef) (pgConn, error) {
		c, db, pw, err := in.conn(ref, "/etc/emqx/secrets", "/etc/emqx/certs")
		if err != nil {
			return c, fmt.Errorf("emqx: %w", err)
		}
		p := strings.TrimPrefix(c.PasswordFile, "file://")
		secrets[p] = content{Path: p, Content: pw}
		if db.CACert == "" {
			return c, fmt.Errorf("emqx: database %s: CA certificate unknown", ref.Cluster)
		}
		cas[c.CAFile] = content{Path: c.CAFile, Content: db.CACert}
		return c, nil
	}
	if d.Auth.Backend == "postgresql" && da.Postgres != nil {
		c, err := addConn(*da.Postgres)
		if err != nil {
			return nil, err
		}
		d.Auth.Postgres = &c
		d.Auth.Query = devicecred.EMQXQuery("${" + d.Auth.UserIDType + "}")
	}
	who := "${" + d.Auth.UserIDType + "}"
	topic := spec.DefaultPositionsTopic
	if p := e.Positions; p != nil {
		c, err := addConn(p.Postgres)
		if err != nil {
			return nil, err
		}
		topic = p.Topic
		pd := &positionsData{Ref: p.Postgres.String(), Connector: "positions", Rule: "positions", Table: p.Table, Conn: c}
		pd.RuleSQL = positionsRuleSQL(p.Topic)
		pd.Actions = append(pd.Actions, action{Name: "positions_insert", SQL: "INSERT INTO " + p.Table +
			" (time, device_id, lat, lon, speed_kmh, heading, received_at) VALUES (TO_TIMESTAMP((${ts} :: bigint) / 1000), ${device_id}, ${lat}, ${lon}, ${spd}, ${hdg}, TO_TIMESTAMP((${timestamp} :: bigint) / 1000)) ON CONFLICT (device_id, time) DO NOTHING"})
		if p.LatestTable != "" {
			pd.Actions = append(pd.Actions, action{Name: "latest_position_upsert", SQL: "INSERT INTO " + p.LatestTable +
				" (device_id, time, lat, lon, speed_kmh, heading) VALUES (${device_id}, TO_TIMESTAMP((${ts} :: bigint) / 1000), ${lat}, ${lon}, ${spd}, ${hdg}) ON CONFLICT (device_id) DO UPDATE SET time = EXCLUDED.time, lat = EXCLUDED.lat, lon = EXCLUDED.lon, speed_kmh = EXCLUDED.speed_kmh, heading = EXCLUDED.heading, updated_at = now() WHERE " +
				p.LatestTable + ".time < EXCLUDED.time"})
		}
		d.Positions = pd
	}
	pub, err := erlangString(deviceTopic(topic, who))
	if err != nil {
		return nil, fmt.Errorf("emqx: positions topic: %w", err)
	}
	sub, err := erlangString("$share/backend/" + topic)
	if err != nil {
		return nil, fmt.Errorf("emqx: positions topic: %w", err)
	}
	backendUser, err := erlangString(MQTTBackendUser)
	if err != nil {
		return nil, err
	}
	d.ACL = []string{
		"{allow, all, publish, [" + pub + "]}.",
		"{allow, {username, " + backendUser + "}, subscribe, [" + sub + "]}.",
		"{deny, all}.",
	}
	d.SecretFiles = sortedContents(secrets)
	d.CAFiles = sortedContents(cas)
	return d, nil
}

// positionsRuleSQL selects the payload fields of a tracker position and the
// device id from the topic level the filter's first + stands for (or the
// client id when the filter has none).
func positionsRuleSQL(topic string) string {
	dev := "clientid as device_id"
	for i, lvl := range strings.Split(topic, "/") {
		if lvl == "+" {
			dev = "nth(" + strconv.Itoa(i+1) + ", split(topic, '/')) as device_id"
			break
		}
	}
	return "SELECT " + dev + ", payload.ts as ts, payload.lat as lat, payload.lon as lon, payload.spd as spd, payload.hdg as hdg, timestamp FROM \"" + topic + "\""
}

// deviceTopic is the topic a device may publish to: the filter with its
// first + replaced by the device's own name.
func deviceTopic(topic, who string) string {
	return strings.Replace(topic, "+", who, 1)
}

func sortedContents(m map[string]content) []content {
	out := make([]content, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func newMosquitto(m *spec.Mosquitto, in Inputs) (*mosquittoData, error) {
	ls, err := sortedListeners(m.Listeners, "/etc/mosquitto/certs", in)
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	if in.MQTTBackendPassword == "" {
		return nil, fmt.Errorf("mosquitto: the backend's MQTT password is needed (sealed in state)")
	}
	passwd, err := mosquittoPasswd(in)
	if err != nil {
		return nil, err
	}
	return &mosquittoData{
		AllowAnonymous: m.AllowAnonymous,
		Listeners:      ls,
		ACL: []string{
			"pattern write " + deviceTopic(spec.DefaultPositionsTopic, "%u"),
			"",
			"user " + MQTTBackendUser,
			"topic read " + spec.DefaultPositionsTopic,
		},
		Passwd: passwd,
	}, nil
}

// mosquittoPasswd writes Mosquitto's password file from the device table's
// rows (sorted by name), plus the backend's login from its sealed password
// while the table does not hold it yet (before the first bootstrap).
func mosquittoPasswd(in Inputs) (string, error) {
	lines := map[string]string{}
	for _, u := range in.MQTTUsers {
		if err := devicecred.ValidName(u.Name); err != nil {
			return "", fmt.Errorf("mosquitto: device table: %w", err)
		}
		h, err := u.Hash.Mosquitto()
		if err != nil {
			return "", fmt.Errorf("mosquitto: device table: user %s: %w", u.Name, err)
		}
		lines[u.Name] = h
	}
	if _, ok := lines[MQTTBackendUser]; !ok {
		h, err := MosquittoHash(MQTTBackendUser, in.MQTTBackendPassword)
		if err != nil {
			return "", err
		}
		lines[MQTTBackendUser] = h
	}
	names := make([]string, 0, len(lines))
	for n := range lines {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + ":" + lines[n] + "\n")
	}
	return b.String(), nil
}

// pgURI is a libpq/node-postgres connection URI; the password is escaped.
func pgURI(c pgConn, password string, q url.Values) string {
	u := url.URL{Scheme: "postgresql", User: url.UserPassword(c.Username, password), Host: c.Server, Path: "/" + c.Database}
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// newPowerSync is PowerSync's data; verifyTable is the latest position
// table acco verify reads through the sync stream ("" when it does not).
func newPowerSync(envName string, p *spec.PowerSync, in Inputs, verifyTable string) (*powersyncData, error) {
	if in.PowerSyncAPIToken == "" {
		return nil, fmt.Errorf("powersync: the API token is needed (sealed in state)")
	}
	src, srcDB, srcPW, err := in.conn(p.Source, "", "")
	if err != nil {
		return nil, fmt.Errorf("powersync: %w", err)
	}
	sto, stoDB, stoPW, err := in.conn(p.Storage, "", "")
	if err != nil {
		return nil, fmt.Errorf("powersync: %w", err)
	}
	d := &powersyncData{
		Image:      p.ImageRef(),
		SSLMode:    orDefault(p.SSLMode, spec.DefaultSSLMode),
		Port:       intOr(p.Port, spec.DefaultPowerSyncPort),
		ClientAuth: p.ClientAuth,
		APIToken:   in.PowerSyncAPIToken,
		SourceURI:  pgURI(src, srcPW, nil),
		StorageURI: pgURI(sto, stoPW, nil),
	}
	if p.ClientAuth != nil && len(in.PowerSyncVerifyKey) == ed25519.PublicKeySize {
		d.VerifyKeyX = base64.RawURLEncoding.EncodeToString(in.PowerSyncVerifyKey)
		d.VerifyKeyID = PowerSyncVerifyKeyID
	}
	if p.SyncRules != "" && in.SyncRules == nil {
		return nil, fmt.Errorf("powersync: services.powersync.sync_rules: the file %s was not read", p.SyncRules)
	}
	var app *SyncRules
	if p.SyncRules != "" {
		app = in.SyncRules
	}
	sc, err := syncConfig(envName, app, verifyTable)
	if err != nil {
		return nil, err
	}
	d.SyncConfig = string(sc)
	if t := p.TLS; t != nil {
		if in.PowerSyncTLS.Cert == "" || in.PowerSyncTLS.Key == "" {
			return nil, fmt.Errorf("powersync: services.powersync.tls: no certificate and key given (read from its cert_file and key_file)")
		}
		d.Proxy = &proxyData{
			Port:     intOr(t.Port, spec.DefaultProxyTLSPort),
			Upstream: hostPort("127.0.0.1", d.Port),
			CertPath: NginxCertDir + "/powersync.crt",
			KeyPath:  NginxCertDir + "/powersync.key",
			cert:     in.PowerSyncTLS.Cert,
			key:      in.PowerSyncTLS.Key,
		}
	}
	if d.SSLMode != "disable" {
		d.SourceCA, d.StorageCA = srcDB.CACert, stoDB.CACert
		if d.SourceCA == "" || d.StorageCA == "" {
			return nil, fmt.Errorf("powersync: sslmode %s needs the databases' CA certificates", d.SSLMode)
		}
	}
	return d, nil
}

func newBackend(env *spec.Environment, b *spec.Backend, in Inputs) (*backendData, error) {
	c, db, pw, err := in.conn(b.Postgres, "", "/etc/acco")
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	d := &backendData{Entrypoint: b.Entrypoint, NodeVersion: b.NodeVersion}
	q := url.Values{"sslmode": {"verify-full"}}
	if db.CACert != "" {
		q.Set("sslrootcert", c.CAFile)
		d.CAFiles = []content{{Path: c.CAFile, Content: db.CACert}}
	}
	vars := map[string]string{
		"HOST":         orDefault(b.Bind, spec.DefaultBackendBind),
		"PORT":         strconv.Itoa(intOr(b.Port, spec.DefaultBackendPort)),
		"DATABASE_URL": pgURI(c, pw, q),
	}
	mqttPort := 0
	switch env.Services.Broker {
	case spec.BrokerEMQX:
		d.After = UnitEMQX
		mqttPort = spec.PlainMQTTPort(env.Services.EMQX.Listeners)
	case spec.BrokerMosquitto:
		d.After = UnitMosquitto
		mqttPort = spec.PlainMQTTPort(env.Services.Mosquitto.Listeners)
	}
	if mqttPort != 0 {
		vars["MQTT_URL"] = "mqtt://127.0.0.1:" + strconv.Itoa(mqttPort)
	}
	if in.MQTTBackendPassword != "" {
		vars["MQTT_USERNAME"] = MQTTBackendUser
		vars["MQTT_PASSWORD"] = in.MQTTBackendPassword
	}
	if f := env.DataFlow(); f != nil {
		vars["MQTT_TOPIC"] = f.Topic
		vars["MQTT_SUBSCRIPTION"] = f.Topic
		if env.Services.Broker == spec.BrokerEMQX {
			// What EMQX's ACL lets the backend subscribe to: one shared
			// group, so several backend processes split the load.
			vars["MQTT_SUBSCRIPTION"] = "$share/backend/" + f.Topic
		}
		vars["POSITIONS_TABLE"] = f.Table
		vars["LATEST_TABLE"] = f.LatestTable
		vars["BACKEND_WRITES_POSITIONS"] = strconv.FormatBool(f.BackendWrites)
	}
	for k, v := range b.Env {
		if _, taken := vars[k]; !taken {
			vars[k] = v
		}
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		d.Env = append(d.Env, envVar{Name: k, Value: vars[k]})
	}
	return d, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
