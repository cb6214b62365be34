package spec

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateRefusesHostileValues sets values that would add a line, a
// command or a key where they land (the backend's unit, its environment
// file, EMQX's SQL and ACL, Mosquitto's configuration, authorized_keys)
// and checks that Validate refuses each, once, at its key path.
func TestValidateRefusesHostileValues(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *Environment)
		path   string
		want   string // the start of the message
	}{
		{"entrypoint adds a root ExecStartPre", func(e *Environment) {
			e.Services.Backend.Entrypoint = "dist/server.js\nExecStartPre=+/bin/sh -c 'id > /pwned' #.js"
		}, "services.backend.entrypoint", `"dist/server.js\nExecStartPre=+/bin/sh -c 'id > /pwned' #.js" holds a line break (U+000A at offset 14)`},
		{"entrypoint with a command substitution", func(e *Environment) {
			e.Services.Backend.Entrypoint = "dist/$(id>pwned).js"
		}, "services.backend.entrypoint", `"dist/$(id>pwned).js" is not a relative path`},
		{"entrypoint with a specifier and a second argument", func(e *Environment) {
			e.Services.Backend.Entrypoint = "dist/%n --inspect=0.0.0.0 x.js"
		}, "services.backend.entrypoint", `"dist/%n --inspect=0.0.0.0 x.js" is not a relative path`},
		{"image breaks out of the unit's command", func(e *Environment) {
			e.Services.PowerSync.Image = "journeyapps/powersync-service';id>pwned;'"
		}, "services.powersync.image", `"journeyapps/powersync-service';id>pwned;'" is not an image repository`},
		{"env value adds a variable", func(e *Environment) {
			e.Services.Backend.Env["LOG_LEVEL"] = "debug\nNODE_OPTIONS=--require /tmp/x.js"
		}, "services.backend.env.LOG_LEVEL", `"debug\nNODE_OPTIONS=--require /tmp/x.js" holds a line break`},
		{"env value that is not UTF-8", func(e *Environment) {
			e.Services.Backend.Env["LOG_LEVEL"] = "debug\xff"
		}, "services.backend.env.LOG_LEVEL", `"debug\xff" is not valid UTF-8`},
		{"env name with a line break", func(e *Environment) {
			e.Services.Backend.Env["X\nY"] = "1"
		}, "services.backend.env.X\nY", `the name "X\nY" holds a line break`},
		{"database user name with a tab", func(e *Environment) {
			db := e.Databases["main"]
			db.Users["a\tb"] = db.Users["backend"]
		}, "databases.main.users.a\tb", `the name "a\tb" holds the control character U+0009`},
		{"public key with a second authorized key", func(e *Environment) {
			e.Keypairs["deploy"] = &Keypair{PublicKey: fakeKey("ssh-ed25519") + "\n" + fakeKey("ssh-rsa")}
		}, "keypairs.deploy.public_key", `"ssh-ed25519 `},
		{"security group description with an escape sequence", func(e *Environment) {
			e.SecurityGroups["app"].Description = "app \x1b[2J"
		}, "security_groups.app.description", `"app \x1b[2J" holds the control character U+001B`},
		{"rule description with a NEL", func(e *Environment) {
			e.SecurityGroups["app"].Rules[0].Description = "ssh\u0085x"
		}, "security_groups.app.rules[0].description", `"ssh\u0085x" holds the control character U+0085`},
		{"instance image with a line separator", func(e *Environment) {
			e.Instances["app"].Image = "Debian 12\u2028x"
		}, "instances.app.image", `"Debian 12\u2028x" holds a Unicode line separator`},
		{"listener bind with a zone", func(e *Environment) {
			e.Services.EMQX.Listeners["mqtt"].Bind = `fe80::1%x require_certificate "y`
		}, "services.emqx.listeners.mqtt.bind", `"fe80::1%x require_certificate \"y" has an IPv6 zone (%x require_certificate "y): write the address alone`},
		{"topic that ends EMQX's SQL string", func(e *Environment) {
			e.Services.EMQX.Positions.Topic = `trackers/+/position" WHERE "1`
		}, "services.emqx.positions.topic", `"trackers/+/position\" WHERE \"1" is not a topic filter of letters`},
		{"topic with a placeholder", func(e *Environment) {
			e.Services.EMQX.Positions.Topic = "trackers/${username}/#"
		}, "services.emqx.positions.topic", `"trackers/${username}/#" is not a topic filter of letters`},
		{"endpoint host with a quote", func(e *Environment) {
			e.State.Endpoint = "https://s3.gra.io.cloud.ovh.net'"
		}, "state.endpoint", `"https://s3.gra.io.cloud.ovh.net'" is not an endpoint URL such as https://s3.gra.io.cloud.ovh.net (its host is not a DNS name or an IP address)`},
		{"JWKS host with a dollar", func(e *Environment) {
			e.Services.PowerSync.ClientAuth.JWKSURI = "http://127.0.0.1$HOME:3000/jwks.json"
		}, "services.powersync.client_auth.jwks_uri", `"http://127.0.0.1$HOME:3000/jwks.json" is not an http(s) URL`},
		{"audience with a line break", func(e *Environment) {
			e.Services.PowerSync.ClientAuth.Audience = []string{"acco-app", "x\nkey: value"}
		}, "services.powersync.client_auth.audience[1]", `"x\nkey: value" holds a line break`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := builtEnv(t)
			tt.change(e)
			err := e.Validate()
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Validate() = %v, want an ErrorList with a problem at %s", err, tt.path)
			}
			var at []*Error
			for _, p := range list {
				if p.Path == tt.path {
					at = append(at, p)
				}
			}
			if len(at) != 1 {
				t.Fatalf("%d problems at %q, want 1:\n%v", len(at), tt.path, err)
			}
			if !strings.HasPrefix(at[0].Message, tt.want) {
				t.Errorf("problem at %s:\n got: %s\nwant: %s...", tt.path, at[0].Message, tt.want)
			}
		})
	}
}

// TestLoadNamesHostileValues writes hostile values in YAML (escaped in
// double-quoted scalars, in block scalars, and through ${VAR}) and checks
// that the error names the file, line, column and key path.
func TestLoadNamesHostileValues(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		vars map[string]string
		want string
	}{
		{"entrypoint with an escaped line break", minimalEnv + `
  backend:
    entrypoint: "dist/server.js\nExecStartPre=+/bin/sh -c id #.js"`, nil,
			`environments/test.yaml:18:17: services.backend.entrypoint: "dist/server.js\nExecStartPre=+/bin/sh -c id #.js" holds a line break`},
		{"env value in a block scalar", minimalEnv + `
  backend:
    env:
      LOG_LEVEL: |
        debug
        NODE_OPTIONS=--require /tmp/x.js`, nil,
			`environments/test.yaml:19:18: services.backend.env.LOG_LEVEL: "debug\nNODE_OPTIONS=--require /tmp/x.js" holds a line break`},
		{"env value from the environment", minimalEnv + `
  backend:
    env:
      LOG_LEVEL: ${LEVEL}`, map[string]string{"LEVEL": "debug\r\nX=1"},
			`environments/test.yaml:19:18: services.backend.env.LOG_LEVEL: "debug\r\nX=1" holds a line break`},
		{"database user name with a tab", strings.Replace(minimalEnv, "    nodes: 1\n", "    nodes: 1\n    users:\n      \"ops\\tx\": {}\n", 1), nil,
			`environments/test.yaml:13:7: databases.main.users.ops	x: the name "ops\tx" holds the control character U+0009`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(shippedFS(t, map[string]string{"test.yaml": tt.yaml}), "environments", "test", mapLookup(tt.vars))
			if err == nil {
				t.Fatal("load succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not name the place:\n got: %v\nwant: %s", err, tt.want)
			}
		})
	}
}
