package openstack

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// osc runs the openstack CLI (python3-openstackclient) against a cloud.
type osc struct {
	bin string
	env []string
	dir string
}

// newOSC returns a CLI runner logged in as a project's user through OS_*
// variables, as an OVH openrc file sets them, or skips the test when the
// CLI is not installed.
func newOSC(t *testing.T, e *testEnv, p Project, region string) *osc {
	t.Helper()
	if testing.Short() {
		t.Skip("the openstack CLI takes about 20 s: skipped in -short mode")
	}
	bin, err := exec.LookPath("openstack")
	if err != nil {
		t.Skipf("openstack (Debian package python3-openstackclient) is not installed: %v", err)
	}
	home := t.TempDir()
	env := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
	for k, v := range map[string]string{
		"OS_AUTH_URL":             e.srv.URL + "/identity/v3",
		"OS_IDENTITY_API_VERSION": "3",
		"OS_USER_DOMAIN_NAME":     "Default",
		"OS_PROJECT_DOMAIN_NAME":  "Default",
		"OS_USERNAME":             p.User,
		"OS_PASSWORD":             p.Password,
		"OS_TENANT_ID":            p.ID,
		"OS_TENANT_NAME":          p.Name,
		"OS_REGION_NAME":          region,
		"OS_INTERFACE":            "public",
	} {
		env = append(env, k+"="+v)
	}
	return &osc{bin: bin, env: env, dir: home}
}

// run runs one CLI command and returns its standard output.
func (o *osc) run(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.bin, args...)
	cmd.Env = o.env
	cmd.Dir = o.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("openstack %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	t.Logf("openstack %s: ok", strings.Join(args, " "))
	return stdout.String()
}

// runJSON runs a command with -f json and decodes its output into v.
func (o *osc) runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := o.run(t, append(args, "-f", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("openstack %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestOpenStackCLI(t *testing.T) {
	e := newTestEnv(t, Config{BuildDelay: time.Second, RebootDelay: time.Second})
	test := project(t, "test")
	cli := newOSC(t, e, test, "GRA11")

	keyFile := filepath.Join(cli.dir, "deploy.pub")
	if err := os.WriteFile(keyFile, []byte(testPublicKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var kp map[string]any
	cli.runJSON(t, &kp, "keypair", "create", "--public-key", keyFile, "deploy")
	pub, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(testPublicKey))
	if kp["fingerprint"] != ssh.FingerprintLegacyMD5(pub) {
		t.Errorf("keypair create: %v", kp)
	}

	var sg map[string]any
	cli.runJSON(t, &sg, "security", "group", "create", "--description", "acco: environment test", "acco-test")
	if sg["name"] != "acco-test" {
		t.Errorf("security group create: %v", sg)
	}
	var rule map[string]any
	cli.runJSON(t, &rule, "security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "22", "--remote-ip", "0.0.0.0/0", "acco-test")
	if rule["port_range_min"] != float64(22) || rule["security_group_id"] != sg["id"] {
		t.Errorf("security group rule create: %v", rule)
	}

	var srv map[string]any
	cli.runJSON(t, &srv, "server", "create", "--flavor", "d2-2", "--image", "Debian 12", "--key-name", "deploy",
		"--security-group", "acco-test", "--network", "Ext-Net", "--property", "acco-env=test", "--wait", "acco-test-app")
	if groups, _ := json.Marshal(srv["security_groups"]); srv["status"] != "ACTIVE" || !strings.Contains(string(groups), `"acco-test"`) {
		t.Errorf("server create --wait: %v", srv)
	}
	id, _ := srv["id"].(string)

	var list []map[string]any
	cli.runJSON(t, &list, "server", "list")
	if len(list) != 1 || list[0]["Name"] != "acco-test-app" || list[0]["Status"] != "ACTIVE" || list[0]["Image"] != "Debian 12" || list[0]["Flavor"] != "d2-2" {
		t.Errorf("server list: %v", list)
	}
	if nets, _ := list[0]["Networks"].(map[string]any); nets["Ext-Net"] == nil {
		t.Errorf("server list networks: %v", list[0]["Networks"])
	}

	console := cli.run(t, "console", "log", "show", "acco-test-app")
	signer, err := e.cloud.ServerHostKey(test.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(console, "-----BEGIN SSH HOST KEY FINGERPRINTS-----") || !strings.Contains(console, ssh.FingerprintSHA256(signer.PublicKey())) {
		t.Errorf("console log lacks the host key fingerprints:\n%s", console)
	}

	cli.run(t, "server", "reboot", "--wait", "acco-test-app")
	var shown map[string]any
	cli.runJSON(t, &shown, "server", "show", "acco-test-app")
	if shown["status"] != "ACTIVE" {
		t.Errorf("server show after reboot: %v", shown["status"])
	}

	// Another project sees none of it.
	var prodList []map[string]any
	newOSC(t, e, project(t, "prod"), "GRA11").runJSON(t, &prodList, "server", "list")
	if len(prodList) != 0 {
		t.Errorf("prod's server list: %v", prodList)
	}

	cli.run(t, "server", "delete", "--wait", "acco-test-app")
	cli.runJSON(t, &list, "server", "list")
	if len(list) != 0 {
		t.Errorf("server list after delete: %v", list)
	}
	cli.run(t, "security", "group", "delete", "acco-test")
	cli.run(t, "keypair", "delete", "deploy")
	if got := e.cloud.Counts(); got["servers"] != 0 || got["keypairs"] != 0 || got["ports"] != 0 {
		t.Errorf("counts after the CLI cleaned up: %v", got)
	}
}
