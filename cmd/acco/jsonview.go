package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/accoreboot/acco/state"
)

// jsonFormatVersion is the format_version every --json document carries
// (and every object of a --json stream): it changes when a field is
// removed or changes meaning, not when one is added.
const jsonFormatVersion = "1"

// errNotObject is a bug: every --json document is a JSON object, so that
// it can carry format_version.
var errNotObject = errors.New("a --json document must be a JSON object")

// versionedDocument returns the JSON object data with format_version first,
// unless it already has one (the plan's, written by provision).
func versionedDocument(data []byte) ([]byte, error) {
	data = bytes.TrimSpace(data)
	has, err := hasFormatVersion(data)
	if err != nil || has {
		return data, err
	}
	head := `{"format_version":"` + jsonFormatVersion + `"`
	rest := bytes.TrimSpace(data[1:])
	if len(rest) > 0 && rest[0] != '}' {
		head += ","
	}
	return append([]byte(head), rest...), nil
}

// versionedLine returns the JSON object data with format_version last, so
// that every line of a stream still begins with its "type".
func versionedLine(data []byte) ([]byte, error) {
	data = bytes.TrimSpace(data)
	has, err := hasFormatVersion(data)
	if err != nil || has {
		return data, err
	}
	body := bytes.TrimSpace(data[:len(data)-1])
	tail := `"format_version":"` + jsonFormatVersion + `"}`
	if len(body) > 1 {
		tail = "," + tail
	}
	return append(body, tail...), nil
}

// hasFormatVersion reports whether the JSON object data has the key
// format_version; data that is not an object is errNotObject.
func hasFormatVersion(data []byte) (bool, error) {
	var fields map[string]json.RawMessage
	if len(data) == 0 || data[0] != '{' || json.Unmarshal(data, &fields) != nil {
		return false, fmt.Errorf("%w, not %.40s", errNotObject, data)
	}
	_, ok := fields["format_version"]
	return ok, nil
}

// lockJSON is a lock holder as --json shows it: state.LockInfo with
// "expires": null for a lock that never expires (not year one).
type lockJSON struct {
	state.LockInfo
}

// holderJSON returns the --json view of a lock, nil for none.
func holderJSON(info *state.LockInfo) *lockJSON {
	if info == nil {
		return nil
	}
	return &lockJSON{*info}
}

// MarshalJSON writes the lock's fields as state.LockInfo does, with a zero
// expiry as null.
func (l lockJSON) MarshalJSON() ([]byte, error) {
	data, err := json.Marshal(l.LockInfo)
	if err != nil || !l.Expires.IsZero() {
		return data, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, err
	}
	fields["expires"] = json.RawMessage("null")
	return json.Marshal(fields)
}
