package signin

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ui"
	"github.com/latchkey/latchkey/pkg/validation"
)

// signUpPage is the sign-up page with the fields every state of it has.
func (s *Service) signUpPage(d ui.SignUpPage) ui.SignUpPage {
	d.Action, d.SignIn = s.Base+SignUpPath, s.Base+LoginPath
	d.Domains, d.MinLength = s.SignUpDomains, identity.MinPasswordLength
	d.Hours = int(account.SignUp.Lifetime() / time.Hour)
	return d
}

func (s *Service) showSignUp(w http.ResponseWriter, _ *http.Request) {
	s.Pages.SignUp(w, http.StatusOK, s.signUpPage(ui.SignUpPage{}))
}

// submitSignUp asks for an account. What the form got wrong (the address,
// its domain, the password) is said, since it is the same for every
// address; past that, the answer is the same, after the same time
// (AnswerFloor), whether or not an account has the address.
func (s *Service) submitSignUp(w http.ResponseWriter, r *http.Request) {
	if !s.mailAllowed(w, r) {
		return
	}
	start := time.Now()
	email, name := strings.TrimSpace(r.PostFormValue("email")), strings.TrimSpace(r.PostFormValue("name"))
	err := s.Accounts.SignUp(r.Context(), email, name, r.PostFormValue("password"), locale(r))
	var (
		invalid *validation.Error
		domain  *account.DomainError
		problem string
	)
	switch {
	case err == nil:
		waitOut(r.Context(), start)
		s.Pages.SignUp(w, http.StatusOK, s.signUpPage(ui.SignUpPage{Sent: true}))
		return
	case errors.As(err, &domain):
		problem = domain.Error()
	case errors.As(err, &invalid):
		problem = "Check your email address and name: the address must be one such as ada@example.com, and the name one line of at most 200 characters."
	case errors.Is(err, identity.ErrWeakPassword):
		problem = "Choose another password: " + strings.TrimPrefix(err.Error(), identity.ErrWeakPassword.Error()+": ") + "."
	default:
		s.fail(w, r, err)
		return
	}
	s.Pages.SignUp(w, http.StatusUnprocessableEntity, s.signUpPage(ui.SignUpPage{Email: email, Name: name, Error: problem}))
}

// showSignUpConfirm answers a sign-up link with a button that creates the
// account: a GET, which mail scanners make too, creates nothing.
func (s *Service) showSignUpConfirm(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	o, err := s.Accounts.Inspect(r.Context(), account.SignUp, token, "")
	if err != nil {
		s.linkProblem(w, r, account.SignUp, err)
		return
	}
	s.Pages.ConfirmLink(w, "Create your account", ui.ConfirmLinkPage{
		Action: s.Base + account.SignUp.Path(), Token: token,
		Lead: "Create the account for " + o.Email + ".", Button: "Create account",
	})
}

func (s *Service) submitSignUpConfirm(w http.ResponseWriter, r *http.Request) {
	u, err := s.Accounts.CompleteSignUp(r.Context(), r.PostFormValue("token"))
	if err != nil {
		s.linkProblem(w, r, account.SignUp, err)
		return
	}
	s.Pages.Done(w, "Your account is ready", ui.DonePage{
		Message: "Sign in with " + u.Email + " and the password you chose.",
		Links:   []ui.Link{{Text: "Sign in", Href: s.Base + LoginPath}},
	})
}
