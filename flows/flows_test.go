package flows

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/provision"
	"github.com/accoreboot/acco/state"
)

func loadEnv(t *testing.T, name string) *spec.Environment {
	t.Helper()
	env, err := spec.Load("../environments", name, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestDeviceTopic(t *testing.T) {
	for _, tc := range []struct{ filter, name, want string }{
		{"trackers/+/position", "t1", "trackers/t1/position"},
		{"fleet/+/gps/+", "truck-7", "fleet/truck-7/gps/+"},
		{"positions", "t1", "positions"},
	} {
		if got := deviceTopic(tc.filter, tc.name); got != tc.want {
			t.Errorf("deviceTopic(%q, %q) = %q, want %q", tc.filter, tc.name, got, tc.want)
		}
	}
}

func TestPlainMQTTPort(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{{"local", 1883}, {"test", 1883}, {"prod", 1883}} {
		if got := spec.PlainMQTTPort(loadEnv(t, tc.env).BrokerListeners()); got != tc.want {
			t.Errorf("%s: plain MQTT port = %d, want %d", tc.env, got, tc.want)
		}
	}
}

// TestReachablePlainMQTTPort: where trackers (and acco verify, acco device
// add) reach plain MQTT. preprod and prod keep theirs on loopback for the
// backend, so devices use mqtts there.
func TestReachablePlainMQTTPort(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want int
	}{{"local", 1883}, {"test", 1883}, {"preprod", 0}, {"prod", 0}} {
		if got := spec.ReachablePlainMQTTPort(loadEnv(t, tc.env).BrokerListeners()); got != tc.want {
			t.Errorf("%s: reachable plain MQTT port = %d, want %d", tc.env, got, tc.want)
		}
	}
}

// TestDataFlows checks where each shipped environment's positions and
// device credentials go, as the flows read them.
func TestDataFlows(t *testing.T) {
	for _, tc := range []struct {
		env           string
		backendWrites bool
		devicesDB     string
	}{
		{"local", true, "main/acco"},
		{"test", false, "main/acco"},
		{"preprod", false, "main/acco"},
		{"prod", false, "main/acco"},
	} {
		f := loadEnv(t, tc.env).DataFlow()
		if f == nil || !f.HasDevices {
			t.Fatalf("%s: no data flow with a device table: %+v", tc.env, f)
		}
		if f.BackendWrites != tc.backendWrites || f.Devices.Cluster+"/"+f.Devices.Database != tc.devicesDB || f.Topic != spec.DefaultPositionsTopic {
			t.Errorf("%s: flow = %+v", tc.env, f)
		}
	}
}

func TestOpenNeedsTheStateKeyAndState(t *testing.T) {
	ctx := context.Background()
	env := loadEnv(t, "local")
	store := state.NewStore(state.NewDirBlob(t.TempDir()))
	_, err := Open(ctx, env, store, nil, provision.Clients{}, false)
	var h *HintError
	if !errors.As(err, &h) || !strings.Contains(err.Error(), "ACCO_STATE_KEY") {
		t.Fatalf("without a key: %v", err)
	}
	sealer, err := state.NewSealer("8nQ/IiUhDnPlZcSCguaw/0fRDv0E0zs8sVpo+yuBSok=")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, env, store, sealer, provision.Clients{}, false)
	if !errors.As(err, &h) || !strings.Contains(h.Hint(), "acco apply local") {
		t.Fatalf("without state: %v", err)
	}
}
