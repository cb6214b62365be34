package localcloud

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenStackCLIThroughExports drives Debian's openstack CLI with nothing
// but what `acco local env` exports: a keypair, a security group with a
// rule, a server on Ext-Net, list, reboot, delete.
func TestOpenStackCLIThroughExports(t *testing.T) {
	bin, err := exec.LookPath("openstack")
	if err != nil {
		t.Skipf("openstack (Debian package python3-openstackclient) is not installed: %v", err)
	}
	if testing.Short() {
		t.Skip("the openstack CLI takes seconds per call; skipped in -short mode")
	}
	dir := t.TempDir()
	c, _ := startCloud(t, dir, Options{BuildDelay: 200 * time.Millisecond, AddressDelay: 100 * time.Millisecond})
	info := c.Info()
	creds, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteCloudsYAML(&info, creds); err != nil {
		t.Fatal(err)
	}
	exports, err := Exports(&info, creds, "test")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	for _, line := range strings.Split(exports, "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env = append(env, k+"="+strings.Trim(v, "'"))
		}
	}
	pub := filepath.Join(t.TempDir(), "deploy.pub")
	if err := os.WriteFile(pub, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2Mg6/8LZm6XxJ3yYzyD1vE5qH/9bQkxW6mDaxwCCg deploy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openstack := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	openstack("keypair", "create", "--public-key", pub, "deploy")
	openstack("security", "group", "create", "app")
	openstack("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "--remote-ip", "203.0.113.0/24", "app")
	openstack("server", "create", "--flavor", "d2-2", "--image", "Debian 12", "--network", "Ext-Net", "--key-name", "deploy", "--security-group", "app", "--wait", "app")
	if list := openstack("server", "list", "-f", "value", "-c", "Name", "-c", "Status"); !strings.Contains(list, "app ACTIVE") {
		t.Fatalf("server list:\n%s", list)
	}
	if rules := openstack("security", "group", "rule", "list", "app", "-f", "value", "-c", "IP Range"); !strings.Contains(rules, "203.0.113.0/24") {
		t.Errorf("rule list:\n%s", rules)
	}
	openstack("server", "reboot", "--wait", "app")
	openstack("server", "delete", "--wait", "app")
	if list := openstack("server", "list", "-f", "value", "-c", "Name"); strings.TrimSpace(list) != "" {
		t.Errorf("servers left after delete:\n%s", list)
	}
	if counts := c.status().Counts; counts["openstack.servers"] != 0 || counts["openstack.keypairs"] != 1 || counts["openstack.security_group_rules"] == 0 {
		t.Errorf("counts after the CLI run: %v", counts)
	}
}
