package openstack_test

import (
	"testing"
	"time"

	"github.com/accoreboot/acco/internal/localcloud"
	"github.com/accoreboot/acco/provision/httpretry"
	"github.com/accoreboot/acco/provision/internal/lctest"
	"github.com/accoreboot/acco/provision/openstack"
)

const pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBn2Mg6/8LZm6XxJ3yYzyD1vE5qH/9bQkxW6mDaxwCCg deploy@acco"

func connect(t *testing.T, lc *lctest.Cloud, cfg openstack.Config) *openstack.Clients {
	t.Helper()
	cfg.Lookup = lc.Lookup
	cfg.Region = lctest.Region
	cfg.HTTPClient = httpretry.Client(nil)
	cl, err := openstack.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestConnectSources(t *testing.T) {
	lc := lctest.Start(t, localcloud.Options{})
	for _, tc := range []struct {
		name       string
		cfg        openstack.Config
		onlyClouds bool
		wantErr    bool
	}{
		{name: "clouds.yaml entry", cfg: openstack.Config{Cloud: "acco-test", Project: lctest.Project}, onlyClouds: true},
		{name: "OS_* variables", cfg: openstack.Config{Project: lctest.Project}},
		{name: "unknown entry falls back to OS_*", cfg: openstack.Config{Cloud: "nope", Project: lctest.Project}},
		{name: "other project refused", cfg: openstack.Config{Project: "00000000000000000000000000000003"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Lookup = lc.Lookup
			if tc.onlyClouds {
				tc.cfg.Lookup = func(k string) (string, bool) {
					if k == "OS_CLIENT_CONFIG_FILE" {
						return lc.Lookup(k)
					}
					return "", false
				}
			}
			tc.cfg.Region = lctest.Region
			_, err := openstack.Connect(t.Context(), tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Connect: %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestAdapterRoundTrip(t *testing.T) {
	lc := lctest.Start(t, localcloud.Options{})
	cl := connect(t, lc, openstack.Config{Cloud: "acco-test", Project: lctest.Project})
	ctx := t.Context()

	flavors, err := cl.Compute.ListFlavors(ctx)
	if err != nil || len(flavors) == 0 {
		t.Fatalf("flavors: %v %v", flavors, err)
	}
	var flavorID string
	for _, f := range flavors {
		if f.Name == "d2-4" {
			flavorID = f.ID
		}
	}
	images, err := cl.Image.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var imageID string
	for _, i := range images {
		if i.Name == "Debian 12" {
			imageID = i.ID
		}
	}
	nets, err := cl.Network.ListNetworks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var extNet string
	for _, n := range nets {
		if n.Name == "Ext-Net" {
			extNet = n.ID
		}
	}
	if flavorID == "" || imageID == "" || extNet == "" {
		t.Fatalf("flavor %q image %q Ext-Net %q", flavorID, imageID, extNet)
	}

	if _, err := cl.Compute.CreateKeypair(ctx, "acco-test-deploy", pubKey); err != nil {
		t.Fatal(err)
	}
	g, err := cl.Network.CreateSecurityGroup(ctx, "acco-test-app", "app", []string{"acco", "acco-env:test"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := cl.Network.CreateRule(ctx, openstack.Rule{GroupID: g.ID, Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: 22, PortMax: 22, RemoteIPPrefix: "192.0.2.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	groups, err := cl.Network.ListSecurityGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range groups {
		if x.ID == g.ID {
			found = len(x.Tags) == 2
			ruleSeen := false
			for _, rr := range x.Rules {
				ruleSeen = ruleSeen || rr.ID == r.ID
			}
			if !ruleSeen {
				t.Errorf("rule %s not listed with its group: %+v", r.ID, x.Rules)
			}
		}
	}
	if !found {
		t.Errorf("group not listed with its tags: %+v", groups)
	}

	s, err := cl.Compute.CreateServer(ctx, openstack.ServerSpec{
		Name: "acco-test-app", FlavorID: flavorID, ImageID: imageID, NetworkID: extNet,
		KeyName: "acco-test-deploy", SecurityGroups: []string{"acco-test-app"},
		Metadata: map[string]string{"acco_env": "test"}, UserData: []byte("#cloud-config\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err = cl.Compute.GetServer(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status == "ACTIVE" && s.IPv4("Ext-Net") != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never ACTIVE with an address: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.FlavorID != flavorID || s.ImageID != imageID || s.KeyName != "acco-test-deploy" || len(s.SecurityGroups) != 1 || s.SecurityGroups[0] != "acco-test-app" {
		t.Errorf("server = %+v", s)
	}
	g2, err := cl.Network.CreateSecurityGroup(ctx, "acco-test-extra", "extra", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Compute.AddSecurityGroup(ctx, s.ID, g2.Name); err != nil {
		t.Fatal(err)
	}
	if err := cl.Compute.RemoveSecurityGroup(ctx, s.ID, "acco-test-app"); err != nil {
		t.Fatal(err)
	}
	if s, err = cl.Compute.GetServer(ctx, s.ID); err != nil || len(s.SecurityGroups) != 1 || s.SecurityGroups[0] != "acco-test-extra" {
		t.Errorf("groups after add and remove: %v %v", s.SecurityGroups, err)
	}
	if out, err := cl.Compute.ConsoleOutput(ctx, s.ID, 0); err != nil || out == "" {
		t.Errorf("console: %q %v", out, err)
	}

	// Deletes, then NotFound.
	if err := cl.Compute.DeleteServer(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Compute.GetServer(ctx, s.ID); !openstack.IsNotFound(err) {
		t.Errorf("GetServer after delete: %v", err)
	}
	if err := cl.Network.DeleteRule(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := cl.Network.DeleteRule(ctx, r.ID); !openstack.IsNotFound(err) {
		t.Errorf("second DeleteRule: %v", err)
	}
	for _, id := range []string{g.ID, g2.ID} {
		if err := cl.Network.DeleteSecurityGroup(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.Network.GetSecurityGroup(ctx, g.ID); !openstack.IsNotFound(err) {
		t.Errorf("GetSecurityGroup after delete: %v", err)
	}
	if err := cl.Compute.DeleteKeypair(ctx, "acco-test-deploy"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Compute.DeleteKeypair(ctx, "acco-test-deploy"); !openstack.IsNotFound(err) {
		t.Errorf("second DeleteKeypair: %v", err)
	}
}
