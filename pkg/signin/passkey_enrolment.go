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

// PasskeyEnrolPath is the page that adds a passkey during a sign-in to an
// app that requires one.
const PasskeyEnrolPath = "/login/passkey/enrol" // #nosec G101 -- a path, not a credential

// passkeyEnrolment is the step that walks a signed-in user without a
// passkey through adding one, where the app requires the
// phishing-resistant level (require_phishing_resistant, or an essential
// acr that names only it). A user who has a second factor already gives
// it first (codeWanted), so that a stolen password alone cannot add a
// passkey. Adding a passkey proves nothing by itself (with attestation
// none, a registration carries no signature), so the passkey step then
// asks for the new passkey, and that is what reaches the level.
type passkeyEnrolment struct{ s *Service }

func (*passkeyEnrolment) path() string { return PasskeyEnrolPath }

func (pe *passkeyEnrolment) needed(ctx context.Context, f *flow) (bool, error) {
	// An issuer that can have no passkeys cannot help: the request is
	// then refused as unmet (oauth.AuthorizeRequest.Unmet).
	if !f.signedIn || f.acrRequired() != identity.ACRPhishingResistant || !pe.s.Passkeys.Available() {
		return false, nil
	}
	has, err := pe.s.Passkeys.Has(ctx, f.auth.UserID)
	if err != nil || has {
		return false, err
	}
	// Every factor the user has must be given first.
	if f.hasMFA() {
		return true, nil
	}
	hasFactor, err := f.hasFactor(ctx, pe.s)
	return !hasFactor, err
}

func (*passkeyEnrolment) promptNone() *fosite.RFC6749Error {
	return fosite.ErrInteractionRequired.WithHint("The app requires a passkey, which the user must first add, and prompt=none forbids asking them to.")
}

func (pe *passkeyEnrolment) show(w http.ResponseWriter, r *http.Request) {
	handle := r.URL.Query().Get("request")
	if f := pe.load(w, r, handle); f != nil {
		pe.page(w, r, f, handle, http.StatusOK, "", "")
	}
}

// load returns the sign-in the page serves, if it still needs the step;
// a browser that came to the page otherwise (by its address, before the
// factor it owes) is sent on to the step it does need, and nil returned.
func (pe *passkeyEnrolment) load(w http.ResponseWriter, r *http.Request, handle string) *flow {
	f := pe.s.parkedSignIn(w, r, handle)
	if f == nil {
		return nil
	}
	need, err := pe.needed(r.Context(), f)
	if err != nil {
		pe.s.fail(w, r, err)
		return nil
	}
	if !need {
		pe.s.proceed(w, r, f)
		return nil
	}
	return f
}

// page begins a registration for the signed-in user of f and shows it,
// with the name typed and the problem with the last answer, if any.
func (pe *passkeyEnrolment) page(w http.ResponseWriter, r *http.Request, f *flow, handle string, status int, name, problem string) {
	s := pe.s
	c, err := s.Passkeys.BeginRegistration(r.Context(), passkeyUser(f.user))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Sessions.BeginCeremony(r.Context(), registration, f.user.ID, c.Session)
	s.Pages.PasskeyAdd(w, status, f.formTarget(), ui.PasskeyAddPage{Options: string(c.Options),
		Action: s.Base + PasskeyEnrolPath, Request: handle, ClientName: f.clientName(),
		Name: name, Error: problem, MaxName: passkey.MaxNameChars})
}

func (pe *passkeyEnrolment) submit(w http.ResponseWriter, r *http.Request) (failed bool) {
	s := pe.s
	ctx := r.Context()
	handle := r.PostFormValue("request")
	f := pe.load(w, r, handle)
	if f == nil {
		return false
	}
	session := s.Sessions.TakeCeremony(ctx, registration, f.user.ID)
	name := r.PostFormValue("name")
	_, err := s.Passkeys.FinishRegistration(ctx, passkeyUser(f.user), session, []byte(r.PostFormValue("credential")), name)
	switch {
	case err == nil:
		f.factor = nil
		s.next(w, r, f)
		return false
	case errors.Is(err, passkey.ErrInvalidName):
		pe.page(w, r, f, handle, http.StatusBadRequest, name, "Give the passkey a name, of at most 64 characters.")
		return false
	}
	if msg, ok := passkeyProblem(err); ok {
		pe.page(w, r, f, handle, http.StatusBadRequest, name, msg)
		return true
	}
	s.fail(w, r, err)
	return false
}
