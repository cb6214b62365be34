package state_test

import (
	"strings"
	"testing"

	"github.com/accoreboot/acco/state"
)

func TestOpenBlob(t *testing.T) {
	for _, tc := range []struct {
		url     string
		want    string // type, or "" for an error
		wantErr string
	}{
		{"s3://acco-state?endpoint=https://s3.gra.io.cloud.ovh.net&region=gra&path_style=true", "*state.S3Blob", ""},
		{"s3://acco-state?region=gra", "*state.S3Blob", ""},
		{"file:///var/lib/acco", "*state.DirBlob", ""},
		{"file://localhost/var/lib/acco", "*state.DirBlob", ""},
		{"s3://?region=gra", "", "no bucket"},
		{"s3://b/some/key?region=gra", "", "unexpected path"},
		{"s3://b?region=gra&colour=blue", "", `unknown parameter "colour"`},
		{"s3://b?region=gra&path_style=maybe", "", "path_style"},
		{"s3://b?region=gra&endpoint=s3.gra.io.cloud.ovh.net", "", "endpoint"},
		// Plain http only to this machine, as in the YAML (state.endpoint).
		{"s3://b?region=gra&endpoint=http://127.0.0.1:9000", "*state.S3Blob", ""},
		{"s3://b?region=gra&endpoint=http://127.3.2.1:9000", "*state.S3Blob", ""},
		{"s3://b?region=gra&endpoint=http://localhost:9000", "*state.S3Blob", ""},
		{"s3://b?region=gra&endpoint=http://[::1]:9000", "*state.S3Blob", ""},
		{"s3://b?region=gra&endpoint=http://s3.gra.io.cloud.ovh.net", "", "plain http"},
		{"s3://b?region=gra&endpoint=http://10.0.0.5:9000", "", "plain http"},
		{"s3://b?region=gra&endpoint=http://localhost.example.com", "", "plain http"},
		{"s3://b?region=gra&endpoint=http://[::ffff:10.0.0.5]:9000", "", "plain http"},
		{"s3://b?region=gra&region=sbg", "", "given 2 times"},
		{"s3://key:secret@b?region=gra", "", "credentials do not belong"},
		{"file://relative/dir", "", "want file:///ABSOLUTE/DIR"},
		{"file:relative", "", "relative file URL"},
		{"file:///dir?x=1", "", "unexpected parameters"},
		{"gs://bucket", "", "unsupported scheme"},
		{"/var/lib/acco", "", "unsupported scheme"},
		{"::", "", "missing protocol scheme"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			b, err := state.OpenBlob(t.Context(), tc.url)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("OpenBlob: got %T, %v; want an error containing %q", b, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := typeName(b); got != tc.want {
				t.Errorf("OpenBlob = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPlainHTTPAllowed(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LocalHost", true},
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"", false},
		{"localhost.example.com", false},
		{"10.0.0.1", false},
		{"0.0.0.0", false},
		{"s3.gra.io.cloud.ovh.net", false},
		{"fe80::1", false},
	} {
		if got := state.PlainHTTPAllowed(tc.host); got != tc.want {
			t.Errorf("PlainHTTPAllowed(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestOpenBlobFileDir(t *testing.T) {
	b, err := state.OpenBlob(t.Context(), "file:///var/lib/acco/../state/")
	if err != nil {
		t.Fatal(err)
	}
	if got := b.(*state.DirBlob).Dir(); got != "/var/lib/state" {
		t.Errorf("Dir = %q, want /var/lib/state", got)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *state.S3Blob:
		return "*state.S3Blob"
	case *state.DirBlob:
		return "*state.DirBlob"
	}
	return "other"
}

func TestCond(t *testing.T) {
	for _, tc := range []struct {
		cond      state.Cond
		etag      string
		isMatch   bool
		formatted string
	}{
		{"", "", false, "unconditional"},
		{state.IfNoneMatch, "", false, "If-None-Match: *"},
		{state.IfMatch("abc"), "abc", true, "If-Match: abc"},
		{state.IfMatch(`"abc"`), "abc", true, "If-Match: abc"},
		{state.IfMatch(`W/"abc"`), "abc", true, "If-Match: abc"},
	} {
		t.Run(tc.formatted, func(t *testing.T) {
			etag, ok := tc.cond.Match()
			if etag != tc.etag || ok != tc.isMatch || tc.cond.String() != tc.formatted {
				t.Errorf("Match = %q, %v; String = %q; want %q, %v, %q", etag, ok, tc.cond, tc.etag, tc.isMatch, tc.formatted)
			}
		})
	}
}

func TestInvalidCond(t *testing.T) {
	b := newDirBlob(t)
	for _, c := range []state.Cond{"bogus", state.IfMatch("")} {
		if _, err := b.Put(t.Context(), "k", []byte("x"), c); err == nil {
			t.Errorf("Put with %q succeeded", string(c))
		}
	}
	if err := b.Delete(t.Context(), "k", state.IfNoneMatch); err == nil {
		t.Error("Delete with IfNoneMatch succeeded")
	}
}
