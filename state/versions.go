package state

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var (
	_ Versioner = (*S3Blob)(nil)
	_ Versioner = (*DirBlob)(nil)
)

// stateHead reads the lineage and serial of a state version.
func stateHead(data []byte) (string, uint64) {
	var h struct {
		Lineage string `json:"lineage"`
		Serial  uint64 `json:"serial"`
	}
	_ = json.Unmarshal(data, &h)
	return h.Lineage, h.Serial
}

// readVersion describes version id of env's state, whose content is data.
func readVersion(env, id string, current bool, data []byte) StateVersion {
	sv := StateVersion{ID: id, Current: current}
	sv.Lineage, sv.Serial = stateHead(data)
	st, err := Decode(data)
	sv.Damaged = err != nil || st.Env != env
	return sv
}

// maxVersionsRead bounds the versions StateVersions reads from a bucket.
const maxVersionsRead = 200

// StateVersions implements Versioner: the versions of a versioned bucket,
// each read for its lineage and serial (the newest maxVersionsRead of
// them), the current one first and then by serial, highest first (servers
// differ in the order they list versions in; serials only grow).
func (b *S3Blob) StateVersions(ctx context.Context, env string, limit int) ([]StateVersion, error) {
	key := StateKey(env)
	var vs []StateVersion
	p := s3.NewListObjectVersionsPaginator(b.client, &s3.ListObjectVersionsInput{Bucket: &b.bucket, Prefix: &key})
	for p.HasMorePages() && len(vs) < maxVersionsRead {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list versions of %s: %w", key, b.objectError(ctx, err))
		}
		for _, v := range page.Versions {
			if aws.ToString(v.Key) != key || len(vs) >= maxVersionsRead {
				continue
			}
			id := aws.ToString(v.VersionId)
			got, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: &key, VersionId: &id})
			if err != nil {
				return nil, fmt.Errorf("get version %s of %s: %w", id, key, b.objectError(ctx, err))
			}
			data, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("get version %s of %s: %w", id, key, err)
			}
			vs = append(vs, readVersion(env, id, aws.ToBool(v.IsLatest), data))
		}
	}
	sortVersions(vs)
	if len(vs) > limit {
		vs = vs[:limit]
	}
	return vs, nil
}

// sortVersions puts the current version first, then the others by serial,
// highest first.
func sortVersions(vs []StateVersion) {
	slices.SortStableFunc(vs, func(a, b StateVersion) int {
		if a.Current != b.Current {
			if a.Current {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.Serial, a.Serial)
	})
}

// RestoreCommand implements Versioner: the aws CLI reads the version and
// writes it back as the current object (a download and an upload rather
// than copy-object, which not every S3 service supports for versions).
func (b *S3Blob) RestoreCommand(env, id string) string {
	key := StateKey(env)
	ep := ""
	if u := aws.ToString(b.client.Options().BaseEndpoint); u != "" {
		ep = " --endpoint-url " + u
	}
	file := env + "-state-newest.json"
	return fmt.Sprintf("aws s3api get-object --bucket %s --key %s --version-id '%s'%s %s && aws s3api put-object --bucket %s --key %s --body %s%s",
		b.bucket, key, id, ep, file, b.bucket, key, file, ep)
}

// StateVersions implements Versioner: the current state and the copies
// kept under versions/, highest serial first.
func (d *DirBlob) StateVersions(ctx context.Context, env string, limit int) ([]StateVersion, error) {
	var vs []StateVersion
	if data, _, err := d.Get(ctx, StateKey(env)); err == nil {
		vs = append(vs, readVersion(env, "state.json", true, data))
	}
	dir := filepath.Join(d.path(env), "versions")
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("list versions of %s: %w", StateKey(env), err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasPrefix(e.Name(), "state.") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read version %s of %s: %w", e.Name(), StateKey(env), err)
		}
		vs = append(vs, readVersion(env, "versions/"+e.Name(), false, data))
	}
	sortVersions(vs)
	if len(vs) > limit {
		vs = vs[:limit]
	}
	return vs, nil
}

// RestoreCommand implements Versioner: a copy of the kept file over the
// state.
func (d *DirBlob) RestoreCommand(env, id string) string {
	return fmt.Sprintf("cp %s %s", filepath.Join(d.path(env), filepath.FromSlash(id)), d.path(StateKey(env)))
}
