package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/seal"
)

// TOTP parameters: what every authenticator app supports. A code is good
// for its 30-second step and one step either side, for clock drift.
const (
	totpPeriod = 30
	totpSkew   = 1
	totpDigits = otp.DigitsSix
	totpAlg    = otp.AlgorithmSHA1
)

// Recovery codes: ten per user, 80 random bits each, so that a SHA-256
// digest is as safe to store as a client secret's.
const (
	recoveryCodeCount = 10
	recoveryCodeBytes = 10
)

var (
	// ErrFactorExists means the user already has a working factor; it must
	// be turned off before another is enrolled.
	ErrFactorExists = errors.New("the user already has a second factor")
	// ErrNoFactor means the user has no (confirmed) factor.
	ErrNoFactor = errors.New("the user has no second factor")
	// ErrInvalidCode is the only answer a wrong code gets: wrong, already
	// used, a spent recovery code, or no factor at all.
	ErrInvalidCode = errors.New("the code is not valid")
)

// TOTPFactor is a stored factor.
type TOTPFactor struct {
	// Sealed is the secret, encrypted (pkg/seal).
	Sealed    []byte
	Confirmed bool
	// LastStep is the time step of the last code accepted.
	LastStep int64
}

// MFAStore keeps second factors. AcceptTOTPStep and UseRecoveryCode are
// the atomic checks that make every code single-use.
type MFAStore interface {
	StartTOTP(ctx context.Context, userID string, sealed []byte) error
	TOTPFactor(ctx context.Context, userID string) (TOTPFactor, error)
	ConfirmTOTP(ctx context.Context, userID string, step int64, recovery [][]byte) error
	AcceptTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	UseRecoveryCode(ctx context.Context, userID string, digest []byte) (bool, error)
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)
	ReplaceRecoveryCodes(ctx context.Context, userID string, recovery [][]byte) error
	DeleteTOTP(ctx context.Context, userID string) (bool, error)
	// DeleteSecondFactors removes every second factor the user has: the
	// TOTP factor with its recovery codes, and their passkeys. It reports
	// whether there was a TOTP factor and how many passkeys went.
	DeleteSecondFactors(ctx context.Context, userID string) (totp bool, passkeys int, err error)
	ResealTOTPSecrets(ctx context.Context, reseal func(userID string, sealed []byte) ([]byte, error)) (int, error)
	FailureStore
}

// MFA manages users' second factor: a TOTP secret in an authenticator app,
// with recovery codes for when the phone is lost.
type MFA struct {
	store    MFAStore
	box      *seal.Box
	issuer   string
	throttle Throttle
	audit    Auditor
}

// NewMFA returns an MFA that seals secrets with box and records changes
// and failures in the audit log. issuer names the service in
// authenticator apps. A manager that only resets factors (as the CLI does)
// needs no box, issuer or throttle.
func NewMFA(store MFAStore, box *seal.Box, issuer string, throttle Throttle, audit Auditor) *MFA {
	return &MFA{store: store, box: box, issuer: issuer, throttle: throttle, audit: audit}
}

// Enrolment is what a user needs to add the factor to an authenticator app.
type Enrolment struct {
	// Secret is the base32 secret, for entering by hand.
	Secret string
	// URI is the otpauth:// link, for apps on the same device.
	URI string
	// QR is a PNG of the URI, made here, not by any outside service.
	QR []byte
}

// Enrol returns what u needs to add a TOTP factor to an authenticator
// app: the factor being enrolled, if there is one, so that reloading the
// page does not change the secret already scanned; otherwise a new secret,
// stored sealed but not counting until Confirm sees a code made from it.
// It returns ErrFactorExists if u already has a working factor.
func (m *MFA) Enrol(ctx context.Context, u *User) (Enrolment, error) {
	opts := totp.GenerateOpts{
		Issuer:      m.issuer,
		AccountName: u.Email,
		Period:      totpPeriod,
		Digits:      totpDigits,
		Algorithm:   totpAlg,
		SecretSize:  20,
	}
	f, err := m.store.TOTPFactor(ctx, u.ID)
	switch {
	case err == nil && f.Confirmed:
		return Enrolment{}, ErrFactorExists
	case err == nil:
		secret, err := m.box.Open(f.Sealed, m.aad(u.ID))
		if err != nil {
			return Enrolment{}, fmt.Errorf("identity: open TOTP secret: %w", err)
		}
		if opts.Secret, err = recoveryEncoding.DecodeString(string(secret)); err != nil {
			return Enrolment{}, fmt.Errorf("identity: TOTP secret: %w", err)
		}
	case !errors.Is(err, ErrNoFactor):
		return Enrolment{}, err
	}
	key, err := totp.Generate(opts)
	if err != nil {
		return Enrolment{}, fmt.Errorf("identity: generate TOTP secret: %w", err)
	}
	if opts.Secret == nil {
		if err := m.store.StartTOTP(ctx, u.ID, m.box.Seal([]byte(key.Secret()), m.aad(u.ID))); err != nil {
			return Enrolment{}, err
		}
	}
	img, err := key.Image(240, 240)
	if err != nil {
		return Enrolment{}, fmt.Errorf("identity: QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrolment{}, fmt.Errorf("identity: QR code: %w", err)
	}
	return Enrolment{Secret: key.Secret(), URI: key.URL(), QR: buf.Bytes()}, nil
}

// Confirm turns on the factor being enrolled, if code comes from it, and
// returns ten new recovery codes, shown once.
func (m *MFA) Confirm(ctx context.Context, userID, code string) ([]string, error) {
	f, err := m.store.TOTPFactor(ctx, userID)
	if errors.Is(err, ErrNoFactor) || (err == nil && f.Confirmed) {
		return nil, ErrNoFactor
	}
	if err != nil {
		return nil, err
	}
	a, err := m.begin(ctx, userID)
	if err != nil {
		return nil, err
	}
	step, ok, err := m.matchStep(userID, f, code)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, m.fail(ctx, a, userID)
	}
	if err := a.succeeded(ctx); err != nil {
		return nil, err
	}
	codes, digests := newRecoveryCodes()
	err = m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.MFAEnrolled, Target: audit.User(userID)}, m.store.ConfirmTOTP(ctx, userID, step, digests)
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// Enabled reports whether the user has a confirmed factor.
func (m *MFA) Enabled(ctx context.Context, userID string) (bool, error) {
	f, err := m.store.TOTPFactor(ctx, userID)
	if errors.Is(err, ErrNoFactor) {
		return false, nil
	}
	return err == nil && f.Confirmed, err
}

// Verify checks a code from the user's authenticator app, or one of their
// recovery codes, and spends it. Every failure is ErrInvalidCode and is
// recorded; after too many, attempts are refused with *ThrottledError
// before any code is looked at. Like passwords (Throttle), each attempt is
// counted before its code is checked, so parallel guesses get no more
// checks than the limits allow.
func (m *MFA) Verify(ctx context.Context, userID, code string) error {
	a, err := m.begin(ctx, userID)
	if err != nil {
		return err
	}
	ok, err := m.check(ctx, userID, code)
	if err != nil {
		return err
	}
	if !ok {
		return m.fail(ctx, a, userID)
	}
	return a.succeeded(ctx)
}

// check spends code if it is a valid TOTP code or an unused recovery code.
func (m *MFA) check(ctx context.Context, userID, code string) (bool, error) {
	f, err := m.store.TOTPFactor(ctx, userID)
	if errors.Is(err, ErrNoFactor) || (err == nil && !f.Confirmed) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if normalized := normalizeRecoveryCode(code); len(normalized) == recoveryCodeBytes*8/5 {
		return m.useRecoveryCode(ctx, userID, recoveryDigest(normalized))
	}
	step, ok, err := m.matchStep(userID, f, code)
	if err != nil || !ok {
		return false, err
	}
	return m.store.AcceptTOTPStep(ctx, userID, step)
}

// useRecoveryCode spends the recovery code with digest, if it is one of
// the user's unused codes, and records its use with the codes left in the
// same transaction: a recovery code is what someone without the phone
// signs in with, so its use is news to the owner (pkg/notify), and the
// count tells them when to make new ones.
func (m *MFA) useRecoveryCode(ctx context.Context, userID string, digest []byte) (bool, error) {
	var used bool
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		if used, err = m.store.UseRecoveryCode(ctx, userID, digest); err != nil || !used {
			return audit.Event{}, err
		}
		left, err := m.store.RecoveryCodesLeft(ctx, userID)
		return audit.Event{Action: audit.MFARecoveryCodeUsed, Target: audit.User(userID),
			Details: map[string]any{"codes_left": left}}, err
	})
	return used, err
}

// matchStep returns the time step whose code is code, trying the current
// step and one either side, and only steps after the last one accepted.
func (m *MFA) matchStep(userID string, f TOTPFactor, code string) (int64, bool, error) {
	code = strings.TrimSpace(code)
	if len(code) != totpDigits.Length() {
		return 0, false, nil
	}
	secret, err := m.box.Open(f.Sealed, m.aad(userID))
	if err != nil {
		return 0, false, fmt.Errorf("identity: open TOTP secret: %w", err)
	}
	now := time.Now().Unix() / totpPeriod
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: totpAlg}
	for step := now - totpSkew; step <= now+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(string(secret), time.Unix(step*totpPeriod, 0), opts)
		if err != nil {
			return 0, false, fmt.Errorf("identity: TOTP: %w", err)
		}
		if step > f.LastStep && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return step, true, nil
		}
	}
	return 0, false, nil
}

// begin reserves an attempt at one of the user's codes, or refuses it
// with *ThrottledError if the user must wait. An attempt that ends in an
// error keeps its reservation: counting one failure too many is the safe
// side.
func (m *MFA) begin(ctx context.Context, userID string) (*attempt, error) {
	a, wait, err := m.throttle.begin(ctx, m.store, failedCode, []byte(userID))
	if err != nil {
		return nil, err
	}
	if wait != nil {
		return nil, wait
	}
	return a, nil
}

// fail records a wrong code, and the delay or lockout it brings, in the
// audit log too.
func (m *MFA) fail(ctx context.Context, a *attempt, userID string) error {
	if err := a.failed(ctx, m.audit, audit.Event{Target: audit.User(userID)}); err != nil {
		return err
	}
	return ErrInvalidCode
}

// Reseal re-encrypts every stored TOTP secret under the first of
// LATCHKEY_SECRETS, so that the secrets after it can be removed. It
// returns how many secrets it changed.
func (m *MFA) Reseal(ctx context.Context) (int, error) {
	return m.store.ResealTOTPSecrets(ctx, func(userID string, sealed []byte) ([]byte, error) {
		return m.box.Reseal(sealed, m.aad(userID))
	})
}

// Disable turns the factor off, after a current code from it, and deletes
// the recovery codes.
func (m *MFA) Disable(ctx context.Context, userID, code string) error {
	if err := m.Verify(ctx, userID, code); err != nil {
		return err
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		_, err := m.store.DeleteTOTP(ctx, userID)
		return audit.Event{Action: audit.MFADisabled, Target: audit.User(userID)}, err
	})
}

// Reset removes a user's second factors without a code, for an
// administrator helping a user who lost both phone and recovery codes:
// the TOTP factor and every passkey (pkg/passkey), since a user who asks
// for a reset has lost their factors, and a passkey left behind would be
// one that someone else may now hold. The user must enrol again where a
// factor is required. ErrNoFactor if they had none of either.
func (m *MFA) Reset(ctx context.Context, userID string) error {
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		totp, passkeys, err := m.store.DeleteSecondFactors(ctx, userID)
		if err == nil && !totp && passkeys == 0 {
			err = ErrNoFactor
		}
		return audit.Event{Action: audit.MFAReset, Target: audit.User(userID),
			Details: map[string]any{"totp": totp, "passkeys": passkeys}}, err
	})
}

// RegenerateRecoveryCodes replaces the user's recovery codes with ten new
// ones, shown once. A user without a confirmed factor has no codes to
// replace: ErrNoFactor (the store checks, in the transaction that
// replaces them).
func (m *MFA) RegenerateRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes, digests := newRecoveryCodes()
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.MFARecoveryRenewed, Target: audit.User(userID)}, m.store.ReplaceRecoveryCodes(ctx, userID, digests)
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// RecoveryCodesLeft counts the user's unused recovery codes.
func (m *MFA) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	return m.store.RecoveryCodesLeft(ctx, userID)
}

// aad binds a sealed secret to its user, so that a secret copied onto
// another user's row does not open.
func (m *MFA) aad(userID string) []byte { return []byte("totp:" + userID) }

var recoveryEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newRecoveryCodes makes ten codes, written xxxx-xxxx-xxxx-xxxx, and their
// digests.
func newRecoveryCodes() ([]string, [][]byte) {
	codes := make([]string, recoveryCodeCount)
	digests := make([][]byte, recoveryCodeCount)
	for i := range codes {
		b := make([]byte, recoveryCodeBytes)
		_, _ = rand.Read(b)
		raw := strings.ToLower(recoveryEncoding.EncodeToString(b))
		codes[i] = raw[0:4] + "-" + raw[4:8] + "-" + raw[8:12] + "-" + raw[12:16]
		digests[i] = recoveryDigest(raw)
	}
	return codes, digests
}

// normalizeRecoveryCode accepts a code however the user typed it: any
// case, with or without dashes and spaces. Only ASCII letters are folded:
// strings.ToLower would also read "İ" as "i", and a code has one spelling
// per letter, not several.
func normalizeRecoveryCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case 'A' <= r && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, strings.TrimSpace(code))
}

func recoveryDigest(normalized string) []byte {
	sum := sha256.Sum256([]byte(normalized))
	return sum[:]
}
