package signin

import (
	"net/http"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/ui"
)

// viewer is the user signed in on r's browser, "" for nobody; nil flow
// means it has answered (the session could not be read).
func (s *Service) viewer(w http.ResponseWriter, r *http.Request) (string, bool) {
	f := s.load(w, r, "")
	if f == nil {
		return "", false
	}
	if f.signedIn {
		return f.user.ID, true
	}
	return "", true
}

// showVerify answers a verification link with a button that follows it:
// a GET, which mail scanners make too, spends nothing.
func (s *Service) showVerify(w http.ResponseWriter, r *http.Request) {
	viewer, ok := s.viewer(w, r)
	if !ok {
		return
	}
	token := r.URL.Query().Get("token")
	o, err := s.Accounts.Inspect(r.Context(), account.Verify, token, viewer)
	if err != nil {
		s.linkProblem(w, r, account.Verify, err)
		return
	}
	s.Pages.ConfirmLink(w, "Confirm your email address", ui.ConfirmLinkPage{
		Action: s.Base + account.Verify.Path(), Token: token,
		Lead: "Confirm that " + o.Email + " is the address of your account.", Button: "Confirm",
	})
}

// submitVerify follows a verification link: the address becomes, or
// stays, the account's, verified.
func (s *Service) submitVerify(w http.ResponseWriter, r *http.Request) {
	viewer, ok := s.viewer(w, r)
	if !ok {
		return
	}
	u, err := s.Accounts.Verify(r.Context(), r.PostFormValue("token"), viewer)
	if err != nil {
		s.linkProblem(w, r, account.Verify, err)
		return
	}
	next := ui.Link{Text: "Sign in", Href: s.Base + LoginPath}
	if viewer != "" {
		next = ui.Link{Text: "Go to your account", Href: s.Base + AccountPath}
	}
	s.Pages.Done(w, "Email address confirmed", ui.DonePage{
		Message: "The address of your account is " + u.Email + ", and apps you sign in to can rely on it.",
		Links:   []ui.Link{next},
	})
}
