package flows

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/configure"
	"github.com/accoreboot/acco/internal/devicecred"
	"github.com/accoreboot/acco/internal/spec"
)

// Names of the steps of acco verify, in order.
const (
	StepSSH           = "ssh"
	StepReboot        = "reboot"
	StepBackUp        = "host back"
	StepUnits         = "units"
	StepMQTTConnect   = "mqtt connect"
	StepMQTTAuth      = "mqtt authentication"
	StepMQTTPublish   = "mqtt publish"
	StepInsert        = "insert"
	StepLatest        = "latest position"
	StepBackend       = "backend"
	StepPowerSync     = "powersync"
	StepPowerSyncSync = "powersync sync"
	StepCleanup       = "cleanup"
	verifyClientName  = "acco-verify"
)

// VerifyOptions adjust acco verify.
type VerifyOptions struct {
	// Reboot soft-reboots the instance through Nova first.
	Reboot bool
	// Timeout bounds each waiting step (a unit's health, a row's
	// arrival, the host's return after a reboot).
	Timeout time.Duration
	// ConnectWait is how long SSH is retried when it refuses.
	ConnectWait time.Duration
	// Step, when set, is told of each step as it ends.
	Step func(VerifyStep)
}

// VerifyStep is one step of acco verify, timed.
type VerifyStep struct {
	Name     string        `json:"step"`
	OK       bool          `json:"ok"`
	Duration time.Duration `json:"-"`
	// Millis is Duration in milliseconds, for JSON.
	Millis  int64  `json:"duration_ms"`
	Message string `json:"message,omitempty"`
	// Look says what to look at when the step failed.
	Look string `json:"look,omitempty"`
}

// VerifyReport is what acco verify found.
type VerifyReport struct {
	Env   string       `json:"env"`
	OK    bool         `json:"ok"`
	Steps []VerifyStep `json:"steps"`
	// FailedStep names the first step that failed.
	FailedStep string `json:"failed_step,omitempty"`
	// FlowBack is the time from the reboot request to the position
	// being in the database again (with Reboot).
	FlowBack time.Duration `json:"-"`
	// FlowBackSeconds is FlowBack in seconds, for JSON.
	FlowBackSeconds float64 `json:"flow_back_seconds,omitempty"`
}

// ErrVerifyFailed is returned when a step failed; the report names it.
var ErrVerifyFailed = errors.New("verify failed")

type verifyRun struct {
	s      *Session
	opts   VerifyOptions
	rep    *VerifyReport
	in     *Inputs
	host   configure.Host
	runner configure.Runner
}

func (v *verifyRun) step(name string, fn func() (string, string, error)) error {
	return v.stepFrom(name, time.Now(), fn)
}

// stepFrom runs and records a step whose time counts from start.
func (v *verifyRun) stepFrom(name string, start time.Time, fn func() (string, string, error)) error {
	msg, look, err := fn()
	st := VerifyStep{Name: name, OK: err == nil, Duration: time.Since(start), Message: msg, Look: look}
	if err != nil {
		st.Message = v.in.mask(err.Error())
	}
	st.Millis = st.Duration.Milliseconds()
	v.rep.Steps = append(v.rep.Steps, st)
	if v.opts.Step != nil {
		v.opts.Step(st)
	}
	if err != nil {
		v.rep.FailedStep = name
		return fmt.Errorf("%w: %s: %s", ErrVerifyFailed, name, st.Message)
	}
	return nil
}

func (in *Inputs) mask(s string) string { return configure.NewMasker(in.Secrets()).Mask(s) }

// Verify proves the data flow of the environment on its live host: (with
// Reboot, a soft reboot first and the host back with a new boot), every
// unit acco manages healthy, a position published over MQTT as the
// verification device to the instance's public address, the row in the
// positions and latest position tables, the backend's view of it and
// PowerSync's liveness; then the verification rows are removed. It
// returns the report and ErrVerifyFailed (wrapped, naming the step) when a
// step failed.
func (s *Session) Verify(ctx context.Context, signer ssh.Signer, opts VerifyOptions) (*VerifyReport, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	v := &verifyRun{s: s, opts: opts, rep: &VerifyReport{Env: s.Env.Name}}
	err := v.run(ctx, signer)
	if v.runner != nil {
		v.runner.Close()
	}
	var failed []string
	for _, st := range v.rep.Steps {
		if !st.OK {
			failed = append(failed, st.Name)
		}
	}
	if len(failed) > 0 {
		v.rep.FailedStep = failed[0]
		if err == nil || errors.Is(err, ErrVerifyFailed) {
			err = fmt.Errorf("%w: %s failed", ErrVerifyFailed, strings.Join(failed, ", "))
		}
	}
	v.rep.OK = err == nil
	if v.rep.FlowBack > 0 {
		v.rep.FlowBackSeconds = v.rep.FlowBack.Seconds()
	}
	return v.rep, err
}

func (v *verifyRun) run(ctx context.Context, signer ssh.Signer) error {
	s := v.s
	flow := s.Env.DataFlow()
	if flow == nil || !flow.HasDevices {
		return errors.New("verify needs the data flow: a broker that authenticates devices from the device table and writes positions (see services in environments/defaults.yaml)")
	}
	inst, ipv4, err := s.Instance()
	if err != nil {
		return err
	}
	if v.in, err = s.Inputs(ctx); err != nil {
		return err
	}
	if v.in.Admins == nil {
		return withHint(errors.New("the database bootstrap has not run yet"), "run acco configure %s first", s.Env.Name)
	}
	if !s.hasSecret(configure.SecretVerifyDevicePassword) {
		return withHint(errors.New("the verification device has no credential in state yet"), "run acco configure %s first", s.Env.Name)
	}
	password := v.in.MQTTUsers[devicecred.VerifyDevice]
	v.host = configure.ServicesHost(s.Env, ipv4)
	conn := s.Connector(signer, inst.ID, v.opts.ConnectWait, v.in.Secrets())

	var bootID string
	if err := v.step(StepSSH, func() (string, string, error) {
		r, err := conn.Connect(ctx, v.host)
		if err != nil {
			return "", "", err
		}
		v.runner = r
		bootID, err = readBootID(ctx, r)
		return "connected to " + v.host.Addr() + ", host key checked", "", err
	}); err != nil {
		return err
	}
	var rebootAt time.Time
	if v.opts.Reboot {
		if err := v.step(StepReboot, func() (string, string, error) {
			rebootAt = time.Now()
			if err := s.Clients.Compute.RebootServer(ctx, inst.ID, false); err != nil {
				return "", "", err
			}
			v.runner.Close()
			v.runner = nil
			return "soft reboot of " + inst.ID + " requested through Nova", "", nil
		}); err != nil {
			return err
		}
		if err := v.step(StepBackUp, func() (string, string, error) {
			return v.waitBack(ctx, conn, inst.ID, bootID)
		}); err != nil {
			return err
		}
	}
	desired, err := configure.Services(s.Env, v.in.Templates, configure.ServicesOptions{NoArtifact: true, Offline: s.Env.Services.Offline})
	if err != nil {
		return err
	}
	// A unit that is down is named, and the flow is still tried: what a
	// tracker would meet is the point.
	_ = v.step(StepUnits, func() (string, string, error) {
		// After a reboot units may still be starting: wait for them. Else
		// they are up now or they are not.
		wait := 10 * time.Second
		if v.opts.Reboot {
			wait = v.opts.Timeout
		}
		var names []string
		units := make([]configure.Unit, len(desired.Units))
		for i, u := range desired.Units {
			names = append(names, u.Name)
			u.Health.Timeout = wait
			units[i] = u
		}
		err := configure.CheckHealth(ctx, v.runner, v.host, units, wait, v.in.Secrets())
		return strings.Join(names, ", ") + " active and healthy", "journalctl -u UNIT on the host; acco configure " + s.Env.Name + " starts what is stopped", err
	})

	// Publish as a tracker does, from here to the instance's public address.
	ts := time.Now().UnixMilli()
	// A position of its own each run, so that what is found is this one.
	lat, lon := 45.764+float64(ts%100000)/1e7, 4.8357
	payload, _ := json.Marshal(map[string]any{"ts": ts, "lat": lat, "lon": lon, "spd": 12.5, "hdg": 90})
	topic := deviceTopic(flow.Topic, devicecred.VerifyDevice)
	broker, tlsConf, err := v.brokerURL(ipv4)
	if err != nil {
		return err
	}
	var client mqtt.Client
	defer func() {
		if client != nil {
			client.Disconnect(250)
		}
	}()
	// CONNECT as a tracker does. The step is named after what failed: the
	// connection (a broker down answers nothing, or resets) or the login.
	start := time.Now()
	o := mqtt.NewClientOptions().AddBroker(broker).SetClientID(verifyClientName + "-" + strconv.FormatInt(ts, 36)).
		SetUsername(devicecred.VerifyDevice).SetPassword(password).SetCleanSession(true).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(15 * time.Second).SetProtocolVersion(4)
	if tlsConf != nil {
		o.SetTLSConfig(tlsConf)
	}
	client = mqtt.NewClient(o)
	tok := client.Connect()
	var connErr error
	if !waitToken(ctx, tok, 30*time.Second) {
		connErr = errors.New("the broker did not answer CONNECT within 30s")
	} else {
		connErr = tok.Error()
	}
	name, look := StepMQTTConnect, "is the broker running (systemctl status on the host) and its port open in the security group?"
	if errors.Is(connErr, packets.ErrorRefusedNotAuthorised) || errors.Is(connErr, packets.ErrorRefusedBadUsernameOrPassword) {
		name = StepMQTTAuth
		look = "the device " + devicecred.VerifyDevice + " is missing from the device table or its hash does not match (acco device list " + s.Env.Name + "; acco configure " + s.Env.Name + " makes it again)"
		connErr = fmt.Errorf("the broker refused %s: %w", devicecred.VerifyDevice, connErr)
	} else if connErr != nil {
		connErr = fmt.Errorf("no MQTT session with %s: %w", strings.TrimPrefix(strings.TrimPrefix(broker, "tcp://"), "ssl://"), connErr)
	}
	if err := v.stepFrom(name, start, func() (string, string, error) {
		return "connected to " + broker + " and logged in as " + devicecred.VerifyDevice, look, connErr
	}); err != nil {
		return err
	}
	if err := v.step(StepMQTTPublish, func() (string, string, error) {
		tok := client.Publish(topic, 1, false, payload)
		if !waitToken(ctx, tok, 30*time.Second) {
			return "", "", errors.New("no PUBACK within 30s")
		}
		return "published to " + topic + " (QoS 1, acknowledged)", "", tok.Error()
	}); err != nil {
		return err
	}

	db, err := v.db(ctx, flow.DB)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	defer v.cleanup(ctx, flow)
	writer := "EMQX's rule (journalctl -u emqx; the emqx user's grants)"
	if flow.BackendWrites {
		writer = "the backend (journalctl -u acco-backend; the backend user's grants: acco configure " + s.Env.Name + " --check)"
	}
	found := func(table string) func() (string, string, error) {
		return func() (string, string, error) {
			_, _, q := tableParts(table)
			sql := "SELECT EXISTS (SELECT 1 FROM " + q + " WHERE device_id = $1 AND abs(extract(epoch FROM time) - $2::double precision / 1000) < 1)"
			err := poll(ctx, v.opts.Timeout, func() (bool, error) {
				var ok bool
				err := db.QueryRow(ctx, sql, devicecred.VerifyDevice, ts).Scan(&ok)
				return ok, err
			})
			if err != nil {
				why := ""
				if e := v.backendError(ctx); e != "" {
					why = " (the backend says: " + e + ")"
				}
				return "", "it is written by " + writer, fmt.Errorf("the position did not reach %s within %s%s: %w", table, v.opts.Timeout, why, err)
			}
			return "the position is in " + table, "", nil
		}
	}
	if err := v.step(StepInsert, found(flow.Table)); err != nil {
		return err
	}
	if !rebootAt.IsZero() {
		v.rep.FlowBack = time.Since(rebootAt)
	}
	if flow.LatestTable != "" {
		if err := v.step(StepLatest, found(flow.LatestTable)); err != nil {
			return err
		}
	}
	if p := s.Env.Services.Backend; p != nil && p.VerifyURLPath != "" {
		if err := v.step(StepBackend, func() (string, string, error) { return v.backendSaw(ctx, ts) }); err != nil {
			return err
		}
	}
	if p := s.Env.Services.PowerSync; p != nil && !s.Env.Services.Offline {
		port := p.Port
		if port == 0 {
			port = spec.DefaultPowerSyncPort
		}
		if err := v.step(StepPowerSync, func() (string, string, error) {
			code, _, err := v.httpGet(ctx, "127.0.0.1:"+strconv.Itoa(port), "/probes/liveness")
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("liveness probe answered %d", code)
			}
			return "PowerSync's liveness probe answers", "journalctl -u powersync on the host", err
		}); err != nil {
			return err
		}
		if ca := p.ClientAuth; ca != nil && len(ca.Audience) > 0 && flow.LatestTable != "" && slices.Contains(p.Tables, flow.LatestTable) {
			if err := v.step(StepPowerSyncSync, func() (string, string, error) {
				look := "journalctl -u powersync on the host (replication from the publication, the sync config); acco configure " + s.Env.Name + " puts acco's key in client_auth"
				if !s.hasSecret(configure.SecretPowerSyncVerifyKey) {
					return "", look, errors.New("PowerSync does not know acco verify's key yet")
				}
				token := clientToken(v.in.powerSyncKey, devicecred.VerifyDevice, ca.Audience[0], time.Now(), 5*time.Minute)
				sctx, cancel := context.WithTimeout(ctx, v.opts.Timeout)
				defer cancel()
				err := syncSees(sctx, v.runner.DialContext, "127.0.0.1:"+strconv.Itoa(port), token, flow.LatestTable, devicecred.VerifyDevice, samePosition(lat, lon))
				return "an app's sync stream serves the new row of " + flow.LatestTable, look, err
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// hasSecret reports whether a service secret is recorded in state.
func (s *Session) hasSecret(name string) bool {
	r, ok := s.State.Resource(configure.ServiceSecretsAddress)
	if !ok {
		return false
	}
	_, ok = r.Secrets[name]
	return ok
}

func readBootID(ctx context.Context, r configure.Runner) (string, error) {
	out, err := r.Run(ctx, "cat /proc/sys/kernel/random/boot_id", nil)
	return strings.TrimSpace(string(out)), err
}

// waitBack waits for Nova to report the server ACTIVE and for SSH to
// answer from a new boot.
func (v *verifyRun) waitBack(ctx context.Context, conn *configure.SSHConnector, id, oldBoot string) (string, string, error) {
	deadline := time.Now().Add(v.opts.Timeout + v.opts.ConnectWait)
	look := "the instance's console (openstack console log show " + id + ")"
	for {
		if time.Now().After(deadline) {
			return "", look, fmt.Errorf("the host did not come back from its reboot within %s", v.opts.Timeout+v.opts.ConnectWait)
		}
		srv, err := v.s.Clients.Compute.GetServer(ctx, id)
		if err == nil && srv.Status == "ACTIVE" {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			r, err := conn.Connect(cctx, v.host)
			cancel()
			if err == nil {
				boot, err := readBootID(ctx, r)
				if err == nil && boot != "" && boot != oldBoot {
					v.runner = r
					return "ACTIVE, SSH answers from a new boot (host key checked)", "", nil
				}
				r.Close()
			}
		}
		select {
		case <-ctx.Done():
			return "", look, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// brokerURL is where the verification device connects: the broker's plain
// MQTT listener that devices reach (not one bound to loopback, which only
// the backend uses), or else its TLS listener, the certificate checked
// against the listener's own certificate chain and the name it is made
// for (see tlsServerName).
func (v *verifyRun) brokerURL(ipv4 string) (string, *tls.Config, error) {
	ls := v.s.Env.BrokerListeners()
	if p := spec.ReachablePlainMQTTPort(ls); p != 0 {
		return "tcp://" + net.JoinHostPort(ipv4, strconv.Itoa(p)), nil, nil
	}
	names := make([]string, 0, len(ls))
	for name := range ls {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		l := ls[name]
		if l == nil || l.Type != "ssl" {
			continue
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		chain := v.in.Templates.TLS[name].Cert
		pool.AppendCertsFromPEM([]byte(chain))
		return "ssl://" + net.JoinHostPort(ipv4, strconv.Itoa(l.Port)), &tls.Config{RootCAs: pool, ServerName: tlsServerName(chain, ipv4), MinVersion: tls.VersionTLS12}, nil
	}
	return "", nil, errors.New("the broker has no tcp listener that devices reach and no ssl listener to publish to")
}

// tlsServerName is the name to check a listener's certificate against when
// connecting to it at ipv4: ipv4 when the certificate (the first of the
// PEM chain) is made for that address or cannot be read, else its first DNS
// name, which is what the trackers connect to.
func tlsServerName(chain, ipv4 string) string {
	block, _ := pem.Decode([]byte(chain))
	if block == nil {
		return ipv4
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || len(cert.DNSNames) == 0 || cert.VerifyHostname(ipv4) == nil {
		return ipv4
	}
	return cert.DNSNames[0]
}

// db logs in to the flow's database as the cluster's admin, through the
// host.
func (v *verifyRun) db(ctx context.Context, ref spec.PostgresRef) (*pgx.Conn, error) {
	admin, ok := v.in.Admins[ref.Cluster]
	if !ok {
		return nil, fmt.Errorf("database %s: no admin login in state", ref.Cluster)
	}
	c, err := configure.ConnectDB(ctx, v.runner.DialContext, admin, ref.Database)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s/%s through %s: %w", ref.Cluster, ref.Database, v.host.Name, err)
	}
	return c, nil
}

// cleanup removes the verification device's rows, so that apps never see
// them (a step of its own; a failure is reported, not fatal).
func (v *verifyRun) cleanup(ctx context.Context, flow *spec.Flow) {
	ctx = context.WithoutCancel(ctx)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = v.step(StepCleanup, func() (string, string, error) {
		db, err := v.db(cctx, flow.DB)
		if err != nil {
			return "", "", err
		}
		defer db.Close(ctx)
		n := int64(0)
		for _, t := range []string{flow.Table, flow.LatestTable} {
			if t == "" {
				continue
			}
			_, _, q := tableParts(t)
			tag, err := db.Exec(cctx, "DELETE FROM "+q+" WHERE device_id = $1", devicecred.VerifyDevice)
			if err != nil {
				return "", "", err
			}
			n += tag.RowsAffected()
		}
		return fmt.Sprintf("%d verification rows removed", n), "", nil
	})
}

// backendSaw asks the backend, through the host, for the last position it
// saw of the verification device, until it is the one just published.
func (v *verifyRun) backendSaw(ctx context.Context, ts int64) (string, string, error) {
	b := v.s.Env.Services.Backend
	addr := net.JoinHostPort(orDefault(b.Bind, spec.DefaultBackendBind), strconv.Itoa(intOr(b.Port, spec.DefaultBackendPort)))
	path := strings.Replace(b.VerifyURLPath, "{device}", devicecred.VerifyDevice, 1)
	look := "journalctl -u acco-backend on the host; the backend must subscribe to the tracker topic and answer " + b.VerifyURLPath
	var last string
	err := poll(ctx, v.opts.Timeout, func() (bool, error) {
		code, body, err := v.httpGet(ctx, addr, path)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		var got struct {
			Seen struct {
				TS json.Number `json:"ts"`
			} `json:"seen"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &got) != nil {
			last = fmt.Sprintf("GET %s answered %d", path, code)
			return false, nil
		}
		if got.Seen.TS.String() == strconv.FormatInt(ts, 10) {
			return true, nil
		}
		last = "the backend's last position of " + devicecred.VerifyDevice + " is an older one"
		return false, nil
	})
	if err != nil {
		return "", look, fmt.Errorf("%s within %s: %s", "the backend did not report the position", v.opts.Timeout, last)
	}
	return "GET " + path + " reports the position", "", nil
}

// backendError is the backend's own account of a failed insert, if it
// gives one ("" otherwise).
func (v *verifyRun) backendError(ctx context.Context) string {
	b := v.s.Env.Services.Backend
	if b == nil || b.VerifyURLPath == "" || v.runner == nil {
		return ""
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addr := net.JoinHostPort(orDefault(b.Bind, spec.DefaultBackendBind), strconv.Itoa(intOr(b.Port, spec.DefaultBackendPort)))
	_, body, err := v.httpGet(cctx, addr, strings.Replace(b.VerifyURLPath, "{device}", devicecred.VerifyDevice, 1))
	if err != nil {
		return ""
	}
	var got struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &got)
	return got.Error
}

// httpGet makes a GET to addr (as seen from the host) through the SSH
// connection.
func (v *verifyRun) httpGet(ctx context.Context, addr, path string) (int, []byte, error) {
	c := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return v.runner.DialContext(ctx, network, addr)
			},
			DisableKeepAlives: true,
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, err
}

// poll calls fn every half second until it reports true, fails, or timeout
// passes.
func poll(ctx context.Context, timeout time.Duration, fn func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := fn()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func waitToken(ctx context.Context, t mqtt.Token, timeout time.Duration) bool {
	select {
	case <-t.Done():
		return true
	case <-ctx.Done():
		return false
	case <-time.After(timeout):
		return false
	}
}

// tableParts splits and quotes table or schema.table.
func tableParts(t string) (schema, table, quoted string) {
	schema, table = "public", t
	if s, tb, ok := strings.Cut(t, "."); ok {
		schema, table = s, tb
	}
	return schema, table, pgx.Identifier{schema, table}.Sanitize()
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
