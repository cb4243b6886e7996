package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/oauth"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/ui"
)

// authorize serves the authorization endpoint, by GET or POST (OpenID
// Connect Core §3.1.2.1): pkg/oauth reads and checks the request, and the
// sign-in takes it from there (proceed).
func (s *Service) authorize(w http.ResponseWriter, r *http.Request) {
	started := time.Now()
	req, err := s.Protocol.ParseAuthorize(r.Context(), r)
	if err != nil {
		s.authorizeError(w, r, req, err)
		return
	}
	f := &flow{req: req, parked: Pending{Params: req.Params(), Started: started}}
	if err := s.who(r.Context(), f); err != nil {
		s.authorizeError(w, r, req, err)
		return
	}
	s.proceed(w, r, f)
}

// resume carries on with a parked request: after enrolment shows the
// recovery codes, and for a browser that comes back to it. The request's
// parameters come from the session, never from this URL.
func (s *Service) resume(w http.ResponseWriter, r *http.Request) {
	if f := s.load(w, r, r.URL.Query().Get("request")); f != nil {
		s.proceed(w, r, f)
	}
}

// proceed takes the sign-in f as far as it can go without the user: to the
// page of the first step it still needs, parking its request first, or,
// when it needs none, back to the app with the answer. A request with
// prompt=none that needs a step gets that step's error instead (OpenID
// Connect Core §3.1.2.6). A user who refused on the consent page gets
// access_denied.
func (s *Service) proceed(w http.ResponseWriter, r *http.Request, f *flow) {
	ctx := r.Context()
	if f.parked.Denied && f.req.IsDevice() {
		s.Sessions.Finish(ctx, f.handle)
		s.answerDevice(w, r, f)
		return
	}
	if f.parked.Denied {
		s.Sessions.Finish(ctx, f.handle)
		s.authorizeError(w, r, f.req, fosite.ErrAccessDenied.WithHint("The user denied the request."))
		return
	}
	for _, st := range s.steps() {
		need, err := st.needed(ctx, f)
		if err != nil {
			s.authorizeError(w, r, f.req, err)
			return
		}
		if !need {
			continue
		}
		if f.req.Prompt("none") {
			s.authorizeError(w, r, f.req, st.promptNone())
			return
		}
		if f.handle == "" {
			if f.handle, err = s.Sessions.Park(ctx, f.parked.Params); err != nil {
				s.parkRefused(w, r, f.req, err)
				return
			}
		}
		http.Redirect(w, r, s.pageURL(st.path(), f.handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return
	}
	// The request is answered now, with a code or an error: its handle is
	// spent. (Before the answer is written, which saves the session.)
	if f.handle != "" {
		s.Sessions.Finish(ctx, f.handle)
	}
	if f.req.IsDevice() {
		s.answerDevice(w, r, f)
		return
	}
	err := f.req.Unmet(f.auth.AMR)
	if err == nil {
		err = s.Protocol.Approve(ctx, w, f.req, oauth.SignIn{User: f.user, SID: f.auth.SID,
			AuthTime: f.auth.AuthTime, AMR: f.auth.AMR, Started: f.parked.Started})
	}
	if err != nil {
		s.authorizeError(w, r, f.req, err)
	}
}

// next sends the browser on once the user has done what a step asked: on
// with the parked request, or to their account page if there is none.
func (s *Service) next(w http.ResponseWriter, r *http.Request, f *flow) {
	if f.req == nil {
		http.Redirect(w, r, s.Base+AccountPath, http.StatusSeeOther)
		return
	}
	if err := s.who(r.Context(), f); err != nil {
		s.fail(w, r, err)
		return
	}
	f.factor = nil
	s.proceed(w, r, f)
}

// authorizeError answers a failed authorization request: back to the app
// where the protocol allows (oauth.Provider.AuthorizeError), and otherwise
// with a page, since the browser must not be sent to an address nobody
// confirmed.
func (s *Service) authorizeError(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, err error) {
	if req != nil && req.IsDevice() {
		s.deviceProblem(w, r, err)
		return
	}
	answered, rfc := s.Protocol.AuthorizeError(w, r, req, err)
	if answered {
		return
	}
	status := http.StatusBadRequest
	if rfc.CodeField == http.StatusServiceUnavailable {
		// Without the database the client, and so where to send the
		// answer, cannot be checked: the user is told, and retries.
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "5")
	}
	s.Pages.Problem(w, status, ui.AuthorizationProblem(ui.AuthorizationError{
		Code: rfc.ErrorField, Description: rfc.GetDescription(),
		ClientKnown: req != nil && req.Client != nil, RedirectKnown: false,
		RequestID: server.RequestID(r.Context()),
	}))
}

// parkRefused answers an authorization request that could not be parked
// because its address is over SessionConfig.ParkRateLimit: a page, since a
// browser is waiting on it, that says how long to wait.
func (s *Service) parkRefused(w http.ResponseWriter, r *http.Request, req *oauth.AuthorizeRequest, err error) {
	var limited *ParkLimitError
	if !errors.As(err, &limited) {
		s.authorizeError(w, r, req, err)
		return
	}
	s.metrics().RateLimited("authorize")
	secs := int(limited.RetryAfter/time.Second) + 1
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.Pages.Message(w, http.StatusTooManyRequests, "Too many sign-in requests", ui.MessagePage{
		Message:   fmt.Sprintf("There have been too many sign-in requests from your network. Wait %d seconds, then go back to the app and try again.", secs),
		RequestID: server.RequestID(r.Context()),
	})
}

// A step is one thing a sign-in may need from the user before the app gets
// its answer: a page to show, and the form it takes. Each step is its own
// type in its own file, and says itself when a sign-in needs it; steps
// lists them in the order a sign-in takes them. A new way to sign in is a
// new step.
type step interface {
	// path is where the step's page is, under the issuer.
	path() string
	// needed reports whether the sign-in f still needs the step.
	needed(ctx context.Context, f *flow) (bool, error)
	// promptNone is the error a request with prompt=none gets when it
	// would need the step, since it forbids asking the user anything
	// (OpenID Connect Core §3.1.2.6).
	promptNone() *fosite.RFC6749Error
	// show serves the step's page, and submit its form, saying whether the
	// attempt failed (see attempt).
	show(w http.ResponseWriter, r *http.Request)
	submit(w http.ResponseWriter, r *http.Request) (failed bool)
}

// steps are the steps a sign-in may take, in order: the user signs in,
// gives their second factor (a passkey first, if they have one, or a
// code; or enrols one where it is required, a passkey where the app
// requires the phishing-resistant level), and allows the app what it
// asks.
func (s *Service) steps() []step {
	return []step{&password{s}, &passkeyFactor{s}, &secondFactor{s}, &enrolment{s}, &passkeyEnrolment{s}, &consent{s}}
}

// flow is a sign-in in progress: the authorization request it serves, if
// any, and who the browser's user is so far.
type flow struct {
	// handle names the parked request, "" before it is parked or for a
	// sign-in without one (the account page's).
	handle string
	parked Pending
	// req is the parked request, parsed again; nil without one.
	req *oauth.AuthorizeRequest
	// auth is who is signed in, if signedIn; user is that user.
	auth     Auth
	signedIn bool
	user     *identity.User
	// factor caches whether the user has a second factor (hasFactor).
	factor *bool
}

// hasFactor reports whether the signed-in user has a second factor.
func (f *flow) hasFactor(ctx context.Context, s *Service) (bool, error) {
	if f.factor == nil {
		on, err := s.hasSecondFactor(ctx, f.auth.UserID)
		if err != nil {
			return false, err
		}
		f.factor = &on
	}
	return *f.factor, nil
}

// hasSecondFactor reports whether the user has a second factor of any
// kind: an authenticator app or a passkey.
func (s *Service) hasSecondFactor(ctx context.Context, userID string) (bool, error) {
	on, err := s.MFA.Enabled(ctx, userID)
	if err != nil || on {
		return on, err
	}
	return s.Passkeys.Has(ctx, userID)
}

// secondFactorWanted reports whether the signed-in user must give a
// second factor before the request is answered: to prove who they are
// again (prompt=login, max_age), or because the app or the request wants
// a level (acr) the sign-in has not reached. Whether they can is
// hasFactor's to say, and which factor can reach it, the steps'.
func (f *flow) secondFactorWanted() bool {
	return f.reauthDue() || !identity.ACRMeets(identity.ACRFor(f.auth.AMR), f.acrWanted())
}

// codeWanted reports whether a code from the user's authenticator app
// would do what the sign-in still needs: prove who they are again, or
// reach the MFA level. A code never reaches the phishing-resistant level,
// so an app that wants that level gets a passkey ceremony, never a code
// prompt; the one exception is a sign-in that must reach it and has no
// second factor yet, where the code is the proof the user gives before
// adding the passkey the app requires (passkeyEnrolment).
func (f *flow) codeWanted() bool {
	switch {
	case f.reauthDue():
		return true
	case f.hasMFA():
		return false
	case f.acrWanted() == identity.ACRMFA:
		return true
	}
	return f.acrRequired() == identity.ACRPhishingResistant
}

// acrWanted is the level the request wants the sign-in to reach
// (oauth.AuthorizeRequest.WantedACR); acrRequired the level it must
// reach before it is answered (RequiredACR). Both are "" without a
// request.
func (f *flow) acrWanted() string {
	if f.req == nil {
		return ""
	}
	return f.req.WantedACR()
}

func (f *flow) acrRequired() string {
	if f.req == nil {
		return ""
	}
	return f.req.RequiredACR()
}

// phishingResistantWanted reports whether the request wants the
// phishing-resistant level, which only a passkey reaches.
func (f *flow) phishingResistantWanted() bool {
	return f.acrWanted() == identity.ACRPhishingResistant
}

// reauthDue reports whether the request wants the user to prove who they
// are again: prompt=login, and a sign-in from before the request arrived,
// or max_age, and a sign-in older than it allows.
func (f *flow) reauthDue() bool {
	if f.req == nil {
		return false
	}
	if f.req.Prompt("login") && f.auth.AuthTime.Before(f.parked.Started) {
		return true
	}
	maxAge, ok := f.req.MaxAge()
	return ok && f.auth.AuthTime.Add(maxAge).Before(f.parked.Started)
}

// hasMFA reports whether the sign-in was made with a second factor.
func (f *flow) hasMFA() bool { return slices.Contains(f.auth.AMR, identity.AMRMFA) }

// load returns the sign-in of the browser r comes from, serving the parked
// request handle, or none when handle is "". When it cannot (the request
// is gone, or cannot go on), it has answered, and returns nil.
func (s *Service) load(w http.ResponseWriter, r *http.Request, handle string) *flow {
	ctx := r.Context()
	f := &flow{handle: handle}
	if handle != "" {
		var ok bool
		if f.parked, ok = s.Sessions.Pending(ctx, handle); !ok {
			s.expired(w)
			return nil
		}
		// The request's parameters come from the session, never from the
		// page: they are checked again as when they first arrived, as the
		// parked request they are (a pushed one's request_uri is spent).
		again := r.Clone(ctx)
		again.Method = http.MethodGet
		again.URL.RawQuery = f.parked.Params.Encode()
		again.Body, again.Form, again.PostForm = http.NoBody, nil, nil
		var req *oauth.AuthorizeRequest
		var err error
		if oauth.IsDeviceParams(f.parked.Params) {
			// A device's request (device.go) is read again from the store:
			// it may have expired, or been decided in another tab.
			if req, err = s.Protocol.ParseDevice(ctx, f.parked.Params); err != nil {
				s.deviceProblem(w, r, err)
				return nil
			}
		} else {
			req, err = s.Protocol.ParseAuthorize(oauth.ParkedRequest(ctx), again)
		}
		if err != nil {
			s.authorizeError(w, r, req, err)
			return nil
		}
		f.req = req
	}
	if err := s.who(ctx, f); err != nil {
		s.fail(w, r, err)
		return nil
	}
	return f
}

// parkedSignIn returns the sign-in that a step for a signed-in user acts
// on (enrolment, consent): a parked request and the user signed in. When
// there is none, it has answered, sending a browser that is not signed in
// to sign in first, and returns nil.
func (s *Service) parkedSignIn(w http.ResponseWriter, r *http.Request, handle string) *flow {
	if handle == "" {
		s.expired(w)
		return nil
	}
	f := s.load(w, r, handle)
	if f != nil && !f.signedIn {
		http.Redirect(w, r, s.pageURL(LoginPath, handle), http.StatusSeeOther) // #nosec G710 -- our own page; the handle is query-escaped
		return nil
	}
	return f
}

// who fills in who is signed in on the browser of ctx. A user deleted
// since is nobody.
func (s *Service) who(ctx context.Context, f *flow) error {
	var err error
	if f.auth, f.signedIn, err = s.Sessions.Current(ctx); err != nil || !f.signedIn {
		return err
	}
	f.user, err = s.Users.Get(ctx, f.auth.UserID)
	if errors.Is(err, identity.ErrNotFound) {
		f.signedIn, f.user = false, nil
		return nil
	}
	return err
}

// formTarget is where a page's form may lead once the request is answered:
// the app's redirect URI, which the page's Content-Security-Policy must
// allow; "" without a request.
func (f *flow) formTarget() string {
	if f.req == nil {
		return ""
	}
	return f.req.RedirectURI()
}

// clientName is the name of the app the sign-in is for, "" without one.
func (f *flow) clientName() string {
	if f.req == nil {
		return ""
	}
	return appName(f.req.Client)
}
