package signin

import (
	"context"
	"errors"
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/ui"
)

// PasskeyPath is the page that asks for a passkey as the second step.
const PasskeyPath = "/login/passkey"

// Passkeys are the users' passkeys and their ceremonies (pkg/passkey).
type Passkeys interface {
	// Available says the issuer can have passkeys at all.
	Available() bool
	Has(ctx context.Context, userID string) (bool, error)
	List(ctx context.Context, userID string) ([]passkey.Passkey, error)
	BeginRegistration(ctx context.Context, u passkey.User) (passkey.Ceremony, error)
	FinishRegistration(ctx context.Context, u passkey.User, session, answer []byte, name string) (passkey.Passkey, error)
	BeginAssertion(ctx context.Context, userID string) (passkey.Ceremony, error)
	FinishAssertion(ctx context.Context, userID string, session, answer []byte) (passkey.Assertion, error)
	// BeginPasswordless and FinishPasswordless are the sign-in page's
	// passkey ceremony, for whoever holds one (passwordless.go).
	BeginPasswordless(ctx context.Context) (passkey.Ceremony, error)
	FinishPasswordless(ctx context.Context, session, answer []byte, may func(ctx context.Context, userID string) (bool, error)) (passkey.Assertion, error)
	Rename(ctx context.Context, userID string, id []byte, name string) error
	Remove(ctx context.Context, userID string, id []byte) error
}

// passkeyFactor is the step that asks for one of the user's passkeys as
// their second factor: when secondFactor would ask for a code, a user who
// has a passkey is asked for that first, since it cannot be phished; the
// page links to the code page for a user who also has an authenticator
// app.
type passkeyFactor struct{ s *Service }

func (*passkeyFactor) path() string { return PasskeyPath }

func (pf *passkeyFactor) needed(ctx context.Context, f *flow) (bool, error) {
	if !f.signedIn || !f.secondFactorWanted() {
		return false, nil
	}
	return pf.s.Passkeys.Has(ctx, f.auth.UserID)
}

func (*passkeyFactor) promptNone() *fosite.RFC6749Error {
	return (*secondFactor)(nil).promptNone()
}

func (pf *passkeyFactor) show(w http.ResponseWriter, r *http.Request) {
	pf.page(w, r, r.URL.Query().Get("request"), http.StatusOK, "")
}

// page begins an assertion for the user who owes their second factor and
// shows it, with problem from the last answer, if any. Each showing
// begins a new ceremony, which replaces the last.
func (pf *passkeyFactor) page(w http.ResponseWriter, r *http.Request, handle string, status int, problem string) {
	s := pf.s
	ctx := r.Context()
	f := s.load(w, r, handle)
	if f == nil {
		return
	}
	userID, _, ok := s.secondFactorUser(f, r)
	if !ok {
		http.Redirect(w, r, s.pageURL(LoginPath, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return
	}
	c, err := s.Passkeys.BeginAssertion(ctx, userID)
	if errors.Is(err, passkey.ErrNoPasskeys) {
		http.Redirect(w, r, s.pageURL(SecondFactorPath, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	totp, err := s.MFA.Enabled(ctx, userID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Sessions.BeginCeremony(ctx, assertion, userID, c.Session)
	d := ui.PasskeyPage{Request: handle, Action: s.Base + PasskeyPath, ClientName: f.clientName(),
		Options: string(c.Options), Error: problem}
	// A code cannot reach the phishing-resistant level: an app that
	// wants it gets no way round the passkey.
	if totp && !f.phishingResistantWanted() {
		d.CodeURL = s.pageURL(SecondFactorPath, handle)
	}
	s.Pages.Passkey(w, status, f.formTarget(), d)
}

func (pf *passkeyFactor) submit(w http.ResponseWriter, r *http.Request) (failed bool) {
	s := pf.s
	ctx := r.Context()
	f, handle, userID, stepUp, ok := s.secondFactorSubmitted(w, r)
	if !ok {
		return false
	}
	// Taken before anything else is looked at: the challenge is spent
	// whatever the answer.
	session := s.Sessions.TakeCeremony(ctx, assertion, userID)
	user, err := s.Users.Get(ctx, userID)
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		s.fail(w, r, err)
		return false
	}
	if user == nil || user.Disabled {
		// Disabled since the password was given: nothing to sign in to.
		s.showLogin(w, r, http.StatusOK, f, ui.LoginPage{Request: handle, Error: signInFailed})
		return true
	}
	a, err := s.Passkeys.FinishAssertion(ctx, userID, session, []byte(r.PostFormValue("credential")))
	s.metrics().SecondFactor(passkeyResult(err))
	if err != nil {
		if msg, ok := passkeyProblem(err); ok {
			pf.page(w, r, handle, http.StatusBadRequest, msg)
			return true
		}
		s.fail(w, r, err)
		return false
	}
	// After a password, or for a user signed in with one, any passkey is
	// a second factor (RFC 8176: mfa), verified or not.
	amr := append(a.AMR(), identity.AMRMFA)
	if stepUp {
		_, err = s.Sessions.Elevate(ctx, amr)
	} else {
		err = s.signIn(w, r, user, append([]string{identity.AMRPassword}, amr...), false)
	}
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	s.next(w, r, f)
	return false
}

// passkeyResult is how a passkey answer that returned err ended, as
// Observer.SecondFactor is told.
func passkeyResult(err error) string {
	switch {
	case err == nil:
		return "succeeded"
	case errors.Is(err, passkey.ErrRefused), errors.Is(err, passkey.ErrUnknownCredential), errors.Is(err, passkey.ErrCloneSuspected):
		return "failed"
	}
	return "error"
}

// passkeyProblem turns a refused passkey answer into what the page tells
// the user: what happened and what to do, never the check that failed
// (the audit log has that).
func passkeyProblem(err error) (message string, ok bool) {
	var refused *passkey.RefusedError
	switch {
	case errors.Is(err, passkey.ErrCloneSuspected):
		return "That passkey was refused: it may have been copied to another device. Use another passkey or another way to sign in, then remove that passkey from your account and tell your administrator.", true
	case errors.Is(err, passkey.ErrUnknownCredential):
		return "That passkey is not registered to your account. Use one you added on your account page.", true
	case errors.As(err, &refused) && refused.Reason == "session":
		return "This passkey request has expired, was already answered, or was started in another browser window. Try again here.", true
	case errors.As(err, &refused):
		return "That passkey answer could not be verified. Try again.", true
	}
	return "", false
}
