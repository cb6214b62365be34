package templates

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/spec"
)

// TestMosquittoAcceptsRenderedConfig runs the real mosquitto (Debian
// package) on the rendered configuration, password file and ACL, and checks
// that the backend's password works and a wrong one is refused: the $7$
// hash is one mosquitto understands.
func TestMosquittoAcceptsRenderedConfig(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/mosquitto"); err != nil {
			t.Skip("mosquitto not installed (Debian packages mosquitto, mosquitto-clients)")
		}
		bin = "/usr/sbin/mosquitto"
	}
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Skip("mosquitto_pub not installed (Debian package mosquitto-clients)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	e, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.Services.Broker = spec.BrokerMosquitto
	e.Services.EMQX = nil
	e.Services.Mosquitto = &spec.Mosquitto{Listeners: map[string]*spec.Listener{"mqtt": {Type: "tcp", Bind: "127.0.0.1", Port: port}}}
	dir := t.TempDir()
	var conf string
	for _, f := range render(t, e) {
		switch f.Path {
		case "/etc/mosquitto/conf.d/acco.conf":
			conf = string(f.Content)
		case "/etc/mosquitto/acco.passwd", "/etc/mosquitto/acco.acl":
			if err := os.WriteFile(filepath.Join(dir, path.Base(f.Path)), f.Content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if conf == "" {
		t.Fatal("no mosquitto configuration rendered")
	}
	conf = strings.NewReplacer("/etc/mosquitto/acco.passwd", filepath.Join(dir, "acco.passwd"), "/etc/mosquitto/acco.acl", filepath.Join(dir, "acco.acl")).Replace(conf)
	// As root mosquitto would switch to the mosquitto user, which cannot
	// read the test's private directory.
	conf += "\nuser root\n"
	cfg := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfg)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("mosquitto did not listen: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	publish := func(user, pw string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, pub, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-u", user, "-P", pw, "-t", "trackers/x/position", "-m", "{}").CombinedOutput()
		if err != nil {
			return &exec.Error{Name: string(out), Err: err}
		}
		return nil
	}
	if err := publish(MQTTBackendUser, sampleInputs().MQTTBackendPassword); err != nil {
		t.Errorf("the backend's password was refused: %v\n%s", err, logs.String())
	}
	if err := publish(MQTTBackendUser, "wrong"); err == nil {
		t.Error("a wrong password was accepted")
	}
	if err := publish("nobody", ""); err == nil {
		t.Error("an unknown user was accepted (allow_anonymous is false)")
	}
}
