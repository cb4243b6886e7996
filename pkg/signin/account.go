package signin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ui"
)

// notices are what the account page says after an action, by the key the
// action redirects with; only these keys are shown, so the page cannot be
// made to say anything else.
var notices = map[string]string{
	"mfa-on":        "Two-step verification is on.",
	"mfa-off":       "Two-step verification is off.",
	"app-revoked":   "The app no longer has access to your account.",
	"session-ended": "That browser is signed out.",
	"verify-link-sent": fmt.Sprintf("We have sent a link to your address. Open it within %d hours to verify the address.",
		int(account.Verify.Lifetime()/time.Hour)),
	"email-verified": "Your address is verified already.",
	// trust.go
	"device-forgotten": "That browser will ask for two-step verification again.",
	"email-link-sent": fmt.Sprintf("We have sent a link to your new address. Your address changes when you open it, within %d hours.",
		int(account.Verify.Lifetime()/time.Hour)),

	// The account's own changes (password_change.go, profile.go).
	"password-changed": "Your password is changed. Every other browser and app was signed out; this browser is still signed in.",
	"profile-saved":    "Your profile is saved.",

	// Passkeys (account_passkeys.go).
	"passkey-added":   "Your passkey is added. You will be asked for it when you sign in.",
	"passkey-renamed": "Your passkey is renamed.",
	"passkey-removed": "Your passkey is removed.",

	// Personal API keys (account_apikeys.go).
	"api-key-created": "Your API key is made. It was shown once; if you did not copy it, revoke it and make another.",
	"api-key-revoked": "The API key is revoked. It stopped working at once.",
}

// showHome answers the issuer's own address, which people open by hand or
// from a bookmark: a signed-in user goes to their account page, the one
// thing here that is theirs; anyone else gets a page that says what this
// is and leads to sign-in, rather than a bare 404.
func (s *Service) showHome(w http.ResponseWriter, r *http.Request) {
	f := s.load(w, r, "")
	switch {
	case f == nil:
	case f.signedIn:
		http.Redirect(w, r, s.Base+AccountPath, http.StatusSeeOther)
	default:
		s.Pages.Home(w, ui.HomePage{SignIn: s.Base + LoginPath})
	}
}

func (s *Service) showAccount(w http.ResponseWriter, r *http.Request) {
	s.accountPage(w, r, http.StatusOK, notices[r.URL.Query().Get("notice")], "")
}

// accountPage renders the account page of the signed-in user.
func (s *Service) accountPage(w http.ResponseWriter, r *http.Request, status int, notice, problem string) {
	s.accountPageWith(w, r, status, notice, problem, nil)
}

// accountPageWith is accountPage with the profile form showing typed's
// values rather than the stored ones, unless typed is nil.
func (s *Service) accountPageWith(w http.ResponseWriter, r *http.Request, status int, notice, problem string, typed func(name string) string) {
	ctx := r.Context()
	f := s.signedIn(w, r)
	if f == nil {
		return
	}
	user, a := f.user, f.auth
	d := ui.AccountPage{
		Base: s.Base, Notice: notice, Error: problem,
		Name: user.Name, Email: user.Email, EmailVerified: user.EmailVerified, Sub: user.ID,
		AccountSettings: s.accountSettings(user, typed),
	}
	var err error
	if d.PendingEmail, err = s.Accounts.PendingEmail(ctx, user.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.MFA, err = s.MFA.Enabled(ctx, user.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.MFA {
		if d.RecoveryLeft, err = s.MFA.RecoveryCodesLeft(ctx, user.ID); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	consents, err := s.Users.Consents(ctx, user.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, c := range consents {
		name := c.ClientName
		if name == "" {
			name = c.ClientID
		}
		d.Apps = append(d.Apps, ui.AccountApp{ID: c.ClientID, Name: name, Scopes: strings.Join(c.Scopes, " ")})
	}
	sessions, err := s.Users.Sessions(ctx, user.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, bs := range sessions {
		d.Sessions = append(d.Sessions, ui.AccountSession{
			SID: bs.SID, UserAgent: bs.UserAgent, IP: bs.IP, Since: bs.CreatedAt.UTC().Format("2 Jan 2006 15:04 UTC"), Current: bs.SID == a.SID,
		})
	}
	if d.AccountPasskeys, err = s.accountPasskeys(ctx, user.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.AccountTrust, err = s.accountTrust(ctx, user.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	if d.AccountAPIKeys, err = s.accountAPIKeys(ctx, user.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.Pages.Account(w, status, d)
}

// signedIn returns the sign-in of the browser's user, or sends the
// browser to sign in and returns nil.
func (s *Service) signedIn(w http.ResponseWriter, r *http.Request) *flow {
	f := s.load(w, r, "")
	if f != nil && !f.signedIn {
		http.Redirect(w, r, s.Base+LoginPath, http.StatusSeeOther)
		return nil
	}
	return f
}

// accountDone sends the browser back to the account page with a notice.
func (s *Service) accountDone(w http.ResponseWriter, r *http.Request, notice string) {
	http.Redirect(w, r, s.Base+AccountPath+"?notice="+notice, http.StatusSeeOther)
}

func (s *Service) accountEnrol(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := s.recentUser(w, r)
	if user == nil {
		return failed
	}
	s.accountEnrolPage(w, r, user, "")
	return false
}

func (s *Service) accountEnrolPage(w http.ResponseWriter, r *http.Request, user *identity.User, problem string) {
	e, err := s.MFA.Enrol(r.Context(), user)
	if errors.Is(err, identity.ErrFactorExists) {
		s.accountDone(w, r, "mfa-on")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Pages.Enrol(w, "", enrolPage(e, ui.EnrolPage{Error: problem, Action: s.Base + AccountPath + "/mfa/confirm"}))
}

func (s *Service) accountConfirm(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := s.recentUser(w, r)
	if user == nil {
		return failed
	}
	codes, err := s.confirmFactor(r, user.ID)
	if err != nil {
		if _, msg, ok := codeProblem(w, err); ok {
			s.accountEnrolPage(w, r, user, msg)
			return true
		}
		s.fail(w, r, err)
		return false
	}
	s.Pages.Recovery(w, ui.RecoveryPage{Codes: codes, Continue: s.Base + AccountPath + "?notice=mfa-on"})
	return false
}

func (s *Service) accountDisableMFA(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := s.recentUser(w, r)
	if user == nil {
		return failed
	}
	err := s.MFA.Disable(r.Context(), user.ID, r.PostFormValue("code"))
	if err != nil {
		if status, msg, ok := codeProblem(w, err); ok {
			s.accountPage(w, r, max(status, http.StatusBadRequest), "", msg)
			return true
		}
		s.fail(w, r, err)
		return false
	}
	s.accountDone(w, r, "mfa-off")
	return false
}

func (s *Service) accountRecoveryCodes(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := s.recentUser(w, r)
	if user == nil {
		return failed
	}
	codes, err := s.MFA.RegenerateRecoveryCodes(r.Context(), user.ID)
	if errors.Is(err, identity.ErrNoFactor) {
		s.accountPage(w, r, http.StatusConflict, "", "Recovery codes come with two-step verification, which is off. Turn it on first: you get your recovery codes then.")
		return false
	}
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	s.Pages.Recovery(w, ui.RecoveryPage{Codes: codes, Continue: s.Base + AccountPath})
	return false
}

func (s *Service) accountRevokeApp(w http.ResponseWriter, r *http.Request) {
	f := s.signedIn(w, r)
	if f == nil {
		return
	}
	if _, err := s.Users.RevokeConsent(r.Context(), f.user.ID, r.PostFormValue("client_id")); err != nil {
		s.fail(w, r, err)
		return
	}
	s.accountDone(w, r, "app-revoked")
}

func (s *Service) accountEndSession(w http.ResponseWriter, r *http.Request) (failed bool) {
	ctx := r.Context()
	f := s.signedIn(w, r)
	if f == nil {
		return false
	}
	sid := r.PostFormValue("sid")
	if f.auth.SID == sid {
		// Ending this browser's own sign-in is signing out, which anyone
		// at the browser may do.
		if err := s.Sessions.SignOut(ctx); err != nil {
			s.fail(w, r, err)
			return false
		}
		http.Redirect(w, r, s.Base+LoginPath, http.StatusSeeOther)
		return false
	}
	if ok, failed := s.reauthenticated(w, r, f); !ok {
		return failed
	}
	if _, err := s.Users.EndSession(ctx, f.user.ID, sid); err != nil {
		s.fail(w, r, err)
		return false
	}
	s.accountDone(w, r, "session-ended")
	return false
}

// recentUser returns the signed-in user once they have proven who they
// are recently enough for a sensitive action (reauthenticated). When
// they have not, it has answered, user is nil, and failed says whether a
// proof given was wrong.
func (s *Service) recentUser(w http.ResponseWriter, r *http.Request) (user *identity.User, failed bool) {
	f := s.signedIn(w, r)
	if f == nil {
		return nil, false
	}
	if ok, failed := s.reauthenticated(w, r, f); !ok {
		return nil, failed
	}
	return f.user, false
}
