package signin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/ui"
)

// logoutRequest is what an app asks of the end-session endpoint.
type logoutRequest struct {
	// hintSub and hintSID are the subject and sid of a valid
	// id_token_hint; "" without one.
	hintSub, hintSID string
	// badHint says an id_token_hint was sent that does not verify.
	badHint bool
	client  *client.Client
	// redirect is the app's post_logout_redirect_uri, checked against the
	// client's registered ones.
	redirect *url.URL
	state    string
}

// endSession serves RP-Initiated Logout (OpenID Connect RP-Initiated
// Logout 1.0). An app sends the browser here, by GET or POST, to sign the
// user out of Latchkey. With a valid id_token_hint for the signed-in user,
// the user is signed out at once; otherwise they are asked to confirm, so
// that a link from anywhere cannot sign them out. The browser goes back to
// the app only to a post_logout_redirect_uri registered for it, matched
// exactly, with state; otherwise the user is told they signed out.
//
// An app's server may call it too, with no browser and so no cookie
// (zitadel/oidc's rp.EndSession, oauth2-proxy's --backend-logout-url):
// then the id_token_hint names the sign-in to end, by its sid. A hint
// proves its holder was issued an ID token for that sign-in, expired or
// not (§2 lets the hint be expired; the sid still binds it to the one
// sign-in it was issued under, and that sign-in's user). A request that
// cannot be tied to a sign-in still standing is refused with 400 rather
// than answered as if it had signed someone out; a browser, which is
// signed out either way, gets the page it always got.
func (s *Service) endSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		s.logoutProblem(w, "The sign-out request could not be read.")
		return
	}
	req, problem := s.readLogoutRequest(ctx, r.Form)
	if problem != "" {
		s.logoutProblem(w, problem)
		return
	}
	auth, signedIn, err := s.Sessions.Current(ctx)
	if err != nil {
		s.logoutFailed(w, r, err)
		return
	}
	decision := r.PostFormValue("decision")
	if decision != "" {
		// The confirmation form: only this server's own page may post it.
		if err := http.NewCrossOriginProtection().Check(r); err != nil {
			http.Error(w, "cross-origin request refused", http.StatusForbidden)
			return
		}
	}
	switch {
	case decision == "stay":
		s.Pages.SignedOut(w, s.signedOutPage(req, true))
		return
	case !signedIn:
		// No sign-in on this browser, if it is one: end the sign-in the
		// hint names, which also tells its other apps (pkg/logout).
		ended, err := s.endHintedSession(ctx, req)
		if err != nil {
			s.logoutFailed(w, r, err)
			return
		}
		if !ended && !isNavigation(r) {
			s.refuseServerLogout(w, req)
			return
		}
	case decision == "logout", req.hintSub != "" && req.hintSub == auth.UserID:
		if err := s.Sessions.SignOut(ctx); err != nil {
			s.logoutFailed(w, r, err)
			return
		}
	default:
		s.confirmLogout(w, r, req, auth.UserID)
		return
	}
	if req.redirect != nil {
		http.Redirect(w, r, req.redirectWithState(), http.StatusSeeOther) // #nosec G710 -- a post_logout_redirect_uri the client registered, matched exactly (readLogoutRequest)
		return
	}
	s.Pages.SignedOut(w, s.signedOutPage(req, false))
}

// endHintedSession ends the sign-in a valid id_token_hint names by its
// sid, if it still stands and is its subject's; it reports whether it
// ended one.
func (s *Service) endHintedSession(ctx context.Context, req logoutRequest) (bool, error) {
	if req.hintSID == "" || req.client == nil {
		return false, nil
	}
	ended, err := s.Users.EndSession(ctx, req.hintSub, req.hintSID)
	if errors.Is(err, identity.ErrNotFound) {
		return false, nil
	}
	return ended, err
}

// refuseServerLogout answers a call that ended nothing, from a server
// rather than a browser, with why, as JSON in the shape of RFC 6749's
// errors: the caller must not believe the user signed out.
func (s *Service) refuseServerLogout(w http.ResponseWriter, req logoutRequest) {
	why := "No sign-in was ended: the sign-in the id_token_hint names has already ended, or is unknown."
	switch {
	case req.badHint:
		why = "The id_token_hint is not a valid ID token from this server."
	case req.hintSub == "":
		why = "No sign-in was ended: send the user's ID token as id_token_hint, or send the user's browser here."
	case req.hintSID == "":
		why = "No sign-in was ended: the id_token_hint has no sid, so it names no sign-in."
	case req.client == nil:
		why = "No sign-in was ended: name the app with client_id."
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": why})
}

// isNavigation reports whether r is a browser's navigation, rather than a
// server's call: browsers say so in Sec-Fetch-Mode, and ask for HTML.
func isNavigation(r *http.Request) bool {
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" || strings.Contains(r.Header.Get("Accept"), "text/html")
}

// signedOutPage is the page a sign-out ends on when the browser is not
// sent back to the app, with a link back to the app where one is known:
// the address the request named, with its state, else the first the app
// registered. stayed says the user chose to stay signed in.
func (s *Service) signedOutPage(req logoutRequest, stayed bool) ui.SignedOutPage {
	d := ui.SignedOutPage{Stayed: stayed, SignInURL: s.Base + LoginPath, AccountURL: s.Base + AccountPath}
	if req.client == nil {
		return d
	}
	d.App = req.client.Name
	if d.App == "" {
		d.App = req.client.ID
	}
	switch {
	case req.redirect != nil:
		d.AppURL = req.redirectWithState()
	case len(req.client.PostLogoutRedirectURIs) > 0:
		d.AppURL = req.client.PostLogoutRedirectURIs[0]
	}
	return d
}

// redirectWithState is the post_logout_redirect_uri with the request's
// state added, as the app gets it back (RP-Initiated Logout 1.0 §3).
func (req logoutRequest) redirectWithState() string {
	to := *req.redirect
	if req.state != "" {
		q := to.Query()
		q.Set("state", req.state)
		to.RawQuery = q.Encode()
	}
	return to.String()
}

// readLogoutRequest checks the parameters. It returns a problem to show the
// user, rather than an error, when the request names an app or a redirect
// that cannot be trusted; a hint that does not verify is only ignored, and
// the user is asked to confirm instead.
func (s *Service) readLogoutRequest(ctx context.Context, form url.Values) (logoutRequest, string) {
	req := logoutRequest{state: form.Get("state")}
	clientID := form.Get("client_id")
	if hint := form.Get("id_token_hint"); hint != "" {
		if h, err := s.Protocol.IDTokenHint(ctx, hint); err == nil {
			req.hintSub, req.hintSID = h.Subject, h.SID
			if clientID != "" && !slices.Contains(h.Audience, clientID) {
				return req, "The sign-out request names two different apps."
			}
			if clientID == "" && len(h.Audience) == 1 {
				clientID = h.Audience[0]
			}
		} else {
			req.badHint = true
		}
	}
	if clientID != "" {
		c, err := s.Clients.Get(ctx, clientID)
		if errors.Is(err, client.ErrNotFound) {
			return req, "The app that sent you here is not registered."
		}
		if err != nil {
			return req, "Latchkey could not look up the app that sent you here. Try again in a moment."
		}
		req.client = c
	}
	if raw := form.Get("post_logout_redirect_uri"); raw != "" {
		if req.client == nil || !slices.Contains(req.client.PostLogoutRedirectURIs, raw) {
			return req, "The app asked to send you back to an address it has not registered, so Latchkey will not."
		}
		u, err := url.Parse(raw)
		if err != nil {
			return req, "The app's return address cannot be read."
		}
		req.redirect = u
	}
	return req, ""
}

// confirmLogout asks the signed-in user whether to sign out.
func (s *Service) confirmLogout(w http.ResponseWriter, r *http.Request, req logoutRequest, userID string) {
	fields := map[string]string{}
	if req.client != nil {
		fields["client_id"] = req.client.ID
	}
	var target string
	if req.redirect != nil {
		target = req.redirect.String()
		fields["post_logout_redirect_uri"] = target
	}
	if req.state != "" {
		fields["state"] = req.state
	}
	var email string
	if u, err := s.Users.Get(r.Context(), userID); err == nil {
		email = u.Email
	} else if !errors.Is(err, identity.ErrNotFound) {
		s.logoutFailed(w, r, err)
		return
	}
	s.Pages.Logout(w, target, ui.LogoutPage{Email: email, Fields: fields, Action: s.Base + discovery.EndSessionPath})
}

func (s *Service) logoutProblem(w http.ResponseWriter, problem string) {
	s.Pages.Problem(w, http.StatusBadRequest, ui.SignOutProblem(problem, s.Base+AccountPath))
}

func (s *Service) logoutFailed(w http.ResponseWriter, r *http.Request, err error) {
	id := server.RequestID(r.Context())
	s.Logger.ErrorContext(r.Context(), "sign-out failed", "request_id", id, "err", err)
	s.Pages.Message(w, http.StatusInternalServerError, "Something went wrong", ui.MessagePage{
		Message:   "Latchkey could not sign you out. Try again in a moment.",
		RequestID: id,
	})
}
