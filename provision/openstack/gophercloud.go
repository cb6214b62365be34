package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
	gos "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/secgroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/accoreboot/acco/provision/httpretry"
)

// Config says how to reach one environment's project.
type Config struct {
	// Cloud is the clouds.yaml entry (the environment's cloud key). When
	// empty, or when no clouds.yaml holds it, the OS_* variables serve.
	Cloud string
	// Region is the OpenStack region (GRA11).
	Region string
	// Project, if set, is the project ID the credentials must belong to:
	// a mismatch is refused, so one environment's credentials never touch
	// another's project.
	Project string
	// Lookup reads the operator's environment; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	// HTTPClient carries the requests (set it to retry, see httpretry).
	HTTPClient *http.Client
}

// authOptions finds the credentials for cfg: the clouds.yaml entry, else the
// OS_* variables. gophercloud v2 ignores OS_USER_DOMAIN_NAME, so the user's
// domain is set here ("Default" on OVH when nothing says otherwise).
func authOptions(cfg Config) (gophercloud.AuthOptions, string, error) {
	lookup := cfg.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	get := func(k string) string { v, _ := lookup(k); return v }
	var opts gophercloud.AuthOptions
	source := ""
	if cfg.Cloud != "" {
		parseOpts := []clouds.ParseOption{clouds.WithCloudName(cfg.Cloud)}
		if f := get("OS_CLIENT_CONFIG_FILE"); f != "" {
			parseOpts = append(parseOpts, clouds.WithLocations(f))
		}
		if o, _, _, err := clouds.Parse(parseOpts...); err == nil {
			opts, source = o, "clouds.yaml entry "+cfg.Cloud
		}
	}
	if source == "" {
		if get("OS_AUTH_URL") == "" {
			return opts, "", fmt.Errorf("no OpenStack credentials: no clouds.yaml entry %q was found and OS_AUTH_URL is not set", cfg.Cloud)
		}
		source = "OS_* variables"
		opts = gophercloud.AuthOptions{
			IdentityEndpoint: get("OS_AUTH_URL"),
			Username:         get("OS_USERNAME"),
			UserID:           get("OS_USERID"),
			Password:         get("OS_PASSWORD"),
			TenantID:         firstNonEmpty(get("OS_PROJECT_ID"), get("OS_TENANT_ID")),
			TenantName:       firstNonEmpty(get("OS_PROJECT_NAME"), get("OS_TENANT_NAME")),
			DomainName:       get("OS_USER_DOMAIN_NAME"),
			DomainID:         get("OS_USER_DOMAIN_ID"),
		}
	}
	if opts.DomainName == "" && opts.DomainID == "" && opts.UserID == "" {
		opts.DomainName = "Default"
	}
	opts.AllowReauth = true
	if cfg.Project != "" && opts.TenantID != "" && opts.TenantID != cfg.Project {
		return opts, source, fmt.Errorf("the OpenStack credentials from %s are for project %s, not the environment's project %s", source, opts.TenantID, cfg.Project)
	}
	if opts.TenantID == "" && opts.TenantName == "" && opts.Scope == nil {
		opts.TenantID = cfg.Project
	}
	return opts, source, nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// Connect authenticates against Keystone and returns the project's clients
// in cfg.Region.
func Connect(ctx context.Context, cfg Config) (*Clients, error) {
	opts, source, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	pc, err := gos.NewClient(opts.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("creating OpenStack client for %s: %w", opts.IdentityEndpoint, err)
	}
	if cfg.HTTPClient != nil {
		pc.HTTPClient = *cfg.HTTPClient
	}
	if err := gos.Authenticate(ctx, pc, opts); err != nil {
		return nil, fmt.Errorf("authenticating with Keystone at %s (credentials from %s): %w", opts.IdentityEndpoint, source, err)
	}
	// Finding an endpoint may ask the service for its versions: the three
	// are looked for at once.
	eo := gophercloud.EndpointOpts{Region: cfg.Region}
	var compute, network, image *gophercloud.ServiceClient
	var computeErr, networkErr, imageErr error
	var wg sync.WaitGroup
	wg.Go(func() { compute, computeErr = gos.NewComputeV2(pc, eo) })
	wg.Go(func() { network, networkErr = gos.NewNetworkV2(pc, eo) })
	wg.Go(func() { image, imageErr = gos.NewImageV2(pc, eo) })
	wg.Wait()
	if computeErr != nil {
		return nil, fmt.Errorf("finding Nova in region %s: %w", cfg.Region, computeErr)
	}
	if networkErr != nil {
		return nil, fmt.Errorf("finding Neutron in region %s: %w", cfg.Region, networkErr)
	}
	if imageErr != nil {
		return nil, fmt.Errorf("finding Glance in region %s: %w", cfg.Region, imageErr)
	}
	return &Clients{
		Compute: &computeClient{c: compute},
		Network: &networkClient{c: network},
		Image:   &imageClient{c: image},
	}, nil
}

// classify turns a gophercloud error into one wrapping ErrNotFound when the
// resource does not exist.
func classify(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return fmt.Errorf("%s: %w: %w", msg, ErrNotFound, err)
	}
	var code gophercloud.ErrUnexpectedResponseCode
	if (errors.As(err, &code) && httpretry.TransientStatus(code.Actual)) || (!errors.As(err, &code) && httpretry.Transient(err)) {
		return fmt.Errorf("%s: %w: %w", msg, httpretry.ErrTransient, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// IsNotFound reports whether err says the resource does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

type computeClient struct{ c *gophercloud.ServiceClient }

var _ Compute = (*computeClient)(nil)

func (c *computeClient) ListFlavors(ctx context.Context) ([]Flavor, error) {
	pages, err := flavors.ListDetail(c.c, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		return nil, classify(err, "listing flavors")
	}
	fs, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return nil, fmt.Errorf("reading flavors: %w", err)
	}
	out := make([]Flavor, 0, len(fs))
	for _, f := range fs {
		out = append(out, Flavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAMMB: f.RAM, Disk: f.Disk})
	}
	return out, nil
}

func (c *computeClient) ListKeypairs(ctx context.Context) ([]Keypair, error) {
	pages, err := keypairs.List(c.c, nil).AllPages(ctx)
	if err != nil {
		return nil, classify(err, "listing keypairs")
	}
	ks, err := keypairs.ExtractKeyPairs(pages)
	if err != nil {
		return nil, fmt.Errorf("reading keypairs: %w", err)
	}
	out := make([]Keypair, 0, len(ks))
	for _, k := range ks {
		out = append(out, Keypair{Name: k.Name, PublicKey: k.PublicKey, Fingerprint: k.Fingerprint})
	}
	return out, nil
}

func (c *computeClient) CreateKeypair(ctx context.Context, name, publicKey string) (Keypair, error) {
	k, err := keypairs.Create(ctx, c.c, keypairs.CreateOpts{Name: name, PublicKey: publicKey}).Extract()
	if err != nil {
		return Keypair{}, classify(err, "creating keypair %s", name)
	}
	return Keypair{Name: k.Name, PublicKey: k.PublicKey, Fingerprint: k.Fingerprint}, nil
}

func (c *computeClient) DeleteKeypair(ctx context.Context, name string) error {
	return classify(keypairs.Delete(ctx, c.c, name, nil).ExtractErr(), "deleting keypair %s", name)
}

func (c *computeClient) ListServers(ctx context.Context) ([]Server, error) {
	pages, err := servers.List(c.c, servers.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, classify(err, "listing servers")
	}
	ss, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, fmt.Errorf("reading servers: %w", err)
	}
	out := make([]Server, 0, len(ss))
	for i := range ss {
		out = append(out, toServer(&ss[i]))
	}
	return out, nil
}

func (c *computeClient) GetServer(ctx context.Context, id string) (Server, error) {
	s, err := servers.Get(ctx, c.c, id).Extract()
	if err != nil {
		return Server{}, classify(err, "reading server %s", id)
	}
	return toServer(s), nil
}

func (c *computeClient) CreateServer(ctx context.Context, spec ServerSpec) (Server, error) {
	base := servers.CreateOpts{
		Name:           spec.Name,
		FlavorRef:      spec.FlavorID,
		ImageRef:       spec.ImageID,
		SecurityGroups: spec.SecurityGroups,
		UserData:       spec.UserData,
		Metadata:       spec.Metadata,
		Networks:       []servers.Network{{UUID: spec.NetworkID}},
	}
	var opts servers.CreateOptsBuilder = base
	if spec.KeyName != "" {
		opts = keypairs.CreateOptsExt{CreateOptsBuilder: base, KeyName: spec.KeyName}
	}
	s, err := servers.Create(ctx, c.c, opts, nil).Extract()
	if err != nil {
		return Server{}, classify(err, "creating server %s", spec.Name)
	}
	return toServer(s), nil
}

func (c *computeClient) DeleteServer(ctx context.Context, id string) error {
	return classify(servers.Delete(ctx, c.c, id).ExtractErr(), "deleting server %s", id)
}

func (c *computeClient) UpdateServer(ctx context.Context, id, name string, metadata map[string]string) error {
	if name != "" {
		if _, err := servers.Update(ctx, c.c, id, servers.UpdateOpts{Name: name}).Extract(); err != nil {
			return classify(err, "renaming server %s", id)
		}
	}
	if len(metadata) > 0 {
		if _, err := servers.UpdateMetadata(ctx, c.c, id, servers.MetadataOpts(metadata)).Extract(); err != nil {
			return classify(err, "setting the metadata of server %s", id)
		}
	}
	return nil
}

func (c *computeClient) AddSecurityGroup(ctx context.Context, serverID, group string) error {
	return classify(secgroups.AddServer(ctx, c.c, serverID, group).ExtractErr(), "attaching security group %s to server %s", group, serverID)
}

func (c *computeClient) RemoveSecurityGroup(ctx context.Context, serverID, group string) error {
	return classify(secgroups.RemoveServer(ctx, c.c, serverID, group).ExtractErr(), "detaching security group %s from server %s", group, serverID)
}

func (c *computeClient) ConsoleOutput(ctx context.Context, id string, lines int) (string, error) {
	out, err := servers.ShowConsoleOutput(ctx, c.c, id, servers.ShowConsoleOutputOpts{Length: lines}).Extract()
	if err != nil {
		return "", classify(err, "reading the console of server %s", id)
	}
	return out, nil
}

func (c *computeClient) RebootServer(ctx context.Context, id string, hard bool) error {
	how := servers.SoftReboot
	if hard {
		how = servers.HardReboot
	}
	if err := servers.Reboot(ctx, c.c, id, servers.RebootOpts{Type: how}).ExtractErr(); err != nil {
		return classify(err, "rebooting server %s", id)
	}
	return nil
}

// toServer keeps what acco reads from a Nova server.
func toServer(s *servers.Server) Server {
	out := Server{
		ID: s.ID, Name: s.Name, Status: s.Status, KeyName: s.KeyName,
		Metadata: s.Metadata, Addresses: map[string][]Address{}, Fault: s.Fault.Message,
	}
	if id, ok := s.Flavor["id"].(string); ok {
		out.FlavorID = id
	}
	if id, ok := s.Image["id"].(string); ok {
		out.ImageID = id
	}
	for _, g := range s.SecurityGroups {
		if n, ok := g["name"].(string); ok {
			out.SecurityGroups = append(out.SecurityGroups, n)
		}
	}
	for net, v := range s.Addresses {
		list, _ := v.([]any)
		for _, item := range list {
			m, _ := item.(map[string]any)
			addr, _ := m["addr"].(string)
			ver, _ := m["version"].(float64)
			if addr != "" {
				out.Addresses[net] = append(out.Addresses[net], Address{Addr: addr, Version: int(ver)})
			}
		}
	}
	return out
}

type networkClient struct{ c *gophercloud.ServiceClient }

var _ Network = (*networkClient)(nil)

func (n *networkClient) ListNetworks(ctx context.Context) ([]NetworkInfo, error) {
	pages, err := networks.List(n.c, networks.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, classify(err, "listing networks")
	}
	var nets []struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		External bool   `json:"router:external"`
	}
	if err := networks.ExtractNetworksInto(pages, &nets); err != nil {
		return nil, fmt.Errorf("reading networks: %w", err)
	}
	out := make([]NetworkInfo, 0, len(nets))
	for _, x := range nets {
		out = append(out, NetworkInfo{ID: x.ID, Name: x.Name, External: x.External})
	}
	return out, nil
}

func (n *networkClient) ListSecurityGroups(ctx context.Context) ([]SecurityGroup, error) {
	pages, err := groups.List(n.c, groups.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, classify(err, "listing security groups")
	}
	gs, err := groups.ExtractGroups(pages)
	if err != nil {
		return nil, fmt.Errorf("reading security groups: %w", err)
	}
	out := make([]SecurityGroup, 0, len(gs))
	for i := range gs {
		out = append(out, toGroup(&gs[i]))
	}
	return out, nil
}

func (n *networkClient) GetSecurityGroup(ctx context.Context, id string) (SecurityGroup, error) {
	g, err := groups.Get(ctx, n.c, id).Extract()
	if err != nil {
		return SecurityGroup{}, classify(err, "reading security group %s", id)
	}
	return toGroup(g), nil
}

func (n *networkClient) CreateSecurityGroup(ctx context.Context, name, description string, tags []string) (SecurityGroup, error) {
	g, err := groups.Create(ctx, n.c, groups.CreateOpts{Name: name, Description: description}).Extract()
	if err != nil {
		return SecurityGroup{}, classify(err, "creating security group %s", name)
	}
	out := toGroup(g)
	if len(tags) > 0 {
		if err := n.SetSecurityGroupTags(ctx, g.ID, tags); err != nil {
			return out, err
		}
		out.Tags = tags
	}
	return out, nil
}

func (n *networkClient) UpdateSecurityGroup(ctx context.Context, id, description string) error {
	_, err := groups.Update(ctx, n.c, id, groups.UpdateOpts{Description: &description}).Extract()
	return classify(err, "updating security group %s", id)
}

func (n *networkClient) RenameSecurityGroup(ctx context.Context, id, name string) error {
	_, err := groups.Update(ctx, n.c, id, groups.UpdateOpts{Name: name}).Extract()
	return classify(err, "renaming security group %s", id)
}

func (n *networkClient) SetSecurityGroupTags(ctx context.Context, id string, tags []string) error {
	_, err := attributestags.ReplaceAll(ctx, n.c, "security-groups", id, attributestags.ReplaceAllOpts{Tags: tags}).Extract()
	return classify(err, "tagging security group %s", id)
}

func (n *networkClient) DeleteSecurityGroup(ctx context.Context, id string) error {
	return classify(groups.Delete(ctx, n.c, id).ExtractErr(), "deleting security group %s", id)
}

func (n *networkClient) CreateRule(ctx context.Context, r Rule) (Rule, error) {
	opts := rules.CreateOpts{
		Direction:      rules.RuleDirection(r.Direction),
		EtherType:      rules.RuleEtherType(r.EtherType),
		SecGroupID:     r.GroupID,
		PortRangeMin:   r.PortMin,
		PortRangeMax:   r.PortMax,
		Protocol:       rules.RuleProtocol(r.Protocol),
		RemoteIPPrefix: r.RemoteIPPrefix,
		Description:    r.Description,
	}
	got, err := rules.Create(ctx, n.c, opts).Extract()
	if err != nil {
		return Rule{}, classify(err, "creating rule in security group %s", r.GroupID)
	}
	return toRule(got), nil
}

func (n *networkClient) DeleteRule(ctx context.Context, id string) error {
	return classify(rules.Delete(ctx, n.c, id).ExtractErr(), "deleting security group rule %s", id)
}

func toGroup(g *groups.SecGroup) SecurityGroup {
	out := SecurityGroup{ID: g.ID, Name: g.Name, Description: g.Description, Tags: g.Tags}
	for i := range g.Rules {
		out.Rules = append(out.Rules, toRule(&g.Rules[i]))
	}
	return out
}

func toRule(r *rules.SecGroupRule) Rule {
	return Rule{
		ID: r.ID, GroupID: r.SecGroupID, Direction: r.Direction, EtherType: r.EtherType,
		Protocol: r.Protocol, PortMin: r.PortRangeMin, PortMax: r.PortRangeMax,
		RemoteIPPrefix: r.RemoteIPPrefix, Description: r.Description,
	}
}

type imageClient struct{ c *gophercloud.ServiceClient }

var _ ImageService = (*imageClient)(nil)

func (i *imageClient) ListImages(ctx context.Context) ([]Image, error) {
	pages, err := images.List(i.c, images.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, classify(err, "listing images")
	}
	is, err := images.ExtractImages(pages)
	if err != nil {
		return nil, fmt.Errorf("reading images: %w", err)
	}
	out := make([]Image, 0, len(is))
	for _, x := range is {
		out = append(out, Image{ID: x.ID, Name: x.Name, Status: string(x.Status)})
	}
	return out, nil
}
