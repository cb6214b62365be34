package localcloud

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Files of the local cloud's directory.
const (
	infoFile        = "local.json"       // the running server: pid and endpoints
	credentialsFile = "credentials.json" // generated secrets, stable across restarts
	openstackFile   = "openstack.json"   // snapshot of the OpenStack resources
	ovhFile         = "ovh.json"         // snapshot of the OVH API resources
	requestLogFile  = "requests.jsonl"   // request log, one JSON object per line
	serverLogFile   = "server.log"       // the background server's own output
	lockFile        = ".serve.lock"      // held by the serving process
	s3Dir           = "s3"
	pgDir           = "postgres"
	cloudsFile      = "clouds.yaml"
	secureFile      = "secure.yaml"
)

// Project is one environment's project in the local cloud.
type Project struct {
	Env      string `json:"env"`      // test, preprod, prod, ...
	ID       string `json:"id"`       // OVH serviceName = OpenStack project ID
	User     string `json:"user"`     // OpenStack user
	Password string `json:"password"` // its password
}

// Credentials are the secrets the local cloud hands its clients. They are
// generated once per directory and kept in credentials.json (mode 0600).
type Credentials struct {
	Projects          []Project `json:"projects"`
	OVHApplicationKey string    `json:"ovh_application_key"`
	OVHAppSecret      string    `json:"ovh_application_secret"`
	OVHConsumerKey    string    `json:"ovh_consumer_key"`
	S3AccessKey       string    `json:"s3_access_key"`
	S3SecretKey       string    `json:"s3_secret_key"`
	StateKey          string    `json:"state_key"`
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// loadCredentials reads the directory's credentials, creating them (and
// adding missing projects) as needed.
func loadCredentials(dir string, projects []Project) (*Credentials, error) {
	path := filepath.Join(dir, credentialsFile)
	var c Credentials
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c = Credentials{
			OVHApplicationKey: randomHex(8),
			OVHAppSecret:      randomHex(16),
			OVHConsumerKey:    randomHex(16),
			S3AccessKey:       "acco" + randomHex(8),
			S3SecretKey:       randomHex(20),
			StateKey:          randomHex(32),
		}
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", path, err)
	default:
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("decode %s: %w", path, err)
		}
	}
	changed := data == nil
	for _, p := range projects {
		if c.project(p.Env) != nil {
			continue
		}
		if p.User == "" {
			p.User = "acco-" + p.Env
		}
		if p.Password == "" {
			p.Password = randomHex(12)
		}
		c.Projects = append(c.Projects, p)
		changed = true
	}
	if changed {
		if err := writeJSON(path, &c, 0o600); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// project returns the project of env, or nil.
func (c *Credentials) project(env string) *Project {
	for i := range c.Projects {
		if c.Projects[i].Env == env {
			return &c.Projects[i]
		}
	}
	return nil
}

// writeJSON writes v to path atomically (temp file + rename).
func writeJSON(path string, v any, mode os.FileMode) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writeFileAtomic(path, append(data, '\n'), mode)
}

// writeFileAtomic writes data to path through a temp file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
