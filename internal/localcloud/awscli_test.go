package localcloud

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/accoreboot/acco/state"
)

// debianAWS is the AWS CLI of Debian's awscli package (a pyenv or pip one
// may come first on PATH).
const debianAWS = "/usr/bin/aws"

// TestAWSCLIOnStateBucket lists and copies objects of the state bucket with
// Debian's AWS CLI, given only what `acco local env` exports.
func TestAWSCLIOnStateBucket(t *testing.T) {
	if _, err := os.Stat(debianAWS); err != nil {
		t.Skipf("%s (Debian package awscli) is not installed: %v", debianAWS, err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	c, _ := startCloud(t, dir, Options{})
	info := c.Info()
	creds, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	exports, err := Exports(&info, creds, "test")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	for _, line := range strings.Split(exports, "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			k, v, _ := strings.Cut(kv, "=")
			env = append(env, k+"="+strings.Trim(v, "'"))
			t.Setenv(k, strings.Trim(v, "'"))
		}
	}
	blob, err := state.OpenBlob(ctx, os.Getenv("ACCO_STATE"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blob.(state.Bootstrapper).EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	aws := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(debianAWS, append([]string{"--endpoint-url", info.Endpoints.S3}, args...)...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	local := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(local, []byte("hello from the aws cli\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	aws("s3", "cp", local, "s3://"+StateBucket+"/notes/notes.txt")
	listing := aws("s3", "ls", "--recursive", "s3://"+StateBucket+"/")
	for _, want := range []string{state.MarkerKey, "notes/notes.txt"} {
		if !strings.Contains(listing, want) {
			t.Errorf("aws s3 ls does not show %s:\n%s", want, listing)
		}
	}
	back := filepath.Join(t.TempDir(), "back.txt")
	aws("s3", "cp", "s3://"+StateBucket+"/notes/notes.txt", back)
	if got, _ := os.ReadFile(back); string(got) != "hello from the aws cli\n" {
		t.Errorf("copied back %q", got)
	}
	if data, _, err := blob.Get(ctx, "notes/notes.txt"); err != nil || string(data) != "hello from the aws cli\n" {
		t.Errorf("acco's S3 client reads %q, %v", data, err)
	}
}
