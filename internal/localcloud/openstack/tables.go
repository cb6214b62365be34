package openstack

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"time"
)

// flavorSpec is one Nova flavor of OVH Public Cloud.
type flavorSpec struct {
	Name  string
	VCPUs int
	RAM   int // MB, as OVH counts them (b3-8 has 8000)
	Disk  int // GB
}

// flavorTable lists the OVH flavors the local cloud offers in every region.
var flavorTable = []flavorSpec{
	{"d2-2", 1, 2000, 25},
	{"d2-4", 2, 4000, 50},
	{"d2-8", 4, 8000, 50},
	{"b2-7", 2, 7000, 50},
	{"b2-15", 4, 15000, 100},
	{"b2-30", 8, 30000, 200},
	{"b3-8", 2, 8000, 50},
	{"b3-16", 4, 16000, 100},
	{"b3-32", 8, 32000, 200},
	{"b3-64", 16, 64000, 400},
	{"c3-4", 2, 4000, 50},
	{"c3-8", 4, 8000, 100},
	{"c3-16", 8, 16000, 200},
	{"r3-16", 2, 16000, 50},
	{"r3-32", 4, 32000, 100},
}

// flavorID returns the ID of a flavor in a region (on OVH, flavor IDs are
// UUIDs that differ between regions).
func flavorID(region, name string) string { return stableUUID("flavor", region, name) }

// findFlavor returns the flavor of an ID in a region.
func findFlavor(region, id string) (flavorSpec, bool) {
	for _, f := range flavorTable {
		if flavorID(region, f.Name) == id {
			return f, true
		}
	}
	return flavorSpec{}, false
}

// imageSpec is one public Glance image of OVH Public Cloud.
type imageSpec struct {
	Name        string
	Distro      string
	Version     string
	User        string // image_original_user: the default login
	Size        int64
	VirtualSize int64
	Built       time.Time
}

// imageTable lists the public images the local cloud offers in every region.
var imageTable = []imageSpec{
	{"Debian 12", "debian", "12", "debian", 389_480_448, 2_147_483_648, time.Date(2025, 5, 19, 8, 41, 7, 0, time.UTC)},
	{"Ubuntu 24.04", "ubuntu", "24.04", "ubuntu", 601_751_552, 3_758_096_384, time.Date(2025, 5, 26, 9, 3, 51, 0, time.UTC)},
}

// imageOwner is the project owning OVH's public images.
const imageOwner = "8d1cc7e7d8bb4dbb84a4b5e3c4d2a1f0"

// imageID returns the ID of an image in a region.
func imageID(region, name string) string { return stableUUID("image", region, name) }

// findImage returns the image of an ID in a region.
func findImage(region, id string) (imageSpec, bool) {
	for _, im := range imageTable {
		if imageID(region, im.Name) == id {
			return im, true
		}
	}
	return imageSpec{}, false
}

// imageDigests returns stable md5-sized and sha512 digests standing for an
// image's content.
func imageDigests(region, name string) (md5Hex, sha512Hex string) {
	s := sha256.Sum256([]byte("image-content/" + region + "/" + name))
	l := sha512.Sum512([]byte("image-content/" + region + "/" + name))
	return hex.EncodeToString(s[:16]), hex.EncodeToString(l[:])
}
