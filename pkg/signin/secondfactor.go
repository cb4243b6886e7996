package signin

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ui"
)

// secondFactor is the step that asks for a code from the user's
// authenticator app, or a recovery code: after the password of a user who
// has a second factor (they are not signed in until they give it); and
// from a signed-in user, alone, to step up where the app or the request
// wants a second factor (require_mfa, an essential acr, acr_values), or
// to prove who they are again (prompt=login, max_age): see codeWanted.
type secondFactor struct{ s *Service }

func (*secondFactor) path() string { return SecondFactorPath }

func (sf *secondFactor) needed(ctx context.Context, f *flow) (bool, error) {
	if !f.signedIn || !f.codeWanted() {
		return false, nil
	}
	return f.hasFactor(ctx, sf.s)
}

func (*secondFactor) promptNone() *fosite.RFC6749Error {
	return fosite.ErrInteractionRequired.WithHint("The sign-in needs the user's second factor, and prompt=none forbids asking for it.")
}

// secondFactorSubmitted loads the sign-in a second-factor form (code or
// passkey) was posted in, and whose factor it answers for; without one,
// it has answered (the sign-in page, or a page saying the request is
// gone) and ok is false.
func (s *Service) secondFactorSubmitted(w http.ResponseWriter, r *http.Request) (f *flow, handle, userID string, stepUp, ok bool) {
	handle = r.PostFormValue("request")
	if f = s.load(w, r, handle); f == nil {
		return nil, "", "", false, false
	}
	if userID, stepUp, ok = s.secondFactorUser(f, r); !ok {
		http.Redirect(w, r, s.pageURL(LoginPath, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
	}
	return f, handle, userID, stepUp, ok
}

// secondFactorUser returns whose second factor the code and passkey pages
// ask for: the user who just gave their password (signing in), or the
// signed-in user proving who they are again (stepping up).
func (s *Service) secondFactorUser(f *flow, r *http.Request) (userID string, stepUp, ok bool) {
	if id, awaiting := s.Sessions.AwaitingSecondFactor(r.Context()); awaiting {
		return id, false, true
	}
	return f.auth.UserID, true, f.signedIn
}

func (sf *secondFactor) show(w http.ResponseWriter, r *http.Request) {
	s := sf.s
	handle := r.URL.Query().Get("request")
	f := s.load(w, r, handle)
	if f == nil {
		return
	}
	if _, _, ok := s.secondFactorUser(f, r); !ok {
		http.Redirect(w, r, s.pageURL(LoginPath, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return
	}
	s.Pages.SecondFactor(w, http.StatusOK, f.formTarget(), ui.SecondFactorPage{
		Request: handle, Action: s.Base + SecondFactorPath, ClientName: f.clientName(), TrustOffer: s.trustOffer(false)})
}

func (sf *secondFactor) submit(w http.ResponseWriter, r *http.Request) (failed bool) {
	s := sf.s
	ctx := r.Context()
	f, handle, userID, stepUp, ok := s.secondFactorSubmitted(w, r)
	if !ok {
		return false
	}
	code := r.PostFormValue("code")
	if code == "" {
		code = r.PostFormValue("recovery")
	}
	err := s.MFA.Verify(ctx, userID, code)
	s.metrics().SecondFactor(codeResult(err))
	if err != nil {
		if status, msg, ok := codeProblem(w, err); ok {
			s.Pages.SecondFactor(w, status, f.formTarget(), ui.SecondFactorPage{Request: handle,
				Action: s.Base + SecondFactorPath, ClientName: f.clientName(), Error: msg,
				Recovery:   r.PostFormValue("code") == "" && r.PostFormValue("recovery") != "",
				TrustOffer: s.trustOffer(r.PostFormValue(trustField) != "")})
			return true
		}
		s.fail(w, r, err)
		return false
	}
	if stepUp {
		_, err = s.Sessions.Elevate(ctx, []string{identity.AMROTP, identity.AMRMFA})
	} else {
		var user *identity.User
		if user, err = s.Users.Get(ctx, userID); err == nil {
			err = s.signIn(w, r, user, []string{identity.AMRPassword, identity.AMROTP, identity.AMRMFA}, false)
		}
	}
	if err == nil && r.PostFormValue(trustField) != "" {
		// The box ticked: the factor just given is what the browser is
		// trusted with.
		err = s.trust(w, r, userID)
	}
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	s.next(w, r, f)
	return false
}

// codeResult is how a code check that returned err ended, as
// Observer.SecondFactor is told.
func codeResult(err error) string {
	var throttled *identity.ThrottledError
	switch {
	case err == nil:
		return "succeeded"
	case errors.As(err, &throttled):
		return "throttled"
	case errors.Is(err, identity.ErrInvalidCode):
		return "failed"
	}
	return "error"
}

// codeProblem turns a refused code into what the page tells the user: the
// same words for every wrong code, and how long to wait when throttled.
func codeProblem(w http.ResponseWriter, err error) (status int, message string, ok bool) {
	var throttled *identity.ThrottledError
	switch {
	case errors.As(err, &throttled):
		secs := int(throttled.RetryAfter.Seconds()) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return http.StatusTooManyRequests, "Too many wrong codes. Try again in " + strconv.Itoa(secs) + " seconds.", true
	case errors.Is(err, identity.ErrInvalidCode):
		return http.StatusOK, "That code is not valid. Check the app and try again.", true
	}
	return 0, "", false
}
