package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
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
)

// AuthorizeRequest is an authorization request that fosite accepted and
// Latchkey checked, for pkg/signin to act on: its client and redirect URI
// are valid, so whatever becomes of it goes back to the app. It holds what
// the request asks of the sign-in, read from the request's parameters,
// which it keeps (bounded) so that the request can be parked while the
// user signs in and parsed again afterwards.
type AuthorizeRequest struct {
	ar     fosite.AuthorizeRequester
	claims requestedClaims
	// Client is the app asking; nil if the request named none Latchkey
	// knows.
	Client *client.Client
	// HintSubject is the subject of the id_token_hint, "" without one.
	HintSubject string
	// device is the ID of the device request (RFC 8628) this stands for,
	// "" for an authorization request (device.go).
	device string
}

// IsDevice reports whether the request is a device's (RFC 8628), approved
// on /device rather than answered to a redirect URI: ApproveDevice and
// DenyDevice answer it.
func (a *AuthorizeRequest) IsDevice() bool { return a.device != "" }

// Params are the request's parameters, as it may be parked and parsed
// again: only those the flow uses, each within its bound.
func (a *AuthorizeRequest) Params() url.Values { return a.ar.GetRequestForm() }

// RedirectURI is where the answer goes: the app's registered redirect URI.
// A device request has none: "".
func (a *AuthorizeRequest) RedirectURI() string {
	if a.ar.GetRedirectURI() == nil {
		return ""
	}
	return a.ar.GetRedirectURI().String()
}

// Scopes are the scopes the app asks for.
func (a *AuthorizeRequest) Scopes() []string { return a.ar.GetRequestedScopes() }

// LoginHint is the email the app suggests the user signs in with.
func (a *AuthorizeRequest) LoginHint() string { return a.Params().Get("login_hint") }

// Prompt reports whether the request's prompt includes value: "none",
// "login" or "consent" (OpenID Connect Core §3.1.2.1).
func (a *AuthorizeRequest) Prompt(value string) bool {
	return slices.Contains(strings.Fields(a.Params().Get("prompt")), value)
}

// MaxAge is how long ago the user may have last proven who they are
// (max_age), and whether the request sets one.
func (a *AuthorizeRequest) MaxAge() (time.Duration, bool) {
	n, err := strconv.ParseInt(a.Params().Get("max_age"), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// RequiredACR is the level (acr) the sign-in must reach before the app
// gets an answer: the one the app is registered to require
// (require_phishing_resistant, require_mfa), or the one the claims
// parameter names as an essential acr, the weakest of its values, since
// any of them will do; the stronger of the two. A user who cannot reach
// it must first add what it takes. "" when nothing is required.
func (a *AuthorizeRequest) RequiredACR() string {
	var required []string
	switch {
	case a.Client.RequirePhishingResistant:
		required = append(required, identity.ACRPhishingResistant)
	case a.Client.RequireMFA:
		required = append(required, identity.ACRMFA)
	}
	if acr := a.claims.IDToken["acr"]; acr.Essential {
		for _, level := range identity.ACRValues {
			if slices.Contains(acr.Values, level) {
				required = append(required, level)
				break
			}
		}
	}
	return identity.StrongestACR(required...)
}

// WantedACR is the level the sign-in should reach: the required one, or a
// stronger one the request asks for without demanding it (acr_values, as
// an RFC 9470 step-up sends, or a voluntary acr in the claims parameter).
// A user who cannot reach it signs in with what they have, and the app
// learns so from acr. "" when nothing is asked for.
func (a *AuthorizeRequest) WantedACR() string {
	asked := strings.Fields(a.Params().Get("acr_values"))
	if acr := a.claims.IDToken["acr"]; !acr.Essential {
		asked = append(asked, acr.Values...)
	}
	return identity.StrongestACR(append(asked, a.RequiredACR())...)
}

// Unmet returns an access_denied error if a sign-in proven by amr cannot
// meet the request: the level the app requires (RequiredACR), or its
// essential acr; nil otherwise. The sign-in's steps reach the level where
// the user can; this is the last word where they cannot (an issuer that
// can have no passkeys, an acr Latchkey does not know).
func (a *AuthorizeRequest) Unmet(amr []string) error {
	if required := a.RequiredACR(); !identity.ACRMeets(identity.ACRFor(amr), required) {
		return fosite.ErrAccessDenied.WithHintf("The app requires the authentication context %s, which this sign-in could not reach.", required)
	}
	if acr := a.claims.IDToken["acr"]; acr.Essential && len(acr.Values) > 0 && achievedACR(amr, a.claims, nil) == "" {
		return fosite.ErrAccessDenied.WithHintf("The authentication context %s cannot be met.", strings.Join(acr.Values, " "))
	}
	return nil
}

// ParseAuthorize reads and checks an authorization request, by GET or POST
// (OpenID Connect Core §3.1.2.1): fosite checks the client, the redirect
// URI, the response type and the scopes; Latchkey adds PKCE, prompt, the
// claims parameter, the id_token_hint and the bounds on what the request
// may hold, before the user is asked anything. The error it returns goes
// to AuthorizeError. To parse a parked request again, hand it a GET request
// whose query is the parked Params, under ParkedRequest.
//
// A request_uri from the PAR endpoint (RFC 9126 §4) is redeemed here,
// once, and its pushed parameters parsed as if they had been sent; a
// client that must push (mustPush) is refused any other request.
func (p *Provider) ParseAuthorize(ctx context.Context, r *http.Request) (*AuthorizeRequest, error) {
	// fosite would try to use a request object before it has checked the
	// redirect URI, and fail where the error cannot be sent back. Set it
	// aside, let fosite check the rest, then refuse it properly.
	var objects []string
	pushed := ""
	if err := r.ParseForm(); err == nil {
		for _, name := range []string{"request", "request_uri"} {
			if !r.Form.Has(name) {
				continue
			}
			if v := r.Form.Get(name); name == "request_uri" && p.par && isPushedRequestURI(v) {
				pushed = v
			} else {
				objects = append(objects, name)
			}
			r.Form.Del(name)
		}
	}
	if pushed != "" {
		// RFC 9126 §4: the pushed parameters are the request; of the
		// others only client_id counts, and it must be the pusher's.
		params, err := p.redeemPushed(ctx, pushed, r.Form.Get("client_id"))
		if err != nil {
			return &AuthorizeRequest{}, err
		}
		again := r.Clone(ctx)
		again.Method = http.MethodGet
		again.URL.RawQuery = params.Encode()
		again.Body, again.Form, again.PostForm = http.NoBody, nil, nil
		r = again
	}
	ar, err := p.fosite.NewAuthorizeRequest(ctx, r)
	req := &AuthorizeRequest{ar: ar}
	if ar != nil {
		// Known even when the request fails, for the page that says so.
		req.Client, _ = ar.GetClient().(*client.Client)
	}
	if tooLong := boundAuthorizeRequest(ar); tooLong != nil {
		err = tooLong
	}
	if err == nil {
		err = checkAuthorizeRequest(ar, objects, p.enforcePKCE)
	}
	if err == nil {
		err = p.requestResources(ctx, ar)
	}
	if _, parked := ctx.Value(parkedKey{}).(bool); err == nil && pushed == "" && !parked && p.mustPush(ar) {
		err = fosite.ErrInvalidRequest.WithHint("Authorization requests of this client must be pushed to the pushed authorization request endpoint first (RFC 9126); send only client_id and the request_uri it returns.")
	}
	if err == nil {
		req.claims, err = parseClaimsParameter(ar.GetRequestForm().Get("claims"))
	}
	if err == nil {
		if hint := ar.GetRequestForm().Get("id_token_hint"); hint != "" {
			var h Hint
			h, err = p.IDTokenHint(ctx, hint)
			req.HintSubject = h.Subject
		}
	}
	return req, err
}

// SignIn is a user's sign-in, for Approve to issue a code to.
type SignIn struct {
	User *identity.User
	// SID names the sign-in (the ID token's sid); AuthTime and AMR say
	// when and how the user last proved who they are.
	SID      string
	AuthTime time.Time
	AMR      []string
	// Started is when the authorization request arrived.
	Started time.Time
}

// Approve answers a request the user may be given: it grants the scopes
// requested (fosite has checked the client may ask for them, and the user
// allowed them), issues a code for the sign-in, and sends the browser back
// to the app with it and iss (RFC 9207). An error is the caller's to
// answer with AuthorizeError.
func (p *Provider) Approve(ctx context.Context, w http.ResponseWriter, req *AuthorizeRequest, in SignIn) error {
	s := p.signInSession(req, in)
	if err := p.addRoles(ctx, req.ar, s); err != nil {
		return err
	}
	resp, err := p.fosite.NewAuthorizeResponse(ctx, req.ar, s)
	if err != nil {
		return err
	}
	// The sign-in now reached this app: ending it must tell the app
	// (back-channel logout, pkg/logout). Only an app that takes logout
	// tokens is recorded, so that the others' sign-ins write nothing more;
	// an app that adds a backchannel_logout_uri hears of the sign-ins
	// that reach it from then on.
	if req.Client.BackchannelLogoutURI != "" {
		if err := p.store.RecordSessionClient(ctx, in.SID, req.Client.ID); err != nil {
			return err
		}
	}
	resp.AddParameter("iss", p.issuer)
	p.fosite.WriteAuthorizeResponse(ctx, w, req.ar, resp)
	return nil
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

// Hint is what an id_token_hint says: whom it was issued for, to which
// apps, and under which sign-in (sid, "" if it has none).
type Hint struct {
	Subject  string
	Audience []string
	SID      string
}

// IDTokenHint returns the subject, audience and sid of an ID token
// Latchkey issued, expired or not, as an id_token_hint may be (OpenID
// Connect Core §3.1.2.1, RP-Initiated Logout §2). Any other token is
// invalid_request.
func (p *Provider) IDTokenHint(ctx context.Context, hint string) (Hint, error) {
	t, err := p.idSigner.Decode(ctx, hint)
	var ve *jwt.ValidationError
	if err != nil && !(errors.As(err, &ve) && ve.Errors == jwt.ValidationErrorExpired) {
		return Hint{}, fosite.ErrInvalidRequest.WithHint("The id_token_hint is not an ID token this server issued.")
	}
	// A logout token is signed with the same keys; its typ tells it apart,
	// and it must never stand in for an ID token.
	if typ, _ := t.Header["typ"].(string); strings.EqualFold(typ, "logout+jwt") {
		return Hint{}, fosite.ErrInvalidRequest.WithHint("The id_token_hint is not an ID token.")
	}
	if iss, _ := t.Claims["iss"].(string); iss != p.issuer {
		return Hint{}, fosite.ErrInvalidRequest.WithHint("The id_token_hint was issued by another server.")
	}
	var h Hint
	h.Subject, _ = t.Claims["sub"].(string)
	h.SID, _ = t.Claims["sid"].(string)
	switch a := t.Claims["aud"].(type) {
	case string:
		h.Audience = []string{a}
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok {
				h.Audience = append(h.Audience, s)
			}
		}
	}
	if h.Subject == "" {
		return Hint{}, fosite.ErrInvalidRequest.WithHint("The id_token_hint names no subject.")
	}
	return h, nil
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
func (p *Provider) signInSession(req *AuthorizeRequest, in SignIn) *Session {
	ar := req.ar
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
	s.Subject = in.User.ID
	claims := s.Claims
	claims.Subject = in.User.ID
	claims.AuthTime = in.AuthTime
	claims.RequestedAt = in.Started
	claims.AuthenticationMethodsReferences = in.AMR
	claims.AuthenticationContextClassReference = achievedACR(in.AMR, req.claims, strings.Fields(req.Params().Get("acr_values")))
	for k, v := range in.User.ClaimValues(identity.ClaimsForScopes(ar.GetGrantedScopes())) {
		claims.Extra[k] = v
	}
	claims.Extra["sid"] = in.SID
	if req.Client != nil && req.Client.IDTokenSignedResponseAlg != "" {
		s.Headers.Extra[algHeader] = req.Client.IDTokenSignedResponseAlg
	}
	return s
}

// achievedACR is the acr to state for a sign-in proven by amr: what it
// achieved, or, when the request lists the values it accepts (the claims
// parameter's acr values, else acr_values), the strongest of those the
// sign-in meets. A level meets those below it, and OpenID Connect Core
// §3.1.2.1 asks for the class the sign-in *satisfied*: an app, or a
// resource server behind it, that asked for the MFA level and compares
// acr with what it asked for must not be refused, and sent round again,
// because the user happened to use a passkey (amr still says so). It is
// "" when an essential acr list cannot be met.
func achievedACR(amr []string, requested requestedClaims, acrValues []string) string {
	achieved := identity.ACRFor(amr)
	acr := requested.IDToken["acr"]
	listed := acr.Values
	if len(listed) == 0 {
		listed = acrValues
	}
	if len(listed) == 0 || slices.Contains(listed, achieved) {
		return achieved
	}
	met := ""
	for _, v := range listed {
		if identity.ACRMeets(achieved, v) && !identity.ACRMeets(met, v) {
			met = v
		}
	}
	switch {
	case met != "":
		return met
	case acr.Essential:
		return ""
	}
	return achieved
}

// AuthorizeError answers a failed authorization request the way the
// protocol allows: back to the app's redirect URI with the RFC 6749 error,
// its state and iss (RFC 9207), so that the app knows which server it
// comes from. When the request's client or redirect URI could not be
// confirmed (req is nil, or fosite did not accept them), the browser must
// not be sent anywhere (RFC 9700 §4.1.1): AuthorizeError writes nothing,
// and returns the error for the caller to explain to the user on a page.
// Server errors are logged with the request ID.
func (p *Provider) AuthorizeError(w http.ResponseWriter, r *http.Request, req *AuthorizeRequest, err error) (answered bool, rfc *fosite.RFC6749Error) {
	rfc = protocolError(err)
	if rfc.CodeField >= http.StatusInternalServerError {
		p.logger.ErrorContext(r.Context(), "authorization request failed", "request_id", server.RequestID(r.Context()),
			"error", rfc.ErrorField, "cause", err)
	} else {
		// As writeError does for the other endpoints: what the app is
		// told, for the operator too.
		p.logger.InfoContext(r.Context(), "authorization request refused", "request_id", server.RequestID(r.Context()),
			"error", rfc.ErrorField, "description", rfc.GetDescription())
	}
	if req == nil || req.ar == nil || !req.ar.IsRedirectURIValid() {
		return false, rfc
	}
	ar := req.ar
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
	return true, rfc
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

// authorizeParams are the parameters of an authorization request that
// Latchkey acts on (RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID Connect Core
// §3.1.2.1 and §5.5, and fosite's audience), each with the most
// characters it may hold, all of its values together. A request is
// parked in the session of a browser that nobody need have signed in on,
// so these bounds are what an anonymous caller can make the server store:
// about 18 KB a request.
var authorizeParams = map[string]int{
	"response_type": 64,
	"response_mode": 32,
	// Registered redirect URIs have at most 2000 characters (pkg/client),
	// a loopback one a port more.
	"client_id":             client.MaxIDLen,
	"redirect_uri":          2048,
	"scope":                 1024,
	"audience":              1024,
	"resource":              4096, // RFC 8707: at most maxResources URIs
	"state":                 512,
	"nonce":                 512,
	"code_challenge":        128, // 43 to 128 characters (RFC 7636 §4.2)
	"code_challenge_method": 16,
	"prompt":                64,
	"max_age":               16,
	"login_hint":            256,
	"acr_values":            256,
	"ui_locales":            64,
	"claims":                4096,
	// An ID token signed with RS256 by a 4096-bit key, with a full
	// profile and roles, fits in a few kilobytes.
	"id_token_hint": 8192,
}

// boundAuthorizeRequest keeps, of ar's parameters, only those the flow
// uses (authorizeParams), so that nothing else is parked, and refuses a
// parameter longer than its bound with invalid_request, which goes back to
// the client like any other error of the request. An over-long state is
// dropped, not echoed back in the error. A nil ar (fosite could not read
// the request at all) has nothing to bound.
func boundAuthorizeRequest(ar fosite.AuthorizeRequester) error {
	if ar == nil {
		return nil
	}
	form := ar.GetRequestForm()
	maps.DeleteFunc(form, func(name string, _ []string) bool {
		_, used := authorizeParams[name]
		return !used
	})
	for _, name := range slices.Sorted(maps.Keys(form)) {
		n := 0
		for _, v := range form[name] {
			n += len(v)
		}
		if most := authorizeParams[name]; n > most {
			if req, ok := ar.(*fosite.AuthorizeRequest); ok && name == "state" {
				req.State = ""
			}
			return fosite.ErrInvalidRequest.WithHintf("The %s parameter is longer than the %d characters Latchkey accepts.", name, most)
		}
	}
	return nil
}
