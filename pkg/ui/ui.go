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
