package devicecred

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The vector was computed independently of Go (Python's
// hashlib.pbkdf2_hmac('sha512', password, salt, 4096, 64).hex()), which is
// what EMQX's pbkdf2 with mac_fun sha512, iterations 4096 and dk_length 64
// compares, in lower-case hex, with password_hash.
func TestHashMatchesEMQXAlgorithm(t *testing.T) {
	h, err := WithSalt("tr4ck3r-pass", "Qm9uam91ci0x")
	if err != nil {
		t.Fatal(err)
	}
	const want = "a5701b8cca29a8b212e65276d40c57458664c24930a9aa3c80de984ed14eae408f645f1979d91e71c3f1c2645dc2f324ed3bbed3dbefc27fc045254269a4e7ff"
	if h.PasswordHash != want {
		t.Fatalf("hash = %s, want %s", h.PasswordHash, want)
	}
	if !strings.Contains(EMQXAlgorithm(), "mac_fun = sha512") || !strings.Contains(EMQXAlgorithm(), "iterations = 4096") {
		t.Fatalf("EMQX algorithm block %q does not name the parameters of the stored hash", EMQXAlgorithm())
	}
}

func TestVerify(t *testing.T) {
	pw, err := NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(pw)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := New(pw)
	if h.Salt == h2.Salt || h.PasswordHash == h2.PasswordHash {
		t.Fatal("two hashes of one password share a salt")
	}
	for _, tc := range []struct {
		name string
		pw   string
		want bool
	}{
		{"right password", pw, true},
		{"wrong password", pw + "x", false},
		{"empty password", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.Verify(tc.pw); got != tc.want {
				t.Fatalf("Verify = %v, want %v", got, tc.want)
			}
		})
	}
	if (Hash{PasswordHash: h.PasswordHash, Salt: h.Salt + "0"}).Verify(pw) {
		t.Fatal("a changed salt still verifies")
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"t1", true}, {"tracker-0042", true}, {"A.b_c", true},
		{"", false}, {"-x", false}, {"a/b", false}, {"a+", false}, {"#", false},
		{"a b", false}, {"a:b", false}, {"é", false}, {strings.Repeat("a", 65), false},
	} {
		if err := ValidName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestMosquittoAcceptsTheSameRow runs Debian's mosquitto with a password file
// made from a stored row and checks that mosquitto_pub gets in with the
// password and is refused with another one.
func TestMosquittoAcceptsTheSameRow(t *testing.T) {
	broker, err := exec.LookPath("mosquitto")
	if err != nil {
		broker = "/usr/sbin/mosquitto"
	}
	pub, perr := exec.LookPath("mosquitto_pub")
	if _, err := os.Stat(broker); err != nil || perr != nil {
		t.Skip("mosquitto and mosquitto_pub are not installed (make deps installs them)")
	}
	pw, _ := NewPassword()
	h, err := New(pw)
	if err != nil {
		t.Fatal(err)
	}
	line, err := h.Mosquitto()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	os.WriteFile(filepath.Join(dir, "passwd"), []byte("t1:"+line+"\n"), 0o600)
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n", port, filepath.Join(dir, "passwd"))
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	os.WriteFile(filepath.Join(dir, "m.conf"), []byte(conf), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, broker, "-c", filepath.Join(dir, "m.conf"))
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", fmt.Sprint("127.0.0.1:", port))
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("mosquitto did not listen: %s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	publish := func(password string) error {
		out, err := exec.CommandContext(ctx, pub, "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-u", "t1", "-P", password,
			"-t", "trackers/t1/position", "-m", `{"ts":1}`, "-q", "1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := publish(pw); err != nil {
		t.Fatalf("mosquitto refused the right password: %v\n%s", err, logs.String())
	}
	if err := publish(pw + "x"); err == nil {
		t.Fatal("mosquitto admitted a wrong password")
	}
}
