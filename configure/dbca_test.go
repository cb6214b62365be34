package configure

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/spec"
)

// TestConnectDBRefusesAnUnverifiableCA: without a CA certificate (or with
// one that does not parse) acco never connects to a database, rather than
// connecting without verifying the server; the bootstrap's error names the
// cluster.
func TestConnectDBRefusesAnUnverifiableCA(t *testing.T) {
	env, err := spec.Load("../environments", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, ca, want string }{
		{"empty", "", "CA certificate"},
		{"blank", " \n", "CA certificate"},
		{"garbage", "not a certificate", "CA certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialed := 0
			dial := func(context.Context, string, string) (net.Conn, error) {
				dialed++
				return nil, errors.New("this test has no database")
			}
			admin := DBAdmin{Host: "db.example", Port: 5432, User: "avnadmin", Password: "pw", CACert: tc.ca}
			_, err := connectDB(context.Background(), dial, admin, "acco")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("connectDB: err = %v, want it to say %q", err, tc.want)
			}
			_, err = BootstrapDatabases(context.Background(), dial, env, map[string]DBAdmin{"main": admin}, nil, true)
			if err == nil || !strings.Contains(err.Error(), "main") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("bootstrap: err = %v, want the cluster named and %q", err, tc.want)
			}
			if dialed != 0 {
				t.Errorf("dialed the database %d times without a CA to check it against", dialed)
			}
		})
	}
}
