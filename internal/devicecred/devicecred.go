// Package devicecred makes and checks the MQTT credentials kept in the
// device table (mqtt_users) of the application database: trackers, the
// backend and acco's verification device.
//
// One stored form serves both brokers acco deploys. A row holds the
// PBKDF2-HMAC-SHA512 of the password (Iterations rounds, KeyLength bytes,
// lower-case hex) under a random salt kept as text. EMQX's PostgreSQL
// authenticator, configured with EMQXAlgorithm, hashes the password a client
// presents the same way and compares the hex; Mosquitto reads the same hash
// and salt rewritten into its password file's $7$ form (Mosquitto line).
// Clear passwords are never stored.
package devicecred

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
)

// The parameters of the stored hash. They are part of the broker
// configuration acco renders: changing them invalidates every stored row.
const (
	// Iterations is the PBKDF2 iteration count.
	Iterations = 4096
	// KeyLength is the derived key's length in bytes (SHA-512's size).
	KeyLength = 64
	// Table is the device table in the application database.
	Table = "mqtt_users"
)

// Kinds of rows in the device table.
const (
	// KindDevice is a tracker (acco device add, or the team's backend).
	KindDevice = "device"
	// KindService is an MQTT user acco manages itself (the backend, the
	// verification device); configure re-creates them.
	KindService = "service"
)

// Names of the MQTT users acco manages.
const (
	// BackendUser is the backend's MQTT login (subscribes to all trackers).
	BackendUser = "backend"
	// VerifyDevice is the device `acco verify` publishes as.
	VerifyDevice = "acco-verify"
)

// namePattern is what a device name may be: a single MQTT topic level
// without wildcards, a Mosquitto password-file user and a URL path segment.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// NamePattern is namePattern as a PostgreSQL regular expression (the
// table's CHECK constraint).
const NamePattern = `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`

// ValidName reports whether name may be a device (or MQTT user) name, and
// why not.
func ValidName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("device name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (it becomes an MQTT topic level)", name)
	}
	return nil
}

// Reserved reports whether name is one of the MQTT users acco manages.
func Reserved(name string) bool { return name == BackendUser || name == VerifyDevice }

// Hash is a stored credential: the columns password_hash and salt.
type Hash struct {
	PasswordHash string `json:"-"`
	Salt         string `json:"-"`
}

// SaltLength is the salt's length in bytes: Mosquitto 2.0 refuses a
// password-file entry whose salt is not exactly 12 bytes.
const SaltLength = 12

// New hashes password under a fresh random salt of SaltLength characters
// (URL-safe base64 of 9 random bytes).
func New(password string) (Hash, error) {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		return Hash{}, fmt.Errorf("salt: %w", err)
	}
	return WithSalt(password, base64.RawURLEncoding.EncodeToString(b))
}

// WithSalt hashes password under salt (the salt's bytes as stored, text).
func WithSalt(password, salt string) (Hash, error) {
	key, err := pbkdf2.Key(sha512.New, password, []byte(salt), Iterations, KeyLength)
	if err != nil {
		return Hash{}, fmt.Errorf("pbkdf2: %w", err)
	}
	return Hash{PasswordHash: hex.EncodeToString(key), Salt: salt}, nil
}

// Verify reports whether password matches, computed as EMQX's PostgreSQL
// authenticator does with EMQXAlgorithm: the hex of PBKDF2(sha512,
// password, salt, Iterations, KeyLength) compared in constant time with the
// stored password_hash.
func (h Hash) Verify(password string) bool {
	got, err := WithSalt(password, h.Salt)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got.PasswordHash), []byte(h.PasswordHash)) == 1
}

// Mosquitto returns the hash in Mosquitto 2's password-file form,
// $7$ITERATIONS$base64(salt)$base64(key), for the same salt bytes.
func (h Hash) Mosquitto() (string, error) {
	key, err := hex.DecodeString(h.PasswordHash)
	if err != nil || len(key) != KeyLength {
		return "", fmt.Errorf("password_hash is not %d bytes of hex", KeyLength)
	}
	if len(h.Salt) != SaltLength {
		return "", fmt.Errorf("salt is %d bytes, Mosquitto needs %d", len(h.Salt), SaltLength)
	}
	return "$7$" + strconv.Itoa(Iterations) + "$" + base64.StdEncoding.EncodeToString([]byte(h.Salt)) + "$" + base64.StdEncoding.EncodeToString(key), nil
}

// EMQXAlgorithm is the password_hash_algorithm block of EMQX's
// authenticator that checks the stored rows.
func EMQXAlgorithm() string {
	return "{name = pbkdf2, mac_fun = sha512, iterations = " + strconv.Itoa(Iterations) + ", dk_length = " + strconv.Itoa(KeyLength) + "}"
}

// EMQXQuery is the authenticator's query over the device table.
func EMQXQuery(userIDPlaceholder string) string {
	return "SELECT password_hash, salt, is_superuser FROM " + Table + " WHERE username = " + userIDPlaceholder + " LIMIT 1"
}

// NewPassword returns a random password for a device: 24 bytes, URL-safe
// base64 (32 characters), safe on any command line or configuration.
func NewPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// TableDDL creates the device table (idempotent).
func TableDDL(quotedTable string) string {
	return "CREATE TABLE IF NOT EXISTS " + quotedTable + ` (
  username      text        PRIMARY KEY CHECK (username ~ '` + NamePattern + `'),
  password_hash text        NOT NULL,
  salt          text        NOT NULL CHECK (octet_length(salt) = 12),
  is_superuser  boolean     NOT NULL DEFAULT false,
  kind          text        NOT NULL DEFAULT 'device' CHECK (kind IN ('device', 'service')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
)`
}
