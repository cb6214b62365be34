package ovhapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// schema is testdata/models.json: the operations the API serves and the
// models they use, copied from the OVH API v1 /cloud schema (legacy
// "apis/models" format).
type schema struct {
	APIs   []schemaAPI            `json:"apis"`
	Models map[string]schemaModel `json:"models"`
}

type schemaAPI struct {
	Path         string  `json:"path"`
	HTTPMethod   string  `json:"httpMethod"`
	ResponseType string  `json:"responseType"`
	BodyType     *string `json:"bodyType"`
}

type schemaModel struct {
	ID         string                `json:"id"`
	Namespace  string                `json:"namespace"`
	Enum       []string              `json:"enum"`
	EnumType   string                `json:"enumType"`
	Generics   []string              `json:"generics"`
	Properties map[string]schemaProp `json:"properties"`
}

type schemaProp struct {
	Type      string `json:"type"`
	CanBeNull bool   `json:"canBeNull"`
	ReadOnly  bool   `json:"readOnly"`
	Required  bool   `json:"required"`
}

// loadSchema reads testdata/models.json, plus the few models of OVH's /auth
// API (not part of the /cloud schema) from testdata/auth-models.json.
func loadSchema(t testing.TB) *schema {
	t.Helper()
	var s schema
	for _, file := range []string{"testdata/models.json", "testdata/auth-models.json"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("schema: %v", err)
		}
		var part schema
		if err := json.Unmarshal(data, &part); err != nil {
			t.Fatalf("schema %s: %v", file, err)
		}
		s.APIs = append(s.APIs, part.APIs...)
		if s.Models == nil {
			s.Models = map[string]schemaModel{}
		}
		for name, m := range part.Models {
			if _, dup := s.Models[name]; dup {
				t.Fatalf("schema %s: model %s defined twice", file, name)
			}
			s.Models[name] = m
		}
	}
	return &s
}

// validateJSON decodes body and checks it against the schema type typ.
func (s *schema) validateJSON(body []byte, typ string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return s.validate(v, typ, "$", nil)
}

var (
	mapType      = regexp.MustCompile(`^map\[([^\]]+)\](.+)$`)
	genericType  = regexp.MustCompile(`^(.+)<(.+)>$`)
	durationType = regexp.MustCompile(`^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$`)
	uuidType     = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// validate checks the decoded JSON value v against the schema type typ:
// primitives (string, long, double, boolean, datetime, date, time, duration,
// uuid, ip, ipBlock, password, text, void), arrays (T[]), maps
// (map[K]V), enums and models with properties (unknown, missing and null
// fields are errors unless the schema says canBeNull), generics bound by
// name (complexType.UnitAndValue<long>).
func (s *schema) validate(v any, typ, path string, bind map[string]string) error {
	if b, ok := bind[typ]; ok {
		typ = b
	}
	if elem, ok := strings.CutSuffix(typ, "[]"); ok {
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: want an array of %s, got %s", path, elem, kind(v))
		}
		for i, e := range arr {
			if e == nil {
				return fmt.Errorf("%s[%d]: null in an array of %s", path, i, elem)
			}
			if err := s.validate(e, elem, fmt.Sprintf("%s[%d]", path, i), bind); err != nil {
				return err
			}
		}
		return nil
	}
	if m := mapType.FindStringSubmatch(typ); m != nil {
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want an object (%s), got %s", path, typ, kind(v))
		}
		for _, k := range sortedKeys(obj) {
			if err := s.validate(k, m[1], path+"{key "+k+"}", bind); err != nil {
				return err
			}
			if obj[k] == nil {
				return fmt.Errorf("%s.%s: null map value", path, k)
			}
			if err := s.validate(obj[k], m[2], path+"."+k, bind); err != nil {
				return err
			}
		}
		return nil
	}
	if model, ok := s.Models[typ]; ok {
		return s.validateModel(v, typ, model, path, bind)
	}
	return validatePrimitive(v, typ, path)
}

// validateModel checks v against a model.
func (s *schema) validateModel(v any, name string, model schemaModel, path string, bind map[string]string) error {
	if len(model.Enum) > 0 {
		str, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a %s (enum), got %s", path, name, kind(v))
		}
		if !slices.Contains(model.Enum, str) {
			return fmt.Errorf("%s: %q is not in %s %v", path, str, name, model.Enum)
		}
		return nil
	}
	if len(model.Generics) > 0 {
		m := genericType.FindStringSubmatch(name)
		if m == nil {
			return fmt.Errorf("%s: generic model %s used without arguments", path, name)
		}
		args := strings.Split(m[2], ",")
		if len(args) != len(model.Generics) {
			return fmt.Errorf("%s: %s takes %d type arguments", path, name, len(model.Generics))
		}
		bind = map[string]string{}
		for i, g := range model.Generics {
			bind[g] = strings.TrimSpace(args[i])
		}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want a %s object, got %s", path, name, kind(v))
	}
	for _, k := range sortedKeys(obj) {
		if _, known := model.Properties[k]; !known {
			return fmt.Errorf("%s: field %q is not in %s", path, k, name)
		}
	}
	props := make([]string, 0, len(model.Properties))
	for k := range model.Properties {
		props = append(props, k)
	}
	sort.Strings(props)
	for _, k := range props {
		p := model.Properties[k]
		val, present := obj[k]
		if !present || val == nil {
			if p.CanBeNull {
				continue
			}
			if !present {
				return fmt.Errorf("%s: %s.%s is missing (canBeNull is false)", path, name, k)
			}
			return fmt.Errorf("%s: %s.%s is null (canBeNull is false)", path, name, k)
		}
		if err := s.validate(val, p.Type, path+"."+k, bind); err != nil {
			return err
		}
	}
	return nil
}

// validatePrimitive checks a value of a primitive type.
func validatePrimitive(v any, typ, path string) error {
	str, isStr := v.(string)
	wantString := func(check func(string) bool) error {
		if !isStr {
			return fmt.Errorf("%s: want a %s string, got %s", path, typ, kind(v))
		}
		if check != nil && !check(str) {
			return fmt.Errorf("%s: %q is not a valid %s", path, str, typ)
		}
		return nil
	}
	parses := func(layout string) func(string) bool {
		return func(s string) bool { _, err := time.Parse(layout, s); return err == nil }
	}
	switch typ {
	case "void":
		if v != nil {
			return fmt.Errorf("%s: want null (void), got %s", path, kind(v))
		}
		return nil
	case "string", "text", "password":
		return wantString(nil)
	case "datetime":
		return wantString(parses(time.RFC3339))
	case "date":
		return wantString(parses(time.DateOnly))
	case "time":
		return wantString(parses(time.TimeOnly))
	case "duration":
		return wantString(func(s string) bool { return s != "P" && durationType.MatchString(s) })
	case "uuid":
		return wantString(uuidType.MatchString)
	case "ip", "ipv4", "ipv6":
		return wantString(func(s string) bool {
			a, err := netip.ParseAddr(s)
			return err == nil && (typ == "ip" || (typ == "ipv4") == a.Is4())
		})
	case "ipBlock", "ipv4Block", "ipv6Block":
		return wantString(func(s string) bool {
			p, err := netip.ParsePrefix(s)
			return err == nil && (typ == "ipBlock" || (typ == "ipv4Block") == p.Addr().Is4())
		})
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: want a boolean, got %s", path, kind(v))
		}
		return nil
	case "long", "double":
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s: want a %s, got %s", path, typ, kind(v))
		}
		if typ == "long" {
			if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
				return fmt.Errorf("%s: %s is not a long", path, n)
			}
		} else if _, err := n.Float64(); err != nil {
			return fmt.Errorf("%s: %s is not a double", path, n)
		}
		return nil
	}
	return fmt.Errorf("%s: unknown type %q", path, typ)
}

// kind names the JSON kind of a decoded value.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestValidator checks that the validator catches what it must.
func TestValidator(t *testing.T) {
	s := loadSchema(t)
	node := `{"createdAt":"2025-01-02T03:04:05Z","flavor":"db1-4","id":"5f0e4b36-3b7e-4f43-9e1c-7a0f0a5e2b11","name":"n","port":5432,"region":"GRA","role":null,"status":"READY"}`
	tests := []struct {
		name, typ, body string
		wantErr         string
	}{
		{"valid node", "cloud.project.database.service.Node", node, ""},
		{"role may be absent (canBeNull)", "cloud.project.database.service.Node", strings.Replace(node, `"role":null,`, "", 1), ""},
		{"missing field", "cloud.project.database.service.Node", strings.Replace(node, `"flavor":"db1-4",`, "", 1), "is missing"},
		{"null non-nullable", "cloud.project.database.service.Node", strings.Replace(node, `"db1-4"`, "null", 1), "is null"},
		{"unknown field", "cloud.project.database.service.Node", strings.Replace(node, `{`, `{"region2":"x",`, 1), "is not in"},
		{"bad enum", "cloud.project.database.service.Node", strings.Replace(node, `"READY"`, `"RUNNING"`, 1), "is not in"},
		{"long as string", "cloud.project.database.service.Node", strings.Replace(node, `5432`, `"5432"`, 1), "want a long"},
		{"fractional long", "cloud.project.database.service.Node", strings.Replace(node, `5432`, `5432.5`, 1), "is not a long"},
		{"bad datetime", "cloud.project.database.service.Node", strings.Replace(node, `2025-01-02T03:04:05Z`, `yesterday`, 1), "not a valid datetime"},
		{"bad uuid", "cloud.project.database.service.Node", strings.Replace(node, `5f0e4b36-`, `5f0e4b36`, 1), "not a valid uuid"},
		{"uuid array", "uuid[]", `["5f0e4b36-3b7e-4f43-9e1c-7a0f0a5e2b11"]`, ""},
		{"null in array", "uuid[]", `[null]`, "null in an array"},
		{"ipBlock array", "ipBlock[]", `["10.0.0.0/8","2001:db8::/32"]`, ""},
		{"bad ipBlock", "ipBlock[]", `["10.0.0.0"]`, "not a valid ipBlock"},
		{"string map", "map[string]string", `{"a":"b"}`, ""},
		{"string map with a number", "map[string]string", `{"a":1}`, "want a string"},
		{"generic binds T", "complexType.UnitAndValue<long>", `{"unit":"GB","value":80}`, ""},
		{"generic T checked", "complexType.UnitAndValue<long>", `{"unit":"GB","value":"80"}`, "want a long"},
		{"enum map keys", "map[cloud.project.database.service.CapabilityEnum]cloud.project.database.service.CapabilityActions", `{"users":{"create":"enabled"}}`, ""},
		{"bad enum map key", "map[cloud.project.database.service.CapabilityEnum]cloud.project.database.service.CapabilityActions", `{"teleport":{}}`, "is not in"},
		{"void", "void", `null`, ""},
		{"void with a body", "void", `{}`, "want null"},
		{"time", "cloud.project.database.service.Backup", `{"regions":["GRA"],"time":"01:00:00"}`, ""},
		{"bad time", "cloud.project.database.service.Backup", `{"regions":["GRA"],"time":"1h"}`, "not a valid time"},
		{"duration", "cloud.project.database.capabilities.Plan", `{"backupRetention":"P14D","description":"d","lifecycle":{"startDate":"2024-01-01","status":"STABLE"},"name":"n","order":1,"tags":[]}`, ""},
		{"bad duration", "cloud.project.database.capabilities.Plan", `{"backupRetention":"14 days","description":"d","lifecycle":{"startDate":"2024-01-01","status":"STABLE"},"name":"n","order":1,"tags":[]}`, "not a valid duration"},
		{"unknown type", "cloud.project.database.Nope", `{}`, "unknown type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.validateJSON([]byte(tt.body), tt.typ)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}
