// Package ui renders the pages people see: sign-in, second factor,
// consent, the account page, sign-out and the messages around them. It is
// server-rendered HTML with one stylesheet and no JavaScript. It only
// renders: what a page shows and where its forms lead is decided by the
// handlers that call it (pkg/signin).
//
// Every page is a typed template (pages.go), parsed at start-up. Values an
// app controls (its name, its scopes) are escaped by html/template, and
// every page carries a Content-Security-Policy that runs no script, allows
// no framing, and lets forms post only to Latchkey (and, where the answer
// may redirect there, to the app's redirect URI).
package ui

import (
	"net/http"

	"github.com/latchkey/latchkey/web"
)

// StaticPath is where the stylesheet and other static files are served,
// relative to the issuer.
const StaticPath = "/static"

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

// DescribeScopes turns scopes into plain words for the consent page, one
// line each; scopes an app defines for its own API are named as they are.
func DescribeScopes(scopes []string) []string {
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
