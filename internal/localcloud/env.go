package localcloud

import (
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadCredentials reads the credentials of the local cloud kept in dir.
func LoadCredentials(dir string) (*Credentials, error) {
	return loadCredentials(dir, nil)
}

// CloudName is the clouds.yaml entry of an environment's project, the
// default `cloud:` of environments/<env>.yaml.
func CloudName(env string) string { return "acco-" + env }

// Var is one environment variable of Exports.
type Var struct {
	Name, Value string
}

// Exports returns the shell `export` lines that point every client at the
// cloud: OpenStack (OS_*, for the project of env), the OVH API (OVH_*), S3
// (AWS_*) and acco's state (ACCO_STATE, ACCO_STATE_KEY).
func Exports(info *Info, creds *Credentials, env string) (string, error) {
	vars, err := Variables(info, creds, env)
	if err != nil {
		return "", err
	}
	return ExportLines(info, env, vars), nil
}

// ExportLines writes vars as shell `export` lines, values quoted, under a
// comment naming the cloud and the environment.
func ExportLines(info *Info, env string, vars []Var) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# acco local cloud in %s, environment %s\n", info.Dir, env)
	for _, v := range vars {
		fmt.Fprintf(&b, "export %s=%s\n", v.Name, shellQuote(v.Value))
	}
	return b.String()
}

// Variables returns the variables of Exports, in order.
func Variables(info *Info, creds *Credentials, env string) ([]Var, error) {
	p := creds.project(env)
	if p == nil {
		var names []string
		for _, p := range creds.Projects {
			names = append(names, p.Env)
		}
		return nil, fmt.Errorf("the local cloud has no project for environment %q (it has %s)", env, strings.Join(names, ", "))
	}
	region := "GRA11"
	if len(info.Regions) > 0 {
		region = info.Regions[0]
	}
	state := url.URL{Scheme: "s3", Host: StateBucket, RawQuery: url.Values{
		"endpoint":   {info.Endpoints.S3},
		"region":     {"gra"},
		"path_style": {"true"},
	}.Encode()}
	return []Var{
		{"OS_AUTH_URL", info.Endpoints.Identity},
		{"OS_IDENTITY_API_VERSION", "3"},
		{"OS_USERNAME", p.User},
		{"OS_PASSWORD", p.Password},
		{"OS_PROJECT_ID", p.ID},
		{"OS_PROJECT_NAME", p.Env},
		{"OS_USER_DOMAIN_NAME", "Default"},
		{"OS_PROJECT_DOMAIN_NAME", "Default"},
		{"OS_REGION_NAME", region},
		{"OS_INTERFACE", "public"},
		{"OS_CLIENT_CONFIG_FILE", filepath.Join(info.Dir, cloudsFile)},
		{"OVH_ENDPOINT", info.Endpoints.OVH},
		{"OVH_APPLICATION_KEY", creds.OVHApplicationKey},
		{"OVH_APPLICATION_SECRET", creds.OVHAppSecret},
		{"OVH_CONSUMER_KEY", creds.OVHConsumerKey},
		{"AWS_ACCESS_KEY_ID", creds.S3AccessKey},
		{"AWS_SECRET_ACCESS_KEY", creds.S3SecretKey},
		{"AWS_REGION", "gra"},
		{"AWS_DEFAULT_REGION", "gra"},
		{"AWS_ENDPOINT_URL", info.Endpoints.S3},
		{"AWS_ENDPOINT_URL_S3", info.Endpoints.S3},
		{"AWS_REQUEST_CHECKSUM_CALCULATION", "when_required"},
		{"AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required"},
		{"ACCO_STATE", state.String()},
		{"ACCO_STATE_KEY", creds.StateKey},
	}, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// WriteCloudsYAML writes clouds.yaml (one entry per project, named
// acco-<env>) and secure.yaml (their passwords, mode 0600) into the cloud's
// directory, and returns the path of clouds.yaml.
func WriteCloudsYAML(info *Info, creds *Credentials) (string, error) {
	region := "GRA11"
	if len(info.Regions) > 0 {
		region = info.Regions[0]
	}
	clouds := map[string]any{}
	secure := map[string]any{}
	projects := append([]Project(nil), creds.Projects...)
	sort.Slice(projects, func(i, j int) bool { return projects[i].Env < projects[j].Env })
	for _, p := range projects {
		clouds[CloudName(p.Env)] = map[string]any{
			"auth": map[string]any{
				"auth_url":            info.Endpoints.Identity,
				"username":            p.User,
				"project_id":          p.ID,
				"project_name":        p.Env,
				"user_domain_name":    "Default",
				"project_domain_name": "Default",
			},
			"region_name":          region,
			"interface":            "public",
			"identity_api_version": 3,
		}
		secure[CloudName(p.Env)] = map[string]any{"auth": map[string]any{"password": p.Password}}
	}
	for _, f := range []struct {
		name string
		doc  map[string]any
	}{{cloudsFile, clouds}, {secureFile, secure}} {
		data, err := yaml.Marshal(map[string]any{"clouds": f.doc})
		if err != nil {
			return "", fmt.Errorf("encode %s: %w", f.name, err)
		}
		header := []byte("# written by acco local env: the local cloud's projects\n")
		if err := writeFileAtomic(filepath.Join(info.Dir, f.name), append(header, data...), 0o600); err != nil {
			return "", err
		}
	}
	return filepath.Join(info.Dir, cloudsFile), nil
}

// ParseExports reads the `export K=V` lines Exports prints (V possibly
// single-quoted) back into variables, for programs that start a local
// cloud in-process and point themselves at it.
func ParseExports(s string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
		}
		vars[k] = v
	}
	return vars
}
