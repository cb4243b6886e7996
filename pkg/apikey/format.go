package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"hash/crc32"
	"strings"
)

// The format of a key, after GitHub's tokens (ghp_…): a fixed prefix that
// secret scanners can match, lk_ak_ (Latchkey's tokens are lk_at_,
// lk_rt_ and lk_ac_; "ak" is an API key), then randomLen random base62
// characters, then checksumLen base62 characters of the CRC-32 of
// everything before them. The checksum is no protection, anyone can
// compute it: it lets a scanner tell a real key from a look-alike with no
// false positives, and lets Latchkey refuse a mistyped or truncated key
// without reading the database.
const (
	// Prefix starts every key. A scanner's pattern is
	// lk_ak_[0-9A-Za-z]{36}.
	Prefix = "lk_ak_"
	// randomLen base62 characters carry 178 bits, more than the 128 a
	// secret needs to be beyond guessing.
	randomLen   = 30
	checksumLen = 6
	// Length is the length of every key.
	Length = len(Prefix) + randomLen + checksumLen
	// displayLen is how much of a key is shown in listings: the prefix and
	// four random characters, enough for people to tell their keys apart,
	// 24 bits, nothing towards guessing the other 154.
	displayLen = len(Prefix) + 4
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// generate returns a new key.
func generate() string {
	// rand.Text's alphabet is base32; base62 keeps the key short and
	// double-click selectable. Bytes are drawn below 248 (4 × 62) so that
	// each character is uniform.
	var b strings.Builder
	b.WriteString(Prefix)
	buf := make([]byte, 64)
	for b.Len() < len(Prefix)+randomLen {
		_, _ = rand.Read(buf) // crypto/rand never fails on Linux
		for _, c := range buf {
			if c < 248 && b.Len() < len(Prefix)+randomLen {
				b.WriteByte(base62[c%62])
			}
		}
	}
	body := b.String()
	return body + checksum(body)
}

// checksum is the CRC-32 (IEEE) of body in checksumLen base62 digits, most
// significant first and zero-padded: 62⁶ exceeds 2³², so every sum fits.
func checksum(body string) string {
	n := crc32.ChecksumIEEE([]byte(body))
	out := make([]byte, checksumLen)
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = base62[n%62]
		n /= 62
	}
	return string(out)
}

// LooksLike reports whether s claims to be an API key: it has the prefix.
// Introspection and revocation use it to decide where to look; Wellformed
// decides whether it is worth looking.
func LooksLike(s string) bool { return strings.HasPrefix(s, Prefix) }

// Wellformed reports whether s is a key Latchkey could have made: the
// prefix, the length, base62 characters and a checksum that matches. It
// reads nothing, so a typo or a forgery costs no database round trip.
func Wellformed(s string) bool {
	if len(s) != Length || !LooksLike(s) {
		return false
	}
	for i := len(Prefix); i < Length; i++ {
		if strings.IndexByte(base62, s[i]) < 0 {
			return false
		}
	}
	body := s[:Length-checksumLen]
	return checksum(body) == s[Length-checksumLen:]
}

// Digest is what the database keeps of a key.
func Digest(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}
