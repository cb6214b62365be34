package pgserver

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// scramVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for a
// password (RFC 5802/7677), in the form its PASSWORD clause accepts:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(server)), nil
}

// passwordClause returns what goes after PASSWORD in CREATE/ALTER ROLE: a
// SCRAM verifier, so that the password never reaches the server's logs.
// PostgreSQL normalises non-ASCII passwords with SASLprep, which is not done
// here: those are sent as they are.
func passwordClause(password string) (string, error) {
	for _, r := range password {
		if r > 0x7e || r < 0x20 {
			return quoteLiteral(password), nil
		}
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	v, err := scramVerifier(password, salt, scramIterations)
	if err != nil {
		return "", err
	}
	return quoteLiteral(v), nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings
// is on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
