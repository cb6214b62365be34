package templates

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/accoreboot/acco/internal/devicecred"
)

// The sync config acco gives PowerSync is the application's (the file
// services.powersync.sync_rules names) with one definition of acco's own
// added: VerifyBucket, which only acco verify's client token gets (it
// carries the claim VerifyClaim: VerifyClaimValue, signed with acco's key)
// and which holds only the verification device's row of the latest
// position table. Without the application's file, acco's definition is all
// there is: the apps get nothing.
const (
	// VerifyBucket names acco's definition, a bucket (or a stream when the
	// application's file has streams only). The application's file may
	// not define it.
	VerifyBucket = "acco_verify"
	// VerifyClaim and VerifyClaimValue are the claim of acco verify's
	// client token that VerifyBucket keys on.
	VerifyClaim      = "acco"
	VerifyClaimValue = "verify"
)

// SyncRules is the application's sync config, as read from the file
// services.powersync.sync_rules names.
type SyncRules struct {
	// File is the file it was read from, for messages.
	File string
	// Content is the YAML.
	Content []byte
}

// syncConfigKeys are the top-level keys of a sync config (the schema of
// @powersync/service-sync-rules allows no others).
var syncConfigKeys = []string{"bucket_definitions", "streams", "with", "event_definitions", "config"}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// CheckSyncRules checks what can be checked of an application's sync
// config without PowerSync: one YAML document whose top level is a mapping
// of the sync config keys, with bucket_definitions or streams (mappings of
// definitions), definition names used once, and none named VerifyBucket.
// Its error names file:line:column and the key. PowerSync itself checks
// the queries when it starts.
func CheckSyncRules(file string, src []byte) error {
	_, err := parseSyncRules(file, src)
	return err
}

// syncRulesError is a problem in the application's sync config file.
func syncRulesError(file string, n *yaml.Node, key, format string, args ...any) error {
	where := file
	if n != nil && n.Line > 0 {
		where += fmt.Sprintf(":%d:%d", n.Line, n.Column)
	}
	if key != "" {
		where += ": " + key
	}
	return fmt.Errorf("%s: %s (services.powersync.sync_rules)", where, fmt.Sprintf(format, args...))
}

// parseSyncRules checks the application's sync config (see CheckSyncRules)
// and returns its top-level mapping.
func parseSyncRules(file string, src []byte) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, syncRulesError(file, nil, "", "invalid YAML: the parser failed (%v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, syncRulesError(file, nil, "", "the file is empty: a sync config holds bucket_definitions or streams")
	} else if err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			file += ":" + m[1]
			msg = strings.TrimPrefix(err.Error(), m[0])
		}
		return nil, syncRulesError(file, nil, "", "invalid YAML: %s", msg)
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, syncRulesError(file, &next, "", "a second YAML document starts here; a sync config is one document")
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, syncRulesError(file, &doc, "", "a sync config is a mapping with bucket_definitions or streams")
	}
	root = doc.Content[0]
	names := map[string]bool{}
	found := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if !slices.Contains(syncConfigKeys, k.Value) {
			return nil, syncRulesError(file, k, k.Value, "not a sync config key: use %s", strings.Join(syncConfigKeys, ", "))
		}
		if k.Value != "bucket_definitions" && k.Value != "streams" {
			continue
		}
		found = true
		if v.Kind != yaml.MappingNode {
			return nil, syncRulesError(file, v, k.Value, "a mapping of definitions by name is expected")
		}
		for j := 0; j+1 < len(v.Content); j += 2 {
			name, def := v.Content[j], v.Content[j+1]
			path := k.Value + "." + name.Value
			switch {
			case name.Value == VerifyBucket:
				return nil, syncRulesError(file, name, path, "%s is acco's own definition (acco verify's bucket, added by acco configure); give yours another name", VerifyBucket)
			case names[name.Value]:
				return nil, syncRulesError(file, name, path, "%s is defined twice (names are shared by bucket_definitions and streams)", name.Value)
			case def.Kind != yaml.MappingNode:
				return nil, syncRulesError(file, def, path, "a definition is a mapping (data and parameters, or query)")
			}
			names[name.Value] = true
		}
	}
	if !found {
		return nil, syncRulesError(file, root, "", "no bucket_definitions or streams: the file defines nothing to sync")
	}
	return root, nil
}

// verifyDefinition is acco's definition for the latest position table: as
// a legacy bucket (parameter query keyed on the claim, data query of the
// verification device's row) or as a stream (one query doing both).
func verifyDefinition(latestTable string, stream bool) (key, value *yaml.Node) {
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
	claim := "request.jwt() ->> " + sqlString(VerifyClaim) + " = " + sqlString(VerifyClaimValue)
	data := "SELECT device_id AS id, * FROM " + latestTable + " WHERE device_id = " + sqlString(devicecred.VerifyDevice)
	key = str(VerifyBucket)
	key.HeadComment = "acco's own, added by acco configure: only acco verify's token gets it\n" +
		"(claim " + VerifyClaim + ": " + VerifyClaimValue + ", signed with acco's key), and it holds only the\n" +
		"row of " + devicecred.VerifyDevice + ", the device acco verify publishes as."
	if stream {
		value = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
			str("auto_subscribe"), {Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"},
			str("query"), str(data + " AND auth.parameter(" + sqlString(VerifyClaim) + ") = " + sqlString(VerifyClaimValue)),
		}}
		return key, value
	}
	value = &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		str("parameters"), str("SELECT WHERE " + claim),
		str("data"), {Kind: yaml.SequenceNode, Content: []*yaml.Node{str(data)}},
	}}
	return key, value
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// syncConfig is the sync config PowerSync gets: the application's (nil:
// none) with acco's definition for latestTable added ("" adds none), as a
// stream when the application's file has streams and no
// bucket_definitions, else as a bucket.
func syncConfig(env string, app *SyncRules, latestTable string) ([]byte, error) {
	var root *yaml.Node
	var head strings.Builder
	fmt.Fprintf(&head, "# Managed by acco (%s): PowerSync reads it at start only.\n", env)
	if app != nil {
		r, err := parseSyncRules(app.File, app.Content)
		if err != nil {
			return nil, err
		}
		root = r
		head.WriteString("# The application's, from the file services.powersync.sync_rules names.\n")
	} else {
		root = &yaml.Node{Kind: yaml.MappingNode}
		head.WriteString("# services.powersync.sync_rules names no file: the apps get no data.\n")
	}
	target := "bucket_definitions"
	if get(root, "bucket_definitions") == nil && get(root, "streams") != nil {
		target = "streams"
	}
	defs := get(root, target)
	if defs == nil {
		defs = &yaml.Node{Kind: yaml.MappingNode}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: target}, defs)
	}
	if latestTable != "" {
		k, v := verifyDefinition(latestTable, target == "streams")
		defs.Content = append(defs.Content, k, v)
	}
	var b bytes.Buffer
	b.WriteString(head.String())
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("writing the sync config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing the sync config: %w", err)
	}
	return b.Bytes(), nil
}

// get returns the value of key in a mapping node, or nil.
func get(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
