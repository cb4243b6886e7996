package signin

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/device"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/oauth"
	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/ui"
)

// Paths of the pages, relative to the issuer.
const (
	LoginPath        = "/login"
	SecondFactorPath = "/login/otp"
	EnrolPath        = "/login/enrol"
	ConsentPath      = "/consent"
	AccountPath      = "/account"
)

// Protocol is the authorization endpoint's protocol side (pkg/oauth): it
// reads and checks requests, answers them, and reads ID tokens it issued.
type Protocol interface {
	ParseAuthorize(ctx context.Context, r *http.Request) (*oauth.AuthorizeRequest, error)
	AuthorizeError(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, err error) (bool, *fosite.RFC6749Error)
	Approve(ctx context.Context, w http.ResponseWriter, req *oauth.AuthorizeRequest, in oauth.SignIn) error
	IDTokenHint(ctx context.Context, hint string) (oauth.Hint, error)

	// The device grant's (RFC 8628): finding a device's request by the
	// user code typed at DevicePath, reading a parked one again, and
	// answering it.
	DeviceRequest(ctx context.Context, userCode string) (*oauth.AuthorizeRequest, error)
	ParseDevice(ctx context.Context, params url.Values) (*oauth.AuthorizeRequest, error)
	ApproveDevice(ctx context.Context, req *oauth.AuthorizeRequest, in oauth.SignIn) error
	DenyDevice(ctx context.Context, req *oauth.AuthorizeRequest, userID string) error
}

// Users is the user directory as the sign-in uses it (pkg/identity).
type Users interface {
	Get(ctx context.Context, id string) (*identity.User, error)
	Authenticate(ctx context.Context, email, password string, device identity.Device) (*identity.User, error)
	// Update, SetPassword and Delete are the account page's own changes.
	Update(ctx context.Context, id string, edit func(*identity.User) error) (*identity.User, error)
	SetPassword(ctx context.Context, id, password string) error
	Delete(ctx context.Context, id string) error
	Allows(ctx context.Context, userID string, app identity.App, scopes []string) (bool, error)
	GrantConsent(ctx context.Context, userID, clientID string, scopes []string) error
	RevokeConsent(ctx context.Context, userID, clientID string) (bool, error)
	Consents(ctx context.Context, userID string) ([]identity.Consent, error)
	Sessions(ctx context.Context, userID string) ([]identity.BrowserSession, error)
	EndSession(ctx context.Context, userID, sid string) (bool, error)
}

// MFA is the users' second factors as the sign-in uses them (pkg/identity).
type MFA interface {
	Enabled(ctx context.Context, userID string) (bool, error)
	Verify(ctx context.Context, userID, code string) error
	Enrol(ctx context.Context, u *identity.User) (identity.Enrolment, error)
	Confirm(ctx context.Context, userID, code string) ([]string, error)
	Disable(ctx context.Context, userID, code string) error
	RegenerateRecoveryCodes(ctx context.Context, userID string) ([]string, error)
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)
}

// Clients finds the apps that send users to sign out (pkg/client).
type Clients interface {
	Get(ctx context.Context, id string) (*client.Client, error)
}

// Observer is told how sign-in attempts end, for metrics. Every argument
// is one of a few fixed words, never who tried.
type Observer interface {
	// Login is told of each password, or passkey instead of one
	// (passwordless), submitted: "succeeded" (the password is right; a
	// second factor may follow), "failed" or "error". An
	// account throttled after too many failures fails like a wrong
	// password: identity.Manager.Authenticate tells them apart to nobody,
	// and the audit log has them.
	Login(result string)
	// SecondFactor is told of each code or passkey answer submitted, at
	// sign-in, step-up or on the account page: "succeeded", "failed",
	// "throttled" (the account must wait; the code was not checked) or
	// "error".
	SecondFactor(result string)
	// RateLimited is told of each attempt refused because its address is
	// over a limit: "sign_in" (FailureLimit or AttemptLimit) or
	// "authorize" (parking authorization requests) or "mail" (asking
	// for mail: MailLimit) or "device" (wrong user codes at DevicePath).
	RateLimited(endpoint string)
}

// noObserver is the Observer of a sign-in without metrics.
type noObserver struct{}

func (noObserver) Login(string)        {}
func (noObserver) SecondFactor(string) {}
func (noObserver) RateLimited(string)  {}

// Service is the browser sign-in. Every field is required but Metrics.
type Service struct {
	Protocol Protocol
	Users    Users
	MFA      MFA
	Passkeys Passkeys
	Clients  Clients
	Sessions *Sessions
	// Devices recognises browsers that signed in to an account before, so
	// that their wrong passwords count apart from unknown devices'.
	Devices *device.Cookies
	Pages   *ui.Pages
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

	// Accounts makes and follows the links Latchkey mails: password
	// resets, verifications, invitations and sign-ups (links.go).
	Accounts Accounts
	// MailLimit limits the requests that send mail (forgot password,
	// sign-up, a change of address) per IP address on this node.
	MailLimit *ratelimit.Limiter
	// SignUp opens the sign-up page (LATCHKEY_SIGNUP=open), limited to
	// addresses at SignUpDomains if there are any.
	SignUp        bool
	SignUpDomains []string
	// AccountDeletion lets users delete their own account from the account
	// page (LATCHKEY_ACCOUNT_DELETION).
	AccountDeletion bool
	// Trust keeps the browsers users trust to skip the second factor;
	// nil, or turned off, trusts none.
	Trust Trust
	// Ceremonies carries the sign-in page's passwordless passkey
	// ceremonies; nil offers no passwordless sign-in.
	Ceremonies *Ceremonies
	// Risk weighs each password sign-in (pkg/risk); nil weighs none.
	Risk Risk
	// APIKeys makes the users' personal API keys (pkg/apikey); nil, or
	// with no personal scopes, offers none.
	APIKeys APIKeys
	// Device serves DevicePath, where users approve devices (RFC 8628);
	// nil serves no such page.
	Device *DeviceFlow
}

// Mount adds the sign-in's routes to r: the authorization endpoint and the
// pages it leads to, the account page and the end-session endpoint, all
// under the browser's session. Every POST of a page's form is checked for
// cross-origin use.
func (s *Service) Mount(r chi.Router) {
	// A session that cannot be loaded or saved (the database is down) is
	// answered with the sign-in's own error page.
	s.Sessions.scs.ErrorFunc = s.fail
	csrf := http.NewCrossOriginProtection()
	r.Group(func(r chi.Router) {
		r.Use(s.Sessions.Handler)
		post := func(path string, h http.Handler) { r.Method(http.MethodPost, path, csrf.Handler(h)) }
		// The authorization request itself comes from the app's page, on
		// another site: it is not one of our forms.
		r.Get(discovery.AuthorizationPath, s.authorize)
		r.Post(discovery.AuthorizationPath, s.authorize)
		r.Get(discovery.AuthorizationResumePath, s.resume)
		for _, st := range s.steps() {
			r.Get(st.path(), st.show)
			post(st.path(), s.attempt(st.submit))
		}
		if s.Device != nil {
			// The user code is guessed at like a password: an attempt,
			// and counted per address and in all in the database too.
			r.Get(DevicePath, s.showDevice)
			post(DevicePath, s.attempt(s.submitDevice))
		}
		// The sign-in page's other form: a passkey instead of the password.
		post(PasswordlessPath, s.attempt(s.passwordless))
		r.Get(AccountPath, s.showAccount)
		r.Get("/", s.showHome)
		// The sensitive actions may ask for the password again, so they are
		// attempts like the sign-in forms.
		for path, h := range map[string]http.HandlerFunc{
			// The password form checks the current password; deletion may
			// ask for it again (reauthenticated).
			"/password": s.attempt(s.accountChangePassword),
			"/profile":  s.accountProfile,
			"/delete":   s.attempt(s.accountDelete),

			"/mfa/enrol":          s.attempt(s.accountEnrol),
			"/mfa/confirm":        s.attempt(s.accountConfirm),
			"/mfa/disable":        s.attempt(s.accountDisableMFA),
			"/mfa/recovery-codes": s.attempt(s.accountRecoveryCodes),
			"/apps/revoke":        s.accountRevokeApp,

			// Adding or removing a passkey changes how the user signs in,
			// so it may ask for the password again; renaming does not.
			"/passkeys/add":    s.attempt(s.accountAddPasskey),
			"/passkeys/finish": s.attempt(s.accountFinishPasskey),
			"/passkeys/rename": s.accountRenamePasskey,
			"/passkeys/remove": s.attempt(s.accountRemovePasskey),
			"/sessions/revoke": s.attempt(s.accountEndSession),
			"/devices/forget":  s.accountForgetDevice,

			// A personal API key outlives the session, so making one may
			// ask for the password again; revoking takes power away, and
			// does not.
			"/api-keys/create": s.attempt(s.accountCreateAPIKey),
			"/api-keys/revoke": s.accountRevokeAPIKey,
		} {
			post(AccountPath+path, h)
		}
		s.mountLinks(r, post)
		// The end-session request comes from the app; only its own
		// confirmation form is checked (endSession).
		r.Get(discovery.EndSessionPath, s.endSession)
		r.Post(discovery.EndSessionPath, s.endSession)
	})
}

// metrics returns s.Metrics, or an Observer that counts nothing.
func (s *Service) metrics() Observer {
	if s.Metrics == nil {
		return noObserver{}
	}
	return s.Metrics
}

// pageURL is the page at path for the parked request handle, or without
// one.
func (s *Service) pageURL(path, handle string) string {
	if handle == "" {
		return s.Base + path
	}
	return s.Base + path + "?request=" + url.QueryEscape(handle)
}

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
func (s *Service) attempt(h attemptHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := ratelimit.AddressKey(server.ClientIP(r.Context()))
		ok, wait := s.AttemptLimit.Allow(key)
		var failure ratelimit.Reservation
		if ok {
			failure, ok, wait = s.FailureLimit.Reserve(key)
		}
		if !ok {
			s.metrics().RateLimited("sign_in")
			secs := int(wait/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			s.Pages.Message(w, http.StatusTooManyRequests, "Too many attempts", ui.MessagePage{
				Message: fmt.Sprintf("There have been too many sign-in attempts from your network. Wait %d seconds, then go back and try again.", secs),
			})
			return
		}
		if !h(w, r) {
			failure.Refund()
		}
	}
}

// fail logs an unexpected error and shows a page with the request ID, and
// nothing of the error itself. An unreachable database is a 503 the user
// can retry.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	id := server.RequestID(r.Context())
	if server.Unavailable(err) {
		s.Logger.WarnContext(r.Context(), "page failed: database unavailable", "request_id", id, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "5")
		s.Pages.Message(w, http.StatusServiceUnavailable, "Try again in a moment", ui.MessagePage{
			Message:   "Latchkey cannot reach its database just now. Try again in a moment.",
			RequestID: id,
		})
		return
	}
	s.Logger.ErrorContext(r.Context(), "page failed", "request_id", id, "path", r.URL.Path, "err", err)
	s.Pages.Message(w, http.StatusInternalServerError, "Something went wrong", ui.MessagePage{
		Message:   "Latchkey could not finish this request. Try again in a moment.",
		RequestID: id,
	})
}

// expired answers a page whose parked request is gone: it expired, was
// answered already, or belongs to another browser.
func (s *Service) expired(w http.ResponseWriter) {
	s.Pages.Message(w, http.StatusBadRequest, "Start again", ui.MessagePage{
		Message: "This sign-in request has expired or was already used. Go back to the app you came from and sign in again.",
	})
}

// appName is what a user is told an app is called.
func appName(c *client.Client) string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}
