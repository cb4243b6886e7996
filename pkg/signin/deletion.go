package signin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ui"
)

// deleteConfirmField is the deletion form's field in which the user types
// their email address.
const deleteConfirmField = "confirm"

// accountDelete deletes the signed-in user's own account, when the
// operator allows it (Service.AccountDeletion): it cannot be undone, so it
// asks for the three things that keep it from happening by accident or by
// someone else. The route refuses while deletion is off, whatever a form
// posts. The user types their email address, which a slip of the mouse
// does not do; they must have proven who they are recently
// (reauthenticated), since a stolen session cookie must not be enough to
// destroy the account; and the form is a same-origin POST (Mount).
// Users.Delete then ends the user's sessions, consents and tokens with
// the account, and the browser's own session goes too.
func (s *Service) accountDelete(w http.ResponseWriter, r *http.Request) (failed bool) {
	if !s.AccountDeletion {
		s.Pages.Message(w, http.StatusForbidden, "Ask your administrator", ui.MessagePage{
			Message: "Accounts cannot be deleted from the account page here. Ask your administrator to delete yours.",
		})
		return false
	}
	f := s.signedIn(w, r)
	if f == nil {
		return false
	}
	// Asked before the password, so that a slip is told at once.
	if !strings.EqualFold(strings.TrimSpace(r.PostFormValue(deleteConfirmField)), f.user.Email) {
		s.accountPage(w, r, http.StatusBadRequest, "", "Your account was not deleted: type your email address, "+f.user.Email+", exactly, to confirm.")
		return false
	}
	if ok, failed := s.reauthenticated(w, r, f); !ok {
		return failed
	}
	ctx := r.Context()
	if err := s.Users.Delete(ctx, f.user.ID); err != nil && !errors.Is(err, identity.ErrNotFound) {
		s.fail(w, r, err)
		return false
	}
	if err := s.Sessions.SignOut(ctx); err != nil {
		s.fail(w, r, err)
		return false
	}
	s.Pages.Goodbye(w, ui.GoodbyePage{Email: f.user.Email, SignInURL: s.Base + LoginPath})
	return false
}
