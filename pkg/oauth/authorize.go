package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/token/jwt"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/session"
	"github.com/latchkey/latchkey/pkg/ui"
)

// Authorize serves the authorization endpoint, by GET or POST (OpenID
// Connect Core §3.1.2.1). fosite parses and checks the request; this
// handler decides whether the user must sign in or consent first, parks
// the request while they do (pkg/session), and answers once they have.
func (p *Provider) Authorize(w http.ResponseWriter, r *http.Request) {
	p.authorize(w, r, "", session.Pending{Started: time.Now()})
}

// Resume carries on with a parked request once the login or consent page
// is done with it. The request's parameters come from the session, never
// from this URL.
func (p *Provider) Resume(w http.ResponseWriter, r *http.Request) {
	handle := r.URL.Query().Get("request")
	pending, ok := p.sessions.Pending(r.Context(), handle)
	if !ok {
		p.pages.Message(w, http.StatusBadRequest, "Start again", ui.MessagePage{
			Message: "This sign-in request has expired or was already used. Go back to the app you came from and sign in again.",
		})
		return
	}
	parked := r.Clone(r.Context())
	parked.Method = http.MethodGet
	parked.URL.RawQuery = pending.Params.Encode()
	parked.Body, parked.Form, parked.PostForm = http.NoBody, nil, nil
	p.authorize(w, parked, handle, pending)
}

// step is what a request needs before it can be answered.
type step int

const (
	answer step = iota
	signIn
	// secondFactor asks a signed-in user for their TOTP code alone: to
	// step up to MFA, or to prove again who they are.
	secondFactor
	// enrol walks a user without a second factor through adding one, where
	// the sign-in must have one.
	enrol
	consent
)

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request, handle string, pending session.Pending) {
	ctx := r.Context()
	// fosite would try to use a request object before it has checked the
	// redirect URI, and fail where the error cannot be sent back. Set it
	// aside, let fosite check the rest, then refuse it properly.
	var objects []string
	if err := r.ParseForm(); err == nil {
		for _, name := range []string{"request", "request_uri"} {
			if r.Form.Has(name) {
				objects = append(objects, name)
				r.Form.Del(name)
			}
		}
	}
	ar, err := p.fosite.NewAuthorizeRequest(ctx, r)
	if tooLong := boundAuthorizeRequest(ar); tooLong != nil {
		err = tooLong
	}
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	if err := checkAuthorizeRequest(ar, objects, p.enforcePKCE); err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	requested, err := parseClaimsParameter(ar.GetRequestForm().Get("claims"))
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	pending.Params = ar.GetRequestForm()

	auth, signedIn, err := p.sessions.Current(ctx)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	var user *identity.User
	if signedIn {
		if user, err = p.users.Get(ctx, auth.UserID); errors.Is(err, identity.ErrNotFound) {
			signedIn = false
		} else if err != nil {
			p.authorizeError(w, r, ar, err)
			return
		}
	}
	next, err := p.nextStep(ctx, ar, pending, auth, signedIn, requested)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	prompts := strings.Fields(ar.GetRequestForm().Get("prompt"))
	switch {
	case next == signIn && slices.Contains(prompts, "none"):
		p.authorizeError(w, r, ar, fosite.ErrLoginRequired.WithHint("The user is not signed in, and prompt=none forbids asking them to."))
		return
	case next == consent && slices.Contains(prompts, "none"):
		p.authorizeError(w, r, ar, fosite.ErrConsentRequired.WithHint("The user has not allowed this app these scopes, and prompt=none forbids asking them to."))
		return
	case next != answer && slices.Contains(prompts, "none"):
		p.authorizeError(w, r, ar, fosite.ErrInteractionRequired.WithHint("The sign-in needs the user's second factor, and prompt=none forbids asking for it."))
		return
	case next != answer:
		if handle == "" {
			if handle, err = p.sessions.Park(ctx, pending.Params); err != nil {
				p.parkRefused(w, r, ar, err)
				return
			}
		}
		to := map[step]func(string, string) string{
			signIn:       ui.LoginURL,
			secondFactor: ui.SecondFactorURL,
			enrol:        ui.EnrolURL,
			consent:      ui.ConsentURL,
		}[next](p.base, handle)
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}

	s := p.signInSession(ar, pending, auth, user, requested)
	if err := p.addRoles(ctx, ar, s); err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	resp, err := p.fosite.NewAuthorizeResponse(ctx, ar, s)
	if err != nil {
		p.authorizeError(w, r, ar, err)
		return
	}
	resp.AddParameter("iss", p.issuer)
	if handle != "" {
		p.sessions.Finish(ctx, handle)
	}
	p.fosite.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// checkAuthorizeRequest refuses, before the user is asked anything, what
// fosite would refuse only once the user had signed in (PKCE, prompt), or
// not at all (a code_challenge no verifier can match), and what fosite would
// accept but Latchkey does not offer: request objects (saying so beats
// ignoring parameters the client relies on) and responses outside the
// query, where iss could not be added to errors.
func checkAuthorizeRequest(ar fosite.AuthorizeRequester, objects []string, enforcePKCE bool) error {
	form := ar.GetRequestForm()
	switch {
	case slices.Contains(objects, "request"):
		return fosite.ErrRequestNotSupported.WithHint("Request objects are not supported; send the parameters themselves.")
	case slices.Contains(objects, "request_uri"):
		return fosite.ErrRequestURINotSupported.WithHint("Request objects are not supported; send the parameters themselves.")
	case form.Get("response_mode") != "" && form.Get("response_mode") != "query":
		return fosite.ErrUnsupportedResponseMode.WithHintf("response_mode %q is not supported; Latchkey answers in the query.", form.Get("response_mode"))
	case form.Get("code_challenge") == "" && (enforcePKCE || ar.GetClient().IsPublic()):
		return fosite.ErrInvalidRequest.WithHint("PKCE is required: send code_challenge with code_challenge_method S256.")
	case form.Get("code_challenge") != "" && form.Get("code_challenge_method") != "S256":
		return fosite.ErrInvalidRequest.WithHint("code_challenge_method must be S256; plain is not accepted.")
	case form.Get("code_challenge") != "" && !validCodeChallenge.MatchString(form.Get("code_challenge")):
		return fosite.ErrInvalidRequest.WithHint("code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - _: the base64url encoding, without padding, of the SHA-256 of the code_verifier (RFC 7636 §4.2).")
	}
	prompts := strings.Fields(form.Get("prompt"))
	for _, pr := range prompts {
		if !slices.Contains(promptValues, pr) {
			return fosite.ErrInvalidRequest.WithHintf("prompt %q is not supported; use none, login or consent.", pr)
		}
	}
	if slices.Contains(prompts, "none") && len(prompts) > 1 {
		return fosite.ErrInvalidRequest.WithHint("prompt=none cannot be combined with other values.")
	}
	return nil
}

// promptValues are the prompt values Latchkey honours.
var promptValues = []string{"none", "login", "consent"}

// validCodeChallenge is what a code_challenge may be (RFC 7636 §4.2): the
// base64url alphabet, 43 characters for S256 and at most 128 for any
// method. Anything else can never match a verifier, so the user would sign
// in for a code that cannot be redeemed.
var validCodeChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43,128}$`)

// nextStep decides what the request still needs: the user signed in (at
// all, and as the user the id_token_hint names); proving who they are
// again (prompt=login, max_age), with their second factor alone if they
// have one; a second factor where the app or the request demands one
// (require_mfa, acr_values, an essential acr), enrolling one if they have
// none and it is required; their consent; or nothing. A refusal on the
// consent page ends the request with access_denied.
func (p *Provider) nextStep(ctx context.Context, ar fosite.AuthorizeRequester, pending session.Pending,
	auth session.Auth, signedIn bool, requested requestedClaims) (step, error) {
	form := ar.GetRequestForm()
	if !signedIn {
		return signIn, nil
	}
	if hint := form.Get("id_token_hint"); hint != "" {
		sub, err := p.hintSubject(ctx, hint)
		if err != nil {
			return 0, err
		}
		if sub != auth.UserID {
			return signIn, nil
		}
	}
	hasFactor, err := p.mfa.Enabled(ctx, auth.UserID)
	if err != nil {
		return 0, err
	}
	again := signIn
	if hasFactor {
		again = secondFactor
	}
	if slices.Contains(strings.Fields(form.Get("prompt")), "login") && auth.AuthTime.Before(pending.Started) {
		return again, nil
	}
	if maxAge, err := strconv.ParseInt(form.Get("max_age"), 10, 64); err == nil && maxAge >= 0 {
		if auth.AuthTime.Add(time.Duration(maxAge) * time.Second).Before(pending.Started) {
			return again, nil
		}
	}
	c := ar.GetClient().(*client.Client)
	essential := requested.IDToken["acr"].Essential && slices.Contains(requested.IDToken["acr"].Values, identity.ACRMFA)
	if (c.RequireMFA || essential || asksForMFA(form, requested)) && !slices.Contains(auth.AMR, identity.AMRMFA) {
		switch {
		case hasFactor:
			return secondFactor, nil
		case c.RequireMFA || essential:
			return enrol, nil
		}
		// acr_values only states a preference: the app learns from acr
		// that it got a password sign-in, and decides.
	}
	if acr := requested.IDToken["acr"]; acr.Essential && len(acr.Values) > 0 && achievedACR(auth, requested) == "" {
		return 0, fosite.ErrAccessDenied.WithHintf("The authentication context %s cannot be met.", strings.Join(acr.Values, " "))
	}

	switch {
	case pending.Denied:
		return 0, fosite.ErrAccessDenied.WithHint("The user denied the request.")
	case c.SkipConsent, pending.Consented:
		return answer, nil
	case slices.Contains(strings.Fields(form.Get("prompt")), "consent"):
		return consent, nil
	}
	allowed, err := p.consentCovers(ctx, auth.UserID, c, ar.GetRequestedScopes())
	if err != nil || !allowed {
		return consent, err
	}
	return answer, nil
}

// hintSubject returns the subject of an ID token Latchkey issued, expired
// or not, as id_token_hint may be (OpenID Connect Core §3.1.2.1).
func (p *Provider) hintSubject(ctx context.Context, hint string) (string, error) {
	t, err := p.idSigner.Decode(ctx, hint)
	var ve *jwt.ValidationError
	if err != nil && !(errors.As(err, &ve) && ve.Errors == jwt.ValidationErrorExpired) {
		return "", fosite.ErrInvalidRequest.WithHint("The id_token_hint is not an ID token this server issued.")
	}
	if iss, _ := t.Claims["iss"].(string); iss != p.issuer {
		return "", fosite.ErrInvalidRequest.WithHint("The id_token_hint was issued by another server.")
	}
	sub, _ := t.Claims["sub"].(string)
	return sub, nil
}

// signInSession is the session a code is issued with: who signed in, when
// and how, and the claims the grant's scopes put in the ID token. It grants
// every scope requested: fosite has checked that the client may ask for
// them, and the user has allowed them.
//
// The claims parameter requests claims; it does not grant them (OpenID
// Connect Core §5.5): a claim is released only if a granted scope covers
// it, and every claim a granted scope covers is already in the ID token
// and at userinfo. So the parameter adds no claims; what it still does is
// ask for an acr (achievedACR, nextStep).
func (p *Provider) signInSession(ar fosite.AuthorizeRequester, pending session.Pending, auth session.Auth,
	user *identity.User, requested requestedClaims) *Session {
	for _, s := range ar.GetRequestedScopes() {
		ar.GrantScope(s)
	}
	audience := ar.GetRequestedAudience()
	if len(audience) == 0 {
		audience = ar.GetClient().GetAudience()
	}
	for _, a := range audience {
		ar.GrantAudience(a)
	}

	s := NewSession()
	s.Subject = user.ID
	claims := s.Claims
	claims.Subject = user.ID
	claims.AuthTime = auth.AuthTime
	claims.RequestedAt = pending.Started
	claims.AuthenticationMethodsReferences = auth.AMR
	claims.AuthenticationContextClassReference = achievedACR(auth, requested)
	for k, v := range user.ClaimValues(identity.ClaimsForScopes(ar.GetGrantedScopes())) {
		claims.Extra[k] = v
	}
	claims.Extra["sid"] = auth.SID
	if c, ok := ar.GetClient().(*client.Client); ok && c.IDTokenSignedResponseAlg != "" {
		s.Headers.Extra[algHeader] = c.IDTokenSignedResponseAlg
	}
	return s
}

// asksForMFA reports whether the request prefers a sign-in with a second
// factor, by acr_values or a voluntary acr in the claims parameter.
func asksForMFA(form url.Values, requested requestedClaims) bool {
	return slices.Contains(strings.Fields(form.Get("acr_values")), identity.ACRMFA) ||
		slices.Contains(requested.IDToken["acr"].Values, identity.ACRMFA)
}

// achievedACR is the acr to state for a sign-in: what it achieved, or, if
// the claims parameter lists the values it accepts, the strongest of those
// the sign-in meets (a sign-in with a second factor meets the password
// level too). It is "" when an essential acr list cannot be met.
func achievedACR(auth session.Auth, requested requestedClaims) string {
	achieved := identity.ACRFor(auth.AMR)
	acr := requested.IDToken["acr"]
	if len(acr.Values) == 0 || slices.Contains(acr.Values, achieved) {
		return achieved
	}
	if achieved == identity.ACRMFA && slices.Contains(acr.Values, identity.ACRPassword) {
		return identity.ACRPassword
	}
	if acr.Essential {
		return ""
	}
	return achieved
}

// authorizeError answers a failed authorization request. If fosite could
// not confirm the client and its redirect URI, the browser must not be sent
// anywhere (RFC 9700 §4.1.1): the user sees a page. Otherwise the error goes
// back to the app, with iss (RFC 9207) so that the app knows which server
// it comes from.
func (p *Provider) authorizeError(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, err error) {
	rfc := protocolError(err)
	id := server.RequestID(r.Context())
	if rfc.CodeField >= http.StatusInternalServerError {
		p.logger.ErrorContext(r.Context(), "authorization request failed", "request_id", id, "error", rfc.ErrorField, "cause", err)
	}
	if ar == nil || !ar.IsRedirectURIValid() {
		status := http.StatusBadRequest
		if rfc.CodeField == http.StatusServiceUnavailable {
			// Without the database the client, and so where to send the
			// answer, cannot be checked: the user is told, and retries.
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "5")
		}
		p.pages.Problem(w, status, ui.AuthorizationProblem(ui.AuthorizationError{
			Code: rfc.ErrorField, Description: rfc.GetDescription(),
			ClientKnown: ar != nil && ar.GetClient() != nil, RedirectKnown: ar != nil && ar.IsRedirectURIValid(),
			RequestID: id,
		}))
		return
	}
	to := *ar.GetRedirectURI()
	q := to.Query()
	q.Set("error", rfc.ErrorField)
	q.Set("error_description", rfc.GetDescription())
	if state := ar.GetState(); state != "" {
		q.Set("state", state)
	}
	q.Set("iss", p.issuer)
	to.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	// fosite has matched the redirect URI exactly against the client's
	// registered ones before it handed us ar, so this goes nowhere the
	// client did not register.
	http.Redirect(w, r, to.String(), http.StatusSeeOther) // #nosec G710 -- a registered redirect URI
}

// claimRequest is one member of the claims parameter (OpenID Connect Core
// §5.5.1).
type claimRequest struct {
	Essential bool     `json:"essential"`
	Value     string   `json:"value"`
	Values    []string `json:"values"`
}

type claimRequests map[string]claimRequest

// requestedClaims is what Latchkey takes from the claims parameter: the
// ID token's acr request. The other claims it names are released only as
// the granted scopes allow (signInSession), with or without it.
type requestedClaims struct {
	IDToken claimRequests `json:"id_token"`
}

// parseClaimsParameter reads the claims parameter, all of which must be as
// OpenID Connect Core §5.5 describes. A member given as null asks for the
// claim with no further conditions.
func parseClaimsParameter(raw string) (requestedClaims, error) {
	var rc requestedClaims
	if raw == "" {
		return rc, nil
	}
	var doc struct {
		IDToken  map[string]*claimRequest `json:"id_token"`
		Userinfo map[string]*claimRequest `json:"userinfo"`
	}
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return rc, fosite.ErrInvalidRequest.WithHint("The claims parameter is not a JSON object as OpenID Connect Core §5.5 describes.")
	}
	conv := func(in map[string]*claimRequest) claimRequests {
		out := claimRequests{}
		for name, c := range in {
			if c == nil {
				c = &claimRequest{}
			}
			if c.Value != "" {
				c.Values = append(c.Values, c.Value)
			}
			out[name] = *c
		}
		return out
	}
	rc.IDToken = conv(doc.IDToken)
	return rc, nil
}
