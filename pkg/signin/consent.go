package signin

import (
	"context"
	"net/http"
	"net/url"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/ui"
)

// consent is the step that asks a signed-in user to allow the app what it
// asks: when the user has not allowed it these scopes before, or the
// request says prompt=consent. An app registered to skip consent (a
// first-party app) never asks. The answer is kept with the parked request:
// allowing records the consent, refusing ends the request with
// access_denied (proceed).
type consent struct{ s *Service }

func (*consent) path() string { return ConsentPath }

func (c *consent) needed(ctx context.Context, f *flow) (bool, error) {
	switch {
	case !f.signedIn, f.parked.Consented, f.parked.Denied:
		return false, nil
	case f.req.IsDevice():
		// A device is approved each time, first-party or not: the code
		// may have come from someone else (RFC 8628 §5.4).
		return true, nil
	case f.req.Client.SkipConsent:
		return false, nil
	case f.req.Prompt("consent"):
		return true, nil
	}
	allowed, err := c.s.Users.Allows(ctx, f.auth.UserID, f.req.Client, f.req.Scopes())
	return !allowed, err
}

func (*consent) promptNone() *fosite.RFC6749Error {
	return fosite.ErrConsentRequired.WithHint("The user has not allowed this app these scopes, and prompt=none forbids asking them to.")
}

func (c *consent) show(w http.ResponseWriter, r *http.Request) {
	s := c.s
	handle := r.URL.Query().Get("request")
	f := s.parkedSignIn(w, r, handle)
	if f == nil {
		return
	}
	s.Pages.Consent(w, f.formTarget(), ui.ConsentPage{
		ClientName: f.clientName(),
		Scopes:     ui.DescribeScopes(f.req.Scopes()),
		Email:      f.user.Email,
		Request:    handle,
		Action:     s.Base + ConsentPath,
		Device:     f.req.IsDevice(),
		Unverified: f.req.Client.SelfRegistered,
		ReturnsTo:  returnsTo(f.req.RedirectURI()),
	})
}

func (c *consent) submit(w http.ResponseWriter, r *http.Request) (failed bool) {
	s := c.s
	ctx := r.Context()
	handle := r.PostFormValue("request")
	f := s.parkedSignIn(w, r, handle)
	if f == nil {
		return false
	}
	switch r.PostFormValue("decision") {
	case "allow":
		if err := s.Users.GrantConsent(ctx, f.auth.UserID, f.req.Client.ID, f.req.Scopes()); err != nil {
			s.fail(w, r, err)
			return false
		}
		f.parked.Consented = true
	case "deny":
		f.parked.Denied = true
	default:
		http.Error(w, "choose Allow or Deny", http.StatusBadRequest)
		return false
	}
	s.Sessions.Update(ctx, handle, f.parked)
	s.proceed(w, r, f)
	return false
}

// returnsTo is the host (and port, if any) of the redirect URI, which the
// consent page names for an app that registered itself: its name is its
// own choice, where it sends the user back to is not.
func returnsTo(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || redirectURI == "" {
		return ""
	}
	return u.Host
}
