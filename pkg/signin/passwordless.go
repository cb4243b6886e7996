package signin

import (
	"context"
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/ui"
)

// PasswordlessPath takes the answer of a passwordless sign-in: a passkey
// alone, offered on the sign-in page (see the package doc).
const PasswordlessPath = "/login/passkey/passwordless" // #nosec G101 -- a path, not a credential

// showLogin shows the sign-in page for the sign-in f, with d's message
// and fields, the ways on from it (loginPage), and, where passkeys can
// be had, a passwordless ceremony begun for it (offerPasskey).
func (s *Service) showLogin(w http.ResponseWriter, r *http.Request, status int, f *flow, d ui.LoginPage) {
	d.Action = s.Base + LoginPath
	d.ClientName = f.clientName()
	d = s.loginPage(d)
	s.offerPasskey(w, r, &d)
	s.Pages.Login(w, status, f.formTarget(), d)
}

// offerPasskey begins a passwordless ceremony for the sign-in page d, on
// every showing: passkey autofill needs the challenge when the page
// loads. It stores nothing server-side, since anyone may show the page:
// the session data goes into the page, sealed, bound to this browser by
// a cookie (Ceremonies). With an issuer that can have no passkeys, or if
// the ceremony cannot begin, the page offers the password alone.
func (s *Service) offerPasskey(w http.ResponseWriter, r *http.Request, d *ui.LoginPage) {
	if s.Ceremonies == nil || !s.Passkeys.Available() {
		return
	}
	c, err := s.Passkeys.BeginPasswordless(r.Context())
	var sealed string
	if err == nil {
		sealed, err = s.Ceremonies.Begin(w, r, c.Session)
	}
	if err != nil {
		s.Logger.ErrorContext(r.Context(), "passwordless sign-in not offered", "err", err)
		return
	}
	d.Passkey = &ui.LoginPasskey{Options: string(c.Options), Ceremony: sealed, Action: s.Base + PasswordlessPath}
}

// passwordless takes the answer to the sign-in page's passkey ceremony,
// from its button or from passkey autofill, and signs in the passkey's
// user. A passkey with the user verified is two factors, something the
// user has and something they know or are (RFC 8176 §2: "mfa"), so the
// sign-in's amr is the passkey's (hwk or swk, and user) and mfa. A
// refused answer shows the sign-in page again, saying why in words, and
// counts as a failed attempt.
func (s *Service) passwordless(w http.ResponseWriter, r *http.Request) (failed bool) {
	ctx := r.Context()
	if s.Ceremonies == nil || !s.Passkeys.Available() {
		s.Pages.Message(w, http.StatusNotFound, "No passkeys here", ui.MessagePage{
			Message: "This server does not offer passkeys. Sign in with your password."})
		return false
	}
	handle := r.PostFormValue("request")
	f := s.load(w, r, handle)
	if f == nil {
		return false
	}
	session := s.Ceremonies.Take(r, r.PostFormValue("ceremony"))
	// Whose passkey it is, once it verifies: a disabled user, or one
	// deleted since, signs in as nobody.
	var user *identity.User
	may := func(ctx context.Context, userID string) (bool, error) {
		u, err := s.Users.Get(ctx, userID)
		if errors.Is(err, identity.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		user = u
		return !u.Disabled, nil
	}
	a, err := s.Passkeys.FinishPasswordless(ctx, session, []byte(r.PostFormValue("credential")), may)
	s.metrics().Login(passkeyResult(err))
	if err != nil {
		if msg, ok := passwordlessProblem(err); ok {
			s.showLogin(w, r, http.StatusBadRequest, f, ui.LoginPage{Request: handle, Error: msg})
			return true
		}
		s.fail(w, r, err)
		return false
	}
	if err := s.signIn(w, r, user, append(a.AMR(), identity.AMRMFA), false); err != nil {
		s.fail(w, r, err)
		return false
	}
	s.next(w, r, f)
	return false
}

// passwordlessProblem is passkeyProblem for an answer with no user named
// before it: it also says what a replay, a passkey without user
// verification, and a passkey whose user may not sign in are refused
// for.
func passwordlessProblem(err error) (message string, ok bool) {
	var refused *passkey.RefusedError
	if errors.As(err, &refused) {
		switch refused.Reason {
		case "replay":
			return passkeyProblem(&passkey.RefusedError{Reason: "session", Err: err})
		case "user_verification":
			return "That passkey did not check that it is you (with a PIN, fingerprint or face), so it cannot sign you in alone. Use your password, or a passkey that asks for one.", true
		case "disabled":
			return "That passkey cannot sign in to an account here. Sign in another way, or ask your administrator.", true
		}
	}
	return passkeyProblem(err)
}
