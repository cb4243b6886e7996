package ui

import "net/http"

// passkeyPageNames are the templates of the passkey pages, parsed with
// pageNames.
var passkeyPageNames = []string{"passkey", "passkeyadd"}

// PasskeyScript is the one script Latchkey's pages run
// (web/static/passkey.js): it passes a form's data-options to the
// browser's WebAuthn API and posts the answer back in the form. Pages
// that carry it are rendered with a Content-Security-Policy that allows
// scripts from this server, and from nowhere else.
const PasskeyScript = "passkey.js"

// PasskeyPage asks for a passkey as the second step of a sign-in.
type PasskeyPage struct {
	page
	ClientName string
	// Options is the JSON for navigator.credentials.get (pkg/passkey).
	Options string
	Request string
	Action  string
	// Error says why the last answer was refused.
	Error string
	// CodeURL, if set, is the page for a code from an authenticator app
	// instead, for a user who has one.
	CodeURL string
}

// PasskeyAddPage adds a passkey to the account: the user names it, and the
// browser makes it.
type PasskeyAddPage struct {
	page
	// Options is the JSON for navigator.credentials.create.
	Options string
	Action  string
	// Name is the name typed, kept when the answer was refused.
	Name, Error string
	// MaxName is the longest name (pkg/passkey.MaxNameChars).
	MaxName int
	// Account is the link back to the account page, when the user came
	// from there; Request and ClientName are the parked request and its
	// app, when an app that requires a passkey sent them here instead.
	Account             string
	Request, ClientName string
}

// AccountPasskey is one of the user's passkeys on their account page.
type AccountPasskey struct {
	// ID is the passkey's ID as forms carry it (passkey.EncodeID).
	ID, Name string
	// Created and LastUsed are dates to show; LastUsed "" if never.
	Created, LastUsed string
	// Synced says the passkey may be on several devices.
	Synced bool
}

// AccountPasskeys is the account page's passkey section. Its block comes
// after AccountSettings'.
type AccountPasskeys struct {
	// Available says the issuer can have passkeys: one whose host is an
	// IP address cannot (pkg/passkey), and the section is not shown.
	Available bool
	Passkeys  []AccountPasskey
	// MaxName is the longest name (pkg/passkey.MaxNameChars).
	MaxName int
}

// Passkey renders the page that asks for a passkey at sign-in.
func (p *Pages) Passkey(w http.ResponseWriter, status int, formTarget string, d PasskeyPage) {
	d.page = p.base("Use your passkey")
	p.renderWith(w, status, "passkey", formTarget, true, d)
}

// PasskeyAdd renders the page that adds a passkey.
func (p *Pages) PasskeyAdd(w http.ResponseWriter, status int, formTarget string, d PasskeyAddPage) {
	d.page = p.base("Add a passkey")
	p.renderWith(w, status, "passkeyadd", formTarget, true, d)
}
