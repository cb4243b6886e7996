package ui

import (
	"errors"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/pkg/identity"
)

// notices are what the account page says after an action, by the key the
// action redirects with; only these keys are shown, so the page cannot be
// made to say anything else.
var notices = map[string]string{
	"mfa-on":        "Two-step verification is on.",
	"mfa-off":       "Two-step verification is off.",
	"app-revoked":   "The app no longer has access to your account.",
	"session-ended": "That browser is signed out.",
}

func (u *UI) showAccount(w http.ResponseWriter, r *http.Request) {
	u.accountPage(w, r, http.StatusOK, notices[r.URL.Query().Get("notice")], "")
}

// accountPage renders the account page of the signed-in user.
func (u *UI) accountPage(w http.ResponseWriter, r *http.Request, status int, notice, problem string) {
	ctx := r.Context()
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return
	}
	a, _, err := u.Sessions.Current(ctx)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	d := AccountPage{
		Base: u.Base, Notice: notice, Error: problem,
		Name: user.Name, Email: user.Email, EmailVerified: user.EmailVerified, Sub: user.ID,
	}
	if d.MFA, err = u.MFA.Enabled(ctx, user.ID); err != nil {
		u.fail(w, r, err)
		return
	}
	if d.MFA {
		if d.RecoveryLeft, err = u.MFA.RecoveryCodesLeft(ctx, user.ID); err != nil {
			u.fail(w, r, err)
			return
		}
	}
	consents, err := u.Users.Consents(ctx, user.ID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, c := range consents {
		name := c.ClientName
		if name == "" {
			name = c.ClientID
		}
		d.Apps = append(d.Apps, AccountApp{ID: c.ClientID, Name: name, Scopes: strings.Join(c.Scopes, " ")})
	}
	sessions, err := u.Users.Sessions(ctx, user.ID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	for _, s := range sessions {
		agent := s.UserAgent
		if len(agent) > 60 {
			agent = agent[:60] + "…"
		}
		if agent == "" {
			agent = "Unknown browser"
		}
		d.Sessions = append(d.Sessions, AccountSession{
			SID: s.SID, Agent: agent, IP: s.IP, Since: s.CreatedAt.UTC().Format("2 Jan 2006 15:04 UTC"), Current: s.SID == a.SID,
		})
	}
	u.Pages.Account(w, status, d)
}

// accountDone sends the browser back to the account page with a notice.
func (u *UI) accountDone(w http.ResponseWriter, r *http.Request, notice string) {
	http.Redirect(w, r, u.Base+AccountPath+"?notice="+notice, http.StatusSeeOther)
}

func (u *UI) accountEnrol(w http.ResponseWriter, r *http.Request) {
	u.accountEnrolPage(w, r, "")
}

func (u *UI) accountEnrolPage(w http.ResponseWriter, r *http.Request, problem string) {
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return
	}
	e, err := u.MFA.Enrol(r.Context(), user)
	if errors.Is(err, identity.ErrFactorExists) {
		u.accountDone(w, r, "mfa-on")
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.Pages.Enrol(w, "", enrolPageFor(e, EnrolPage{Error: problem, Action: u.Base + AccountPath + "/mfa/confirm"}))
}

func (u *UI) accountConfirm(w http.ResponseWriter, r *http.Request) {
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return
	}
	codes, err := u.confirmFactor(w, r, user.ID)
	if err != nil {
		if _, msg, ok := codeProblem(w, err); ok {
			u.accountEnrolPage(w, r, msg)
			return
		}
		u.fail(w, r, err)
		return
	}
	u.Pages.Recovery(w, RecoveryPage{Codes: codes, Continue: u.Base + AccountPath + "?notice=mfa-on"})
}

func (u *UI) accountDisableMFA(w http.ResponseWriter, r *http.Request) {
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return
	}
	err := u.MFA.Disable(r.Context(), user.ID, r.PostFormValue("code"))
	if err != nil {
		if status, msg, ok := codeProblem(w, err); ok {
			u.accountPage(w, r, max(status, http.StatusBadRequest), "", msg)
			return
		}
		u.fail(w, r, err)
		return
	}
	u.accountDone(w, r, "mfa-off")
}

func (u *UI) accountRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return
	}
	codes, err := u.MFA.RegenerateRecoveryCodes(r.Context(), user.ID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.Pages.Recovery(w, RecoveryPage{Codes: codes, Continue: u.Base + AccountPath})
}

func (u *UI) accountRevokeApp(w http.ResponseWriter, r *http.Request) {
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return
	}
	if _, err := u.Users.RevokeConsent(r.Context(), user.ID, r.PostFormValue("client_id")); err != nil {
		u.fail(w, r, err)
		return
	}
	u.accountDone(w, r, "app-revoked")
}

func (u *UI) accountEndSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return
	}
	sid := r.PostFormValue("sid")
	if a, _, err := u.Sessions.Current(ctx); err == nil && a.SID == sid {
		// Ending this browser's own sign-in is signing out.
		if err := u.Sessions.SignOut(ctx); err != nil {
			u.fail(w, r, err)
			return
		}
		http.Redirect(w, r, u.Base+LoginPath, http.StatusSeeOther)
		return
	}
	if _, err := u.Users.EndSession(ctx, user.ID, sid); err != nil {
		u.fail(w, r, err)
		return
	}
	u.accountDone(w, r, "session-ended")
}
