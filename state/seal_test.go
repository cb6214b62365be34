package state_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/accoreboot/acco/state"
)

// Keys made with openssl rand -base64 32.
const (
	testKey  = "8nQ/IiUhDnPlZcSCguaw/0fRDv0E0zs8sVpo+yuBSok="
	otherKey = "y7tOT9hx3uFEDIxnVUSM1SVeNxJpYom+t4PIBA8+SVE="
)

// Where the test values belong.
const (
	testEnv     = "test"
	testLineage = "5b0e8a52-3c1f-4e0b-9d64-8f6f0f3d2a11"
	testWhere   = "database_user.main.emqx/password"
)

// legacyV1 is "legacy-s3cret" sealed for testWhere under testKey by acco
// before sealed values were bound to the environment and lineage
// (acco-sealed:v1, made by commit 8fe67d9).
const legacyV1 = "acco-sealed:v1:u7GZh96LfKBU3KE94kzZxZ184BgqScC7cnnTdBJZl4sAqPgV0I59YAE="

func TestNewSealerRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, key, want string
	}{
		{"Empty", "", "ACCO_STATE_KEY is not set"},
		{"Password", "correct horse battery staple 42", "not base64"},
		{"Short", "fifteen chars!!", "not base64"},
		{"TooFewBytes", "c2hvcnQta2V5", "9 bytes"},
		{"TooManyBytes", "AQIDBAUGBwgBAgMEBQYHCAECAwQFBgcIAQIDBAUGBwgBAgMEBQYHCA==", "40 bytes"},
		{"HexOf16Bytes", "00112233445566778899aabbccddeeff", "24 bytes"},
		{"EncodedPassword", "bXlwYXNzd29yZG15cGFzc3dvcmRteXBhc3N3b3JkMTI=", "text"},
		{"Zeros", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "not random"},
		{"Repeating", "AQIDBAUGBwgBAgMEBQYHCAECAwQFBgcIAQIDBAUGBwg=", "not random"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := state.NewSealer(tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSealer: got %v, want an error containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "openssl rand -base64 32") {
				t.Errorf("error %q does not give the command that makes a good key", err)
			}
			if tc.key != "" && strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestNewSealerAccepts(t *testing.T) {
	for _, tc := range []struct{ name, key string }{
		{"Base64", testKey},
		{"Base64Unpadded", strings.TrimSuffix(testKey, "=")},
		{"Base64URL", "8nQ_IiUhDnPlZcSCguaw_0fRDv0E0zs8sVpo-yuBSok="},
		{"TrailingNewline", testKey + "\n"},
		// openssl rand -hex 32, what the local cloud hands out.
		{"Hex", "f2743f2225210e73e565c48282e6b0ff47d10efd04d33b3cb15a68fb2b814a89"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := state.NewSealer(tc.key); err != nil {
				t.Fatalf("NewSealer: %v", err)
			}
		})
	}
}

func testSealer(t *testing.T, key string) *state.Sealer {
	t.Helper()
	s, err := state.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := testSealer(t, testKey).For(testEnv, testLineage)
	for _, plain := range []string{"", "p4ssw0rd", strings.Repeat("é", 1000)} {
		sealed, err := s.Seal(plain, testWhere)
		if err != nil {
			t.Fatal(err)
		}
		if !state.IsSealed(sealed) || !strings.HasPrefix(sealed, "acco-sealed:v2:") {
			t.Errorf("sealed value %q lacks the prefix", sealed)
		}
		if plain != "" && strings.Contains(sealed, plain) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := s.Open(sealed, testWhere)
		if err != nil || got != plain {
			t.Errorf("Open = %q, %v; want %q", got, err, plain)
		}
		// Another Sealer of the same key and place opens it (a new run).
		got, err = testSealer(t, testKey+"\n").For(testEnv, testLineage).Open(sealed, testWhere)
		if err != nil || got != plain {
			t.Errorf("Open by another Sealer = %q, %v; want %q", got, err, plain)
		}
	}
	a, _ := s.Seal("same", "x")
	b, _ := s.Seal("same", "x")
	if a == b {
		t.Error("two seals of one value are equal: nonce reused")
	}
}

func TestSealNeedsEnvAndLineage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sealer *state.Sealer
	}{
		{"Unbound", testSealer(t, testKey)},
		{"NoEnv", testSealer(t, testKey).For("", testLineage)},
		{"NoLineage", testSealer(t, testKey).For(testEnv, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if v, err := tc.sealer.Seal("s3cret", testWhere); err == nil || !strings.Contains(err.Error(), "lineage") {
				t.Fatalf("Seal = %q, %v; want an error saying the sealer is not bound", v, err)
			}
		})
	}
	var nilSealer *state.Sealer
	if nilSealer.For(testEnv, testLineage) != nil {
		t.Error("For on a nil Sealer is not nil")
	}
}

func TestOpenRefuses(t *testing.T) {
	const plain = "s3cr3t-value"
	s := testSealer(t, testKey).For(testEnv, testLineage)
	sealed, err := s.Seal(plain, testWhere)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimPrefix(sealed, state.SealedPrefix)
	flipped := []byte(body)
	flipped[len(flipped)/2] ^= 'A' ^ 'B'
	for _, tc := range []struct {
		name   string
		sealer *state.Sealer
		sealed string
		where  string
		want   string
	}{
		{"WrongKey", testSealer(t, otherKey).For(testEnv, testLineage), sealed, testWhere, "wrong ACCO_STATE_KEY"},
		{"OtherPlace", s, sealed, "database_user.main.app/password", "another environment, state lineage or resource"},
		{"OtherEnv", testSealer(t, testKey).For("prod", testLineage), sealed, testWhere, "another environment, state lineage or resource"},
		{"OtherLineage", testSealer(t, testKey).For(testEnv, "0d7f4c1e-0000-4000-8000-000000000000"), sealed, testWhere, "another environment, state lineage or resource"},
		{"Unbound", testSealer(t, testKey), sealed, testWhere, "lineage"},
		{"Altered", s, state.SealedPrefix + string(flipped), testWhere, "open secret"},
		{"NotSealed", s, plain, testWhere, "not a sealed value"},
		{"UnknownVersion", s, "acco-sealed:v9:" + body, testWhere, "not a sealed value"},
		{"Truncated", s, state.SealedPrefix + body[:8], testWhere, "damaged"},
		{"BadBase64", s, state.SealedPrefix + "!!!", testWhere, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.sealer.Open(tc.sealed, tc.where)
			if !errors.Is(err, state.ErrUnseal) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: got %v, want ErrUnseal containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), plain) || strings.Contains(err.Error(), body) {
				t.Errorf("error reveals the value: %v", err)
			}
		})
	}
}

// TestOpenLegacyV1 checks that values sealed before the binding to
// environment and lineage are still read, by a bound Sealer as by an
// unbound one, and still only for their address.
func TestOpenLegacyV1(t *testing.T) {
	for _, s := range []*state.Sealer{testSealer(t, testKey).For(testEnv, testLineage), testSealer(t, testKey)} {
		got, err := s.Open(legacyV1, testWhere)
		if err != nil || got != "legacy-s3cret" {
			t.Errorf("Open(v1) = %q, %v; want legacy-s3cret", got, err)
		}
		if _, err := s.Open(legacyV1, "database_user.main.app/password"); !errors.Is(err, state.ErrUnseal) {
			t.Errorf("Open(v1) for another address: got %v, want ErrUnseal", err)
		}
	}
	if _, err := testSealer(t, otherKey).Open(legacyV1, testWhere); !errors.Is(err, state.ErrUnseal) {
		t.Errorf("Open(v1) with another key: got %v, want ErrUnseal", err)
	}
}
