package ovhapi

import (
	"fmt"
	"slices"
	"strings"
)

// The catalog: what the local cloud sells. These are fixed tables, modelled on
// what OVHcloud offered for PostgreSQL in 2025-2026: Gen 2 plans (essential,
// business, enterprise) on db1-* flavors, Gen 3 plans (production, advanced)
// on b3-* flavors with at least two nodes, versions 14 to 18, the 1-AZ
// database regions.

const (
	engineName     = "postgresql"
	engineCategory = "operational"
	defaultVersion = "17"
	diskType       = "high-speed"
	diskTypeGen3   = "high-speed-gen2"
	storageStepGB  = 10
	fakePort       = 20184
	sslMode        = "require"
)

// versionSpec is one PostgreSQL major version on sale.
type versionSpec struct {
	name              string
	startDate         string // date
	upstreamEndOfLife string // date
	status            string // cloud.project.database.availability.StatusEnum
}

var versions = []versionSpec{
	{"14", "2021-11-15", "2026-11-12", "STABLE"},
	{"15", "2022-11-14", "2027-11-11", "STABLE"},
	{"16", "2023-11-13", "2028-11-09", "STABLE"},
	{"17", "2024-11-12", "2029-11-08", "STABLE"},
	{"18", "2025-11-10", "2030-11-14", "BETA"},
}

// planSpec is one service plan.
type planSpec struct {
	name          string
	description   string
	order         int
	minNodes      int
	maxNodes      int
	retentionDays int
	flavors       []string
	gen3          bool
}

var plans = []planSpec{
	{"essential", "Essential: one node, for development and tests", 1, 1, 1, 2, []string{"db1-4", "db1-7", "db1-15"}, false},
	{"business", "Business: two nodes, high availability", 2, 2, 2, 14, []string{"db1-7", "db1-15", "db1-30", "db1-60"}, false},
	{"enterprise", "Enterprise: three nodes, high availability", 3, 3, 3, 30, []string{"db1-15", "db1-30", "db1-60", "db1-120"}, false},
	{"production", "Production: two or three nodes, high availability (Gen 3)", 4, 2, 3, 14, []string{"b3-8", "b3-16", "b3-32", "b3-64"}, true},
	{"advanced", "Advanced: three nodes, high availability (Gen 3)", 5, 3, 3, 30, []string{"b3-16", "b3-32", "b3-64", "b3-128"}, true},
}

// flavorSpec is one node template.
type flavorSpec struct {
	name      string
	order     int
	cores     int
	memoryGB  int
	storageGB int // included storage, the minimum disk size
	maxDiskGB int
}

var flavors = []flavorSpec{
	{"db1-4", 1, 1, 4, 80, 240},
	{"db1-7", 2, 2, 7, 160, 480},
	{"db1-15", 3, 4, 15, 320, 960},
	{"db1-30", 4, 8, 30, 640, 1920},
	{"db1-60", 5, 16, 60, 1280, 3840},
	{"db1-120", 6, 32, 120, 2560, 7680},
	{"b3-8", 7, 2, 8, 80, 1000},
	{"b3-16", 8, 4, 16, 160, 2000},
	{"b3-32", 9, 8, 32, 320, 4000},
	{"b3-64", 10, 16, 64, 640, 8000},
	{"b3-128", 11, 32, 128, 1280, 16000},
}

// regions are the database regions (not the OpenStack ones: GRA, not GRA11).
var regions = []string{"BHS", "DE", "GRA", "SBG", "UK", "WAW"}

// advancedProperty is one advanced configuration key that can be set.
type advancedProperty struct {
	name        string
	typ         string // boolean, double, long, string
	description string
	minimum     *float64
	maximum     *float64
	values      []string
}

func bound(v float64) *float64 { return &v }

var advancedProperties = []advancedProperty{
	{"pg.autovacuum_freeze_max_age", "long", "Specifies the maximum age (in transactions) that a table's pg_class.relfrozenxid field can attain before a VACUUM operation is forced. This parameter will cause the server to be restarted.", bound(200000000), bound(1500000000), nil},
	{"pg.autovacuum_max_workers", "long", "Specifies the maximum number of autovacuum processes that may be running at any one time.", bound(1), bound(20), nil},
	{"pg.deadlock_timeout", "long", "This is the amount of time, in milliseconds, to wait on a lock before checking to see if there is a deadlock condition.", bound(500), bound(1800000), nil},
	{"pg.idle_in_transaction_session_timeout", "long", "Time out sessions with open transactions after this number of milliseconds.", bound(0), bound(604800000), nil},
	{"pg.jit", "boolean", "Controls system-wide use of Just-in-Time Compilation (JIT).", nil, nil, nil},
	{"pg.log_min_duration_statement", "long", "Log statements that take more than this number of milliseconds to run, -1 disables.", bound(-1), bound(86400000), nil},
	{"pg.max_connections", "long", "PostgreSQL maximum number of concurrent connections to the database server.", bound(25), bound(1000), nil},
	{"pg.max_locks_per_transaction", "long", "PostgreSQL maximum locks per transaction.", bound(64), bound(6400), nil},
	{"pg.max_logical_replication_workers", "long", "PostgreSQL maximum logical replication workers (taken from the pool of max_parallel_workers).", bound(4), bound(64), nil},
	{"pg.max_replication_slots", "long", "PostgreSQL maximum replication slots.", bound(8), bound(64), nil},
	{"pg.max_wal_senders", "long", "PostgreSQL maximum WAL senders.", bound(20), bound(64), nil},
	{"pg.max_worker_processes", "long", "Sets the maximum number of background processes that the system can support.", bound(8), bound(96), nil},
	{"pg.statement_timeout", "long", "Abort any statement that takes more than the specified number of milliseconds.", bound(0), bound(86400000), nil},
	{"pg.log_error_verbosity", "string", "Controls the amount of detail written in the server log for each message that is logged.", nil, nil, []string{"TERSE", "DEFAULT", "VERBOSE"}},
	{"pg.timezone", "string", "PostgreSQL service timezone.", nil, nil, nil},
	{"pg.track_commit_timestamp", "string", "Record commit time of transactions.", nil, nil, []string{"off", "on"}},
	{"pg.wal_sender_timeout", "long", "Terminate replication connections that are inactive for longer than this amount of time, in milliseconds.", bound(0), bound(10800000), nil},
	{"pgbouncer.server_reset_query_always", "boolean", "Run server_reset_query (DISCARD ALL) in all pooling modes.", nil, nil, nil},
	{"shared_buffers_percentage", "double", "Percentage of total RAM that the database server uses for shared memory buffers.", bound(20), bound(60), nil},
	{"timescaledb.max_background_workers", "long", "The number of background workers for timescaledb operations.", bound(1), bound(4096), nil},
	{"work_mem", "long", "Sets the maximum amount of memory to be used by a query operation before writing to temporary disk files, in MB.", bound(1), bound(1024), nil},
}

// planByName returns the plan called name.
func planByName(name string) (planSpec, bool) {
	for _, p := range plans {
		if p.name == name {
			return p, true
		}
	}
	return planSpec{}, false
}

// flavorByName returns the flavor called name.
func flavorByName(name string) (flavorSpec, bool) {
	for _, f := range flavors {
		if f.name == name {
			return f, true
		}
	}
	return flavorSpec{}, false
}

// versionByName returns the version called name.
func versionByName(name string) (versionSpec, bool) {
	for _, v := range versions {
		if v.name == name {
			return v, true
		}
	}
	return versionSpec{}, false
}

// offered reports whether (version, plan, flavor, region) is on sale.
func offered(version, plan, flavor, region string) bool {
	p, ok := planByName(plan)
	if !ok {
		return false
	}
	_, vok := versionByName(version)
	return vok && slices.Contains(p.flavors, flavor) && slices.Contains(regions, region)
}

// diskType returns the disk type of a plan.
func (p planSpec) diskType() string {
	if p.gen3 {
		return diskTypeGen3
	}
	return diskType
}

// checkDisk validates a disk size for a flavor; 0 means the included size.
func checkDisk(f flavorSpec, size int) (int, error) {
	if size == 0 {
		return f.storageGB, nil
	}
	if size < f.storageGB || size > f.maxDiskGB || (size-f.storageGB)%storageStepGB != 0 {
		return 0, fmt.Errorf("disk size %d GB is not valid for flavor %s: it must be between %d and %d GB in steps of %d GB",
			size, f.name, f.storageGB, f.maxDiskGB, storageStepGB)
	}
	return size, nil
}

// availability is one cloud.project.database.Availability.
type availability struct {
	Backup              string              `json:"backup"`
	BackupRetentionDays int                 `json:"backupRetentionDays"`
	Backups             availabilityBackups `json:"backups"`
	Category            string              `json:"category"`
	Default             bool                `json:"default"`
	EndOfLife           *string             `json:"endOfLife"`
	Engine              string              `json:"engine"`
	Flavor              string              `json:"flavor"`
	Lifecycle           lifecycle           `json:"lifecycle"`
	MaxDiskSize         int                 `json:"maxDiskSize"`
	MaxNodeNumber       int                 `json:"maxNodeNumber"`
	MinDiskSize         int                 `json:"minDiskSize"`
	MinNodeNumber       int                 `json:"minNodeNumber"`
	Network             string              `json:"network"`
	Plan                string              `json:"plan"`
	PlanCode            string              `json:"planCode"`
	PlanCodeStorage     string              `json:"planCodeStorage"`
	Region              string              `json:"region"`
	Specifications      availabilitySpecs   `json:"specifications"`
	StartDate           string              `json:"startDate"`
	Status              string              `json:"status"`
	StepDiskSize        int                 `json:"stepDiskSize"`
	UpstreamEndOfLife   *string             `json:"upstreamEndOfLife"`
	Version             string              `json:"version"`
}

type availabilityBackups struct {
	Available     bool `json:"available"`
	RetentionDays *int `json:"retentionDays"`
}

type lifecycle struct {
	EndOfLife *string `json:"endOfLife"`
	EndOfSale *string `json:"endOfSale"`
	StartDate string  `json:"startDate"`
	Status    string  `json:"status"`
}

type availabilitySpecs struct {
	Flavor  string               `json:"flavor"`
	Network string               `json:"network"`
	Nodes   minMax               `json:"nodes"`
	Storage *availabilityStorage `json:"storage"`
}

type minMax struct {
	Maximum int `json:"maximum"`
	Minimum int `json:"minimum"`
}

type availabilityStorage struct {
	Maximum unitValue  `json:"maximum"`
	Minimum unitValue  `json:"minimum"`
	Step    *unitValue `json:"step"`
}

type unitValue struct {
	Unit  string `json:"unit"`
	Value int    `json:"value"`
}

// availabilityFilter narrows the availability list as the query parameters of
// GET /database/availability ask.
type availabilityFilter struct {
	action string // fork, read, update; "" = everything
	target string // flavor, plan, self, version
	c      *cluster
}

// matches reports whether the offer (v, p, f, region) passes the filter.
func (af availabilityFilter) matches(v versionSpec, p planSpec, f flavorSpec, region string) bool {
	c := af.c
	if c == nil {
		return true
	}
	if af.action == "fork" {
		return region == c.Region && v.name == c.Version
	}
	if af.action != "update" {
		return true
	}
	same := v.name == c.Version && p.name == c.Plan && f.name == c.Flavor && region == c.Region
	switch af.target {
	case "self":
		return same
	case "flavor":
		return v.name == c.Version && p.name == c.Plan && region == c.Region
	case "plan":
		return v.name == c.Version && f.name == c.Flavor && region == c.Region
	case "version":
		return p.name == c.Plan && f.name == c.Flavor && region == c.Region && versionAtLeast(v.name, c.Version)
	}
	return true
}

// versionAtLeast compares two major versions.
func versionAtLeast(v, than string) bool {
	if len(v) != len(than) {
		return len(v) > len(than)
	}
	return v >= than
}

// buildAvailability lists every (version, plan, flavor, region) on sale.
func buildAvailability(af availabilityFilter) []availability {
	out := []availability{}
	for _, v := range versions {
		for _, p := range plans {
			for _, fname := range p.flavors {
				f, _ := flavorByName(fname)
				for _, region := range regions {
					if !af.matches(v, p, f, region) {
						continue
					}
					out = append(out, offer(v, p, f, region))
				}
			}
		}
	}
	return out
}

// offer builds one availability entry.
func offer(v versionSpec, p planSpec, f flavorSpec, region string) availability {
	retention := p.retentionDays
	eol := v.upstreamEndOfLife
	gen := "gen2"
	if p.gen3 {
		gen = "gen3"
	}
	return availability{
		Backup:              "pitr",
		BackupRetentionDays: p.retentionDays,
		Backups:             availabilityBackups{Available: true, RetentionDays: &retention},
		Category:            engineCategory,
		Default:             v.name == defaultVersion && p.name == "essential" && f.name == "db1-4",
		Engine:              engineName,
		Flavor:              f.name,
		Lifecycle:           lifecycle{StartDate: v.startDate, Status: v.status},
		MaxDiskSize:         f.maxDiskGB,
		MaxNodeNumber:       p.maxNodes,
		MinDiskSize:         f.storageGB,
		MinNodeNumber:       p.minNodes,
		Network:             "public",
		Plan:                p.name,
		PlanCode:            fmt.Sprintf("databases.%s-%s-%s.hour.consumption", engineName, p.name, f.name),
		PlanCodeStorage:     fmt.Sprintf("databases.%s-%s-additionnal-storage-%s.hour.consumption", engineName, p.name, gen),
		Region:              region,
		Specifications: availabilitySpecs{
			Flavor:  f.name,
			Network: "public",
			Nodes:   minMax{Maximum: p.maxNodes, Minimum: p.minNodes},
			Storage: &availabilityStorage{
				Maximum: unitValue{Unit: "GB", Value: f.maxDiskGB},
				Minimum: unitValue{Unit: "GB", Value: f.storageGB},
				Step:    &unitValue{Unit: "GB", Value: storageStepGB},
			},
		},
		StartDate:         v.startDate,
		Status:            v.status,
		StepDiskSize:      storageStepGB,
		UpstreamEndOfLife: &eol,
		Version:           v.name,
	}
}

// capabilities is cloud.project.database.Capabilities.
type capabilities struct {
	Disks   []string           `json:"disks"`
	Engines []capabilityEngine `json:"engines"`
	Flavors []capabilityFlavor `json:"flavors"`
	Options []capabilityOption `json:"options"`
	Plans   []capabilityPlan   `json:"plans"`
	Regions []string           `json:"regions"`
}

type capabilityEngine struct {
	Category       string   `json:"category"`
	DefaultVersion string   `json:"defaultVersion"`
	Description    string   `json:"description"`
	Name           string   `json:"name"`
	SSLModes       []string `json:"sslModes"`
	Storage        string   `json:"storage"`
	Versions       []string `json:"versions"`
}

type capabilityFlavor struct {
	Core           int               `json:"core"`
	Lifecycle      lifecycle         `json:"lifecycle"`
	Memory         int               `json:"memory"`
	Name           string            `json:"name"`
	Order          int               `json:"order"`
	Specifications flavorSpecsOutput `json:"specifications"`
	Storage        int               `json:"storage"`
	Tags           []string          `json:"tags"`
}

type flavorSpecsOutput struct {
	Core    int       `json:"core"`
	Memory  unitValue `json:"memory"`
	Storage unitValue `json:"storage"`
}

type capabilityOption struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

type capabilityPlan struct {
	BackupRetention string    `json:"backupRetention"`
	Description     string    `json:"description"`
	Lifecycle       lifecycle `json:"lifecycle"`
	Name            string    `json:"name"`
	Order           int       `json:"order"`
	Tags            []string  `json:"tags"`
}

// buildCapabilities describes the catalog.
func buildCapabilities() capabilities {
	c := capabilities{
		Disks:   []string{diskType, diskTypeGen3},
		Options: []capabilityOption{},
		Regions: slices.Clone(regions),
	}
	names := make([]string, 0, len(versions))
	for _, v := range versions {
		names = append(names, v.name)
	}
	c.Engines = []capabilityEngine{{
		Category:       engineCategory,
		DefaultVersion: defaultVersion,
		Description:    "object-relational database management system",
		Name:           engineName,
		SSLModes:       []string{sslMode},
		Storage:        "replicated",
		Versions:       names,
	}}
	stable := lifecycle{StartDate: "2021-01-01", Status: "STABLE"}
	for _, f := range flavors {
		tags := []string{"current"}
		if strings.HasPrefix(f.name, "b3-") {
			tags = []string{"current", "new"}
		}
		c.Flavors = append(c.Flavors, capabilityFlavor{
			Core: f.cores, Lifecycle: stable, Memory: f.memoryGB, Name: f.name, Order: f.order,
			Specifications: flavorSpecsOutput{
				Core:    f.cores,
				Memory:  unitValue{Unit: "GB", Value: f.memoryGB},
				Storage: unitValue{Unit: "GB", Value: f.storageGB},
			},
			Storage: f.storageGB, Tags: tags,
		})
	}
	for _, p := range plans {
		c.Plans = append(c.Plans, capabilityPlan{
			BackupRetention: fmt.Sprintf("P%dD", p.retentionDays),
			Description:     p.description, Lifecycle: stable, Name: p.name, Order: p.order, Tags: []string{"current"},
		})
	}
	return c
}

// advancedPropertyOutput is cloud.project.database.capabilities.advancedConfiguration.Property.
type advancedPropertyOutput struct {
	Description string   `json:"description"`
	Maximum     *float64 `json:"maximum"`
	Minimum     *float64 `json:"minimum"`
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Values      []string `json:"values"`
}

// buildAdvancedProperties lists the advanced configuration keys.
func buildAdvancedProperties() []advancedPropertyOutput {
	out := make([]advancedPropertyOutput, 0, len(advancedProperties))
	for _, p := range advancedProperties {
		out = append(out, advancedPropertyOutput{
			Description: p.description, Maximum: p.maximum, Minimum: p.minimum,
			Name: p.name, Type: p.typ, Values: p.values,
		})
	}
	return out
}
