package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/accoreboot/acco/state"
)

func TestVersionedJSON(t *testing.T) {
	tests := []struct {
		name, in, doc, line string
		err                 bool
	}{
		{name: "empty object", in: `{}`, doc: `{"format_version":"1"}`, line: `{"format_version":"1"}`},
		{name: "fields", in: `{"type":"summary","n":1}`, doc: `{"format_version":"1","type":"summary","n":1}`, line: `{"type":"summary","n":1,"format_version":"1"}`},
		{name: "already versioned", in: `{"format_version":"1","env":"test"}`, doc: `{"format_version":"1","env":"test"}`, line: `{"format_version":"1","env":"test"}`},
		{name: "array", in: `[{"env":"test"}]`, err: true},
		{name: "string", in: `"10.0.0.1"`, err: true},
		{name: "null", in: `null`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := versionedDocument([]byte(tt.in))
			line, lerr := versionedLine([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, errNotObject) || !errors.Is(lerr, errNotObject) {
					t.Fatalf("errors %v, %v; want errNotObject", err, lerr)
				}
				return
			}
			if err != nil || lerr != nil {
				t.Fatal(err, lerr)
			}
			if string(doc) != tt.doc {
				t.Errorf("document %s, want %s", doc, tt.doc)
			}
			if string(line) != tt.line {
				t.Errorf("line %s, want %s", line, tt.line)
			}
			if problems := unversionedJSON(append(append(doc, '\n'), line...)); len(problems) > 0 {
				t.Errorf("the script check refuses them: %v", problems)
			}
		})
	}
}

func TestUnversionedJSON(t *testing.T) {
	tests := []struct {
		out  string
		want []string
	}{
		{out: "", want: nil},
		{out: "{\"format_version\":\"1\"}\n{\"type\":\"x\",\"format_version\":\"1\"}\n", want: nil},
		{out: `{"env":"test"}`, want: []string{"value 1 has format_version <nil>"}},
		{out: `{"format_version":"1"}` + "\n" + `[1]`, want: []string{"value 2 is not an object"}},
		{out: `{"format_version":"1"} exit=0`, want: []string{"stdout is not JSON after 1 values"}},
	}
	for _, tt := range tests {
		got := unversionedJSON([]byte(tt.out))
		if len(got) != len(tt.want) {
			t.Errorf("%q: problems %q, want %q", tt.out, got, tt.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tt.want[i]) {
				t.Errorf("%q: problem %q, want %q...", tt.out, got[i], tt.want[i])
			}
		}
	}
}

func TestLockJSONExpires(t *testing.T) {
	created := time.Date(2026, 12, 6, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires time.Time
		want    string
	}{
		{name: "never", want: `"expires":null`},
		{name: "lease", expires: created.Add(time.Minute), want: `"expires":"2026-12-06T02:01:00Z"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info := &state.LockInfo{ID: "id", Operation: "hold", Who: "op@host", Reason: "freeze", Created: created, Expires: tt.expires}
			data, err := json.Marshal(lockStatus{Env: "test", Locked: true, Holder: holderJSON(info)})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{tt.want, `"created":"2026-12-06T02:00:00Z"`, `"reason":"freeze"`, `"who":"op@host"`, `"id":"id"`} {
				if !strings.Contains(string(data), want) {
					t.Errorf("%s lacks %s", data, want)
				}
			}
			if strings.Contains(string(data), "0001-01-01") {
				t.Errorf("%s shows year one", data)
			}
		})
	}
	if holderJSON(nil) != nil {
		t.Error("no lock must stay nil (omitted)")
	}
}
