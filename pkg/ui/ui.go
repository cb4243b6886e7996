// Package ui serves the pages people see: sign-in, consent, sign-out and
// the messages around them. It is server-rendered HTML with one stylesheet
// and no JavaScript.
//
// # Flow
//
// The authorization endpoint (pkg/oauth) parks a request in the browser's
// session (pkg/session) and sends the browser here with the request's
// handle. The login page signs the user in; the consent page records what
// the user allowed or refused. Both then send the browser back to the
// authorization endpoint's resume URL with the same handle, and the
// protocol carries on from there. The pages never see the request's
// parameters in the URL, so a user cannot be shown one app's name while
// consenting for another's.
//
// # Forms
//
// Every POST goes through http.CrossOriginProtection, which refuses requests
// that browsers mark as cross-site (Sec-Fetch-Site) or whose Origin is
// another site's. The session cookie is SameSite=Lax, so a cross-site POST
// would not carry it either, and without the session there is no parked
// request to act on. Pages cannot be framed (frame-ancestors 'none').
package ui

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/device"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/session"
	"github.com/latchkey/latchkey/storage/postgres"
	"github.com/latchkey/latchkey/web"
)

// Paths of the pages, relative to the issuer.
const (
	LoginPath        = "/login"
	SecondFactorPath = "/login/otp"
	EnrolPath        = "/login/enrol"
	ConsentPath      = "/consent"
	AccountPath      = "/account"
	StaticPath       = "/static"
)

// UI serves the pages.
type UI struct {
	Pages    *Pages
	Sessions *session.Manager
	Users    *identity.Manager
	MFA      *identity.MFA
	// Devices recognises browsers that signed in to an account before, so
	// that their wrong passwords count apart from unknown devices'.
	Devices *device.Cookies
	// Store is where apps are looked up and consents kept.
	Store *postgres.Store
	// FailureLimit limits failed password and code attempts per IP
	// address; AttemptLimit is a higher ceiling on all of them, failed or
	// not (see attempt).
	FailureLimit, AttemptLimit *ratelimit.Limiter
	// ReauthWindow is how recently a user must have proven who they are
	// for the account page's sensitive actions (see reauthenticated).
	ReauthWindow time.Duration
	Logger       *slog.Logger
	// Base is the issuer's path, "" at the root, that links are built on.
	Base string
	// Metrics, if not nil, is told how sign-in attempts end.
	Metrics Observer
}

// Observer is told how sign-in attempts end, for metrics. Every argument
// is one of a few fixed words, never who tried.
type Observer interface {
	// Login is told of each password submitted on the login page:
	// "succeeded" (the password is right; a second factor may follow),
	// "failed" or "error". An account throttled after too many failures
	// fails like a wrong password: identity.Manager.Authenticate tells
	// them apart to nobody, and the audit log has them.
	Login(result string)
	// SecondFactor is told of each code submitted on the second-factor
	// page, at sign-in or step-up: "succeeded", "failed", "throttled" (the
	// account must wait; the code was not checked) or "error".
	SecondFactor(result string)
	// RateLimited is told of each attempt refused because its address is
	// over FailureLimit or AttemptLimit: endpoint is always "sign_in".
	RateLimited(endpoint string)
}

// noObserver is the Observer of pages without metrics.
type noObserver struct{}

func (noObserver) Login(string)        {}
func (noObserver) SecondFactor(string) {}
func (noObserver) RateLimited(string)  {}

// metrics returns u.Metrics, or an Observer that counts nothing.
func (u *UI) metrics() Observer {
	if u.Metrics == nil {
		return noObserver{}
	}
	return u.Metrics
}

// Register adds the pages to r, which must load the browser session
// (session.Manager.Handler). Every POST is checked for cross-origin use.
func (u *UI) Register(r chi.Router) {
	csrf := http.NewCrossOriginProtection()
	r.Get(LoginPath, u.showLogin)
	r.Method(http.MethodPost, LoginPath, csrf.Handler(u.attempt(u.submitLogin)))
	r.Get(SecondFactorPath, u.showSecondFactor)
	r.Method(http.MethodPost, SecondFactorPath, csrf.Handler(u.attempt(u.submitSecondFactor)))
	r.Get(EnrolPath, u.showEnrol)
	r.Method(http.MethodPost, EnrolPath, csrf.Handler(u.attempt(u.submitEnrol)))
	r.Get(ConsentPath, u.showConsent)
	r.Method(http.MethodPost, ConsentPath, csrf.Handler(http.HandlerFunc(u.submitConsent)))
	r.Get(AccountPath, u.showAccount)
	r.Get("/", u.showHome)
	// The sensitive actions may ask for the password again, so they are
	// attempts like the sign-in forms.
	for path, h := range map[string]http.HandlerFunc{
		"/mfa/enrol":          u.attempt(u.accountEnrol),
		"/mfa/confirm":        u.attempt(u.accountConfirm),
		"/mfa/disable":        u.attempt(u.accountDisableMFA),
		"/mfa/recovery-codes": u.attempt(u.accountRecoveryCodes),
		"/apps/revoke":        u.accountRevokeApp,
		"/sessions/revoke":    u.attempt(u.accountEndSession),
	} {
		r.Method(http.MethodPost, AccountPath+path, csrf.Handler(h))
	}
}

// Static serves the stylesheet and other static files under base +
// StaticPath. It needs no session.
func Static(base string) http.Handler {
	return http.StripPrefix(base+StaticPath, staticFiles())
}

// Favicon serves the icon browsers ask every host for at /favicon.ico,
// whatever the issuer's path: the pages name theirs (favicon.svg under
// StaticPath), but a browser that opened anything else asks here.
func Favicon(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "image/x-icon")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.ServeFileFS(w, r, web.Static, "static/favicon.ico")
}

// showHome answers the issuer's own address, which people open by hand or
// from a bookmark: a signed-in user goes to their account page, the one
// thing here that is theirs; anyone else gets a page that says what this
// is and leads to sign-in, rather than a bare 404.
func (u *UI) showHome(w http.ResponseWriter, r *http.Request) {
	_, signedIn, err := u.Sessions.Current(r.Context())
	switch {
	case err != nil:
		u.fail(w, r, err)
	case signedIn:
		http.Redirect(w, r, u.Base+AccountPath, http.StatusSeeOther)
	default:
		u.Pages.Home(w)
	}
}

// ResumeURL is where the browser goes once the user has acted on the
// parked request handle.
func ResumeURL(base, handle string) string {
	return base + discovery.AuthorizationResumePath + "?request=" + url.QueryEscape(handle)
}

// LoginURL is the login page for the parked request handle.
func LoginURL(base, handle string) string {
	return base + LoginPath + "?request=" + url.QueryEscape(handle)
}

// SecondFactorURL is the second-factor page for the parked request handle.
func SecondFactorURL(base, handle string) string {
	return base + SecondFactorPath + "?request=" + url.QueryEscape(handle)
}

// EnrolURL is the page that adds a second factor during the parked request.
func EnrolURL(base, handle string) string {
	return base + EnrolPath + "?request=" + url.QueryEscape(handle)
}

// ConsentURL is the consent page for the parked request handle.
func ConsentURL(base, handle string) string {
	return base + ConsentPath + "?request=" + url.QueryEscape(handle)
}

// parked returns the request the page acts on and its client, if any.
func (u *UI) parked(r *http.Request, handle string) (session.Pending, *client.Client, bool) {
	if handle == "" {
		return session.Pending{}, nil, false
	}
	p, ok := u.Sessions.Pending(r.Context(), handle)
	if !ok {
		return session.Pending{}, nil, false
	}
	c, err := u.Store.ClientByID(r.Context(), p.Params.Get("client_id"))
	if err != nil {
		return session.Pending{}, nil, false
	}
	return p, c, true
}

// redirectTarget is the app's redirect URI, which the page's form may
// lead to once the authorization endpoint answers.
func redirectTarget(p session.Pending) string { return p.Params.Get("redirect_uri") }

func (u *UI) showLogin(w http.ResponseWriter, r *http.Request) {
	handle := r.URL.Query().Get("request")
	p, c, ok := u.parked(r, handle)
	if handle != "" && !ok {
		u.expired(w, r)
		return
	}
	d := LoginPage{Request: handle, Action: u.Base + LoginPath}
	if ok {
		d.ClientName = displayName(c)
		d.Email = p.Params.Get("login_hint")
	} else if _, signedIn, err := u.Sessions.Current(r.Context()); err == nil && signedIn {
		http.Redirect(w, r, u.Base+AccountPath, http.StatusSeeOther)
		return
	}
	u.Pages.Login(w, http.StatusOK, redirectTarget(p), d)
}

func (u *UI) submitLogin(w http.ResponseWriter, r *http.Request) (failed bool) {
	ctx := r.Context()
	handle := r.PostFormValue("request")
	p, c, ok := u.parked(r, handle)
	if handle != "" && !ok {
		u.expired(w, r)
		return false
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	user, err := u.Users.Authenticate(ctx, email, r.PostFormValue("password"), u.Devices.Known(r, email))
	u.metrics().Login(loginResult(err))
	if errors.Is(err, identity.ErrInvalidCredentials) {
		d := LoginPage{Request: handle, Action: u.Base + LoginPath, Email: email, Error: signInFailed}
		if ok {
			d.ClientName = displayName(c)
		}
		u.Pages.Login(w, http.StatusOK, redirectTarget(p), d)
		return true
	}
	if err != nil {
		u.fail(w, r, err)
		return false
	}
	// A user with a second factor is not signed in until they give it.
	hasFactor, err := u.MFA.Enabled(ctx, user.ID)
	if err != nil {
		u.fail(w, r, err)
		return false
	}
	if hasFactor {
		u.Sessions.AwaitSecondFactor(ctx, user.ID)
		http.Redirect(w, r, u.Base+SecondFactorPath+"?request="+url.QueryEscape(handle), http.StatusSeeOther)
		return false
	}
	if err := u.signIn(w, r, user, []string{identity.AMRPassword}); err != nil {
		u.fail(w, r, err)
		return false
	}
	u.next(w, r, handle, ok)
	return false
}

// signIn signs user in on this browser, proven by amr, and makes the
// browser a known device of the account (pkg/device).
func (u *UI) signIn(w http.ResponseWriter, r *http.Request, user *identity.User, amr []string) error {
	if _, err := u.Sessions.SignIn(r.Context(), r, user.ID, amr); err != nil {
		return err
	}
	u.Devices.Remember(w, r, user.Email)
	return nil
}

// loginResult is how a password check that returned err ended, as
// Observer.Login is told.
func loginResult(err error) string {
	switch {
	case err == nil:
		return "succeeded"
	case errors.Is(err, identity.ErrInvalidCredentials):
		return "failed"
	}
	return "error"
}

// next sends the browser on once the user has done what a page asked:
// back to the parked request, or to their account page if there is none.
func (u *UI) next(w http.ResponseWriter, r *http.Request, handle string, parked bool) {
	if parked {
		http.Redirect(w, r, ResumeURL(u.Base, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return
	}
	http.Redirect(w, r, u.Base+AccountPath, http.StatusSeeOther)
}

// consenting returns what the consent page acts on: the parked request,
// its app and the signed-in user. When it cannot (the request is gone, or
// nobody is signed in), it has answered already and ok is false.
func (u *UI) consenting(w http.ResponseWriter, r *http.Request, handle string) (p session.Pending, c *client.Client, a session.Auth, ok bool) {
	p, c, ok = u.parked(r, handle)
	if !ok {
		u.expired(w, r)
		return p, c, a, false
	}
	a, signedIn, err := u.Sessions.Current(r.Context())
	if err != nil {
		u.fail(w, r, err)
		return p, c, a, false
	}
	if !signedIn {
		// The target is our own configured base URL; the handle is query-escaped.
		http.Redirect(w, r, LoginURL(u.Base, handle), http.StatusSeeOther) // #nosec G710 -- our own page
		return p, c, a, false
	}
	return p, c, a, true
}

func (u *UI) showConsent(w http.ResponseWriter, r *http.Request) {
	handle := r.URL.Query().Get("request")
	p, c, a, ok := u.consenting(w, r, handle)
	if !ok {
		return
	}
	user, err := u.Users.Get(r.Context(), a.UserID)
	if err != nil {
		u.fail(w, r, err)
		return
	}
	u.Pages.Consent(w, redirectTarget(p), ConsentPage{
		ClientName: displayName(c),
		Scopes:     describeScopes(strings.Fields(p.Params.Get("scope"))),
		Email:      user.Email,
		Request:    handle,
		Action:     u.Base + ConsentPath,
	})
}

func (u *UI) submitConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	handle := r.PostFormValue("request")
	p, c, a, ok := u.consenting(w, r, handle)
	if !ok {
		return
	}
	switch r.PostFormValue("decision") {
	case "allow":
		if err := u.Users.GrantConsent(ctx, a.UserID, c.ID, strings.Fields(p.Params.Get("scope"))); err != nil {
			u.fail(w, r, err)
			return
		}
		p.Consented = true
	case "deny":
		p.Denied = true
	default:
		http.Error(w, "choose Allow or Deny", http.StatusBadRequest)
		return
	}
	u.Sessions.Update(ctx, handle, p)
	http.Redirect(w, r, ResumeURL(u.Base, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
}

// expired answers a page whose parked request is gone: it expired, was
// answered already, or belongs to another browser.
func (u *UI) expired(w http.ResponseWriter, r *http.Request) {
	u.Pages.Message(w, http.StatusBadRequest, "Start again", MessagePage{
		Message: "This sign-in request has expired or was already used. Go back to the app you came from and sign in again.",
	})
}

// signInFailed is the one answer to a failed sign-in: it must read the same
// whether the email is unknown, the password wrong, or the account paused
// after too many failures, so that it tells an attacker nothing, while
// still telling a user with the right password why it did not work.
const signInFailed = "Email or password is incorrect, or there have been too many failed attempts to sign in to this account. Check them, or wait a few minutes and try again."

// attemptHandler serves a form that checks a password or a code, and
// reports whether the attempt failed: a wrong password or code, or one
// refused unchecked.
type attemptHandler func(w http.ResponseWriter, r *http.Request) (failed bool)

// attempt guards a form that checks a password or a code. Each IP address
// (each /64 for IPv6) may make FailureLimit's number of failed attempts on
// this node, and AttemptLimit's of all: failures are what guessing makes,
// while a whole office signing in at nine behind one address makes many
// attempts that succeed. Over either limit, the form is not looked at.
// The failure is reserved before the form is handled and given back if it
// did not fail, so parallel attempts cannot all slip under the limit.
func (u *UI) attempt(h attemptHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := ratelimit.AddressKey(server.ClientIP(r.Context()))
		ok, wait := u.AttemptLimit.Allow(key)
		var failure ratelimit.Reservation
		if ok {
			failure, ok, wait = u.FailureLimit.Reserve(key)
		}
		if !ok {
			u.metrics().RateLimited("sign_in")
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			u.Pages.Message(w, http.StatusTooManyRequests, "Too many attempts", MessagePage{
				Message: fmt.Sprintf("There have been too many sign-in attempts from your network. Wait %d seconds, then go back and try again.", secs),
			})
			return
		}
		if !h(w, r) {
			failure.Refund()
		}
	}
}

// ErrorPage answers a request that failed with err, for handlers outside
// this package that serve the browser (the session loader).
func (u *UI) ErrorPage(w http.ResponseWriter, r *http.Request, err error) { u.fail(w, r, err) }

// fail logs an unexpected error and shows a page with the request ID, and
// nothing of the error itself. An unreachable database is a 503 the user
// can retry.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, err error) {
	id := server.RequestID(r.Context())
	if postgres.IsUnavailable(err) {
		u.Logger.WarnContext(r.Context(), "page failed: database unavailable", "request_id", id, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		u.Pages.Message(w, http.StatusServiceUnavailable, "Try again in a moment", MessagePage{
			Message:   "Latchkey cannot reach its database just now. Try again in a moment.",
			RequestID: id,
		})
		return
	}
	u.Logger.ErrorContext(r.Context(), "page failed", "request_id", id, "path", r.URL.Path, "err", err)
	u.Pages.Message(w, http.StatusInternalServerError, "Something went wrong", MessagePage{
		Message:   "Latchkey could not finish this request. Try again in a moment.",
		RequestID: id,
	})
}

// displayName is what a user is told an app is called.
func displayName(c *client.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// scopeWords says what each standard scope lets an app do.
var scopeWords = map[string]string{
	"openid":         "Know who you are when you sign in",
	"profile":        "See your name and profile details",
	"email":          "See your email address",
	"address":        "See your postal address",
	"phone":          "See your phone number",
	"offline_access": "Stay connected to your account when you are not using it",
	"roles":          "See the roles you have been given",
}

// describeScopes turns scopes into plain words, one line each; scopes an
// app defines for its own API are named as they are.
func describeScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if w, ok := scopeWords[s]; ok {
			out = append(out, w)
		} else {
			out = append(out, "Use "+s)
		}
	}
	return out
}
