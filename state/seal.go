package state

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// SealedPrefix starts every sealed value.
const SealedPrefix = "acco-sealed:v1:"

// MinKeyLength is the shortest key NewSealer accepts, in characters.
const MinKeyLength = 16

// Key derivation parameters; changing them makes old sealed values
// unreadable, so they belong to the v1 format.
const (
	sealSalt = "acco state seal"
	sealInfo = "acco-sealed:v1 AES-256-GCM"
)

// Sealer seals secrets kept in state: AES-256-GCM under a key derived with
// HKDF-SHA256 from the operator's key (ACCO_STATE_KEY). The derivation does
// no key stretching: the key should be random (e.g. openssl rand -base64
// 32), not a memorable password. A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for key, which comes from ACCO_STATE_KEY. It
// refuses an empty key or one shorter than MinKeyLength characters.
func NewSealer(key string) (*Sealer, error) {
	if key == "" {
		return nil, errors.New("ACCO_STATE_KEY is not set: set it to a random secret of at least 16 characters (e.g. openssl rand -base64 32) and keep it safe: secrets in state cannot be read without it")
	}
	if n := utf8.RuneCountInString(key); n < MinKeyLength {
		return nil, fmt.Errorf("ACCO_STATE_KEY is too short (%d characters): use a random secret of at least %d (e.g. openssl rand -base64 32)", n, MinKeyLength)
	}
	k, err := hkdf.Key(sha256.New, []byte(key), []byte(sealSalt), sealInfo, 32)
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
	return &Sealer{aead: aead}, nil
}

// IsSealed reports whether s looks like a value sealed by a Sealer.
func IsSealed(s string) bool { return strings.HasPrefix(s, SealedPrefix) }

// Seal encrypts plaintext and returns "acco-sealed:v1:" followed by the
// base64 of nonce and ciphertext. associated names where the value belongs
// (e.g. "database_user.main.emqx/password"); Open must be given the same,
// so a sealed value cannot be moved to another place unnoticed.
func (s *Sealer) Seal(plaintext, associated string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: %w", associated, err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(associated))
	return SealedPrefix + base64.StdEncoding.EncodeToString(out), nil
}

// Open decrypts a value made by Seal with the same associated string. A
// wrong key, an altered value or another associated string gives an error
// wrapping ErrUnseal; errors never contain the value.
func (s *Sealer) Open(sealed, associated string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, SealedPrefix)
	if !ok {
		return "", fmt.Errorf("open secret %s: not a sealed value (no %s prefix): %w", associated, SealedPrefix, ErrUnseal)
	}
	raw, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", fmt.Errorf("open secret %s: sealed value is damaged: %w", associated, ErrUnseal)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(associated))
	if err != nil {
		return "", fmt.Errorf("open secret %s: wrong ACCO_STATE_KEY, or the value was altered or sealed for another place: %w", associated, ErrUnseal)
	}
	return string(plain), nil
}
