package ui

import (
	"errors"
	"net/http"
	"strings"
	"time"

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
		d.Sessions = append(d.Sessions, AccountSession{
			SID: s.SID, UserAgent: s.UserAgent, IP: s.IP, Since: s.CreatedAt.UTC().Format("2 Jan 2006 15:04 UTC"), Current: s.SID == a.SID,
		})
	}
	u.Pages.Account(w, status, d)
}

// accountDone sends the browser back to the account page with a notice.
func (u *UI) accountDone(w http.ResponseWriter, r *http.Request, notice string) {
	http.Redirect(w, r, u.Base+AccountPath+"?notice="+notice, http.StatusSeeOther)
}

func (u *UI) accountEnrol(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := u.recentUser(w, r)
	if user == nil {
		return failed
	}
	u.accountEnrolPage(w, r, user, "")
	return false
}

func (u *UI) accountEnrolPage(w http.ResponseWriter, r *http.Request, user *identity.User, problem string) {
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

func (u *UI) accountConfirm(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := u.recentUser(w, r)
	if user == nil {
		return failed
	}
	codes, err := u.confirmFactor(w, r, user.ID)
	if err != nil {
		if _, msg, ok := codeProblem(w, err); ok {
			u.accountEnrolPage(w, r, user, msg)
			return true
		}
		u.fail(w, r, err)
		return false
	}
	u.Pages.Recovery(w, RecoveryPage{Codes: codes, Continue: u.Base + AccountPath + "?notice=mfa-on"})
	return false
}

func (u *UI) accountDisableMFA(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := u.recentUser(w, r)
	if user == nil {
		return failed
	}
	err := u.MFA.Disable(r.Context(), user.ID, r.PostFormValue("code"))
	if err != nil {
		if status, msg, ok := codeProblem(w, err); ok {
			u.accountPage(w, r, max(status, http.StatusBadRequest), "", msg)
			return true
		}
		u.fail(w, r, err)
		return false
	}
	u.accountDone(w, r, "mfa-off")
	return false
}

func (u *UI) accountRecoveryCodes(w http.ResponseWriter, r *http.Request) (failed bool) {
	user, failed := u.recentUser(w, r)
	if user == nil {
		return failed
	}
	codes, err := u.MFA.RegenerateRecoveryCodes(r.Context(), user.ID)
	if errors.Is(err, identity.ErrNoFactor) {
		u.accountPage(w, r, http.StatusConflict, "", "Recovery codes come with two-step verification, which is off. Turn it on first: you get your recovery codes then.")
		return false
	}
	if err != nil {
		u.fail(w, r, err)
		return false
	}
	u.Pages.Recovery(w, RecoveryPage{Codes: codes, Continue: u.Base + AccountPath})
	return false
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

func (u *UI) accountEndSession(w http.ResponseWriter, r *http.Request) (failed bool) {
	ctx := r.Context()
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return false
	}
	sid := r.PostFormValue("sid")
	if a, _, err := u.Sessions.Current(ctx); err == nil && a.SID == sid {
		// Ending this browser's own sign-in is signing out, which anyone
		// at the browser may do.
		if err := u.Sessions.SignOut(ctx); err != nil {
			u.fail(w, r, err)
			return false
		}
		http.Redirect(w, r, u.Base+LoginPath, http.StatusSeeOther)
		return false
	}
	if ok, failed := u.reauthenticated(w, r, user); !ok {
		return failed
	}
	if _, err := u.Users.EndSession(ctx, user.ID, sid); err != nil {
		u.fail(w, r, err)
		return false
	}
	u.accountDone(w, r, "session-ended")
	return false
}

// recentUser returns the signed-in user once they have proven who they
// are recently enough for a sensitive action (reauthenticated). When
// they have not, it has answered, user is nil, and failed says whether a
// proof given was wrong.
func (u *UI) recentUser(w http.ResponseWriter, r *http.Request) (user *identity.User, failed bool) {
	user, ok := u.signedInUser(w, r, "")
	if !ok {
		return nil, false
	}
	if ok, failed := u.reauthenticated(w, r, user); !ok {
		return nil, failed
	}
	return user, false
}

// Fields of the re-authentication form, which the sensitive actions read
// beside their own.
const (
	reauthPasswordField = "reauth_password"
	reauthCodeField     = "reauth_code"
)

// reauthenticated guards the account page's sensitive actions: those that
// change how the user signs in (a new authenticator, two-step verification
// off, new recovery codes) or end their other sign-ins. A session cookie
// alone is not enough for them, since whoever stole one could otherwise
// lock the owner out: the user must have proven who they are within
// ReauthWindow, or prove it now, with their password or a code from their
// second factor, as GitHub's sudo mode asks. When they have not, it
// answers with a page asking for the proof, whose form posts the action
// again with its fields and the proof; ok is false then, and failed says
// the proof given was wrong (an attempt, for the sign-in limits).
func (u *UI) reauthenticated(w http.ResponseWriter, r *http.Request, user *identity.User) (ok, failed bool) {
	ctx := r.Context()
	a, _, err := u.Sessions.Current(ctx)
	if err != nil {
		u.fail(w, r, err)
		return false, false
	}
	if time.Since(a.AuthTime) <= u.ReauthWindow {
		return true, false
	}
	hasFactor, err := u.MFA.Enabled(ctx, user.ID)
	if err != nil {
		u.fail(w, r, err)
		return false, false
	}
	password, code := r.PostFormValue(reauthPasswordField), strings.TrimSpace(r.PostFormValue(reauthCodeField))
	var amr []string
	switch {
	case code != "" && hasFactor:
		err, amr = u.MFA.Verify(ctx, user.ID, code), []string{identity.AMROTP, identity.AMRMFA}
		u.metrics().SecondFactor(codeResult(err))
	case password != "":
		_, err = u.Users.Authenticate(ctx, user.Email, password, u.Devices.Known(r, user.Email))
		amr = []string{identity.AMRPassword}
		u.metrics().Login(loginResult(err))
	default:
		u.reauthPage(w, r, hasFactor, "")
		return false, false
	}
	var throttled *identity.ThrottledError
	switch {
	case errors.Is(err, identity.ErrInvalidCredentials), errors.Is(err, identity.ErrInvalidCode):
		u.reauthPage(w, r, hasFactor, "That is not right. Check it and try again.")
		return false, true
	case errors.As(err, &throttled):
		_, msg, _ := codeProblem(w, err)
		u.reauthPage(w, r, hasFactor, msg)
		return false, true
	case err != nil:
		u.fail(w, r, err)
		return false, false
	}
	if _, err := u.Sessions.Elevate(ctx, amr); err != nil {
		u.fail(w, r, err)
		return false, false
	}
	return true, false
}

// reauthPage asks the user to prove who they are before the action r
// asked for, keeping the action's own fields for the form to post again.
func (u *UI) reauthPage(w http.ResponseWriter, r *http.Request, hasFactor bool, problem string) {
	fields := map[string]string{}
	for name, values := range r.PostForm {
		if name != reauthPasswordField && name != reauthCodeField && len(values) > 0 {
			fields[name] = values[0]
		}
	}
	status := http.StatusOK
	if problem != "" {
		status = http.StatusUnauthorized
	}
	u.Pages.Reauth(w, status, ReauthPage{Action: r.URL.Path, Fields: fields, Factor: hasFactor, Error: problem,
		UsedCode: hasFactor && strings.TrimSpace(r.PostFormValue(reauthCodeField)) != "",
		Window:   int(u.ReauthWindow / time.Minute)})
}
