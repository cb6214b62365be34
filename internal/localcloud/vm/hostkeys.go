package vm

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
)

// The markers cloud-init (and the guest's first-boot unit) print around the
// host's public keys on the console.
const (
	keysBegin = "-----BEGIN SSH HOST KEY KEYS-----"
	keysEnd   = "-----END SSH HOST KEY KEYS-----"
)

// ErrNoHostKeys means the console output holds no complete host key block.
var ErrNoHostKeys = errors.New("no complete SSH HOST KEY KEYS block on the console")

// ParseConsoleHostKeys returns the public keys of the last complete
// "-----BEGIN SSH HOST KEY KEYS-----" … "-----END SSH HOST KEY KEYS-----"
// block in a console log. Only lines inside the block are read (other console
// output, such as cloud-init's authorized-keys table, also holds key material);
// a prefix before the key type on a line (a syslog tag or kernel timestamp) is
// skipped. A block is complete when its END marker is present.
func ParseConsoleHostKeys(console string) ([]ssh.PublicKey, error) {
	console = strings.ReplaceAll(console, "\r", "")
	end := strings.LastIndex(console, keysEnd)
	if end < 0 {
		return nil, ErrNoHostKeys
	}
	begin := strings.LastIndex(console[:end], keysBegin)
	if begin < 0 {
		return nil, ErrNoHostKeys
	}
	var keys []ssh.PublicKey
	for _, line := range strings.Split(console[begin+len(keysBegin):end], "\n") {
		i := keyStart(line)
		if i < 0 {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line[i:]))
		if err != nil {
			return nil, fmt.Errorf("host key line %q: %w", strings.TrimSpace(line), err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: the last block is empty", ErrNoHostKeys)
	}
	return keys, nil
}

// keyStart is the index of the first key type name on a console line, or -1.
func keyStart(line string) int {
	best := -1
	for _, p := range []string{"ssh-", "ecdsa-sha2-", "sk-"} {
		for off := 0; ; {
			i := strings.Index(line[off:], p)
			if i < 0 {
				break
			}
			i += off
			// A key type starts a word.
			if i == 0 || line[i-1] == ' ' || line[i-1] == '\t' || line[i-1] == ':' || line[i-1] == ']' {
				if best < 0 || i < best {
					best = i
				}
				break
			}
			off = i + 1
		}
	}
	return best
}

// PinnedHostKeys is a host key callback that accepts exactly the given keys.
func PinnedHostKeys(keys []ssh.PublicKey) ssh.HostKeyCallback {
	pinned := make([][]byte, len(keys))
	for i, k := range keys {
		pinned[i] = k.Marshal()
	}
	return func(hostname string, _ net.Addr, key ssh.PublicKey) error {
		got := key.Marshal()
		for _, p := range pinned {
			if bytes.Equal(p, got) {
				return nil
			}
		}
		return fmt.Errorf("vm: %s presented host key %s %s, which is not among the %d pinned from the console",
			hostname, key.Type(), ssh.FingerprintSHA256(key), len(pinned))
	}
}
