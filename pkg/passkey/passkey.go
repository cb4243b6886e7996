package passkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
)

// MaxNameChars is the longest name a user may give a passkey; the
// database holds it to the same.
const MaxNameChars = 64

// ceremonyTimeout is how long the browser gives the user to answer, and
// how long the session data stays good for.
const ceremonyTimeout = 5 * time.Minute

var (
	// ErrNotFound means the user has no passkey with that ID.
	ErrNotFound = errors.New("passkey: no such passkey")
	// ErrExists means the passkey is registered already (to any user).
	ErrExists = errors.New("passkey: the passkey is registered already")
	// ErrUnavailable means the issuer cannot have passkeys (see New).
	ErrUnavailable = errors.New("passkey: passkeys need an issuer whose host is a domain name, not an IP address")
	// ErrNoPasskeys means the user has no passkey to assert with.
	ErrNoPasskeys = errors.New("passkey: the user has no passkeys")
	// ErrInvalidName means a name is empty or longer than MaxNameChars.
	ErrInvalidName = fmt.Errorf("passkey: a name must have 1 to %d characters", MaxNameChars)
	// ErrUnknownCredential means the answer came from a passkey that is
	// not one of the user's.
	ErrUnknownCredential = errors.New("passkey: unknown credential")
	// ErrCloneSuspected means the passkey's signature counter did not
	// rise: the answer may come from a copy of the key.
	ErrCloneSuspected = errors.New("passkey: signature counter did not rise; possible clone")
)

// RefusedError is any other answer that does not verify: for another
// origin or RP ID, to another challenge, with a bad signature, malformed,
// or too late. Reason says which, in one word, for the audit log.
type RefusedError struct {
	Reason string
	Err    error
}

// Error says why the answer was refused, for logs; pages never show it.
func (e *RefusedError) Error() string {
	return "passkey: answer refused (" + e.Reason + "): " + e.Err.Error()
}

// Unwrap returns the library's or the check's own error.
func (e *RefusedError) Unwrap() error { return e.Err }

// ErrRefused matches every *RefusedError with errors.Is.
var ErrRefused = errors.New("passkey: answer refused")

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Passkey is one stored credential.
type Passkey struct {
	// ID is the credential ID the authenticator chose.
	ID     []byte
	UserID string
	// PublicKey is COSE-encoded.
	PublicKey []byte
	// SignCount is the signature counter last seen (0 for authenticators
	// that keep none, as synced passkeys do).
	SignCount  uint32
	Transports []string
	// BackupEligible says the key may be synced to other devices;
	// BackupState that it was, when last seen.
	BackupEligible, BackupState bool
	// UserVerified says the authenticator verified the user when the
	// passkey was registered.
	UserVerified    bool
	AAGUID          []byte
	AttestationType string
	Name            string
	CreatedAt       time.Time
	// LastUsedAt is zero until the passkey is first used.
	LastUsedAt time.Time
}

// Use is a verified assertion, as the store records it.
type Use struct {
	// From is the counter stored before, To the assertion's: the store
	// applies To only if the stored counter is still From, so that of two
	// answers at once only one counts.
	From, To    uint32
	BackupState bool
	At          time.Time
}

// Store keeps passkeys (storage/postgres).
type Store interface {
	// CreatePasskey stores a new passkey; ErrExists if its ID is taken.
	CreatePasskey(ctx context.Context, p *Passkey) error
	// Passkeys lists a user's passkeys, oldest first.
	Passkeys(ctx context.Context, userID string) ([]Passkey, error)
	// Passkey finds a passkey by its ID alone; ErrNotFound.
	Passkey(ctx context.Context, id []byte) (Passkey, error)
	// SpendPasskeyChallenge records a challenge, by its SHA-256 digest, as
	// answered until expires; false if it was recorded already.
	SpendPasskeyChallenge(ctx context.Context, digest []byte, expires time.Time) (bool, error)
	// RecordPasskeyUse applies u to the user's passkey id; false if its
	// counter was no longer u.From (or it is gone).
	RecordPasskeyUse(ctx context.Context, userID string, id []byte, u Use) (bool, error)
	// RenamePasskey and DeletePasskey change the user's passkey id;
	// ErrNotFound if they have none by that ID.
	RenamePasskey(ctx context.Context, userID string, id []byte, name string) error
	DeletePasskey(ctx context.Context, userID string, id []byte) error
}

// Auditor records changes with their audit events, and events that
// change nothing (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
	Record(ctx context.Context, e audit.Event) error
}

// User is who a ceremony is for.
type User struct {
	ID string
	// Email and Name are what the authenticator shows the user to tell
	// their accounts apart.
	Email, Name string
}

// Ceremony is the first half of a ceremony.
type Ceremony struct {
	// Options is the JSON the page passes (decoded) to
	// navigator.credentials.create or .get: {"publicKey": {...}}.
	Options []byte
	// Session is what Finish needs, the challenge above all: keep it
	// server-side, in the browser's session, and use it once.
	Session []byte
}

// Assertion is a verified assertion.
type Assertion struct {
	Passkey Passkey
	// UserVerified says the authenticator verified the user this time.
	UserVerified bool
}

// AMR is how a sign-in with the assertion was made (RFC 8176): a key, hwk
// or swk, and user when the user was verified. It holds no mfa: whether
// the sign-in counts as multi-factor is the caller's to say (after a
// password it is; alone, only with user verification).
func (a Assertion) AMR() []string {
	key := identity.AMRHardwareKey
	if a.Passkey.BackupEligible {
		key = identity.AMRSoftwareKey
	}
	if a.UserVerified {
		return []string{key, identity.AMRUser}
	}
	return []string{key}
}

// Manager keeps passkeys and runs the ceremonies.
type Manager struct {
	wa    *webauthn.WebAuthn
	rpID  string
	store Store
	audit Auditor
}

// New returns a Manager for the issuer: the issuer's host name is the
// relying party ID, and its scheme and host (with any port) the one
// origin accepted. displayName is what authenticators call the site.
//
// An issuer whose host is an IP address can have no passkeys: WebAuthn's
// RP ID is a domain, and browsers refuse the rest. Its Manager works, but
// nobody has passkeys (Has), and registering one is refused with
// ErrUnavailable. So is one made without an issuer, which can only list,
// rename and remove passkeys (the CLI's).
func New(issuer, displayName string, store Store, audit Auditor) (*Manager, error) {
	if issuer == "" {
		// The CLI lists and removes passkeys, which needs no relying party.
		return &Manager{store: store, audit: audit}, nil
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("passkey: issuer %q is not an absolute URL", issuer)
	}
	if net.ParseIP(u.Hostname()) != nil {
		return &Manager{store: store, audit: audit}, nil
	}
	timeout := webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTimeout, TimeoutUVD: ceremonyTimeout}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  u.Hostname(),
		RPDisplayName:         displayName,
		RPOrigins:             []string{u.Scheme + "://" + u.Host},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			// A discoverable credential, where the authenticator can keep
			// one, lets the same passkey sign in without a password later.
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		Timeouts: webauthn.TimeoutsConfig{Login: timeout, Registration: timeout},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &Manager{wa: wa, rpID: u.Hostname(), store: store, audit: audit}, nil
}

// UserHandle is the user handle a passkey is registered with: the user's
// ID, which is no personal data (WebAuthn §14.6.1), so that a
// discoverable passkey names its user.
func UserHandle(userID string) []byte { return []byte(userID) }

// List returns the user's passkeys, oldest first.
func (m *Manager) List(ctx context.Context, userID string) ([]Passkey, error) {
	return m.store.Passkeys(ctx, userID)
}

// Available reports whether the issuer can have passkeys (see New).
func (m *Manager) Available() bool { return m.wa != nil }

// Has reports whether the user has a passkey that can be used here.
func (m *Manager) Has(ctx context.Context, userID string) (bool, error) {
	if !m.Available() {
		return false, nil
	}
	keys, err := m.store.Passkeys(ctx, userID)
	return len(keys) > 0, err
}

// BeginRegistration starts adding a passkey to u's account. The
// authenticator is asked not to make a second passkey for an account it
// holds one for already (excludeCredentials).
func (m *Manager) BeginRegistration(ctx context.Context, u User) (Ceremony, error) {
	if !m.Available() {
		return Ceremony{}, ErrUnavailable
	}
	wu, err := m.user(ctx, u)
	if err != nil {
		return Ceremony{}, err
	}
	creation, session, err := m.wa.BeginRegistration(wu,
		webauthn.WithExclusions(webauthn.Credentials(wu.creds).CredentialDescriptors()))
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey: begin registration: %w", err)
	}
	return ceremony(creation, session)
}

// FinishRegistration checks the browser's answer (the JSON of the
// PublicKeyCredential) to the registration begun with session, and
// stores the new passkey under name.
func (m *Manager) FinishRegistration(ctx context.Context, u User, session, answer []byte, name string) (Passkey, error) {
	if !m.Available() {
		return Passkey{}, ErrUnavailable
	}
	name, err := validName(name)
	if err != nil {
		return Passkey{}, err
	}
	wu, err := m.user(ctx, u)
	if err != nil {
		return Passkey{}, err
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(session, &sd); err != nil {
		return Passkey{}, m.refuse(ctx, u.ID, "registration", &RefusedError{Reason: "session", Err: err})
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(answer)
	if err != nil {
		return Passkey{}, m.refuse(ctx, u.ID, "registration", &RefusedError{Reason: "malformed", Err: err})
	}
	if r := m.mismatch(sd, parsed.Response.CollectedClientData, parsed.Response.AttestationObject.AuthData.RPIDHash); r != nil {
		return Passkey{}, m.refuse(ctx, u.ID, "registration", r)
	}
	cred, err := m.wa.CreateCredential(wu, sd, parsed)
	if err != nil {
		return Passkey{}, m.refuse(ctx, u.ID, "registration", &RefusedError{Reason: "invalid", Err: err})
	}
	p := Passkey{
		ID: cred.ID, UserID: u.ID, PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount,
		BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		UserVerified: cred.Flags.UserVerified, AAGUID: cred.Authenticator.AAGUID,
		AttestationType: cred.AttestationType, Name: name,
	}
	for _, t := range cred.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	err = m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.PasskeyRegistered, Target: audit.User(u.ID), Details: map[string]any{
			"passkey": EncodeID(p.ID), "name": p.Name, "backup_eligible": p.BackupEligible,
		}}, m.store.CreatePasskey(ctx, &p)
	})
	return p, err
}

// BeginAssertion starts a ceremony in which the user proves they hold one
// of their passkeys; ErrNoPasskeys if they have none.
func (m *Manager) BeginAssertion(ctx context.Context, userID string) (Ceremony, error) {
	if !m.Available() {
		return Ceremony{}, ErrNoPasskeys
	}
	wu, err := m.user(ctx, User{ID: userID})
	if err != nil {
		return Ceremony{}, err
	}
	if len(wu.creds) == 0 {
		return Ceremony{}, ErrNoPasskeys
	}
	assertion, session, err := m.wa.BeginLogin(wu)
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey: begin assertion: %w", err)
	}
	return ceremony(assertion, session)
}

// FinishAssertion checks the browser's answer to the assertion begun with
// session for userID. A verified answer raises the passkey's counter and
// marks it used. An answer whose counter did not rise is refused with
// ErrCloneSuspected (see cloneSuspected) and recorded as such.
func (m *Manager) FinishAssertion(ctx context.Context, userID string, session, answer []byte) (Assertion, error) {
	if !m.Available() {
		return Assertion{}, ErrNoPasskeys
	}
	wu, err := m.user(ctx, User{ID: userID})
	if err != nil {
		return Assertion{}, err
	}
	sd, parsed, err := m.answer(ctx, userID, "assertion", session, answer)
	if err != nil {
		return Assertion{}, err
	}
	return m.verify(ctx, "assertion", wu, sd, parsed, nil)
}

// BeginPasswordless starts a ceremony in which whoever holds a passkey of
// this site signs in with it alone: no user is named, so the options list
// no credentials (allowCredentials), and the authenticator offers the
// discoverable passkeys it holds for the site. The user must be verified
// (a PIN or biometrics): a passkey without it is one factor, something the
// user has, and no replacement for a password. The same options serve a
// conditional request (passkey autofill) and a modal one; the page picks
// the mediation.
//
// Unlike an assertion's, the session data is meant to travel with the
// browser (sealed, see pkg/signin): FinishPasswordless spends the
// challenge itself, so that it is good for one answer.
func (m *Manager) BeginPasswordless(context.Context) (Ceremony, error) {
	if !m.Available() {
		return Ceremony{}, ErrUnavailable
	}
	assertion, session, err := m.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey: begin passwordless: %w", err)
	}
	return ceremony(assertion, session)
}

// FinishPasswordless checks the browser's answer to the ceremony begun
// with session (BeginPasswordless) and returns whose passkey it is: the
// passkey is found by its credential ID, and the user handle the
// authenticator returns must be its user's (UserHandle). Besides the
// refusals of FinishAssertion, the answer is refused when the user was
// not verified (reason "user_verification"), when its challenge was
// answered before (reason "replay"), and when may says the passkey's user
// may not sign in (reason "disabled": disabled since, say). Each refusal
// is recorded in the audit log.
func (m *Manager) FinishPasswordless(ctx context.Context, session, answer []byte, may func(ctx context.Context, userID string) (bool, error)) (Assertion, error) {
	if !m.Available() {
		return Assertion{}, ErrUnavailable
	}
	sd, parsed, err := m.answer(ctx, "", passwordless, session, answer)
	if err != nil {
		return Assertion{}, err
	}
	if len(sd.UserID) != 0 || sd.UserVerification != protocol.VerificationRequired {
		// The session of an assertion for a named user, or one that does
		// not require the user to be verified: not this ceremony's.
		return Assertion{}, m.refuse(ctx, "", passwordless, &RefusedError{Reason: "session", Err: errors.New("not a passwordless ceremony")})
	}
	stored, err := m.store.Passkey(ctx, parsed.RawID)
	if errors.Is(err, ErrNotFound) {
		return Assertion{}, m.refuse(ctx, "", passwordless, ErrUnknownCredential)
	}
	if err != nil {
		return Assertion{}, err
	}
	if !bytes.Equal(parsed.Response.UserHandle, UserHandle(stored.UserID)) {
		// The authenticator names another user than the one the passkey
		// was registered to (or none): not a passkey of this account.
		return Assertion{}, m.refuse(ctx, stored.UserID, passwordless, ErrUnknownCredential)
	}
	wu, err := m.user(ctx, User{ID: stored.UserID})
	if err != nil {
		return Assertion{}, err
	}
	return m.verify(ctx, passwordless, wu, sd, parsed, func(ctx context.Context) error {
		ok, err := may(ctx, stored.UserID)
		if err == nil && !ok {
			err = m.refuse(ctx, stored.UserID, passwordless, &RefusedError{Reason: "disabled", Err: errors.New("the passkey's user may not sign in")})
		}
		return err
	})
}

// passwordless is the audit log's name of the passwordless ceremony.
const passwordless = "passwordless"

// answer reads the session data and the browser's answer to an assertion
// ceremony (of kind, for the audit log), refusing either if malformed.
// userID is whom the ceremony is for, "" when nobody is known yet.
func (m *Manager) answer(ctx context.Context, userID, kind string, session, answer []byte) (webauthn.SessionData, *protocol.ParsedCredentialAssertionData, error) {
	var sd webauthn.SessionData
	if err := json.Unmarshal(session, &sd); err != nil {
		return sd, nil, m.refuse(ctx, userID, kind, &RefusedError{Reason: "session", Err: err})
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(answer)
	if err != nil {
		return sd, nil, m.refuse(ctx, userID, kind, &RefusedError{Reason: "malformed", Err: err})
	}
	return sd, parsed, nil
}

// verify is the one check of an assertion, of either ceremony (kind), by
// the user wu: the passkey must be one of theirs, the answer made for
// this site and this challenge, signed by the passkey, with the user
// verified where the session requires it. For a passwordless ceremony,
// then does its own checks (who may sign in), and the challenge is spent:
// its session data is not kept server-side, so this is what makes it
// good for one answer. Only a verified answer from a registered passkey
// gets this far, so only a passkey's holder causes that write. Last, the
// counter must rise (cloneSuspected); the passkey's use is recorded only
// if no other answer counted since it was read.
func (m *Manager) verify(ctx context.Context, kind string, wu *waUser, sd webauthn.SessionData, parsed *protocol.ParsedCredentialAssertionData, then func(ctx context.Context) error) (Assertion, error) {
	userID := wu.u.ID
	var stored *Passkey
	for i := range wu.keys {
		if bytes.Equal(wu.keys[i].ID, parsed.RawID) {
			stored = &wu.keys[i]
		}
	}
	if stored == nil {
		return Assertion{}, m.refuse(ctx, userID, kind, ErrUnknownCredential)
	}
	if r := m.mismatch(sd, parsed.Response.CollectedClientData, parsed.Response.AuthenticatorData.RPIDHash); r != nil {
		return Assertion{}, m.refuse(ctx, userID, kind, r)
	}
	flags := parsed.Response.AuthenticatorData.Flags
	if sd.UserVerification == protocol.VerificationRequired && !flags.HasUserVerified() {
		return Assertion{}, m.refuse(ctx, userID, kind, &RefusedError{Reason: "user_verification",
			Err: errors.New("the authenticator did not verify the user")})
	}
	var err error
	if len(sd.UserID) == 0 {
		_, _, err = m.wa.ValidatePasskeyLogin(func([]byte, []byte) (webauthn.User, error) { return wu, nil }, sd, parsed)
	} else {
		_, err = m.wa.ValidateLogin(wu, sd, parsed)
	}
	if err != nil {
		return Assertion{}, m.refuse(ctx, userID, kind, &RefusedError{Reason: "invalid", Err: err})
	}
	if then != nil {
		if err := then(ctx); err != nil {
			return Assertion{}, err
		}
	}
	if len(sd.UserID) == 0 {
		if err := m.spend(ctx, userID, kind, sd); err != nil {
			return Assertion{}, err
		}
	}
	count := parsed.Response.AuthenticatorData.Counter
	use := Use{From: stored.SignCount, To: count, BackupState: flags.HasBackupState(), At: time.Now()}
	recorded := false
	if !cloneSuspected(stored.SignCount, count) {
		if recorded, err = m.store.RecordPasskeyUse(ctx, userID, stored.ID, use); err != nil {
			return Assertion{}, err
		}
	}
	if !recorded {
		err := m.audit.Record(ctx, audit.Event{Action: audit.PasskeyCloneSuspected, Target: audit.User(userID),
			Details: map[string]any{"passkey": EncodeID(stored.ID), "name": stored.Name,
				"stored_count": stored.SignCount, "count": count}})
		return Assertion{}, errors.Join(ErrCloneSuspected, err)
	}
	stored.SignCount, stored.BackupState, stored.LastUsedAt = count, use.BackupState, use.At
	return Assertion{Passkey: *stored, UserVerified: flags.HasUserVerified()}, nil
}

// spend records the challenge of sd as answered, until the session would
// have expired anyway; an answer to a challenge answered before is
// refused as a replay. Of two answers at once, one spends it.
func (m *Manager) spend(ctx context.Context, userID, kind string, sd webauthn.SessionData) error {
	expires := sd.Expires
	if expires.IsZero() {
		expires = time.Now().Add(ceremonyTimeout)
	}
	digest := sha256.Sum256([]byte(sd.Challenge))
	fresh, err := m.store.SpendPasskeyChallenge(ctx, digest[:], expires)
	if err != nil {
		return err
	}
	if !fresh {
		return m.refuse(ctx, userID, kind, &RefusedError{Reason: "replay", Err: errors.New("the challenge was answered before")})
	}
	return nil
}

// cloneSuspected is the one rule for a signature counter (WebAuthn §6.1.1
// and §7.2 step 22): once an authenticator counts (stored > 0), every
// assertion must bring a higher count. One that does not may come from a
// copy of the key. Authenticators that keep no counter send 0 always.
func cloneSuspected(stored, got uint32) bool {
	return stored > 0 && got <= stored
}

// Rename renames the user's passkey id.
func (m *Manager) Rename(ctx context.Context, userID string, id []byte, name string) error {
	name, err := validName(name)
	if err != nil {
		return err
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.PasskeyRenamed, Target: audit.User(userID),
			Details: map[string]any{"passkey": EncodeID(id), "name": name}}, m.store.RenamePasskey(ctx, userID, id, name)
	})
}

// validName is name as stored, without surrounding space; ErrInvalidName
// if that leaves nothing or more than MaxNameChars characters.
func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxNameChars {
		return "", ErrInvalidName
	}
	return name, nil
}

// Remove removes the user's passkey id: the user's own doing on their
// account page, or an administrator's.
func (m *Manager) Remove(ctx context.Context, userID string, id []byte) error {
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.PasskeyRemoved, Target: audit.User(userID),
			Details: map[string]any{"passkey": EncodeID(id)}}, m.store.DeletePasskey(ctx, userID, id)
	})
}

// mismatch checks the parts of an answer that say where and for what it
// was made, before the library checks them again with the signature: they
// are what a phishing page or a replay gets wrong, and the audit log
// should say which.
func (m *Manager) mismatch(sd webauthn.SessionData, cd protocol.CollectedClientData, rpIDHash []byte) *RefusedError {
	origins := m.wa.Config.RPOrigins
	want := sha256.Sum256([]byte(m.rpID))
	switch {
	case cd.Challenge != sd.Challenge:
		return &RefusedError{Reason: "challenge", Err: errors.New("the answer is to another challenge")}
	case len(origins) == 0 || cd.Origin != origins[0]:
		return &RefusedError{Reason: "origin", Err: fmt.Errorf("the answer was made for origin %q", cd.Origin)}
	case !bytes.Equal(rpIDHash, want[:]):
		return &RefusedError{Reason: "rp_id", Err: errors.New("the answer was made for another relying party")}
	}
	return nil
}

// refuse records a refused answer in the audit log and returns err.
// userID is whose passkey it was, "" when that is not known (a
// passwordless answer that names no passkey of this site).
func (m *Manager) refuse(ctx context.Context, userID, ceremony string, err error) error {
	reason := "unknown_credential"
	var refused *RefusedError
	if errors.As(err, &refused) {
		reason = refused.Reason
	}
	target := ""
	if userID != "" {
		target = audit.User(userID)
	}
	if rerr := m.audit.Record(ctx, audit.Event{Action: audit.PasskeyFailed, Target: target,
		Details: map[string]any{"ceremony": ceremony, "reason": reason}}); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// user is u as the library sees it, with their stored passkeys.
func (m *Manager) user(ctx context.Context, u User) (*waUser, error) {
	keys, err := m.store.Passkeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	wu := &waUser{u: u, keys: keys}
	for _, k := range keys {
		c := webauthn.Credential{ID: k.ID, PublicKey: k.PublicKey, AttestationType: k.AttestationType,
			Flags:         webauthn.CredentialFlags{UserPresent: true, UserVerified: k.UserVerified, BackupEligible: k.BackupEligible, BackupState: k.BackupState},
			Authenticator: webauthn.Authenticator{AAGUID: k.AAGUID, SignCount: k.SignCount}}
		for _, t := range k.Transports {
			c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
		}
		wu.creds = append(wu.creds, c)
	}
	return wu, nil
}

// ceremony packs the library's begin results.
func ceremony(options any, session *webauthn.SessionData) (Ceremony, error) {
	o, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey: options: %w", err)
	}
	s, err := json.Marshal(session)
	if err != nil {
		return Ceremony{}, fmt.Errorf("passkey: session: %w", err)
	}
	return Ceremony{Options: o, Session: s}, nil
}

// EncodeID is how a passkey's ID is written in URLs, forms, the admin API
// and the audit log: unpadded base64url, as WebAuthn's JSON writes it.
func EncodeID(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }

// DecodeID reads an ID written by EncodeID; ErrNotFound if it is not one.
func DecodeID(s string) ([]byte, error) {
	id, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(id) == 0 {
		return nil, ErrNotFound
	}
	return id, nil
}

// waUser is a user as github.com/go-webauthn/webauthn wants one.
type waUser struct {
	u     User
	keys  []Passkey
	creds []webauthn.Credential
}

func (w *waUser) WebAuthnID() []byte { return UserHandle(w.u.ID) }
func (w *waUser) WebAuthnName() string {
	if w.u.Email != "" {
		return w.u.Email
	}
	return w.u.ID
}
func (w *waUser) WebAuthnDisplayName() string {
	if w.u.Name != "" {
		return w.u.Name
	}
	return w.WebAuthnName()
}
func (w *waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }
