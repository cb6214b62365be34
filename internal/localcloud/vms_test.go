package localcloud

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gos "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/ovh/go-ovh/ovh"
	"golang.org/x/crypto/ssh"

	"github.com/accoreboot/acco/internal/localcloud/vm"
)

// TestVMs creates a server in a local cloud with VMs through gophercloud,
// logs in over SSH at its IPv4 address on port 22 pinning the host keys of
// its console output, reaches a managed PostgreSQL cluster from the guest,
// then deletes the server and finds its QEMU gone.
func TestVMs(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a QEMU VM (about 30 s under TCG): skipped in -short mode")
	}
	if err := vm.ImageAvailable(vm.DefaultImageDir()); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	// Not t.TempDir: its parent is private to root, and the PostgreSQL
	// servers run as the postgres user.
	dir, err := os.MkdirTemp("", "localcloud-vms-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	opts := Options{VMs: true, Postgres: PostgresAuto, DBCreateDelay: time.Millisecond}
	c, stop := startCloud(t, dir, opts)
	info := c.Info()
	if !info.VMs {
		t.Fatal("Info.VMs is false")
	}
	creds, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := creds.project("test")

	compute, network, image := vmClients(ctx, t, info, p)

	// The deploy key pair.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keypairs.Create(ctx, compute, keypairs.CreateOpts{Name: "deploy", PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " deploy"}).Extract(); err != nil {
		t.Fatalf("create keypair: %v", err)
	}

	// Ext-Net, the image and the flavor, by name as acco resolves them.
	pages, err := networks.List(network, networks.ListOpts{Name: "Ext-Net"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nets, err := networks.ExtractNetworks(pages)
	if err != nil || len(nets) != 1 {
		t.Fatalf("Ext-Net: %v %v", nets, err)
	}
	pages, err = images.List(image, images.ListOpts{Name: "Debian 12"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ims, err := images.ExtractImages(pages)
	if err != nil || len(ims) != 1 {
		t.Fatalf("image: %v %v", ims, err)
	}
	pages, err = flavors.ListDetail(compute, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fls, err := flavors.ExtractFlavors(pages)
	if err != nil {
		t.Fatal(err)
	}
	var flavorID string
	for _, f := range fls {
		if f.Name == "d2-2" {
			flavorID = f.ID
		}
	}

	// A managed PostgreSQL cluster (on a real server when PostgreSQL is
	// installed here).
	var ovhClient *ovh.Client
	var clusterPath string
	if info.Postgres {
		if ovhClient, err = ovh.NewClient(info.Endpoints.OVH, creds.OVHApplicationKey, creds.OVHAppSecret, creds.OVHConsumerKey); err != nil {
			t.Fatal(err)
		}
		var created struct {
			ID string `json:"id"`
		}
		body := map[string]any{"description": "acco-test-main", "plan": "essential", "version": "17",
			"nodesPattern": map[string]any{"flavor": "db1-4", "number": 1, "region": "GRA"}}
		clusterPath = "/cloud/project/" + p.ID + "/database/postgresql"
		if err := ovhClient.PostWithContext(ctx, clusterPath, body, &created); err != nil {
			t.Fatalf("create database: %v", err)
		}
		clusterPath += "/" + created.ID
	} else {
		t.Logf("no PostgreSQL here (%s): not checking the clusters' host", info.PostgresNote)
	}

	start := time.Now()
	s, err := servers.Create(ctx, compute, keypairs.CreateOptsExt{CreateOptsBuilder: servers.CreateOpts{
		Name: "app-vm", FlavorRef: flavorID, ImageRef: ims[0].ID, Networks: []servers.Network{{UUID: nets[0].ID}},
	}, KeyName: "deploy"}, nil).Extract()
	if err != nil {
		t.Fatalf("create server: %v", err)
	}
	workDir := filepath.Join(dir, vmsDir, s.ID)
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(workDir, vm.ConsoleFile)); err == nil {
				t.Logf("console log:\n%s", log)
			}
		}
	})

	// BUILD until the VM answers SSH, then ACTIVE.
	got, seen := waitServer(ctx, t, compute, s.ID, "ACTIVE")
	t.Logf("server ACTIVE after %s", time.Since(start).Round(100*time.Millisecond))
	if !seen["BUILD"] {
		t.Errorf("the server was never BUILD (saw %v)", seen)
	}
	var ip string
	list, _ := got.Addresses["Ext-Net"].([]any)
	for _, a := range list {
		m, _ := a.(map[string]any)
		if v, _ := m["version"].(float64); v == 4 {
			ip, _ = m["addr"].(string)
		}
	}
	// A loopback address of its own (127.0.0.2 unless another local cloud,
	// say the one make demo left running, holds it).
	if a, err := netip.ParseAddr(ip); err != nil || !a.IsLoopback() || ip == "127.0.0.1" {
		t.Fatalf("Ext-Net IPv4 = %q, want a loopback address 127.0.0.N other than 127.0.0.1 (addresses %v)", ip, got.Addresses)
	}

	// Host keys from the console, as acco verifies a new instance.
	out, err := servers.ShowConsoleOutput(ctx, compute, s.ID, servers.ShowConsoleOutputOpts{}).Extract()
	if err != nil {
		t.Fatalf("console output: %v", err)
	}
	hostKeys, err := vm.ParseConsoleHostKeys(out)
	if err != nil {
		t.Fatalf("host keys from the console: %v\n%s", err, out)
	}
	client := vmSSH(t, ip, signer, hostKeys)
	run := func(cmd string) string { t.Helper(); return sshRun(t, client, cmd) }
	if h := run("hostname"); h != "app-vm" {
		t.Errorf("hostname = %q, want app-vm", h)
	}

	// The cluster's reported host is how the guest reaches the host.
	if ovhClient != nil {
		var svc struct {
			Status    string `json:"status"`
			Endpoints []struct {
				Domain string `json:"domain"`
				Port   int    `json:"port"`
			} `json:"endpoints"`
		}
		if err := ovhClient.GetWithContext(ctx, clusterPath, &svc); err != nil {
			t.Fatalf("get database: %v", err)
		}
		if len(svc.Endpoints) != 1 {
			t.Fatalf("database %s has endpoints %+v", svc.Status, svc.Endpoints)
		}
		host, port := svc.Endpoints[0].Domain, svc.Endpoints[0].Port
		if host != GuestHostAddress {
			t.Errorf("database host = %q, want %s", host, GuestHostAddress)
		}
		// The guest reaches the cluster's server there.
		run(fmt.Sprintf("timeout 10 bash -c '</dev/tcp/%s/%d'", host, port))
	}
	client.Close()

	if pids := qemuOf(t, workDir); len(pids) != 1 {
		t.Errorf("QEMU processes of the server: %v, want one", pids)
	}

	// Stopping the cloud kills the VM and keeps its disk; after a restart
	// the server is SHUTOFF and os-start boots it on that disk, with the
	// same host keys.
	stop()
	if pids := qemuOf(t, workDir); len(pids) != 0 {
		t.Fatalf("QEMU processes left after the local cloud stopped: %v", pids)
	}
	c, _ = startCloud(t, dir, opts)
	compute, _, _ = vmClients(ctx, t, c.Info(), p)
	if got, err := servers.Get(ctx, compute, s.ID).Extract(); err != nil || got.Status != "SHUTOFF" {
		t.Fatalf("server after a restart: %v %v, want SHUTOFF", got.Status, err)
	}
	start = time.Now()
	if err := servers.Start(ctx, compute, s.ID).ExtractErr(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	waitServer(ctx, t, compute, s.ID, "ACTIVE")
	t.Logf("server ACTIVE again after %s", time.Since(start).Round(100*time.Millisecond))
	client = vmSSH(t, ip, signer, hostKeys)
	if h := sshRun(t, client, "hostname"); h != "app-vm" {
		t.Errorf("hostname after restart = %q, want app-vm", h)
	}
	client.Close()

	// Delete kills the VM and removes its directory.
	if err := servers.Delete(ctx, compute, s.ID).ExtractErr(); err != nil {
		t.Fatalf("delete server: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pids := qemuOf(t, workDir)
		_, statErr := os.Stat(workDir)
		if len(pids) == 0 && os.IsNotExist(statErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after delete: qemu processes %v, work dir: %v", pids, statErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// qemuOf returns the PIDs of the QEMU processes whose command line names a
// path under dir.
func qemuOf(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.Contains(args[0], "qemu-system") && strings.Contains(string(cmdline), dir+string(filepath.Separator)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// vmClients are the compute, network and image clients of a project in
// GRA11.
func vmClients(ctx context.Context, t *testing.T, info Info, p *Project) (compute, network, image *gophercloud.ServiceClient) {
	t.Helper()
	pc, err := gos.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: info.Endpoints.Identity, Username: p.User, Password: p.Password,
		DomainName: "Default", TenantID: p.ID,
	})
	if err != nil {
		t.Fatalf("keystone: %v", err)
	}
	eo := gophercloud.EndpointOpts{Region: "GRA11"}
	if compute, err = gos.NewComputeV2(pc, eo); err != nil {
		t.Fatal(err)
	}
	if network, err = gos.NewNetworkV2(pc, eo); err != nil {
		t.Fatal(err)
	}
	if image, err = gos.NewImageV2(pc, eo); err != nil {
		t.Fatal(err)
	}
	return compute, network, image
}

// waitServer waits until a server has a status, failing on ERROR, and
// returns it with the statuses seen on the way.
func waitServer(ctx context.Context, t *testing.T, compute *gophercloud.ServiceClient, id, status string) (*servers.Server, map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	var got *servers.Server
	err := gophercloud.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		var err error
		if got, err = servers.Get(ctx, compute, id).Extract(); err != nil {
			return false, err
		}
		seen[got.Status] = true
		if got.Status == "ERROR" {
			return false, fmt.Errorf("server in ERROR: %v", got.Fault.Message)
		}
		return got.Status == status, nil
	})
	if err != nil {
		t.Fatalf("wait for %s: %v", status, err)
	}
	return got, seen
}

// vmSSH logs in as debian at ip:22 with signer, pinning hostKeys.
func vmSSH(t *testing.T, ip string, signer ssh.Signer, hostKeys []ssh.PublicKey) *ssh.Client {
	t.Helper()
	client, err := ssh.Dial("tcp", net.JoinHostPort(ip, "22"), &ssh.ClientConfig{
		User:            "debian",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: vm.PinnedHostKeys(hostKeys),
		Timeout:         30 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh debian@%s:22: %v", ip, err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// sshRun runs a command and returns its trimmed standard output.
func sshRun(t *testing.T, client *ssh.Client, cmd string) string {
	t.Helper()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if err := sess.Run(cmd); err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}
