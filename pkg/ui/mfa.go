package ui

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strconv"

	"github.com/latchkey/latchkey/pkg/identity"
)

// codeUser returns whose second factor the code page asks for: the user
// who just gave their password (signing in), or the signed-in user proving
// who they are again (stepping up).
func (u *UI) codeUser(r *http.Request) (userID string, stepUp, ok bool, err error) {
	if id, awaiting := u.Sessions.AwaitingSecondFactor(r.Context()); awaiting {
		return id, false, true, nil
	}
	a, signedIn, err := u.Sessions.Current(r.Context())
	if err != nil || !signedIn {
		return "", false, false, err
	}
	return a.UserID, true, true, nil
}

func (u *UI) showSecondFactor(w http.ResponseWriter, r *http.Request) {
	handle := r.URL.Query().Get("request")
	p, c, parked := u.parked(r, handle)
	if handle != "" && !parked {
		u.expired(w, r)
		return
	}
	if _, _, ok, err := u.codeUser(r); err != nil {
		u.fail(w, r, err)
		return
	} else if !ok {
		u.toLogin(w, r, handle, parked)
		return
	}
	d := SecondFactorPage{Request: handle, Action: u.Base + SecondFactorPath}
	if parked {
		d.ClientName = displayName(c)
	}
	u.Pages.SecondFactor(w, http.StatusOK, redirectTarget(p), d)
}

func (u *UI) submitSecondFactor(w http.ResponseWriter, r *http.Request) (failed bool) {
	ctx := r.Context()
	handle := r.PostFormValue("request")
	p, c, parked := u.parked(r, handle)
	if handle != "" && !parked {
		u.expired(w, r)
		return false
	}
	userID, stepUp, ok, err := u.codeUser(r)
	if err != nil {
		u.fail(w, r, err)
		return false
	}
	if !ok {
		u.toLogin(w, r, handle, parked)
		return false
	}
	code := r.PostFormValue("code")
	if code == "" {
		code = r.PostFormValue("recovery")
	}
	err = u.MFA.Verify(ctx, userID, code)
	u.metrics().SecondFactor(codeResult(err))
	if err != nil {
		d := SecondFactorPage{Request: handle, Action: u.Base + SecondFactorPath,
			Recovery: r.PostFormValue("code") == "" && r.PostFormValue("recovery") != ""}
		if parked {
			d.ClientName = displayName(c)
		}
		if status, msg, ok := codeProblem(w, err); ok {
			d.Error = msg
			u.Pages.SecondFactor(w, status, redirectTarget(p), d)
			return true
		}
		u.fail(w, r, err)
		return false
	}
	if stepUp {
		_, err = u.Sessions.Elevate(ctx, []string{identity.AMROTP, identity.AMRMFA})
	} else {
		var user *identity.User
		if user, err = u.Users.Get(ctx, userID); err == nil {
			err = u.signIn(w, r, user, []string{identity.AMRPassword, identity.AMROTP, identity.AMRMFA})
		}
	}
	if err != nil {
		u.fail(w, r, err)
		return false
	}
	u.next(w, r, handle, parked)
	return false
}

// codeResult is how a code check that returned err ended, as
// Observer.SecondFactor is told.
func codeResult(err error) string {
	var throttled *identity.ThrottledError
	switch {
	case err == nil:
		return "succeeded"
	case errors.As(err, &throttled):
		return "throttled"
	case errors.Is(err, identity.ErrInvalidCode):
		return "failed"
	}
	return "error"
}

// codeProblem turns a refused code into what the page tells the user: the
// same words for every wrong code, and how long to wait when throttled.
func codeProblem(w http.ResponseWriter, err error) (status int, message string, ok bool) {
	var throttled *identity.ThrottledError
	switch {
	case errors.As(err, &throttled):
		secs := int(throttled.RetryAfter.Seconds()) + 1
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		return http.StatusTooManyRequests, "Too many wrong codes. Try again in " + strconv.Itoa(secs) + " seconds.", true
	case errors.Is(err, identity.ErrInvalidCode):
		return http.StatusOK, "That code is not valid. Check the app and try again.", true
	}
	return 0, "", false
}

func (u *UI) showEnrol(w http.ResponseWriter, r *http.Request) {
	u.enrolPage(w, r, r.URL.Query().Get("request"), "")
}

// enrolPage shows the factor being enrolled, during a parked request that
// demands one, with an error from the last attempt if any.
func (u *UI) enrolPage(w http.ResponseWriter, r *http.Request, handle, problem string) {
	p, c, parked := u.parked(r, handle)
	if !parked {
		u.expired(w, r)
		return
	}
	user, ok := u.signedInUser(w, r, handle)
	if !ok {
		return
	}
	e, err := u.MFA.Enrol(r.Context(), user)
	if errors.Is(err, identity.ErrFactorExists) {
		http.Redirect(w, r, SecondFactorURL(u.Base, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return
	}
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.Pages.Enrol(w, redirectTarget(p), enrolPageFor(e, EnrolPage{
		Required: true, ClientName: displayName(c), Error: problem, Request: handle, Action: u.Base + EnrolPath,
	}))
}

func (u *UI) submitEnrol(w http.ResponseWriter, r *http.Request) (failed bool) {
	handle := r.PostFormValue("request")
	if _, _, parked := u.parked(r, handle); !parked {
		u.expired(w, r)
		return false
	}
	user, ok := u.signedInUser(w, r, handle)
	if !ok {
		return false
	}
	codes, err := u.confirmFactor(w, r, user.ID)
	if err != nil {
		if _, msg, ok := codeProblem(w, err); ok {
			u.enrolPage(w, r, handle, msg)
			return true
		}
		u.fail(w, r, err)
		return false
	}
	u.Pages.Recovery(w, RecoveryPage{Codes: codes, Continue: ResumeURL(u.Base, handle)})
	return false
}

// confirmFactor turns on the factor being enrolled with its first code.
// The code proves the user holds the factor, so the session counts as
// signed in with it from now on, rather than asking for a second code at
// once.
func (u *UI) confirmFactor(w http.ResponseWriter, r *http.Request, userID string) ([]string, error) {
	codes, err := u.MFA.Confirm(r.Context(), userID, r.PostFormValue("code"))
	if err != nil {
		return nil, err
	}
	if _, err := u.Sessions.Elevate(r.Context(), []string{identity.AMROTP, identity.AMRMFA}); err != nil {
		return nil, err
	}
	return codes, nil
}

// enrolPageFor fills in the enrolment's QR code, link and secret.
func enrolPageFor(e identity.Enrolment, d EnrolPage) EnrolPage {
	// Both URLs are made here from values Latchkey generated.
	d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR)) // #nosec G203 -- a PNG Latchkey just drew, base64-encoded: nothing a user controls
	d.URI = template.URL(e.URI)                                                             // #nosec G203 -- the otpauth: URI pquerna/otp built from our issuer and the user's email, URL-encoded
	d.Secret = e.Secret
	return d
}

// signedInUser returns the signed-in user, or sends the browser to sign in
// and reports false.
func (u *UI) signedInUser(w http.ResponseWriter, r *http.Request, handle string) (*identity.User, bool) {
	a, signedIn, err := u.Sessions.Current(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return nil, false
	}
	if !signedIn {
		u.toLogin(w, r, handle, handle != "")
		return nil, false
	}
	user, err := u.Users.Get(r.Context(), a.UserID)
	if err != nil {
		u.fail(w, r, err)
		return nil, false
	}
	return user, true
}

// toLogin sends a browser that is not signed in to the login page.
func (u *UI) toLogin(w http.ResponseWriter, r *http.Request, handle string, parked bool) {
	to := u.Base + LoginPath
	if parked {
		to = LoginURL(u.Base, handle)
	}
	http.Redirect(w, r, to, http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
}
