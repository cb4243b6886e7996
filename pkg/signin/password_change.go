package signin

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/pkg/identity"
)

// Fields of the change-password form.
const (
	currentPasswordField = "current_password"
	newPasswordField     = "new_password"
	confirmPasswordField = "confirm_password"
)

// accountChangePassword changes the signed-in user's password. The current
// password is the proof, not a recent sign-in: whoever has only the
// session cookie must not be able to lock the owner out. It is checked as
// a sign-in checks it (Users.Authenticate: the account's throttle, the
// device cookie) and, through attempt, against the address's limits, so
// that the form is no easier a place to guess than the sign-in page.
//
// Setting the password signs the user out everywhere (Users.SetPassword:
// someone else may know the old one), this browser too. This browser is
// then signed in again at once, with the methods it had: the person at it
// has just proven the password, and being sent to sign in after changing
// it is not what anyone expects.
func (s *Service) accountChangePassword(w http.ResponseWriter, r *http.Request) (failed bool) {
	ctx := r.Context()
	f := s.signedIn(w, r)
	if f == nil {
		return false
	}
	user := f.user
	current, next := r.PostFormValue(currentPasswordField), r.PostFormValue(newPasswordField)
	// What can be told without the current password is told first, so
	// that a typing slip costs no attempt.
	var problem string
	switch {
	case next != r.PostFormValue(confirmPasswordField):
		problem = "The new password and its repetition differ. Type the same new password twice."
	case next == current:
		problem = "The new password is your current one. Choose a different password."
	default:
		if err := identity.CheckPassword(next, user.Email); err != nil {
			problem = passwordProblem(err)
		}
	}
	if problem != "" {
		s.accountPage(w, r, http.StatusBadRequest, "", problem)
		return false
	}
	if ok, failed := s.currentPasswordRight(w, r, f, current); !ok {
		return failed
	}
	if err := s.Users.SetPassword(ctx, user.ID, next); err != nil {
		if errors.Is(err, identity.ErrWeakPassword) {
			s.accountPage(w, r, http.StatusBadRequest, "", passwordProblem(err))
			return false
		}
		s.fail(w, r, err)
		return false
	}
	amr := f.auth.AMR
	if !slices.Contains(amr, identity.AMRPassword) {
		amr = append(slices.Clip(amr), identity.AMRPassword)
	}
	if err := s.signIn(w, r, user, amr, false); err != nil {
		s.fail(w, r, err)
		return false
	}
	s.accountDone(w, r, "password-changed")
	return false
}

// passwordProblem says which rule of the policy a new password broke, in
// the words identity.CheckPassword gives after its sentinel.
func passwordProblem(err error) string {
	_, rule, _ := strings.Cut(err.Error(), ": ")
	if rule == "" {
		rule = "choose another password"
	}
	return "That password cannot be used: " + rule + "."
}
