package signin

import (
	"context"
	"errors"
	"net/http"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/ui"
)

// dateFormat is how the account page writes when something happened.
const dateFormat = "2 Jan 2006 15:04 UTC"

// accountPasskeys is the account page's passkey section for userID.
func (s *Service) accountPasskeys(ctx context.Context, userID string) (ui.AccountPasskeys, error) {
	keys, err := s.Passkeys.List(ctx, userID)
	d := ui.AccountPasskeys{Available: s.Passkeys.Available(), MaxName: passkey.MaxNameChars}
	for _, k := range keys {
		p := ui.AccountPasskey{ID: passkey.EncodeID(k.ID), Name: k.Name, Created: k.CreatedAt.UTC().Format(dateFormat),
			Synced: k.BackupEligible}
		if !k.LastUsedAt.IsZero() {
			p.LastUsed = k.LastUsedAt.UTC().Format(dateFormat)
		}
		d.Passkeys = append(d.Passkeys, p)
	}
	return d, err
}

// passkeyUser is user as a passkey ceremony names them to the
// authenticator.
func passkeyUser(u *identity.User) passkey.User {
	return passkey.User{ID: u.ID, Email: u.Email, Name: u.Name}
}

// accountAddPasskey begins adding a passkey, for a user who proved who
// they are recently (a stolen session must not add its own passkey).
func (s *Service) accountAddPasskey(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := s.recentUser(w, r)
	if user == nil {
		return failed
	}
	s.passkeyAddPage(w, r, user, http.StatusOK, r.PostFormValue("name"), "")
	return false
}

// passkeyAddPage begins a registration ceremony for user and shows it.
func (s *Service) passkeyAddPage(w http.ResponseWriter, r *http.Request, user *identity.User, status int, name, problem string) {
	c, err := s.Passkeys.BeginRegistration(r.Context(), passkeyUser(user))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Sessions.BeginCeremony(r.Context(), registration, user.ID, c.Session)
	s.Pages.PasskeyAdd(w, status, "", ui.PasskeyAddPage{Options: string(c.Options), Action: s.Base + AccountPath + "/passkeys/finish",
		Name: name, Error: problem, MaxName: passkey.MaxNameChars, Account: s.Base + AccountPath})
}

// accountFinishPasskey takes the browser's answer to the registration and
// stores the passkey.
func (s *Service) accountFinishPasskey(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := s.recentUser(w, r)
	if user == nil {
		return failed
	}
	ctx := r.Context()
	session := s.Sessions.TakeCeremony(ctx, registration, user.ID)
	name := r.PostFormValue("name")
	_, err := s.Passkeys.FinishRegistration(ctx, passkeyUser(user), session, []byte(r.PostFormValue("credential")), name)
	switch {
	case err == nil:
		s.accountDone(w, r, "passkey-added")
		return false
	case errors.Is(err, passkey.ErrInvalidName):
		s.passkeyAddPage(w, r, user, http.StatusBadRequest, name, "Give the passkey a name, of at most 64 characters.")
		return false
	case errors.Is(err, passkey.ErrExists):
		s.passkeyAddPage(w, r, user, http.StatusConflict, name, "That passkey is added already.")
		return false
	}
	if msg, ok := passkeyProblem(err); ok {
		s.passkeyAddPage(w, r, user, http.StatusBadRequest, name, msg)
		return true
	}
	s.fail(w, r, err)
	return false
}

func (s *Service) accountRenamePasskey(w http.ResponseWriter, r *http.Request) {
	f := s.signedIn(w, r)
	if f == nil {
		return
	}
	id, err := passkey.DecodeID(r.PostFormValue("passkey"))
	if err == nil {
		err = s.Passkeys.Rename(r.Context(), f.user.ID, id, r.PostFormValue("name"))
	}
	switch {
	case err == nil:
		s.accountDone(w, r, "passkey-renamed")
	case errors.Is(err, passkey.ErrInvalidName):
		s.accountPage(w, r, http.StatusBadRequest, "", "Give the passkey a name, of at most 64 characters.")
	case errors.Is(err, passkey.ErrNotFound):
		s.accountPage(w, r, http.StatusNotFound, "", "That passkey is not on your account.")
	default:
		s.fail(w, r, err)
	}
}

// accountRemovePasskey removes a passkey, for a user who proved who they
// are recently: otherwise a stolen session could take the owner's factor
// away.
func (s *Service) accountRemovePasskey(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := s.recentUser(w, r)
	if user == nil {
		return failed
	}
	id, err := passkey.DecodeID(r.PostFormValue("passkey"))
	if err == nil {
		err = s.Passkeys.Remove(r.Context(), user.ID, id)
	}
	switch {
	case err == nil:
		s.accountDone(w, r, "passkey-removed")
	case errors.Is(err, passkey.ErrNotFound):
		s.accountPage(w, r, http.StatusNotFound, "", "That passkey is not on your account.")
	default:
		s.fail(w, r, err)
	}
	return false
}
