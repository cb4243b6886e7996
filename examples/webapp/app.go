package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Config is what the app needs to know to sign users in with Latchkey.
type Config struct {
	// Issuer is Latchkey's issuer URL; everything else is discovered from
	// it.
	Issuer string
	// ClientID and ClientSecret are the app's client at Latchkey.
	ClientID, ClientSecret string
	// BaseURL is where browsers reach the app, such as
	// http://127.0.0.1:3000. The app's redirect URI is BaseURL/callback and
	// its post-logout redirect URI BaseURL/; register both, exactly.
	BaseURL string
	// APIURL is the Notes API's base URL (the resource server example).
	APIURL string
	// HTTPClient makes every call to Latchkey and to the API. Nil means a
	// client with a ten-second timeout.
	HTTPClient *http.Client
}

// scopes are what the app asks for: who the user is, and the right to read
// their notes at the API.
var scopes = []string{oidc.ScopeOpenID, "profile", "email", "notes.read"}

// App is the web app: it signs users in with the authorization code flow
// and PKCE, keeps their session, shows their claims, calls the Notes API
// with their access token, steps up when the API asks, and signs them out
// at Latchkey too.
type App struct {
	cfg        Config
	http       *http.Client
	oauth      *oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string
	revocation string
	sessions   *sessions
	pages      *pages
}

// New discovers Latchkey's endpoints and keys and returns the app. ctx
// must outlive the app: go-oidc fetches signing keys with it whenever
// Latchkey rotates them.
func New(ctx context.Context, cfg Config) (*App, error) {
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, hc), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("webapp: discovery: %w", err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
		// RFC 9207: Latchkey adds iss to every authorization response.
		IssParameter bool `json:"authorization_response_iss_parameter_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("webapp: discovery: %w", err)
	}
	if !meta.IssParameter {
		return nil, errors.New("webapp: the provider does not send iss in authorization responses (RFC 9207)")
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("webapp: BaseURL %q is not an http(s) URL", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	return &App{
		cfg:  cfg,
		http: hc,
		oauth: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  cfg.BaseURL + "/callback",
			Scopes:       scopes,
		},
		verifier:   provider.Verifier(&oidc.Config{ClientID: cfg.ClientID}),
		endSession: meta.EndSession,
		revocation: meta.Revocation,
		sessions:   newSessions(base.Scheme == "https"),
		pages:      newPages(),
	}, nil
}

// Handler serves the app's pages.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("GET /vault", a.vault)
	// Signing out changes state, so it is a POST, and one that another
	// site's page sends is refused: no link or form elsewhere can sign
	// the user out.
	mux.Handle("POST /logout", http.NewCrossOriginProtection().Handler(http.HandlerFunc(a.logout)))
	return headers(mux)
}

// headers adds what every answer carries: no scripts, no framing.
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// frameFor is the part of every page that names the signed-in user.
func frameFor(title string, u *user) frame {
	f := frame{Title: title}
	if u != nil {
		name, _ := u.claims["name"].(string)
		email, _ := u.claims["email"].(string)
		switch {
		case name != "" && email != "":
			f.Name = fmt.Sprintf("%s <%s>", name, email)
		case name != "" || email != "":
			f.Name = name + email
		default:
			f.Name, _ = u.claims["sub"].(string)
		}
	}
	return f
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	sess, _ := a.sessions.get(r)
	d := homePage{frame: frameFor("Notes", sess.user)}
	if sess.user != nil {
		d.Claims = claimRows(sess.user.claims)
	}
	a.pages.home(w, d)
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	a.signIn(w, r, "/", nil, "")
}

// signIn sends the browser to Latchkey to sign in, and back to returnTo
// afterwards. With a step-up, the request carries what the API demanded.
func (a *App) signIn(w http.ResponseWriter, r *http.Request, returnTo string, up *stepUp, challenge string) {
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if up != nil {
		if len(up.acrValues) > 0 {
			// acr_values is only a preference to an OpenID provider: a user
			// without a second factor would sign in with a password again.
			// The claims parameter makes it essential, so Latchkey has them
			// turn one on, or refuses.
			opts = append(opts,
				oauth2.SetAuthURLParam("acr_values", strings.Join(up.acrValues, " ")),
				oauth2.SetAuthURLParam("claims", essentialACR(up.acrValues)))
		}
		if up.maxAge >= 0 {
			opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.Itoa(up.maxAge)))
		}
	}
	a.sessions.addPending(w, r, state, pending{
		started: time.Now(), nonce: nonce, verifier: verifier,
		returnTo: returnTo, stepUp: up, challenge: challenge,
	})
	http.Redirect(w, r, a.oauth.AuthCodeURL(state, opts...), http.StatusFound)
}

// essentialACR is a claims parameter (OpenID Connect Core §5.5) that
// demands one of acrValues.
func essentialACR(acrValues []string) string {
	b, _ := json.Marshal(map[string]any{"id_token": map[string]any{
		"acr": map[string]any{"essential": true, "values": acrValues},
	}})
	return string(b)
}

// callback is where Latchkey sends the browser back. Every check here is
// one an attacker would otherwise slip through.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// RFC 9207: the answer must come from our issuer; an app that knows
	// several providers could otherwise be tricked into sending one
	// provider's code to another (a mix-up attack).
	if q.Get("iss") != a.cfg.Issuer {
		a.fail(w, http.StatusBadRequest, "This sign-in answer did not come from our identity provider.")
		return
	}
	// The state must be one this browser started: a code injected from
	// another browser's sign-in (login CSRF) has no pending entry here.
	p, ok := a.sessions.takePending(r, q.Get("state"))
	if !ok {
		a.fail(w, http.StatusBadRequest, "This sign-in was not started here, or took too long. Start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		a.fail(w, http.StatusForbidden, "Latchkey did not sign you in: "+e+". "+q.Get("error_description"))
		return
	}

	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, a.http)
	tok, err := a.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		slog.WarnContext(ctx, "code exchange failed", "err", err)
		a.fail(w, http.StatusBadGateway, "Latchkey did not accept the sign-in. Start again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := a.verifier.Verify(oidc.ClientContext(ctx, a.http), raw) // signature, iss, aud, exp
	if err == nil && id.Nonce != p.nonce {
		err = errors.New("nonce mismatch")
	}
	if err == nil {
		err = id.VerifyAccessToken(tok.AccessToken) // at_hash binds the two
	}
	var claims map[string]any
	if err == nil {
		err = id.Claims(&claims)
	}
	if err != nil {
		slog.WarnContext(ctx, "ID token rejected", "err", err)
		a.fail(w, http.StatusBadGateway, "The sign-in could not be verified. Start again.")
		return
	}
	if p.stepUp != nil && !meets(claims, *p.stepUp) {
		a.fail(w, http.StatusForbidden, "Latchkey could not give the sign-in the Notes API asks for.")
		return
	}
	u := &user{idToken: raw, claims: claims, token: tok}
	if p.stepUp != nil {
		u.steppedUpFor, u.steppedUpAt = p.challenge, time.Now()
	}
	a.sessions.signIn(w, r, u)
	// A redirect, so that the code leaves the address bar and history.
	http.Redirect(w, r, p.returnTo, http.StatusSeeOther)
}

// meets reports whether an ID token's claims satisfy what a step-up asked
// for: the acr is one of those asked, and the sign-in is recent enough.
// Latchkey states the acr it achieved, not the one asked for, so this is
// worth checking before retrying the API.
func meets(claims map[string]any, up stepUp) bool {
	if acr, _ := claims["acr"].(string); len(up.acrValues) > 0 && !slices.Contains(up.acrValues, acr) {
		return false
	}
	if up.maxAge >= 0 {
		at, _ := claims["auth_time"].(float64)
		// A minute of slack for clocks, and for the time the user took.
		if time.Since(time.Unix(int64(at), 0)) > time.Duration(up.maxAge)*time.Second+time.Minute {
			return false
		}
	}
	return true
}

// Note is one note from the API.
type Note struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// vault shows the API's step-up route. When the API says the sign-in is
// not strong or recent enough, it sends the user to Latchkey for one that
// is, and back here to retry.
func (a *App) vault(w http.ResponseWriter, r *http.Request) {
	sess, _ := a.sessions.get(r)
	u := sess.user
	if u == nil || !u.token.Valid() {
		// Not signed in, or the access token expired: sign in again. While
		// the user's Latchkey session lasts, they see nothing of it.
		a.signIn(w, r, "/vault", nil, "")
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, a.cfg.APIURL+"/api/vault", nil)
	if err != nil {
		a.fail(w, http.StatusInternalServerError, "The app is misconfigured.")
		return
	}
	u.token.SetAuthHeader(req)
	resp, err := a.http.Do(req)
	if err != nil {
		slog.WarnContext(r.Context(), "calling the Notes API", "err", err)
		a.fail(w, http.StatusBadGateway, "The Notes API cannot be reached.")
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		a.fail(w, http.StatusBadGateway, "The Notes API did not answer.")
		return
	}

	challenge := resp.Header.Get("WWW-Authenticate")
	params := bearerParams(challenge)
	switch {
	case resp.StatusCode == http.StatusOK:
		var v struct {
			ACR      string `json:"acr"`
			AuthTime int64  `json:"auth_time"`
			Secrets  []Note `json:"secrets"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			a.fail(w, http.StatusBadGateway, "The Notes API gave an answer the app does not understand.")
			return
		}
		a.pages.vault(w, vaultPage{frame: frameFor("Vault", u), ACR: v.ACR,
			AuthTime: time.Unix(v.AuthTime, 0).UTC().Format(time.RFC3339), Secrets: v.Secrets})
	case resp.StatusCode == http.StatusUnauthorized && params["error"] == "insufficient_user_authentication":
		up, _ := stepUpFrom(params)
		if challenge == u.steppedUpFor && time.Since(u.steppedUpAt) < time.Minute {
			// The user just did what this very challenge asked, and the
			// API still refuses: going round again would not help.
			a.fail(w, http.StatusForbidden, "The Notes API still refuses after a stronger sign-in.")
			return
		}
		a.signIn(w, r, "/vault", &up, challenge)
	case resp.StatusCode == http.StatusUnauthorized:
		// invalid_token: revoked or expired early. Get a new one.
		a.signIn(w, r, "/vault", nil, "")
	case resp.StatusCode == http.StatusForbidden:
		a.fail(w, http.StatusForbidden, "The app may not open the vault: the API needs the scope "+params["scope"]+".")
	default:
		a.fail(w, http.StatusBadGateway, "The Notes API answered "+resp.Status+".")
	}
}

// logout ends the app's session, revokes its tokens, then ends the user's
// session at Latchkey (RP-Initiated Logout), which sends the browser back
// to the start page.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	sess, _ := a.sessions.get(r)
	a.sessions.end(w, r)
	if sess.user == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	// Ending sessions does not end tokens: revoke the access token, and
	// with it the grant, so that no copy of it outlives the sign-out.
	if err := a.revoke(r.Context(), sess.user.token.AccessToken); err != nil {
		slog.WarnContext(r.Context(), "revoking the access token at sign-out", "err", err)
	}
	if a.endSession == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	// With the ID token as a hint, Latchkey ends its session at once
	// rather than asking the user; the post-logout URI must be registered.
	q := url.Values{
		"id_token_hint":            {sess.user.idToken},
		"post_logout_redirect_uri": {a.cfg.BaseURL + "/"},
		"client_id":                {a.cfg.ClientID},
	}
	http.Redirect(w, r, a.endSession+"?"+q.Encode(), http.StatusSeeOther)
}

// revoke revokes token at Latchkey (RFC 7009), as the client it was issued
// to.
func (a *App) revoke(ctx context.Context, token string) error {
	if a.revocation == "" {
		return errors.New("the provider has no revocation_endpoint")
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(a.cfg.ClientID), url.QueryEscape(a.cfg.ClientSecret))
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation answered %s", resp.Status)
	}
	return nil
}

// fail shows the user what went wrong, in words; the details, if any, are
// in the log.
func (a *App) fail(w http.ResponseWriter, status int, message string) {
	a.pages.message(w, status, messagePage{frame: frame{Title: "Something went wrong"}, Message: message})
}
