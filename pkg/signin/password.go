package signin

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/risk"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/ui"
)

// password is the step that signs a user in with their email and password:
// when nobody is signed in, when the request names another user
// (id_token_hint), and when the request wants the user to prove who they
// are again and they have no second factor to do it with. A user with a
// second factor is not signed in by the password alone: it sends them on
// to that step.
type password struct{ s *Service }

func (*password) path() string { return LoginPath }

func (p *password) needed(ctx context.Context, f *flow) (bool, error) {
	if !f.signedIn || (f.req.HintSubject != "" && f.req.HintSubject != f.auth.UserID) {
		return true, nil
	}
	if !f.reauthDue() {
		return false, nil
	}
	hasFactor, err := f.hasFactor(ctx, p.s)
	return !hasFactor, err
}

func (*password) promptNone() *fosite.RFC6749Error {
	return fosite.ErrLoginRequired.WithHint("The user is not signed in, and prompt=none forbids asking them to.")
}

// signInFailed is the one answer to a failed sign-in: it must read the same
// whether the email is unknown, the password wrong, or the account paused
// after too many failures, so that it tells an attacker nothing, while
// still telling a user with the right password why it did not work.
const signInFailed = "Email or password is incorrect, or there have been too many failed attempts to sign in to this account. Check them, or wait a few minutes and try again."

func (p *password) show(w http.ResponseWriter, r *http.Request) {
	s := p.s
	handle := r.URL.Query().Get("request")
	f := s.load(w, r, handle)
	if f == nil {
		return
	}
	if f.req == nil && f.signedIn {
		http.Redirect(w, r, s.Base+AccountPath, http.StatusSeeOther)
		return
	}
	d := ui.LoginPage{Request: handle}
	if f.req != nil {
		d.Email = f.req.LoginHint()
	}
	s.showLogin(w, r, http.StatusOK, f, d)
}

func (p *password) submit(w http.ResponseWriter, r *http.Request) (failed bool) {
	s := p.s
	ctx := r.Context()
	handle := r.PostFormValue("request")
	f := s.load(w, r, handle)
	if f == nil {
		return false
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	addr, _ := netip.ParseAddr(server.ClientIP(ctx))
	// A blocked network or account is refused before the password is
	// looked at, alike whether the account exists.
	if until, blocked, err := s.riskBlocked(ctx, addr, email); err != nil || blocked {
		if err != nil {
			s.fail(w, r, err)
		} else {
			s.blocked(w, until)
		}
		return false
	}
	known := s.Devices.Known(r, email)
	user, err := s.Users.Authenticate(ctx, email, r.PostFormValue("password"), known)
	s.metrics().Login(loginResult(err))
	if errors.Is(err, identity.ErrInvalidCredentials) {
		s.riskFailed(ctx, addr, email)
		s.showLogin(w, r, http.StatusOK, f, ui.LoginPage{Request: handle, Email: email, Error: signInFailed})
		return true
	}
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	// A user with a second factor is not signed in until they give it: a
	// passkey, if they have one, else a code.
	page, err := s.secondFactorPage(ctx, user.ID)
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	// The risk policy weighs the sign-in (pkg/risk): it may block it, or
	// step it up past a trusted browser.
	d, err := s.assess(ctx, risk.Attempt{UserID: user.ID, Email: email, Addr: addr,
		NewDevice: known == nil, CanStepUp: page != ""})
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if !d.BlockedUntil.IsZero() {
		s.blocked(w, d.BlockedUntil)
		return false
	}
	s.Sessions.NoteRisk(ctx, user.ID, d)
	// A browser the user trusts may stand in for it where the request
	// allows (trustStandsIn); the sign-in is then the password's alone.
	var trusted bool
	if page != "" && f.trustStandsIn(d.StepUp) {
		if trusted, err = s.trusted(r, user.ID); err != nil {
			s.fail(w, r, err)
			return false
		}
	}
	if page != "" && !trusted {
		s.Sessions.AwaitSecondFactor(ctx, user.ID)
		http.Redirect(w, r, s.pageURL(page, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return false
	}
	if err := s.signIn(w, r, user, []string{identity.AMRPassword}, trusted); err != nil {
		s.fail(w, r, err)
		return false
	}
	s.next(w, r, f)
	return false
}

// secondFactorPage is the page that asks userID for their second factor
// after the password: the passkey page for a user with a passkey, the
// code page for one with an authenticator app, "" for a user with
// neither.
func (s *Service) secondFactorPage(ctx context.Context, userID string) (string, error) {
	if has, err := s.Passkeys.Has(ctx, userID); err != nil || has {
		return PasskeyPath, err
	}
	if on, err := s.MFA.Enabled(ctx, userID); err != nil || on {
		return SecondFactorPath, err
	}
	return "", nil
}

// loginPage adds to d the ways on from the sign-in form: forgot password,
// and sign-up when it is open.
func (s *Service) loginPage(d ui.LoginPage) ui.LoginPage {
	d.Forgot = s.Base + ForgotPath
	if s.SignUp {
		d.SignUp = s.Base + SignUpPath
	}
	return d
}

// signIn signs user in on this browser, proven by amr, and makes the
// browser a known device of the account (pkg/device). A browser it did not
// know before is marked so in the sign-in's audit event, from which the
// user is told of it (pkg/notify); so is one whose trust (pkg/trust) stood
// in for the second factor (trusted).
func (s *Service) signIn(w http.ResponseWriter, r *http.Request, user *identity.User, amr []string, trusted bool) error {
	notes := SignInNotes{NewBrowser: s.Devices.Known(r, user.Email) == nil, TrustedDevice: trusted}
	if _, err := s.Sessions.SignIn(r.Context(), r, user.ID, amr, notes); err != nil {
		return err
	}
	s.Devices.Remember(w, r, user.Email)
	return nil
}

// loginResult is how a password check that returned err ended, as
// Observer.Login is told.
func loginResult(err error) string {
	switch {
	case err == nil:
		return "succeeded"
	case errors.Is(err, identity.ErrInvalidCredentials):
		return "failed"
	}
	return "error"
}
