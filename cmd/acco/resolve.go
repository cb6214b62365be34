package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/accoreboot/acco/internal/spec"
	"github.com/accoreboot/acco/state"
)

// loadEnv loads and validates one environment from the environments directory.
func (a *app) loadEnv(name string) (*spec.Environment, error) {
	env, err := spec.Load(a.envDir, name, a.lookupEnv)
	if err != nil {
		return nil, err
	}
	return env, nil
}

// stateLocation says where the state of env lives and why: the --state
// flag, then ACCO_STATE, then the state section of the environment.
func (a *app) stateLocation(env *spec.Environment) (loc, source string, err error) {
	if a.stateURL != "" {
		return a.stateURL, "--state", nil
	}
	if v := a.getenv("ACCO_STATE"); v != "" {
		return v, "ACCO_STATE", nil
	}
	if env == nil {
		return "", "", fmt.Errorf("no state location: pass --state or set ACCO_STATE")
	}
	sc := env.State
	if sc.Bucket == "" {
		return "", "", fmt.Errorf("environment %s has no state.bucket: set it in %s or pass --state", env.Name, filepath.Join(a.envDir, "defaults.yaml"))
	}
	q := url.Values{}
	if sc.Region != "" {
		q.Set("region", sc.Region)
	}
	if sc.Endpoint != "" {
		q.Set("endpoint", sc.Endpoint)
	}
	if sc.PathStyle {
		q.Set("path_style", strconv.FormatBool(true))
	}
	u := url.URL{Scheme: "s3", Host: sc.Bucket, RawQuery: q.Encode()}
	return u.String(), "state section of " + env.Name, nil
}

// openState opens the blob store that holds the state of env.
func (a *app) openState(ctx context.Context, env *spec.Environment) (state.Blob, string, error) {
	loc, source, err := a.stateLocation(env)
	if err != nil {
		return nil, "", err
	}
	opts, err := a.stateOptions()
	if err != nil {
		return nil, "", err
	}
	blob, err := state.OpenBlob(ctx, loc, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("open state at %s (from %s): %w", redactURL(loc), source, err)
	}
	return blob, loc, nil
}

// envAndState loads env and opens its state store.
func (a *app) envAndState(ctx context.Context, name string) (*spec.Environment, state.Blob, error) {
	env, err := a.loadEnv(name)
	if err != nil {
		return nil, nil, err
	}
	blob, _, err := a.openState(ctx, env)
	if err != nil {
		return nil, nil, err
	}
	return env, blob, nil
}

// describeLocation renders a state location for people: the bucket or
// directory first, then where it is served from.
func describeLocation(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "s3" {
		return redactURL(loc)
	}
	q := u.Query()
	var details []string
	if e := q.Get("endpoint"); e != "" {
		details = append(details, e)
	}
	if r := q.Get("region"); r != "" {
		details = append(details, "region "+r)
	}
	if len(details) == 0 {
		return "s3://" + u.Host
	}
	return fmt.Sprintf("s3://%s (%s)", u.Host, strings.Join(details, ", "))
}

// redactURL drops any user information from a location before it is shown.
func redactURL(loc string) string {
	u, err := url.Parse(loc)
	if err != nil || u.User == nil {
		return loc
	}
	u.User = nil
	return u.String()
}

// buildVersion is the version of this binary, from the module build info.
func buildVersion() (version, commit string) {
	version, commit = "(devel)", ""
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version, commit
	}
	if v := info.Main.Version; v != "" {
		version = v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			commit = s.Value
		}
	}
	return version, commit
}
