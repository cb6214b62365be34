package spec

import (
	"strings"
	"testing"
)

// TestExposure checks the rule that, outside the test environment, a
// plain-text listener open to the whole internet is refused unless it says
// public_plaintext: true. The environment is the shipped test environment
// (plain MQTT on 1883 and PowerSync on 8080, both open to the world by
// security_groups.app.rules[1] and [2]) renamed.
func TestExposure(t *testing.T) {
	const (
		mqttOpen = "services.emqx.listeners.mqtt: plain-text MQTT (type tcp) on port 1883 is open to the whole internet: security_groups.app.rules[1] admits tcp/1883 from 0.0.0.0/0"
		psOpen   = "services.powersync.port: PowerSync serves plain HTTP on port 8080, which is open to the whole internet: security_groups.app.rules[2] admits tcp/8080 from 0.0.0.0/0"
	)
	asProd := func(e *Environment) {
		e.Name = "prod"
		e.Databases["main"].Protect = true
	}
	acceptPS := func(e *Environment) { e.Services.PowerSync.PublicPlaintext = true }
	tests := []struct {
		name   string
		change func(e *Environment)
		want   string // prefix of the first line of the error; "" for valid
	}{
		{"test may open plain listeners", func(*Environment) {}, ""},
		{"prod refuses plain MQTT open to the world", asProd, mqttOpen},
		{"preprod too", func(e *Environment) { e.Name = "preprod" }, mqttOpen},
		{"the listener accepts it", func(e *Environment) {
			asProd(e)
			e.Services.EMQX.Listeners["mqtt"].PublicPlaintext = true
		}, psOpen},
		{"the message says what to do", asProd, mqttOpen + ", so device passwords and positions would cross the internet in clear; use a TLS listener (type ssl), or close the port to the world (bind: 127.0.0.1, or narrow that rule's from), or set public_plaintext: true on this listener to accept it"},
		{"PowerSync's message says what to do", func(e *Environment) {
			asProd(e)
			e.Services.EMQX.Listeners["mqtt"].PublicPlaintext = true
		}, psOpen + ", so app tokens and synced data would cross the internet in clear; serve the apps over TLS (services.powersync.tls: {port: 443, cert_file, key_file}, a reverse proxy in front of PowerSync) and open that port instead, or narrow that rule's from, or set services.powersync.public_plaintext: true to accept it"},
		{"both accepted", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.Services.EMQX.Listeners["mqtt"].PublicPlaintext = true
		}, ""},
		{"bound to loopback", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.Services.EMQX.Listeners["mqtt"].Bind = "127.0.0.1"
		}, ""},
		{"bound to IPv6 loopback", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.Services.EMQX.Listeners["mqtt"].Bind = "::1"
		}, ""},
		{"rule narrowed", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.SecurityGroups["app"].Rules[1].From = []string{"198.51.100.0/24"}
		}, ""},
		{"IPv6 world only", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.SecurityGroups["app"].Rules[1].From = []string{"::/0"}
		}, "services.emqx.listeners.mqtt: plain-text MQTT (type tcp) on port 1883 is open to the whole internet: security_groups.app.rules[1] admits tcp/1883 from ::/0"},
		{"world through admin_cidrs", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.AdminCIDRs = []string{"0.0.0.0/0"}
			e.SecurityGroups["app"].Rules[1].From = []string{SourceAdminCIDRs}
		}, "services.emqx.listeners.mqtt: plain-text MQTT (type tcp) on port 1883 is open to the whole internet: security_groups.app.rules[1] admits tcp/1883 from 0.0.0.0/0 (in admin_cidrs)"},
		{"a port range", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.SecurityGroups["app"].Rules[1].Ports = []PortRange{{1000, 2000}}
		}, mqttOpen},
		{"udp is not MQTT", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.SecurityGroups["app"].Rules[1].Protocol = "udp"
		}, ""},
		{"plain WebSocket", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.Services.EMQX.Listeners["mqtt"].Type = "ws"
		}, "services.emqx.listeners.mqtt: plain-text MQTT (type ws) on port 1883 is open to the whole internet"},
		{"TLS listener open to the world", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.Services.EMQX.Listeners["mqtt"].Type = "ssl"
			e.Services.EMQX.Listeners["mqtt"].TLS = &TLSFiles{CertFile: "a.crt", KeyFile: "a.key"}
		}, ""},
		{"public_plaintext on a TLS listener", func(e *Environment) {
			e.Services.EMQX.Listeners["mqtt"].Type = "ssl"
			e.Services.EMQX.Listeners["mqtt"].TLS = &TLSFiles{CertFile: "a.crt", KeyFile: "a.key"}
			e.Services.EMQX.Listeners["mqtt"].PublicPlaintext = true
		}, "services.emqx.listeners.mqtt.public_plaintext: applies only to plain-text listeners (type tcp or ws); a listener of type ssl is encrypted: remove public_plaintext"},
		{"a group of another instance", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.SecurityGroups["other"] = e.SecurityGroups["app"]
			e.SecurityGroups["app"] = &SecurityGroup{Rules: e.SecurityGroups["app"].Rules[:1]}
		}, ""},
		{"mosquitto", func(e *Environment) {
			asProd(e)
			acceptPS(e)
			e.Services.Broker, e.Services.EMQX = BrokerMosquitto, nil
			e.Services.Mosquitto = &Mosquitto{Listeners: map[string]*Listener{"mqtt": {Type: "tcp", Bind: "0.0.0.0", Port: 1883}}}
		}, "services.mosquitto.listeners.mqtt: plain-text MQTT (type tcp) on port 1883 is open to the whole internet"},
		{"PowerSync offline is not run", func(e *Environment) {
			asProd(e)
			e.Services.Offline, e.Services.Broker, e.Services.EMQX = true, BrokerMosquitto, nil
			e.Services.Mosquitto = &Mosquitto{Listeners: map[string]*Listener{"mqtt": {Type: "tcp", Bind: "0.0.0.0", Port: 1883, PublicPlaintext: true}}}
		}, ""},
		{"PowerSync behind TLS, 8080 still open", func(e *Environment) {
			asProd(e)
			e.Services.EMQX.Listeners["mqtt"].PublicPlaintext = true
			e.Services.PowerSync.TLS = &ProxyTLS{Port: 443, CertFile: "ps.crt", KeyFile: "ps.key"}
		}, psOpen},
		{"PowerSync behind TLS", func(e *Environment) {
			asProd(e)
			e.Services.EMQX.Listeners["mqtt"].PublicPlaintext = true
			e.Services.PowerSync.TLS = &ProxyTLS{Port: 443, CertFile: "ps.crt", KeyFile: "ps.key"}
			e.SecurityGroups["app"].Rules[2].Ports = []PortRange{{443, 443}}
		}, ""},
		{"proxy port taken", func(e *Environment) {
			e.Services.PowerSync.TLS = &ProxyTLS{Port: 3000, CertFile: "ps.crt", KeyFile: "ps.key"}
		}, "services.powersync.tls.port: port 3000 is already taken on the host by services.backend.port"},
		{"proxy port out of range", func(e *Environment) {
			e.Services.PowerSync.TLS = &ProxyTLS{Port: 70000, CertFile: "ps.crt", KeyFile: "ps.key"}
		}, "services.powersync.tls.port: port 70000 is out of range"},
		{"proxy without a certificate", func(e *Environment) {
			e.Services.PowerSync.TLS = &ProxyTLS{Port: 443}
		}, "services.powersync.tls.cert_file: missing: the certificate chain the apps are served (a local PEM file)"},
		{"proxy key file on two lines", func(e *Environment) {
			e.Services.PowerSync.TLS = &ProxyTLS{Port: 443, CertFile: "ps.crt", KeyFile: "ps.key\nx"}
		}, `services.powersync.tls.key_file: "ps.key\nx" holds a line break`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := builtEnv(t)
			tt.change(e)
			err := e.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("Validate = nil, want %s", tt.want)
			default:
				if first, _, _ := strings.Cut(err.Error(), "\n"); !strings.HasPrefix(first, tt.want) {
					t.Errorf("Validate:\n got: %s\nwant: %s...", err, tt.want)
				}
			}
		})
	}
}

func TestReachablePlainMQTTPort(t *testing.T) {
	ls := map[string]*Listener{
		"local": {Type: "tcp", Bind: "127.0.0.1", Port: 1883},
		"tls":   {Type: "ssl", Bind: "0.0.0.0", Port: 8883},
	}
	if got := ReachablePlainMQTTPort(ls); got != 0 {
		t.Errorf("loopback and TLS only: %d, want 0", got)
	}
	if got := PlainMQTTPort(ls); got != 1883 {
		t.Errorf("PlainMQTTPort = %d, want 1883 (the backend's, on the host)", got)
	}
	ls["public"] = &Listener{Type: "tcp", Bind: "0.0.0.0", Port: 1884}
	if got := ReachablePlainMQTTPort(ls); got != 1884 {
		t.Errorf("with a public plain listener: %d, want 1884", got)
	}
}
