package signin

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ui"
)

// enrolment is the step that walks a signed-in user without a second
// factor through adding one, where the sign-in must have one (the app's
// require_mfa, or an essential acr). The first code from the new factor
// proves the user holds it, so the sign-in counts as made with it.
type enrolment struct{ s *Service }

func (*enrolment) path() string { return EnrolPath }

func (e *enrolment) needed(ctx context.Context, f *flow) (bool, error) {
	// A required phishing-resistant level is passkeyEnrolment's.
	if !f.signedIn || f.acrRequired() != identity.ACRMFA || f.hasMFA() {
		return false, nil
	}
	hasFactor, err := f.hasFactor(ctx, e.s)
	return !hasFactor, err
}

func (*enrolment) promptNone() *fosite.RFC6749Error {
	return fosite.ErrInteractionRequired.WithHint("The app requires a second factor, which the user must first set up, and prompt=none forbids asking them to.")
}

func (e *enrolment) show(w http.ResponseWriter, r *http.Request) {
	e.page(w, r, r.URL.Query().Get("request"), "")
}

// page shows the factor being enrolled, during a parked request that
// demands one, with an error from the last attempt if any.
func (e *enrolment) page(w http.ResponseWriter, r *http.Request, handle, problem string) {
	s := e.s
	f := s.parkedSignIn(w, r, handle)
	if f == nil {
		return
	}
	en, err := s.MFA.Enrol(r.Context(), f.user)
	if errors.Is(err, identity.ErrFactorExists) {
		http.Redirect(w, r, s.pageURL(SecondFactorPath, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Pages.Enrol(w, f.formTarget(), enrolPage(en, ui.EnrolPage{
		Required: true, ClientName: f.clientName(), Error: problem, Request: handle, Action: s.Base + EnrolPath,
	}))
}

func (e *enrolment) submit(w http.ResponseWriter, r *http.Request) (failed bool) {
	s := e.s
	handle := r.PostFormValue("request")
	f := s.parkedSignIn(w, r, handle)
	if f == nil {
		return false
	}
	codes, err := s.confirmFactor(r, f.user.ID)
	if err != nil {
		if _, msg, ok := codeProblem(w, err); ok {
			e.page(w, r, handle, msg)
			return true
		}
		s.fail(w, r, err)
		return false
	}
	s.Pages.Recovery(w, ui.RecoveryPage{Codes: codes, Continue: s.pageURL(discovery.AuthorizationResumePath, handle)})
	return false
}

// confirmFactor turns on the factor being enrolled with its first code.
// The code proves the user holds the factor, so the session counts as
// signed in with it from now on, rather than asking for a second code at
// once.
func (s *Service) confirmFactor(r *http.Request, userID string) ([]string, error) {
	codes, err := s.MFA.Confirm(r.Context(), userID, r.PostFormValue("code"))
	if err != nil {
		return nil, err
	}
	if _, err := s.Sessions.Elevate(r.Context(), []string{identity.AMROTP, identity.AMRMFA}); err != nil {
		return nil, err
	}
	return codes, nil
}

// enrolPage fills in the enrolment's QR code, link and secret.
func enrolPage(e identity.Enrolment, d ui.EnrolPage) ui.EnrolPage {
	// Both URLs are made here from values Latchkey generated.
	d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR)) // #nosec G203 -- a PNG Latchkey just drew, base64-encoded: nothing a user controls
	d.URI = template.URL(e.URI)                                                             // #nosec G203 -- the otpauth: URI pquerna/otp built from our issuer and the user's email, URL-encoded
	d.Secret = e.Secret
	return d
}
