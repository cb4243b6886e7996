package signin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ui"
)

// newPassword is the page a reset or an invitation link leads to: a form
// for the password, which spends the link.
type newPassword struct {
	s       *Service
	purpose account.Purpose
}

// page renders the form for the link token, opened as o.
func (p newPassword) page(w http.ResponseWriter, status int, token string, o *account.Opened, problem string) {
	p.s.Pages.NewPassword(w, status, ui.NewPasswordPage{
		Action: p.s.Base + p.purpose.Path(), Token: token, Email: o.Email, Code: o.NeedsCode,
		Invite: p.purpose == account.Invite, Error: problem, MinLength: identity.MinPasswordLength,
	})
}

// show answers the link itself (a GET, which may be a mail scanner's):
// the form, or why the link cannot be followed. It spends nothing.
func (p newPassword) show(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	o, err := p.s.Accounts.Inspect(r.Context(), p.purpose, token, "")
	if err != nil {
		p.s.linkProblem(w, r, p.purpose, err)
		return
	}
	p.page(w, http.StatusOK, token, o, "")
}

// submit sets the password and spends the link. A wrong second-factor
// code is a failed attempt.
func (p newPassword) submit(w http.ResponseWriter, r *http.Request) (failed bool) {
	s, ctx := p.s, r.Context()
	token, password := r.PostFormValue("token"), r.PostFormValue("password")
	var err error
	if p.purpose == account.Reset {
		_, err = s.Accounts.ResetPassword(ctx, token, password, strings.TrimSpace(r.PostFormValue("code")))
		if c := codeOutcome(err); c != "" {
			s.metrics().SecondFactor(c)
		}
	} else {
		_, err = s.Accounts.AcceptInvitation(ctx, token, password)
	}
	if err == nil {
		s.Pages.Done(w, "Your password is set", ui.DonePage{
			Message: "Sign in with your email address and your new password.",
			Links:   []ui.Link{{Text: "Sign in", Href: s.Base + LoginPath}},
		})
		return false
	}
	status, problem := http.StatusUnprocessableEntity, ""
	switch {
	case errors.Is(err, identity.ErrWeakPassword):
		problem = strings.TrimPrefix(err.Error(), identity.ErrWeakPassword.Error()+": ")
		problem = "Choose another password: " + problem + "."
	case errors.Is(err, account.ErrCodeRequired):
		problem = "Enter a code from your authenticator app, or a recovery code: your account has two-step verification."
	default:
		if st, msg, ok := codeProblem(w, err); ok {
			status, problem, failed = max(st, http.StatusUnauthorized), msg, true
			break
		}
		s.linkProblem(w, r, p.purpose, err)
		return false
	}
	// The form again, for the link as it now is.
	o, err := s.Accounts.Inspect(ctx, p.purpose, token, "")
	if err != nil {
		s.linkProblem(w, r, p.purpose, err)
		return failed
	}
	p.page(w, status, token, o, problem)
	return failed
}

// codeOutcome is how a reset's check of a second-factor code ended, as
// Observer.SecondFactor is told, or "" if no code was checked.
func codeOutcome(err error) string {
	var throttled *identity.ThrottledError
	switch {
	case errors.Is(err, identity.ErrInvalidCode):
		return "failed"
	case errors.As(err, &throttled):
		return "throttled"
	}
	return ""
}
