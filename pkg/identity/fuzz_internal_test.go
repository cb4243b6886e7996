package identity

// These fuzz targets reach the unexported helpers under MFA.Verify, which
// need no database and so run fast enough for the fuzzer to try millions
// of codes. They are in package identity for that reason alone; the rest
// of the package's tests are in identity_test.

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/pkg/seal"
)

// FuzzMatchStep checks the comparison of a typed TOTP code with the codes
// an authenticator app shows. A code matches only if, spaces around it
// aside, it is the code of the current 30-second step or one either side,
// and only of a step after the last one accepted (lastStep, relative to
// now), so that no code works twice; and such a code always matches, at
// the step it is the code of. In the code, {totp-1}, {totp} and {totp+1}
// stand for the codes of the step before, the current step and the step
// after.
func FuzzMatchStep(f *testing.F) {
	for _, seed := range []struct {
		code     string
		lastStep int8
	}{
		{"{totp}", -5}, {"{totp}", -1}, {"{totp}", 0}, {"{totp-1}", -1}, {"{totp-1}", -2},
		{"{totp+1}", 0}, {"{totp+1}", 1}, {" {totp}\t", -5}, {"{totp}\u00a0", -5}, {"\u3000{totp}", -5},
		{"{totp}0", -5}, {"{totp}{totp}", -5}, {"{totp} {totp}", -5}, {"000000", -5}, {"", -5},
		{"１２３４５６", -5}, {"\x00\x00\x00\x00\x00\x00", -5},
	} {
		f.Add(seed.code, seed.lastStep)
	}
	box, err := seal.New([][]byte{[]byte("test-secret-test-secret-test-secret-0123")})
	if err != nil {
		f.Fatal(err)
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "id.example.com", AccountName: "ada@example.com", Period: totpPeriod, Digits: totpDigits, Algorithm: totpAlg, SecretSize: 20})
	if err != nil {
		f.Fatal(err)
	}
	m := NewMFA(nil, box, "id.example.com", Throttle{}, nil)
	const userID = "0b6f9a7e-4b1d-4d59-9a43-1c1a3b0b7a11"
	sealed := box.Seal([]byte(key.Secret()), m.aad(userID))
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: totpAlg}
	codeAt := func(t *testing.T, step int64) string {
		c, err := totp.GenerateCodeCustom(key.Secret(), time.Unix(step*totpPeriod, 0), opts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.Fuzz(func(t *testing.T, code string, lastStep int8) {
		now := time.Now().Unix() / totpPeriod
		code = strings.NewReplacer("{totp-1}", codeAt(t, now-1), "{totp}", codeAt(t, now), "{totp+1}", codeAt(t, now+1)).Replace(code)
		factor := TOTPFactor{Sealed: sealed, Confirmed: true, LastStep: now + int64(lastStep)}
		step, ok, err := m.matchStep(userID, factor, code)
		if time.Now().Unix()/totpPeriod != now {
			return // a step ended while the code was checked
		}
		if err != nil {
			t.Fatalf("matchStep(%q): %v", code, err)
		}
		want := int64(0)
		for s := now - totpSkew; s <= now+totpSkew && want == 0; s++ {
			if s > factor.LastStep && strings.TrimFunc(code, unicode.IsSpace) == codeAt(t, s) {
				want = s
			}
		}
		switch {
		case ok && step != want:
			t.Fatalf("code %q matched step %d (now %d, last accepted %d), want no match or step %d", code, step, now, factor.LastStep, want)
		case !ok && want != 0:
			t.Fatalf("code %q, the code of step %d (now %d, last accepted %d), did not match", code, want, now, factor.LastStep)
		}
	})
}

// FuzzNormalizeRecoveryCode checks how a typed recovery code is read. A
// real code, made from raw's first ten bytes the way newRecoveryCodes makes
// them, must be read as itself however it is typed: in any case, with or
// without its dashes, with spaces for dashes, with space around it. And a
// typed string may be read as the code only if it is the code in some such
// spelling: the code's letters and digits, in any case, with only spaces
// and dashes between them.
func FuzzNormalizeRecoveryCode(f *testing.F) {
	for _, seed := range []struct {
		typed string
		raw   []byte
	}{
		{"abcd-efgh-ijkl-mnop", []byte("0123456789")},
		{"ABCD EFGH IJKL MNOP", []byte("0123456789")},
		{" gaytemzugu3doobz ", []byte("0123456789")},
		{"gayt-emzu-gu3d-oobz", []byte("0123456789")},
		{"GAYT-EMZU-GU3D-OOBZ", []byte("0123456789")},
		{"gayt\temzu\tgu3d\toobz", []byte("0123456789")},
		{"gayt--emzu--gu3d--oobz", []byte("0123456789")},
		{"-\u00a0gaytemzugu3doobz", []byte("0123456789")},
		{"\u212aaaa-aaaa-aaaa-aaaa", make([]byte, 10)},
		{"aaaa-aaaa-aaaa-aaa\u017f", make([]byte, 10)},
		{"\u0130aaa-aaaa-aaaa-aaaa", make([]byte, 10)},
		{"", nil},
	} {
		f.Add(seed.typed, seed.raw)
	}
	f.Fuzz(func(t *testing.T, typed string, raw []byte) {
		b := make([]byte, recoveryCodeBytes)
		copy(b, raw)
		code := strings.ToLower(recoveryEncoding.EncodeToString(b))
		formatted := code[0:4] + "-" + code[4:8] + "-" + code[8:12] + "-" + code[12:16]
		for _, spelling := range []string{
			formatted, strings.ToUpper(formatted), code, strings.ToUpper(code),
			strings.ReplaceAll(formatted, "-", " "), " " + formatted + "\n", "\t" + code + " ",
		} {
			if got := normalizeRecoveryCode(spelling); got != code {
				t.Fatalf("recovery code %q typed as %q is read as %q", code, spelling, got)
			}
		}
		if normalizeRecoveryCode(typed) != code {
			return
		}
		letters := strings.Map(func(r rune) rune {
			if r == ' ' || r == '-' {
				return -1
			}
			return r
		}, strings.TrimFunc(typed, unicode.IsSpace))
		if !strings.EqualFold(letters, code) {
			t.Fatalf("%q is read as recovery code %q, but is not a spelling of it", typed, code)
		}
	})
}
