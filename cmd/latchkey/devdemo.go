package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// The demo user and app that latchkey dev seeds, so that a newcomer can try
// a whole sign-in at once.
const (
	demoEmail    = "demo@example.com"
	demoClientID = "demo"
	demoPath     = "/dev/demo"
)

// seedDemo makes sure the demo user, the demo app and the demo device
// exist, and points the app's redirect URIs at this run's issuer and its
// back-channel logout URI at backchannelLogout (dev's own receiver). The
// demo password is generated once and kept in dir, like the development
// secret.
func seedDemo(ctx context.Context, users *identity.Manager, clients *client.Manager, issuer, backchannelLogout, dir string) (string, error) {
	password, err := demoPassword(filepath.Join(dir, "demo-password"))
	if err != nil {
		return "", err
	}
	if _, err := users.GetByEmail(ctx, demoEmail); errors.Is(err, identity.ErrNotFound) {
		_, err = users.Create(ctx, identity.User{
			Email: demoEmail, EmailVerified: true, Name: "Demo User", GivenName: "Demo", FamilyName: "User",
		}, password)
		if err != nil {
			return "", fmt.Errorf("seed demo user: %w", err)
		}
	} else if err != nil {
		return "", err
	}
	demo := client.Client{
		ID:                      demoClientID,
		Name:                    "Latchkey demo",
		GrantTypes:              []string{client.GrantAuthorizationCode},
		RedirectURIs:            []string{issuer + demoPath + "/callback"},
		PostLogoutRedirectURIs:  []string{issuer + demoPath},
		BackchannelLogoutURI:    backchannelLogout,
		Scope:                   "openid profile email",
		TokenEndpointAuthMethod: client.AuthNone,
	}
	if err := seedClient(ctx, clients, demo, func(c *client.Client) error {
		c.RedirectURIs, c.PostLogoutRedirectURIs, c.BackchannelLogoutURI = demo.RedirectURIs, demo.PostLogoutRedirectURIs, demo.BackchannelLogoutURI
		return nil
	}); err != nil {
		return "", err
	}
	return password, seedClient(ctx, clients, demoDevice, func(*client.Client) error { return nil })
}

// seedClient creates c unless a client with its ID exists, which it
// updates with refresh: the ports of a run's listeners may differ from the
// last run's.
func seedClient(ctx context.Context, clients *client.Manager, c client.Client, refresh func(*client.Client) error) error {
	_, err := clients.Get(ctx, c.ID)
	if errors.Is(err, client.ErrNotFound) {
		_, _, err = clients.Create(ctx, c)
		return err
	} else if err != nil {
		return err
	}
	_, _, err = clients.Update(ctx, c.ID, refresh)
	return err
}

// demoPassword reads the demo user's password, making one on first use.
func demoPassword(path string) (string, error) {
	b, err := os.ReadFile(path) // #nosec G304 -- latchkey dev's own file under ./.latchkey
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 12)
	_, _ = rand.Read(raw)
	password := base64.RawURLEncoding.EncodeToString(raw)
	return password, os.WriteFile(path, []byte(password+"\n"), 0o600)
}

// devDemo is a tiny app, served by latchkey dev, that signs in with the
// development server as any app would: the code flow with PKCE, state and
// nonce through golang.org/x/oauth2, the ID token checked by go-oidc, and
// sign-out through the end-session endpoint. It is not part of serve.
type devDemo struct {
	issuer string
	page   *template.Template

	mu       sync.Mutex
	provider *oidc.Provider
	pending  map[string][2]string // state: verifier, nonce
}

func newDevDemo(issuer string) *devDemo {
	return &devDemo{issuer: issuer, page: template.Must(template.New("demo").Parse(demoPage)), pending: map[string][2]string{}}
}

// config discovers the development server the first time it is needed,
// once the server is listening.
func (d *devDemo) config(ctx context.Context) (*oauth2.Config, *oidc.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider == nil {
		p, err := oidc.NewProvider(ctx, d.issuer)
		if err != nil {
			return nil, nil, err
		}
		d.provider = p
	}
	ep := d.provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams
	return &oauth2.Config{
		ClientID:    demoClientID,
		RedirectURL: d.issuer + demoPath + "/callback",
		Endpoint:    ep,
		Scopes:      []string{oidc.ScopeOpenID, "profile", "email"},
	}, d.provider, nil
}

// demoView is what the demo page shows.
type demoView struct {
	Claims   map[string]any
	Userinfo map[string]any
	Error    string
	SignOut  string
	Path     string
}

// Register mounts the demo's pages.
func (d *devDemo) Register(mux interface {
	HandleFunc(string, http.HandlerFunc)
}) {
	mux.HandleFunc(demoPath, func(w http.ResponseWriter, r *http.Request) { d.show(w, demoView{Path: demoPath}) })
	mux.HandleFunc(demoPath+"/start", d.start)
	mux.HandleFunc(demoPath+"/callback", d.callback)
}

func (d *devDemo) start(w http.ResponseWriter, r *http.Request) {
	conf, _, err := d.config(r.Context())
	if err != nil {
		d.show(w, demoView{Error: err.Error(), Path: demoPath})
		return
	}
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	d.mu.Lock()
	d.pending[state] = [2]string{verifier, nonce}
	d.mu.Unlock()
	http.Redirect(w, r, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), http.StatusFound)
}

func (d *devDemo) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	d.mu.Lock()
	p, ok := d.pending[q.Get("state")]
	delete(d.pending, q.Get("state"))
	d.mu.Unlock()
	v := demoView{Path: demoPath}
	conf, provider, err := d.config(ctx)
	switch {
	case err != nil:
		v.Error = err.Error()
	case q.Get("error") != "":
		v.Error = q.Get("error") + ": " + q.Get("error_description")
	case !ok:
		v.Error = "unknown state: start again"
	default:
		v = d.finish(ctx, conf, provider, q.Get("code"), p[0], p[1])
	}
	d.show(w, v)
}

// finish exchanges the code and reads what the app learns about the user.
func (d *devDemo) finish(ctx context.Context, conf *oauth2.Config, provider *oidc.Provider, code, verifier, nonce string) demoView {
	v := demoView{Path: demoPath}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		v.Error = err.Error()
		return v
	}
	raw, _ := tok.Extra("id_token").(string)
	id, err := provider.Verifier(&oidc.Config{ClientID: demoClientID}).Verify(ctx, raw)
	if err != nil || id.Nonce != nonce {
		v.Error = fmt.Sprintf("the ID token does not verify: %v", err)
		return v
	}
	_ = id.Claims(&v.Claims)
	if info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		_ = info.Claims(&v.Userinfo)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if provider.Claims(&meta) == nil && meta.EndSession != "" {
		v.SignOut = meta.EndSession + "?" + url.Values{
			"id_token_hint":            {raw},
			"post_logout_redirect_uri": {d.issuer + demoPath},
		}.Encode()
	}
	return v
}

func (d *devDemo) show(w http.ResponseWriter, v demoView) {
	// The demo page, like Latchkey's own, runs no script.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = d.page.Execute(w, v)
}

const demoPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Latchkey demo app</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem">
<h1>Latchkey demo app</h1>
{{if .Error}}<p id="error"><strong>Sign-in failed:</strong> {{.Error}}</p><p><a href="{{.Path}}/start">Try again</a></p>
{{else if .Claims}}<p id="signed-in">Signed in as <strong>{{index .Userinfo "email"}}</strong>.</p>
<h2>ID token claims</h2><ul>{{range $k, $v := .Claims}}<li><code>{{$k}}</code>: {{$v}}</li>{{end}}</ul>
<h2>Userinfo</h2><ul>{{range $k, $v := .Userinfo}}<li><code>{{$k}}</code>: {{$v}}</li>{{end}}</ul>
{{if .SignOut}}<p><a href="{{.SignOut}}">Sign out</a></p>{{end}}
{{else}}<p>This page is an app that signs its users in with your development Latchkey.</p>
<p><a id="start" href="{{.Path}}/start">Sign in with Latchkey</a></p>{{end}}
</body></html>`
