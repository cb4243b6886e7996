package signin

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ory/fosite"

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
