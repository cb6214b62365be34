package spec

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

// builtEnv returns the shipped test environment as if built in code: no
// positions, so problems carry only a key path.
func builtEnv(t *testing.T) *Environment {
	t.Helper()
	e, err := Load(shippedDir, "test", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	e.pos, e.Files = nil, nil
	return e
}

// fakeKey builds a syntactically valid public key of the given type.
func fakeKey(typ string) string {
	blob := binary.BigEndian.AppendUint32(nil, uint32(len(typ)))
	blob = append(blob, typ...)
	blob = binary.BigEndian.AppendUint32(blob, 32)
	blob = append(blob, make([]byte, 32)...)
	return typ + " " + base64.StdEncoding.EncodeToString(blob) + " deploy@acco"
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *Environment)
		want   string // first line of the error; "" for valid
	}{
		{"shipped test is valid", func(*Environment) {}, ""},
		{"PostgreSQL 18 without timescaledb", func(e *Environment) {
			e.Databases["main"].Version = "18"
			e.Databases["main"].Extensions = nil
		}, ""},
		{"PostgreSQL 18 with timescaledb", func(e *Environment) {
			e.Databases["main"].Version = "18"
		}, `databases.main.version: PostgreSQL 18 is not allowed with extension timescaledb: OVH offers TimescaleDB on PostgreSQL up to 17, not yet on 18; set version: "17"`},
		{"PostgreSQL 13", func(e *Environment) {
			e.Databases["main"].Version = "13"
		}, "databases.main.version: PostgreSQL 13 is not offered by OVH: use 14 or later"},
		{"Gen 3 plan", func(e *Environment) {
			db := e.Databases["main"]
			db.Plan, db.Flavor, db.Nodes = "production", "b3-8", 2
		}, ""},
		{"Gen 3 plan with one node", func(e *Environment) {
			db := e.Databases["main"]
			db.Plan, db.Flavor, db.Nodes = "production", "b3-8", 1
		}, "databases.main.nodes: plan production runs at least 2 nodes; set nodes: 2"},
		{"EMQX 5.9.0", func(e *Environment) { e.Services.EMQX.Version = "5.9.0" }, ""},
		{"EMQX 6.0", func(e *Environment) { e.Services.EMQX.Version = "6.0" }, ""},
		{"EMQX 5.8 under mosquitto is not checked", func(e *Environment) {
			e.Services.EMQX.Version = "5.8.9"
			e.Services.Broker = BrokerMosquitto
			e.Services.Mosquitto = &Mosquitto{Listeners: map[string]*Listener{"mqtt": {Type: "tcp", Bind: "0.0.0.0", Port: 1883}}}
		}, ""},
		{"EMQX version not a version", func(e *Environment) { e.Services.EMQX.Version = "latest" }, `services.emqx.version: "latest" is not an EMQX version such as 5.10.4`},
		{"mosquitto anonymous in prod", func(e *Environment) {
			e.Name = "prod"
			e.Databases["main"].Protect = true
			e.Services.Broker = BrokerMosquitto
			e.Services.Mosquitto = &Mosquitto{AllowAnonymous: true, Listeners: map[string]*Listener{"mqtt": {Type: "tcp", Bind: "0.0.0.0", Port: 1883}}}
		}, "services.mosquitto.allow_anonymous: prod must authenticate devices; set allow_anonymous: false"},
		{"prod unprotected on purpose", func(e *Environment) {
			e.Name = "prod"
			e.AllowProdDatabaseDestroy = true
			// test's plain listeners, accepted on purpose outside test
			e.Services.EMQX.Listeners["mqtt"].PublicPlaintext = true
			e.Services.PowerSync.PublicPlaintext = true
		}, ""},
		{"on_demand and protect", func(e *Environment) {
			db := e.Databases["main"]
			db.OnDemand, db.Protect = true, true
		}, "databases.main.on_demand: on_demand stops the database by deleting the cluster after a dump (OVH cannot stop one), which protect forbids; set one of them to false"},
		{"public key inline", func(e *Environment) {
			e.Keypairs["deploy"] = &Keypair{PublicKey: fakeKey("ssh-ed25519")}
		}, ""},
		{"public key with the wrong type", func(e *Environment) {
			k := fakeKey("ssh-ed25519")
			e.Keypairs["deploy"] = &Keypair{PublicKey: "ssh-rsa" + strings.TrimPrefix(k, "ssh-ed25519")}
		}, "keypairs.deploy.public_key: not a public key: the key data is not a ssh-rsa key"},
		{"public key and file", func(e *Environment) {
			e.Keypairs["deploy"].PublicKey = fakeKey("ssh-ed25519")
		}, "keypairs.deploy.public_key: set public_key or public_key_file, not both"},
		{"keypair without a key", func(e *Environment) {
			e.Keypairs["deploy"] = &Keypair{}
		}, "keypairs.deploy: missing: set public_key_file (a local .pub file, read when planning) or public_key"},
		{"device credentials in PostgreSQL need a reference", func(e *Environment) {
			e.Services.EMQX.DeviceAuth.Postgres = nil
		}, "services.emqx.device_auth.postgres: missing: where device credentials live (cluster, database, user), since backend is postgresql"},
		{"PowerSync storage user cannot create", func(e *Environment) {
			e.Databases["main"].Users["powersync"].Grants = e.Databases["main"].Users["powersync"].Grants[:1]
		}, "services.powersync.storage.user: user powersync needs create on database powersync_storage (PowerSync creates its schema powersync there); add a grant {database: powersync_storage, privileges: [create]}"},
		{"EMQX user cannot insert", func(e *Environment) {
			e.Databases["main"].Users["emqx"].Grants = nil
		}, "services.emqx.positions.table: user emqx has no insert grant on positions in database acco; add it to databases.main.users.emqx.grants"},
		{"grant to every table", func(e *Environment) {
			e.Databases["main"].Users["emqx"].Grants = []Grant{{Database: "acco", Tables: []string{"public.*"}, Privileges: []string{"all"}}}
		}, ""},
		{"odd Node.js", func(e *Environment) { e.Services.Backend.NodeVersion = 23 }, "services.backend.node_version: Node.js 23 is never a long-term-support release; use an even major such as 24"},
		{"entrypoint outside the artifact", func(e *Environment) { e.Services.Backend.Entrypoint = "../server.js" }, `services.backend.entrypoint: "../server.js" must be a path inside the artifact, such as dist/server.js`},
		{"artifact not an archive", func(e *Environment) { e.Services.Backend.Artifact = "backend.zip" }, `services.backend.artifact: "backend.zip" is not a .tar.gz or .tgz archive`},
		{"tcp listener with TLS", func(e *Environment) {
			e.Services.EMQX.Listeners["mqtt"].TLS = &TLSFiles{CertFile: "a", KeyFile: "b"}
		}, "services.emqx.listeners.mqtt.tls: listeners of type tcp have no TLS; use type ssl (or wss) for TLS"},
		{"dashboard bind", func(e *Environment) { e.Services.EMQX.Dashboard.Bind = "localhost" }, `services.emqx.dashboard.bind: "localhost" is not an IP address such as 0.0.0.0 or 127.0.0.1`},
		{"port shared with EMQX's Erlang distribution", func(e *Environment) { e.Services.Backend.Port = 4370 }, "services.backend.port: port 4370 is already taken on the host by EMQX's Erlang distribution (always on)"},
		{"bucket like an IP address", func(e *Environment) { e.State.Bucket = "192.168.1.10" }, `state.bucket: invalid bucket name "192.168.1.10": a bucket name cannot look like an IP address`},
		{"bucket too short", func(e *Environment) { e.State.Bucket = "ab" }, `state.bucket: invalid bucket name "ab": a bucket name has 3 to 63 characters`},
		{"local S3 over http", func(e *Environment) {
			e.State.Endpoint, e.State.PathStyle = "http://127.0.0.1:9000", true
		}, ""},
		{"endpoint with a path", func(e *Environment) { e.State.Endpoint = "https://s3.gra.io.cloud.ovh.net/bucket" }, `state.endpoint: "https://s3.gra.io.cloud.ovh.net/bucket" is not an endpoint URL such as https://s3.gra.io.cloud.ovh.net`},
		{"state region upper case", func(e *Environment) { e.State.Region = "GRA" }, `state.region: "GRA" is not an Object Storage region: they are lower case, such as gra or eu-west-par`},
		{"IPv6 source", func(e *Environment) {
			e.SecurityGroups["app"].Rules[1].From = []string{"2001:db8::/32"}
		}, ""},
		{"rule from an empty admin_cidrs", func(e *Environment) { e.AdminCIDRs = nil }, "security_groups.app.rules[0].from[0]: admin_cidrs is empty: list the operators' networks at the top level"},
		{"udp and icmp rules", func(e *Environment) {
			sg := e.SecurityGroups["app"]
			sg.Rules = append(sg.Rules,
				Rule{Protocol: "udp", Ports: []PortRange{{5683, 5684}}, From: []string{"0.0.0.0/0"}},
				Rule{Protocol: "icmp", From: []string{"0.0.0.0/0"}})
		}, ""},
		{"tcp rule without ports", func(e *Environment) {
			e.SecurityGroups["app"].Rules[1].Ports = nil
		}, `security_groups.app.rules[1].ports: missing: the ports to open, e.g. [22] or ["8000-8100"]`},
		{"instance without security groups", func(e *Environment) { e.Instances["app"].SecurityGroups = nil }, "instances.app.security_groups: missing: at least one security group (they replace OVH's allow-all default group)"},
		{"misspelt keypair reference", func(e *Environment) { e.Instances["app"].Keypair = "deplo" }, `instances.app.keypair: no keypair "deplo"; did you mean deploy?`},
		{"nil entries", func(e *Environment) {
			e.Instances["web"] = nil
		}, "instances.web.flavor: missing: the OpenStack flavor, e.g. d2-4 or b3-8"},
		{"empty database allow-list", func(e *Environment) { e.Databases["main"].AllowFrom = nil }, "databases.main.allow_from: missing: the database is unreachable until its allow-list admits something, e.g. [instance.app]"},
		{"non-positive timeout", func(e *Environment) { e.Databases["main"].Timeouts.Delete = -time.Minute }, "databases.main.timeouts.delete: must be a positive duration, such as 90s or 40m"},
		{"schema and tables in one grant", func(e *Environment) {
			e.Databases["main"].Users["backend"].Grants[0].Schema = "public"
			e.Databases["main"].Users["backend"].Grants[0].Tables = []string{"devices"}
		}, "databases.main.users.backend.grants[0].schema: set schema (schema privileges) or tables (table privileges), not both; qualify tables as schema.table"},
		{"reserved logical database", func(e *Environment) {
			e.Databases["main"].LogicalDatabases = append(e.Databases["main"].LogicalDatabases, "defaultdb")
		}, "databases.main.logical_databases[2]: defaultdb exists in every OVH cluster and is not managed by acco; pick another name"},
		{"unknown engine", func(e *Environment) { e.Databases["main"].Engine = "mysql" }, `databases.main.engine: engine "mysql" is not supported: acco manages postgresql`},
		{"PowerSync image with a tag", func(e *Environment) { e.Services.PowerSync.Image = "journeyapps/powersync-service:1.25.0" }, `services.powersync.image: "journeyapps/powersync-service:1.25.0": give the repository only; the version goes in tag`},
		{"PowerSync sslmode", func(e *Environment) { e.Services.PowerSync.SSLMode = "require" }, `services.powersync.sslmode: unknown value "require": use one of verify-full, verify-ca, disable`},
		{"missing backend", func(e *Environment) { e.Services.Backend = nil }, "services.backend: missing: the Node.js backend settings"},
		{"missing positions rule", func(e *Environment) { e.Services.EMQX.Positions = nil }, "services.emqx.positions: missing: the rule that writes tracker positions to PostgreSQL (topic, postgres, table)"},
		{"topic # not last", func(e *Environment) { e.Services.EMQX.Positions.Topic = "trackers/#/position" }, `services.emqx.positions.topic: "trackers/#/position" is not an MQTT topic filter: # must be the last level`},
		{"region with a numeric part", func(e *Environment) { e.Region = "US-EAST-VA-1" }, ""},
		{"3-AZ database region", func(e *Environment) { e.Databases["main"].Region = "EU-WEST-PAR" }, ""},
		{"state region with dashes", func(e *Environment) {
			e.State.Region, e.State.Endpoint = "eu-west-par", "https://s3.eu-west-par.io.cloud.ovh.net"
		}, ""},
		{"env name", func(e *Environment) { e.Name = "pre_prod" }, `name: invalid environment name "pre_prod": use 1 to 20 lowercase letters, digits and dashes, starting with a letter and not ending with a dash`},
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
				if first, _, _ := strings.Cut(err.Error(), "\n"); first != tt.want {
					t.Errorf("Validate:\n got: %s\nwant: %s", err, tt.want)
				}
			}
		})
	}
}

func TestValidateZeroEnvironment(t *testing.T) {
	err := (&Environment{}).Validate()
	if err == nil {
		t.Fatal("Validate of an empty Environment = nil")
	}
	for _, want := range []string{"name: missing", "project: missing", "state.bucket: missing", "services.host: missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate of an empty Environment does not report %q:\n%v", want, err)
		}
	}
}
