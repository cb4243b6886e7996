package signin

import (
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/ui"
)

// forgotPage is the forgot-password page with the fields every state of it
// has.
func (s *Service) forgotPage(d ui.ForgotPage) ui.ForgotPage {
	d.Action, d.SignIn = s.Base+ForgotPath, s.Base+LoginPath
	d.Minutes = int(account.Reset.Lifetime() / time.Minute)
	return d
}

func (s *Service) showForgot(w http.ResponseWriter, _ *http.Request) {
	s.Pages.Forgot(w, http.StatusOK, s.forgotPage(ui.ForgotPage{}))
}

// submitForgot asks for a reset link for the address typed, and answers
// the same, after the same time (AnswerFloor), whether or not an account
// has it: account.Service.RequestReset mails only an account that exists,
// and tells nobody which it was.
func (s *Service) submitForgot(w http.ResponseWriter, r *http.Request) {
	if !s.mailAllowed(w, r) {
		return
	}
	start := time.Now()
	email := strings.TrimSpace(r.PostFormValue("email"))
	if email == "" || len(email) > 254 || !strings.Contains(email, "@") {
		s.Pages.Forgot(w, http.StatusUnprocessableEntity, s.forgotPage(ui.ForgotPage{Email: email,
			Error: "Enter the email address of your account, such as ada@example.com."}))
		return
	}
	err := s.Accounts.RequestReset(r.Context(), email, locale(r))
	waitOut(r.Context(), start)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Pages.Forgot(w, http.StatusOK, s.forgotPage(ui.ForgotPage{Sent: true}))
}
