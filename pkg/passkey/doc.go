// Package passkey keeps users' passkeys (WebAuthn credentials) and runs
// the two WebAuthn ceremonies on them, through
// github.com/go-webauthn/webauthn: registration, which adds a passkey to a
// signed-in user's account, and assertion, in which a known user proves
// they hold one of theirs (a second factor after the password).
//
// A ceremony has two halves. Begin returns a Ceremony: the options the
// browser passes to navigator.credentials.create or .get, and the session
// data (the challenge) that the caller keeps server-side, in the browser's
// own session, until Finish. The caller must forget the session data when
// it finishes, whatever the outcome: a challenge is good for one answer.
// Keeping it in the browser's session is what makes a ceremony started in
// one browser fail in another.
//
// The relying party is the issuer: its host name is the RP ID and its
// origin the only origin accepted, so an assertion made for another site
// (a phishing page) does not verify here. Attestation is not asked for
// ("none"), and user verification is preferred, not required, for
// registration and assertion: an assertion's amr says whether it was done
// (AMR).
//
// Every refusal of an answer is an error of this package (ErrRefused,
// ErrUnknownCredential, ErrCloneSuspected) and is recorded in the audit
// log; the caller shows the user a page that names no internals. Changes
// (a passkey added, renamed, removed) write their audit event in the
// transaction of the change.
//
// # Passwordless sign-in
//
// BeginPasswordless asks for any discoverable passkey of the site (no
// allowCredentials), with the user verified: without verification a
// passkey is one factor, and no replacement for a password.
// FinishPasswordless finds the passkey by its credential ID alone
// (Store.Passkey) and its user by the user handle it was registered with,
// which is the user's ID (UserHandle), and verifies it with the same
// function as an assertion (verify): the same refusals, the same audit
// reasons, the same counter rule. Its session data may be kept by the
// browser (sealed, as pkg/signin does), not server-side, so the
// challenge is spent in the store (SpendPasskeyChallenge) once a
// verified answer of a registered passkey presents it: a second answer
// to it is a replay, and only a passkey's holder ever causes that write.
package passkey
