package signin

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/ui"
)

// Fields of the re-authentication form, which the sensitive actions read
// beside their own.
const (
	reauthPasswordField = "reauth_password"
	reauthCodeField     = "reauth_code"
	reauthPasskeyField  = "reauth_passkey" // #nosec G101 -- a form field name, not a credential
)

// reauthenticated guards the account page's sensitive actions: those that
// change how the user signs in (a new authenticator or passkey, two-step
// verification off, new recovery codes) or end their other sign-ins. A
// session cookie alone is not enough for them, since whoever stole one
// could otherwise lock the owner out: the user must have proven who they
// are within ReauthWindow, or prove it now, with their password, a code
// from their authenticator app or one of their passkeys, as GitHub's sudo
// mode asks. When they have not, it answers with a page asking for the
// proof, whose form posts the action again with its fields and the proof;
// ok is false then, and failed says the proof given was wrong (an
// attempt, for the sign-in limits).
func (s *Service) reauthenticated(w http.ResponseWriter, r *http.Request, f *flow) (ok, failed bool) {
	ctx := r.Context()
	user := f.user
	if time.Since(f.auth.AuthTime) <= s.ReauthWindow {
		return true, false
	}
	ways, err := s.reauthWays(ctx, user.ID)
	if err != nil {
		s.fail(w, r, err)
		return false, false
	}
	password, code := r.PostFormValue(reauthPasswordField), strings.TrimSpace(r.PostFormValue(reauthCodeField))
	answer := r.PostFormValue(reauthPasskeyField)
	var amr []string
	switch {
	case answer != "" && ways.passkey:
		// The challenge is spent whatever the answer.
		session := s.Sessions.TakeCeremony(ctx, assertion, user.ID)
		var a passkey.Assertion
		a, err = s.Passkeys.FinishAssertion(ctx, user.ID, session, []byte(answer))
		s.metrics().SecondFactor(passkeyResult(err))
		if msg, refused := passkeyProblem(err); refused {
			s.reauthPage(w, r, user.ID, ways, msg)
			return false, true
		}
		// A signed-in user's passkey is their second factor, as at a
		// step-up (passkeyFactor).
		amr = append(a.AMR(), identity.AMRMFA)
	case code != "" && ways.code:
		err, amr = s.MFA.Verify(ctx, user.ID, code), []string{identity.AMROTP, identity.AMRMFA}
		s.metrics().SecondFactor(codeResult(err))
	case password != "":
		_, err = s.Users.Authenticate(ctx, user.Email, password, s.Devices.Known(r, user.Email))
		amr = []string{identity.AMRPassword}
		s.metrics().Login(loginResult(err))
	default:
		s.reauthPage(w, r, user.ID, ways, "")
		return false, false
	}
	var throttled *identity.ThrottledError
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials), errors.Is(err, identity.ErrInvalidCode):
		s.reauthPage(w, r, user.ID, ways, "That is not right. Check it and try again.")
		return false, true
	case errors.As(err, &throttled):
		_, msg, _ := codeProblem(w, err)
		s.reauthPage(w, r, user.ID, ways, msg)
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

// reauthProofs are the ways a user may prove who they are again, besides
// their password: a code from their authenticator app, one of their
// passkeys.
type reauthProofs struct{ code, passkey bool }

// reauthWays says which proofs userID has.
func (s *Service) reauthWays(ctx context.Context, userID string) (reauthProofs, error) {
	var ways reauthProofs
	var err error
	if ways.code, err = s.MFA.Enabled(ctx, userID); err != nil {
		return ways, err
	}
	ways.passkey, err = s.Passkeys.Has(ctx, userID)
	return ways, err
}

// reauthPage asks the user to prove who they are before the action r
// asked for, keeping the action's own fields for the form to post again.
// A user with a passkey gets a ceremony begun for it.
func (s *Service) reauthPage(w http.ResponseWriter, r *http.Request, userID string, ways reauthProofs, problem string) {
	// Every value of every field is kept, in a fixed order: a form may
	// post several of one name (a new API key's scopes).
	var fields []ui.Field
	for _, name := range slices.Sorted(maps.Keys(r.PostForm)) {
		if name == reauthPasswordField || name == reauthCodeField || name == reauthPasskeyField {
			continue
		}
		for _, v := range r.PostForm[name] {
			fields = append(fields, ui.Field{Name: name, Value: v})
		}
	}
	status := http.StatusOK
	if problem != "" {
		status = http.StatusUnauthorized
	}
	d := ui.ReauthPage{Action: r.URL.Path, Fields: fields, Factor: ways.code, Error: problem,
		UsedCode: ways.code && strings.TrimSpace(r.PostFormValue(reauthCodeField)) != "",
		Window:   int(s.ReauthWindow / time.Minute)}
	if ways.passkey {
		c, err := s.Passkeys.BeginAssertion(r.Context(), userID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		s.Sessions.BeginCeremony(r.Context(), assertion, userID, c.Session)
		d.Passkey = string(c.Options)
	}
	s.Pages.Reauth(w, status, d)
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
