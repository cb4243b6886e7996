package signin

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/oauth"
)

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
// gives their second factor (or enrols one where it is required), and
// allows the app what it asks.
func (s *Service) steps() []step {
	return []step{&password{s}, &secondFactor{s}, &enrolment{s}, &consent{s}}
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
func (f *flow) hasFactor(ctx context.Context, mfa MFA) (bool, error) {
	if f.factor == nil {
		on, err := mfa.Enabled(ctx, f.auth.UserID)
		if err != nil {
			return false, err
		}
		f.factor = &on
	}
	return *f.factor, nil
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
		// page: they are checked again as when they first arrived.
		again := r.Clone(ctx)
		again.Method = http.MethodGet
		again.URL.RawQuery = f.parked.Params.Encode()
		again.Body, again.Form, again.PostForm = http.NoBody, nil, nil
		req, err := s.Protocol.ParseAuthorize(ctx, again)
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
