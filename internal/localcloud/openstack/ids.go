package openstack

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// newUUID returns a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatUUID(b, 4)
}

// stableUUID returns a UUID derived from parts, the same on every run (used
// for fixed resources: networks, subnets, flavors, images).
func stableUUID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var b [16]byte
	copy(b[:], h.Sum(nil))
	return formatUUID(b, 5)
}

func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// newTokenID returns a random token ID shaped like a Keystone Fernet token.
func newTokenID() string {
	b := make([]byte, 132)
	_, _ = rand.Read(b)
	return "gAAAAA" + base64.RawURLEncoding.EncodeToString(b)
}

// newSecret returns a random alphanumeric string of length n.
func newSecret(n int) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newMAC returns a random MAC address in OpenStack's fa:16:3e prefix.
func newMAC() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
}

// extNet describes the Ext-Net network of one region.
type extNet struct {
	NetworkID string
	SubnetID  string
	Prefix    netip.Prefix
	Gateway   netip.Addr
	Created   time.Time
}

// extNetPrefixes are the IPv4 ranges given to Ext-Net, one per region in
// order: documentation ranges first (never routed), then benchmark ranges.
var extNetPrefixes = []string{"198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24"}

// extNetOwner is the project that owns Ext-Net (an OVH-side admin project).
const extNetOwner = "ab3a6bd5c1f44fc1b9c1e7d3f5a4b7c2"

// extNet returns the Ext-Net network of a region.
func (c *Cloud) extNet(region string) extNet {
	i := slices.Index(c.cfg.Regions, region)
	var prefix netip.Prefix
	if c.cfg.Machines != nil {
		prefix = machineNet
	} else if i >= 0 && i < len(extNetPrefixes) {
		prefix = netip.MustParsePrefix(extNetPrefixes[i])
	} else {
		prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i), 0}), 24)
	}
	return extNet{
		NetworkID: stableUUID("network", "Ext-Net", region),
		SubnetID:  stableUUID("subnet", "Ext-Net", region),
		Prefix:    prefix,
		Gateway:   prefix.Addr().Next(),
		Created:   time.Date(2019, 3, 7, 9, 12, 44, 0, time.UTC),
	}
}

// allocIP returns the lowest free address of Ext-Net in a region, or false
// when the range is exhausted. With Machines, addresses are unique across
// regions (they are all on the host's loopback).
func (c *Cloud) allocIP(region string) (string, bool) {
	if c.cfg.Machines != nil {
		return c.allocMachineIP()
	}
	n := c.extNet(region)
	used := map[string]bool{}
	for _, p := range c.st.Ports {
		if p.Region == region {
			used[p.IP] = true
		}
	}
	for a := n.Gateway.Next(); n.Prefix.Contains(a.Next()); a = a.Next() {
		if !used[a.String()] {
			return a.String(), true
		}
	}
	return "", false
}
