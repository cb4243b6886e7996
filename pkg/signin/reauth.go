package signin

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ui"
)

// Fields of the re-authentication form, which the sensitive actions read
// beside their own.
const (
	reauthPasswordField = "reauth_password"
	reauthCodeField     = "reauth_code"
)

// reauthenticated guards the account page's sensitive actions: those that
// change how the user signs in (a new authenticator, two-step verification
// off, new recovery codes) or end their other sign-ins. A session cookie
// alone is not enough for them, since whoever stole one could otherwise
// lock the owner out: the user must have proven who they are within
// ReauthWindow, or prove it now, with their password or a code from their
// second factor, as GitHub's sudo mode asks. When they have not, it
// answers with a page asking for the proof, whose form posts the action
// again with its fields and the proof; ok is false then, and failed says
// the proof given was wrong (an attempt, for the sign-in limits).
func (s *Service) reauthenticated(w http.ResponseWriter, r *http.Request, f *flow) (ok, failed bool) {
	ctx := r.Context()
	user := f.user
	if time.Since(f.auth.AuthTime) <= s.ReauthWindow {
		return true, false
	}
	hasFactor, err := s.MFA.Enabled(ctx, user.ID)
	if err != nil {
		s.fail(w, r, err)
		return false, false
	}
	password, code := r.PostFormValue(reauthPasswordField), strings.TrimSpace(r.PostFormValue(reauthCodeField))
	var amr []string
	switch {
	case code != "" && hasFactor:
		err, amr = s.MFA.Verify(ctx, user.ID, code), []string{identity.AMROTP, identity.AMRMFA}
		s.metrics().SecondFactor(codeResult(err))
	case password != "":
		_, err = s.Users.Authenticate(ctx, user.Email, password, s.Devices.Known(r, user.Email))
		amr = []string{identity.AMRPassword}
		s.metrics().Login(loginResult(err))
	default:
		s.reauthPage(w, r, hasFactor, "")
		return false, false
	}
	var throttled *identity.ThrottledError
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials), errors.Is(err, identity.ErrInvalidCode):
		s.reauthPage(w, r, hasFactor, "That is not right. Check it and try again.")
		return false, true
	case errors.As(err, &throttled):
		_, msg, _ := codeProblem(w, err)
		s.reauthPage(w, r, hasFactor, msg)
		return false, true
	case err != nil:
		s.fail(w, r, err)
		return false, false
	}
	if _, err := s.Sessions.Elevate(ctx, amr); err != nil {
		s.fail(w, r, err)
		return false, false
	}
	return true, false
}

// reauthPage asks the user to prove who they are before the action r
// asked for, keeping the action's own fields for the form to post again.
func (s *Service) reauthPage(w http.ResponseWriter, r *http.Request, hasFactor bool, problem string) {
	fields := map[string]string{}
	for name, values := range r.PostForm {
		if name != reauthPasswordField && name != reauthCodeField && len(values) > 0 {
			fields[name] = values[0]
		}
	}
	status := http.StatusOK
	if problem != "" {
		status = http.StatusUnauthorized
	}
	s.Pages.Reauth(w, status, ui.ReauthPage{Action: r.URL.Path, Fields: fields, Factor: hasFactor, Error: problem,
		UsedCode: hasFactor && strings.TrimSpace(r.PostFormValue(reauthCodeField)) != "",
		Window:   int(s.ReauthWindow / time.Minute)})
}

// currentPasswordRight checks the signed-in user's password, typed again
// on an account page form that asks for it every time (a new password, a
// new address), as a sign-in checks it: the account's throttle, the
// device cookie, the metrics. When it is not right, or cannot be checked,
// it answers the account page and returns false; failed says the password
// was wrong, an attempt for the sign-in limits.
func (s *Service) currentPasswordRight(w http.ResponseWriter, r *http.Request, f *flow, password string) (ok, failed bool) {
	_, err := s.Users.Authenticate(r.Context(), f.user.Email, password, s.Devices.Known(r, f.user.Email))
	s.metrics().Login(loginResult(err))
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials):
		s.accountPage(w, r, http.StatusUnauthorized, "", "Your current password is not right, or there have been too many wrong attempts. Check it, or wait a few minutes and try again.")
		return false, true
	case err != nil:
		s.fail(w, r, err)
		return false, false
	}
	return true, false
}
