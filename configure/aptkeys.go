package configure

import (
	"fmt"
	"strings"
)

// NodeSourceKeyFingerprint is the fingerprint of the key that signs
// NodeSource's apt repositories (https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key,
// "NSolid <nsolid-gpg@nodesource.com>", rsa2048, 2016-05-23). Source: apt's
// own signature errors quoted in NodeSource's issue tracker, which name the
// key that signs the repositories' InRelease files
// (github.com/nodesource/distributions issues #1908, #1920, #1922: "Signing
// key on 6F71F525282841EEDAF851B42F59B5F99B1BE0B4"), and the same key
// shown by gpg in issue #1912. NodeSource refreshed its self-signatures
// (SHA-1 to SHA-512) in January 2026 without changing the fingerprint.
const NodeSourceKeyFingerprint = "6F71F525282841EEDAF851B42F59B5F99B1BE0B4"

// EMQX's packagecloud repository (emqx/emqx-enterprise5) is signed with a
// key packagecloud made for it. Its fingerprint could not be confirmed from
// a primary source (EMQX's documentation and repositories do not publish
// it), so acco ships none: the operator pins it in
// services.emqx.apt_key_fingerprint after checking it, and configure
// refuses the key until then.

// AptKey is a third-party apt repository's signing key that configure
// downloads, pinned by fingerprint.
type AptKey struct {
	// Name names the command (host.NAME:command:Name).
	Name string
	// URL is where the key is downloaded from.
	URL string
	// Keyring is the file apt's signed-by names.
	Keyring string
	// Fingerprints are the accepted primary-key fingerprints (40 hex
	// digits). Every key in the download must be one of them; none
	// accepted means the download is refused, its fingerprints shown.
	Fingerprints []string
	// Hint tells the operator what to do when the key is refused.
	Hint string
}

// NormalizeFingerprint returns fp in the form gpg prints with
// --with-colons (upper case, no spaces), or an error when it is not 40
// hex digits.
func NormalizeFingerprint(fp string) (string, error) {
	n := strings.ToUpper(strings.Join(strings.Fields(fp), ""))
	if len(n) != 40 || strings.Trim(n, "0123456789ABCDEF") != "" {
		return "", fmt.Errorf("%q is not an OpenPGP v4 fingerprint (40 hex digits)", fp)
	}
	return n, nil
}

// Command returns the command that downloads the key, checks every
// primary key in it against the pinned fingerprints with gpg (in a
// throw-away home), and only then moves it to the keyring. It runs when the
// keyring is missing.
func (k AptKey) Command() Command {
	var b strings.Builder
	fmt.Fprintf(&b, "k=%s\nurl=%s\npinned=%s\n", shellQuote(k.Keyring), shellQuote(k.URL), shellQuote(" "+strings.Join(k.Fingerprints, " ")+" "))
	b.WriteString(`mkdir -p "$(dirname "$k")"
t=$(mktemp "$k.XXXXXX")
g=$(mktemp -d)
trap 'rm -rf "$t" "$g"' EXIT
curl -fsSL --max-time 60 "$url" -o "$t"
fprs=$(GNUPGHOME="$g" gpg --batch --no-tty --show-keys --with-colons "$t" 2>/dev/null | awk -F: '$1 == "pub" { p = 1; next } $1 == "fpr" && p { print $10; p = 0 }') || true
if [ -z "$fprs" ]; then
  printf '%s: no OpenPGP public key in the download\n' "$url" >&2
  exit 1
fi
for f in $fprs; do
  case "$pinned" in
  *" $f "*) ;;
  *)
`)
	fmt.Fprintf(&b, "    printf '%%s: key %%s is not the pinned key (%%s): %%s\\n' \"$url\" \"$f\" %s %s >&2\n",
		shellQuote(orDefault(strings.Join(k.Fingerprints, ", "), "none pinned")), shellQuote(k.Hint))
	b.WriteString(`    exit 1 ;;
  esac
done
chmod 644 "$t"
mv -f "$t" "$k"
trap - EXIT
rm -rf "$g"
`)
	return Command{Name: k.Name, Creates: k.Keyring, Script: b.String()}
}
