package apikey

import (
	"strings"
	"testing"
)

func TestAGeneratedKeyIsWellformedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k := generate()
		if !Wellformed(k) || !LooksLike(k) || len(k) != Length || !strings.HasPrefix(k, "lk_ak_") {
			t.Fatalf("generated key %q is not well-formed", k)
		}
		if seen[k] {
			t.Fatalf("generated key %q twice", k)
		}
		seen[k] = true
		if len(Digest(k)) != 32 {
			t.Fatal("the digest is not a SHA-256")
		}
	}
}

func TestMalformedKeysAreRefused(t *testing.T) {
	good := generate()
	body := good[:Length-checksumLen]
	for _, tt := range []struct{ name, key string }{
		{"empty", ""},
		{"another token's prefix", "lk_at_" + good[len(Prefix):]},
		{"no prefix", good[len(Prefix):]},
		{"upper-case prefix", "LK_AK_" + good[len(Prefix):]},
		{"one character short", good[:Length-1]},
		{"one character long", good + "0"},
		{"a character outside base62", body[:10] + "-" + body[11:] + checksum(body[:10]+"-"+body[11:])},
		{"a space inside", body[:10] + " " + body[11:] + checksum(body[:10]+" "+body[11:])},
		{"a wrong checksum", body + strings.Repeat("0", checksumLen)},
		{"surrounding whitespace", " " + good},
	} {
		if Wellformed(tt.key) {
			t.Errorf("%s: %q is accepted", tt.name, tt.key)
		}
	}
}

// The checksum catches every one-character typo: CRC-32 detects any error
// confined to 32 consecutive bits, and one changed character changes at
// most 8.
func TestEveryOneCharacterTypoIsCaughtByTheChecksum(t *testing.T) {
	good := generate()
	for i := len(Prefix); i < Length; i++ {
		for j := range len(base62) {
			c := base62[j]
			if c == good[i] {
				continue
			}
			typo := good[:i] + string(c) + good[i+1:]
			if Wellformed(typo) {
				t.Fatalf("%q, %q with character %d typed as %q, is accepted", typo, good, i, c)
			}
		}
	}
	// Two neighbouring characters swapped, the other common typo.
	for i := len(Prefix); i < Length-1; i++ {
		if good[i] == good[i+1] {
			continue
		}
		swapped := good[:i] + string(good[i+1]) + string(good[i]) + good[i+2:]
		if Wellformed(swapped) {
			t.Errorf("%q, with characters %d and %d swapped, is accepted", swapped, i, i+1)
		}
	}
}
