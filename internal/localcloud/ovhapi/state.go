package ovhapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// stateFormat is the version of the Snapshot format.
const stateFormat = 1

// state is everything the API remembers; it is what Snapshot saves.
type state struct {
	FormatVersion int                 `json:"format_version"`
	Projects      map[string]*project `json:"projects"`
}

// project is one Public Cloud project.
type project struct {
	CreatedAt time.Time  `json:"created_at"`
	Clusters  []*cluster `json:"clusters"`
}

// cluster is one PostgreSQL service.
type cluster struct {
	ID                 string            `json:"id"`
	Description        string            `json:"description"`
	Plan               string            `json:"plan"`
	Version            string            `json:"version"`
	Flavor             string            `json:"flavor"`
	Region             string            `json:"region"`
	DiskSize           int               `json:"disk_size"`
	Nodes              []*node           `json:"nodes"`
	IPRestrictions     []*ipRule         `json:"ip_restrictions"`
	BackupRegions      []string          `json:"backup_regions"`
	BackupTime         string            `json:"backup_time"`
	MaintenanceTime    string            `json:"maintenance_time"`
	DeletionProtection bool              `json:"deletion_protection"`
	EnablePrometheus   bool              `json:"enable_prometheus"`
	NetworkID          string            `json:"network_id,omitempty"`
	SubnetID           string            `json:"subnet_id,omitempty"`
	CreatedAt          time.Time         `json:"created_at"`
	ReadyAt            time.Time         `json:"ready_at"`
	UpdatingUntil      time.Time         `json:"updating_until"`
	DeletingSince      time.Time         `json:"deleting_since"`
	GoneAt             time.Time         `json:"gone_at"`
	Host               string            `json:"host"`
	Port               int               `json:"port"`
	Provisioned        bool              `json:"provisioned"`
	Failure            string            `json:"failure,omitempty"`
	Users              []*dbUser         `json:"users"`
	Databases          []*logicalDB      `json:"databases"`
	AdvancedConfig     map[string]string `json:"advanced_configuration"`
}

// node is one node of a cluster.
type node struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// ipRule is one entry of a cluster's IP allow-list.
type ipRule struct {
	IP          string `json:"ip"`
	Description string `json:"description"`
}

// dbUser is one database user. Its password is never kept.
type dbUser struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	CreatedAt time.Time `json:"created_at"`
	// pending is set while the backend creates or drops the role.
	pending bool
}

// logicalDB is one database of a cluster.
type logicalDB struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Default bool   `json:"default"`
	// pending is set while the backend creates or drops the database.
	pending bool
}

func newState() *state {
	return &state{FormatVersion: stateFormat, Projects: map[string]*project{}}
}

// decodeState reads a Snapshot.
func decodeState(data []byte) (*state, error) {
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	if st.FormatVersion != stateFormat {
		return nil, fmt.Errorf("format_version %d is not supported (this build reads %d)", st.FormatVersion, stateFormat)
	}
	if st.Projects == nil {
		st.Projects = map[string]*project{}
	}
	for _, p := range st.Projects {
		for _, c := range p.Clusters {
			if !c.Provisioned && c.Failure == "" && c.DeletingSince.IsZero() {
				c.Failure = "the local cloud stopped while the cluster was being created"
			}
			if c.AdvancedConfig == nil {
				c.AdvancedConfig = map[string]string{}
			}
		}
	}
	return &st, nil
}

// persisted returns a copy of the state without the pending objects.
func (st *state) persisted() *state {
	out := &state{FormatVersion: stateFormat, Projects: map[string]*project{}}
	for sn, p := range st.Projects {
		cp := &project{CreatedAt: p.CreatedAt, Clusters: []*cluster{}}
		for _, c := range p.Clusters {
			cc := *c
			cc.Users = c.liveUsers()
			cc.Databases = c.liveDatabases()
			cp.Clusters = append(cp.Clusters, &cc)
		}
		out.Projects[sn] = cp
	}
	return out
}

// project returns the project sn, creating it at now if needed.
func (st *state) project(sn string, now time.Time) *project {
	p, ok := st.Projects[sn]
	if !ok {
		p = &project{CreatedAt: now.UTC().Truncate(time.Second), Clusters: []*cluster{}}
		st.Projects[sn] = p
	}
	return p
}

// sweep forgets the clusters whose deletion has completed.
func (st *state) sweep(now time.Time) {
	for _, p := range st.Projects {
		kept := p.Clusters[:0]
		for _, c := range p.Clusters {
			if !c.gone(now) {
				kept = append(kept, c)
			}
		}
		clear(p.Clusters[len(kept):])
		p.Clusters = kept
	}
}

// cluster finds a live cluster of a project.
func (p *project) cluster(id string) *cluster {
	for _, c := range p.Clusters {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// Cluster statuses (cloud.project.database.StatusEnum).
const (
	statusCreating = "CREATING"
	statusDeleting = "DELETING"
	statusError    = "ERROR"
	statusPending  = "PENDING"
	statusReady    = "READY"
	statusUpdating = "UPDATING"
)

// status is the cluster's status at now.
func (c *cluster) status(now time.Time) string {
	switch {
	case !c.DeletingSince.IsZero():
		return statusDeleting
	case c.Failure != "":
		return statusError
	case !c.Provisioned || now.Before(c.ReadyAt):
		return statusCreating
	case now.Before(c.UpdatingUntil):
		return statusUpdating
	default:
		return statusReady
	}
}

// gone reports whether the cluster's deletion has completed.
func (c *cluster) gone(now time.Time) bool {
	return !c.DeletingSince.IsZero() && !now.Before(c.GoneAt)
}

// liveUsers returns the users that exist (not being created).
func (c *cluster) liveUsers() []*dbUser {
	out := []*dbUser{}
	for _, u := range c.Users {
		if !u.pending {
			out = append(out, u)
		}
	}
	return out
}

// liveDatabases returns the databases that exist (not being created).
func (c *cluster) liveDatabases() []*logicalDB {
	out := []*logicalDB{}
	for _, d := range c.Databases {
		if !d.pending {
			out = append(out, d)
		}
	}
	return out
}

// userByID finds a live user.
func (c *cluster) userByID(id string) *dbUser {
	for _, u := range c.Users {
		if u.ID == id && !u.pending {
			return u
		}
	}
	return nil
}

// userByName finds a user, pending or not.
func (c *cluster) userByName(name string) *dbUser {
	for _, u := range c.Users {
		if u.Name == name {
			return u
		}
	}
	return nil
}

// databaseByID finds a live database.
func (c *cluster) databaseByID(id string) *logicalDB {
	for _, d := range c.Databases {
		if d.ID == id && !d.pending {
			return d
		}
	}
	return nil
}

// databaseByName finds a database, pending or not.
func (c *cluster) databaseByName(name string) *logicalDB {
	for _, d := range c.Databases {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// removeUser forgets a user.
func (c *cluster) removeUser(u *dbUser) {
	for i, x := range c.Users {
		if x == u {
			c.Users = append(c.Users[:i], c.Users[i+1:]...)
			return
		}
	}
}

// removeDatabase forgets a database.
func (c *cluster) removeDatabase(d *logicalDB) {
	for i, x := range c.Databases {
		if x == d {
			c.Databases = append(c.Databases[:i], c.Databases[i+1:]...)
			return
		}
	}
}

// backupEntry is one automatic backup, derived from the cluster's history.
type backupEntry struct {
	id        string
	createdAt time.Time
}

// backups lists the automatic backups that exist at now: one taken when
// the cluster became ready, then one a day at its backup time, kept for the
// plan's retention.
func (c *cluster) backups(now time.Time) []backupEntry {
	if c.status(now) == statusCreating || c.Failure != "" || now.Before(c.ReadyAt) {
		return []backupEntry{}
	}
	retention := 2
	if p, ok := planByName(c.Plan); ok {
		retention = p.retentionDays
	}
	first := c.ReadyAt.UTC()
	times := []time.Time{first}
	bt, err := time.Parse("15:04:05", c.BackupTime)
	if err != nil {
		bt = time.Date(0, 1, 1, 1, 0, 0, 0, time.UTC)
	}
	day := time.Date(first.Year(), first.Month(), first.Day(), bt.Hour(), bt.Minute(), bt.Second(), 0, time.UTC)
	if !day.After(first) {
		day = day.AddDate(0, 0, 1)
	}
	for ; !day.After(now); day = day.AddDate(0, 0, 1) {
		times = append(times, day)
	}
	cutoff := now.AddDate(0, 0, -retention)
	out := []backupEntry{}
	for _, t := range times {
		if t.Before(cutoff) {
			continue
		}
		out = append(out, backupEntry{id: derivedUUID(c.ID, "backup", t.Format(time.RFC3339)), createdAt: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].createdAt.Before(out[j].createdAt) })
	return out
}
