package state_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/accoreboot/acco/state"
)

const testKey = "correct horse battery staple 42"

func TestNewSealerRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, key, want string
	}{
		{"Empty", "", "ACCO_STATE_KEY is not set"},
		{"Short", "fifteen chars!!", "too short (15 characters)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := state.NewSealer(tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewSealer: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSealRoundTrip(t *testing.T) {
	s, err := state.NewSealer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"", "p4ssw0rd", strings.Repeat("é", 1000)} {
		sealed, err := s.Seal(plain, "database_user.main.emqx/password")
		if err != nil {
			t.Fatal(err)
		}
		if !state.IsSealed(sealed) || !strings.HasPrefix(sealed, "acco-sealed:v1:") {
			t.Errorf("sealed value %q lacks the prefix", sealed)
		}
		if plain != "" && strings.Contains(sealed, plain) {
			t.Errorf("sealed value contains the plaintext")
		}
		got, err := s.Open(sealed, "database_user.main.emqx/password")
		if err != nil || got != plain {
			t.Errorf("Open = %q, %v; want %q", got, err, plain)
		}
	}
	a, _ := s.Seal("same", "x")
	b, _ := s.Seal("same", "x")
	if a == b {
		t.Error("two seals of one value are equal: nonce reused")
	}
}

func TestOpenRefuses(t *testing.T) {
	const plain, where = "s3cr3t-value", "database_user.main.emqx/password"
	s, err := state.NewSealer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	other, err := state.NewSealer(testKey + "x")
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal(plain, where)
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
		{"WrongKey", other, sealed, where, "wrong ACCO_STATE_KEY"},
		{"OtherPlace", s, sealed, "database_user.main.app/password", "wrong ACCO_STATE_KEY"},
		{"Altered", s, state.SealedPrefix + string(flipped), where, "open secret"},
		{"NotSealed", s, plain, where, "not a sealed value"},
		{"Truncated", s, state.SealedPrefix + body[:8], where, "damaged"},
		{"BadBase64", s, state.SealedPrefix + "!!!", where, "damaged"},
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
