package state

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// SealedPrefix starts every value Seal makes (format v2: bound to the
// environment, the state lineage and the address).
const SealedPrefix = "acco-sealed:v2:"

// sealedV1Prefix starts the values sealed by acco before v2: bound to the
// address only. They are still read, never written.
const sealedV1Prefix = "acco-sealed:v1:"

// KeySize is the size of the key ACCO_STATE_KEY holds, in bytes.
const KeySize = 32

// KeyCommand makes a good ACCO_STATE_KEY.
const KeyCommand = "openssl rand -base64 32"

// Key derivation parameters; changing them makes sealed values unreadable,
// so they belong to their format version.
const (
	sealSalt   = "acco state seal"
	sealInfoV1 = "acco-sealed:v1 AES-256-GCM"
	sealInfoV2 = "acco-sealed:v2 AES-256-GCM"
)

// Sealer seals secrets kept in state with AES-256-GCM. The operator's key
// (ACCO_STATE_KEY) is 32 random bytes, in base64 (or hex); the AES key is
// derived from them with HKDF-SHA256.
//
// A sealed value is bound to where it belongs: the environment, the
// lineage of its state and the resource address (with the secret's name).
// Seal and Open need a Sealer bound to an environment and a lineage with
// For, so that a value copied into another environment's state, or into
// another history of the same environment, does not open there.
//
// Values sealed by earlier versions of acco (acco-sealed:v1, bound to the
// address only) are still opened, by any Sealer of the same key; Seal
// always writes the bound format. A Sealer is safe for concurrent use.
type Sealer struct {
	v1, v2       cipher.AEAD
	file         []byte // master key of sealed files (archive.go)
	env, lineage string
}

// NewSealer returns an unbound Sealer for key, the value of
// ACCO_STATE_KEY: 32 bytes in base64 (standard or URL alphabet, padded or
// not) or in hex, surrounding white space ignored. It refuses an empty key,
// one that does not decode to 32 bytes, and one whose bytes are plainly not
// random (text such as a password in base64, or few distinct bytes); the
// error gives the command that makes a good key, and never the key.
func NewSealer(key string) (*Sealer, error) {
	raw, err := decodeKey(key)
	if err != nil {
		return nil, err
	}
	// v1 derived its key from the variable's text as given.
	v1, err := newAEAD([]byte(key), sealInfoV1)
	if err != nil {
		return nil, err
	}
	v2, err := newAEAD(raw, sealInfoV2)
	if err != nil {
		return nil, err
	}
	file, err := fileMasterKey(raw)
	if err != nil {
		return nil, err
	}
	return &Sealer{v1: v1, v2: v2, file: file}, nil
}

// decodeKey checks ACCO_STATE_KEY and returns its 32 bytes.
func decodeKey(key string) ([]byte, error) {
	hint := fmt.Sprintf("make one with: %s (the same key for every operator of the environment; keep it in your password manager)", KeyCommand)
	k := strings.TrimSpace(key)
	if k == "" {
		return nil, fmt.Errorf("ACCO_STATE_KEY is not set: it must be %d random bytes in base64: %s; secrets in state cannot be read without it", KeySize, hint)
	}
	raw, ok := decodeKeyText(k)
	switch {
	case !ok:
		return nil, fmt.Errorf("ACCO_STATE_KEY is not base64 (%d characters): it must be %d random bytes in base64, not a password: %s", len(k), KeySize, hint)
	case len(raw) != KeySize:
		return nil, fmt.Errorf("ACCO_STATE_KEY decodes to %d bytes: it must be %d random bytes in base64: %s", len(raw), KeySize, hint)
	case isText(raw):
		return nil, fmt.Errorf("ACCO_STATE_KEY decodes to text (a password in base64?), not to random bytes: %s", hint)
	}
	if n := distinctBytes(raw); n < minDistinctBytes {
		return nil, fmt.Errorf("ACCO_STATE_KEY is not random: its %d bytes take only %d different values (random ones take about 30): %s", KeySize, n, hint)
	}
	return raw, nil
}

// minDistinctBytes is the fewest different byte values accepted in a key.
// 32 random bytes take about 30 different values; fewer than 16 happens to
// a random key with a probability far below 1e-20.
const minDistinctBytes = 16

// decodeKeyText decodes a key written in hex (64 digits) or base64.
func decodeKeyText(k string) ([]byte, bool) {
	if len(k) == 2*KeySize {
		if raw, err := hex.DecodeString(k); err == nil {
			return raw, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(k); err == nil {
			return raw, true
		}
	}
	return nil, false
}

// isText reports whether every byte is printable ASCII: the base64 of a
// password. 32 random bytes are all printable with a probability of about
// 1e-14.
func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

func distinctBytes(b []byte) int {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n
}

func newAEAD(secret []byte, info string) (cipher.AEAD, error) {
	k, err := hkdf.Key(sha256.New, secret, []byte(sealSalt), info, 32)
	if err != nil {
		return nil, fmt.Errorf("derive state key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("state key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("state key: %w", err)
	}
	return aead, nil
}

// For returns a Sealer of the same key bound to the environment env and
// the state lineage lineage (State.Env and State.Lineage of the state the
// values are kept in). For on a nil Sealer returns nil.
func (s *Sealer) For(env, lineage string) *Sealer {
	if s == nil {
		return nil
	}
	b := *s
	b.env, b.lineage = env, lineage
	return &b
}

// bound refuses a Sealer that For did not bind.
func (s *Sealer) bound() error {
	if s.env == "" || s.lineage == "" {
		return errors.New("the sealer is not bound to an environment and a state lineage (Sealer.For)")
	}
	return nil
}

// IsSealed reports whether s looks like a value sealed by a Sealer (of
// this version of acco or an earlier one).
func IsSealed(s string) bool {
	return strings.HasPrefix(s, SealedPrefix) || strings.HasPrefix(s, sealedV1Prefix)
}

// additionalData binds a v2 value to its environment, lineage and address:
// each is written with its length, so that no two triples give the same
// bytes.
func (s *Sealer) additionalData(associated string) []byte {
	ad := []byte(SealedPrefix)
	for _, f := range []string{s.env, s.lineage, associated} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(f)))
		ad = append(ad, f...)
	}
	return ad
}

// Seal encrypts plaintext and returns "acco-sealed:v2:" followed by the
// base64 of nonce and ciphertext. associated names where the value belongs
// in state (e.g. "database_user.main.emqx/password"); together with the
// Sealer's environment and lineage it must be given to Open, so that a
// sealed value cannot be moved to another place unnoticed. The Sealer must
// be bound (For).
func (s *Sealer) Seal(plaintext, associated string) (string, error) {
	if err := s.bound(); err != nil {
		return "", fmt.Errorf("seal %s: %w", associated, err)
	}
	nonce := make([]byte, s.v2.NonceSize(), s.v2.NonceSize()+len(plaintext)+s.v2.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: %w", associated, err)
	}
	out := s.v2.Seal(nonce, nonce, []byte(plaintext), s.additionalData(associated))
	return SealedPrefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal for the same environment, lineage and
// associated string, or by an earlier acco (v1) for the same associated
// string. A wrong key, an altered value or a value sealed for another place
// gives an error wrapping ErrUnseal; errors never contain the value.
func (s *Sealer) Open(sealed, associated string) (string, error) {
	aead, ad, rest := s.v2, []byte(nil), ""
	if r, ok := strings.CutPrefix(sealed, SealedPrefix); ok {
		if err := s.bound(); err != nil {
			return "", fmt.Errorf("open secret %s: %w: %w", associated, err, ErrUnseal)
		}
		ad, rest = s.additionalData(associated), r
	} else if r, ok := strings.CutPrefix(sealed, sealedV1Prefix); ok {
		aead, ad, rest = s.v1, []byte(associated), r
	} else {
		return "", fmt.Errorf("open secret %s: not a sealed value (no %s prefix): %w", associated, SealedPrefix, ErrUnseal)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", fmt.Errorf("open secret %s: sealed value is damaged: %w", associated, ErrUnseal)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], ad)
	if err != nil {
		where := ""
		if s.env != "" {
			where = fmt.Sprintf(" (environment %s, lineage %s)", s.env, s.lineage)
		}
		return "", fmt.Errorf("open secret %s%s: wrong ACCO_STATE_KEY, or the value was altered, or it was sealed for another environment, state lineage or resource and copied here: %w", associated, where, ErrUnseal)
	}
	return string(plain), nil
}
