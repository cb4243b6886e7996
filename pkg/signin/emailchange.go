package signin

import (
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/validation"
)

// accountChangeEmail asks for a link to a new address, which changes the
// account's address when it is followed (account.Service.Verify). The
// current password is asked for every time, whenever the user signed in:
// whoever holds a stolen session cookie must not be able to move the
// account to an address of theirs, and from there reset its password. A
// wrong password is a failed attempt, like a sign-in's.
func (s *Service) accountChangeEmail(w http.ResponseWriter, r *http.Request) (failed bool) {
	ctx := r.Context()
	f := s.signedIn(w, r)
	if f == nil {
		return false
	}
	if ok, failed := s.currentPasswordRight(w, r, f, r.PostFormValue("password")); !ok {
		return failed
	}
	if !s.mailAllowed(w, r) {
		return false
	}
	err := s.Accounts.RequestEmailChange(ctx, f.user.ID, r.PostFormValue("new_email"), locale(r))
	var invalid *validation.Error
	switch {
	case err == nil:
		s.accountDone(w, r, "email-link-sent")
	case errors.As(err, &invalid):
		s.accountPage(w, r, http.StatusUnprocessableEntity, "", "That is not an email address such as ada@example.com.")
	case errors.Is(err, account.ErrSameAddress):
		s.accountPage(w, r, http.StatusUnprocessableEntity, "", "That is the address your account has already.")
	case errors.Is(err, account.ErrTooManyMails):
		s.accountPage(w, r, http.StatusTooManyRequests, "", "You have asked for several links this hour. Use the newest one we sent, or try again in an hour.")
	default:
		s.fail(w, r, err)
	}
	return false
}

// accountResendVerification mails the signed-in user a new link that
// verifies the address they have: the first may be lost, or may have
// gone before they could open it.
func (s *Service) accountResendVerification(w http.ResponseWriter, r *http.Request) {
	f := s.signedIn(w, r)
	if f == nil || !s.mailAllowed(w, r) {
		return
	}
	err := s.Accounts.ResendVerification(r.Context(), f.user.ID, locale(r))
	switch {
	case err == nil:
		s.accountDone(w, r, "verify-link-sent")
	case errors.Is(err, account.ErrAlreadyVerified):
		s.accountDone(w, r, "email-verified")
	case errors.Is(err, account.ErrTooManyMails):
		s.accountPage(w, r, http.StatusTooManyRequests, "", "You have asked for several links this hour. Use the newest one we sent, or try again in an hour.")
	default:
		s.fail(w, r, err)
	}
}
