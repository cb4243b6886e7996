package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/pkg/device"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/web"
)

// Pages renders Latchkey's HTML pages. Every template is parsed when Pages
// is made, so a broken template stops the server at start-up, not a user
// at sign-in.
type Pages struct {
	sets map[string]*template.Template
	// root is the path the pages are served under (the issuer's path),
	// and static the URL path of the stylesheet's directory.
	root, static string
}

// pageNames are the templates besides layout.html.
var pageNames = []string{"login", "consent", "logout", "problem", "signedout", "home", "otp", "enrol", "recovery", "account", "reauth", "device"}

// NewPages parses the templates. base is the path the UI is served under
// (the issuer's path, "" at the root).
func NewPages(base string) (*Pages, error) {
	p := &Pages{sets: map[string]*template.Template{}, root: base, static: base + StaticPath}
	for _, name := range slices.Concat(pageNames, linkPageNames, accountPageNames, passkeyPageNames, apiKeyPageNames) {
		t, err := template.ParseFS(web.Templates, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", name, err)
		}
		p.sets[name] = t
	}
	return p, nil
}

// page is what every page has.
type page struct {
	Title string
	Lang  string
	// Static is where the stylesheet and the icon are.
	Static string
	// root is the path the pages are served under, for the links a page
	// makes to the others.
	root string
}

// LoginPage is the sign-in form.
type LoginPage struct {
	page
	// ClientName is the app the user signs in to, if they came from one.
	ClientName string
	// Email prefills the email field (login_hint, or the last attempt).
	Email string
	// Error says why the last attempt failed.
	Error string
	// Request is the handle of the authorization request waiting on this
	// sign-in, if any.
	Request string
	Action  string
	// Forgot is the forgot-password page; SignUp the sign-up page, when
	// sign-up is open.
	Forgot, SignUp string
	// Passkey, when set, offers signing in with a passkey instead: a
	// button, and passkey autofill on the email field. The page then runs
	// this server's passkey script; without it, no script.
	Passkey *LoginPasskey
}

// LoginPasskey is the passwordless passkey ceremony the sign-in page
// begins on each showing (pkg/signin).
type LoginPasskey struct {
	// Options is the JSON for navigator.credentials.get (pkg/passkey).
	Options string
	// Ceremony is the ceremony's session data, sealed, that the form
	// carries back with the answer.
	Ceremony string
	Action   string
}

// FocusPassword says where the cursor starts: in the password field once
// the email is known (after a failed attempt, or from login_hint), so that
// the user types the password again straight away, and in the email field
// otherwise. Most pages run no script, so autofocus is how.
func (d LoginPage) FocusPassword() bool { return d.Email != "" }

// ConsentPage asks the user to allow an app what it asks for.
type ConsentPage struct {
	page
	ClientName string
	// Scopes say in plain words what the app asks for.
	Scopes  []string
	Email   string
	Request string
	Action  string
	// Device says the request is a device's (RFC 8628), which the user
	// approves here rather than returning to an app.
	Device bool
	// Unverified says the app registered itself (RFC 7591): nobody has
	// checked that its name is its own. ReturnsTo is the host the user
	// is sent back to, which is what tells a user whose app it is.
	Unverified bool
	ReturnsTo  string
}

// DevicePage asks for the user code a device shows (RFC 8628 §3.3), which
// Code prefills from verification_uri_complete; the user still confirms it
// (RFC 8628 §5.4).
type DevicePage struct {
	page
	Code   string
	Error  string
	Action string
}

// LogoutPage asks the user to confirm signing out.
type LogoutPage struct {
	page
	Email string
	// Fields are carried through the confirmation unchanged.
	Fields map[string]string
	Action string
}

// MessagePage tells the user that a request cannot go on, in one message;
// Problem renders the fuller form, with what to do next and ways on.
type MessagePage struct {
	page
	Message string
	// RequestID lets an operator find a failed request in the logs.
	RequestID string
}

// SignedOutPage is where a sign-out ends when the browser is not sent
// back to the app: the user signed out, or chose to stay signed in. It
// offers ways on, since the app did not say where to go.
type SignedOutPage struct {
	page
	// Stayed says the user chose to stay signed in.
	Stayed bool
	// App is the name of the app that asked for the sign-out and AppURL
	// an address it registered to come back to, when known; AppURL must
	// be http or https to be offered.
	App, AppURL string
	// SignInURL and AccountURL are Latchkey's own pages, offered after.
	SignInURL, AccountURL string
}

// Ways are the page's links on: back to the app, where one is known, then
// to sign in again or, still signed in, to the account page.
func (d SignedOutPage) Ways() []Link {
	var ways []Link
	if u, err := url.Parse(d.AppURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		name := d.App
		if name == "" {
			name = "the app"
		}
		ways = append(ways, Link{Text: "Back to " + name, Href: d.AppURL})
	}
	if d.Stayed {
		return append(ways, Link{Text: "Go to your account", Href: d.AccountURL})
	}
	return append(ways, Link{Text: "Sign in again", Href: d.SignInURL})
}

// HomePage is the issuer's own address, /, for someone who is not signed
// in: what this is, and the way to their account.
type HomePage struct {
	page
	// SignIn is the login page, which leads to the account page.
	SignIn string
}

// Discovery is the OpenID Connect discovery document, for app developers
// who opened the issuer's address.
func (d HomePage) Discovery() string { return d.root + discovery.OpenIDConfigurationPath }

// SecondFactorPage asks for a code from the user's authenticator app, or a
// recovery code.
type SecondFactorPage struct {
	page
	ClientName string
	Error      string
	// Recovery says the last attempt was a recovery code: the page opens
	// that field and puts the cursor there, rather than in the code field.
	Recovery bool
	Request  string
	Action   string
	TrustOffer
}

// EnrolPage adds a TOTP factor: the QR code, the secret to type in, and
// the field for the first code.
type EnrolPage struct {
	page
	// Required says an app demands the factor, which the page explains.
	Required   bool
	ClientName string
	// QR is the QR code as a data: URL; URI the otpauth: link. Both are
	// made here, so they are trusted URLs.
	QR      template.URL
	URI     template.URL
	Secret  string
	Error   string
	Request string
	Action  string
}

// RecoveryPage shows new recovery codes, once.
type RecoveryPage struct {
	page
	Codes    []string
	Continue string
}

// AccountPage is the user's own page.
type AccountPage struct {
	page
	AccountSettings
	Base             string
	Notice, Error    string
	Name, Email, Sub string
	EmailVerified    bool
	// PendingEmail is the address the user asked to change to and has not
	// confirmed from its link yet; "" if none.
	PendingEmail string
	MFA          bool
	RecoveryLeft int
	Apps         []AccountApp
	Sessions     []AccountSession
	AccountPasskeys
	AccountTrust
	AccountAPIKeys
}

// ReauthPage asks a signed-in user to prove who they are again before a
// sensitive change on their account page.
type ReauthPage struct {
	page
	// Action is the change asked for, which the form posts again with
	// Fields, the change's own, and the proof.
	Action string
	Fields []Field
	// Factor says the user may give a code from their second factor
	// instead of their password.
	Factor bool
	// UsedCode says the last attempt was such a code: the page opens that
	// field and puts the cursor there, rather than in the password field.
	UsedCode bool
	Error    string
	// Window is how many minutes a proof lasts.
	Window int
	// Passkey, if set, is the JSON for navigator.credentials.get of a
	// user who has a passkey, who may use it instead.
	Passkey string
}

// Field is a form field carried in a hidden input. A form may carry
// several of one name (the scopes of a new API key), so fields are a list,
// not a map.
type Field struct {
	Name, Value string
}

// AccountApp is an app the user has allowed.
type AccountApp struct {
	ID, Name, Scopes string
}

// AccountSession is one of the user's sign-ins.
type AccountSession struct {
	SID string
	// UserAgent is the browser's User-Agent header as it signed in; the
	// page names the browser and system from it (Device).
	UserAgent string
	Since, IP string
	Current   bool
}

// Device is what the account page calls the browser that signed in, such
// as "Firefox on Linux": names from a fixed list, never the header's own
// text, which whoever signed in chose.
func (s AccountSession) Device() string { return device.Describe(s.UserAgent) }

// SecondFactor renders the code page.
func (p *Pages) SecondFactor(w http.ResponseWriter, status int, formTarget string, d SecondFactorPage) {
	d.page = p.base("Two-step verification")
	p.render(w, status, "otp", formTarget, d)
}

// Enrol renders the page that adds a TOTP factor.
func (p *Pages) Enrol(w http.ResponseWriter, formTarget string, d EnrolPage) {
	d.page = p.base("Set up two-step verification")
	p.render(w, http.StatusOK, "enrol", formTarget, d)
}

// Recovery renders new recovery codes.
func (p *Pages) Recovery(w http.ResponseWriter, d RecoveryPage) {
	d.page = p.base("Your recovery codes")
	p.render(w, http.StatusOK, "recovery", "", d)
}

// Reauth renders the page that asks for the password again.
func (p *Pages) Reauth(w http.ResponseWriter, status int, d ReauthPage) {
	d.page = p.base("Confirm it is you")
	p.renderWith(w, status, "reauth", "", d.Passkey != "", d)
}

// Account renders the account page.
func (p *Pages) Account(w http.ResponseWriter, status int, d AccountPage) {
	d.page = p.base("Your account")
	p.render(w, status, "account", "", d)
}

// SignedOut renders the end of a sign-out.
func (p *Pages) SignedOut(w http.ResponseWriter, d SignedOutPage) {
	title := "Signed out"
	if d.Stayed {
		title = "Still signed in"
	}
	d.page = p.base(title)
	p.render(w, http.StatusOK, "signedout", "", d)
}

// Home renders the issuer's front page.
func (p *Pages) Home(w http.ResponseWriter, d HomePage) {
	d.page = p.base("Welcome")
	p.render(w, http.StatusOK, "home", "", d)
}

// Login renders the sign-in form. formTarget is where the form's answer
// may redirect the browser (the app's redirect URI), which the page's
// Content-Security-Policy must allow; "" for none. Only a page that
// offers a passkey (d.Passkey) may run a script.
func (p *Pages) Login(w http.ResponseWriter, status int, formTarget string, d LoginPage) {
	d.page = p.base("Sign in")
	p.renderWith(w, status, "login", formTarget, d.Passkey != nil, d)
}

// Consent renders the consent page.
func (p *Pages) Consent(w http.ResponseWriter, formTarget string, d ConsentPage) {
	d.page = p.base("Allow access")
	p.render(w, http.StatusOK, "consent", formTarget, d)
}

// Device renders the user-code page, with status.
func (p *Pages) Device(w http.ResponseWriter, status int, d DevicePage) {
	d.page = p.base("Connect a device")
	p.render(w, status, "device", "", d)
}

// Logout renders the sign-out confirmation.
func (p *Pages) Logout(w http.ResponseWriter, formTarget string, d LogoutPage) {
	d.page = p.base("Sign out")
	p.render(w, http.StatusOK, "logout", formTarget, d)
}

// Message renders a page that only tells the user something, with the
// request ID folded away beneath it.
func (p *Pages) Message(w http.ResponseWriter, status int, title string, d MessagePage) {
	p.Problem(w, status, ProblemPage{Title: title, Happened: d.Message, Detail: ProblemDetail{RequestID: d.RequestID}})
}

func (p *Pages) base(title string) page {
	return page{Title: title, Lang: "en", Static: p.static, root: p.root}
}

// render executes a page into a buffer first, so that a template error
// becomes a clean 500 rather than half a page.
func (p *Pages) render(w http.ResponseWriter, status int, name, formTarget string, data any) {
	p.renderWith(w, status, name, formTarget, false, data)
}

// renderWith is render for a page that may run this server's scripts
// (PasskeyScript) when scripts is set.
func (p *Pages) renderWith(w http.ResponseWriter, status int, name, formTarget string, scripts bool, data any) {
	var buf bytes.Buffer
	if err := p.sets[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy(formTarget, scripts))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// contentSecurityPolicy allows the page its own stylesheet and nothing
// else: no scripts, unless scripts allows this server's own files (the
// passkey pages: WebAuthn has no form), never inline ones; no framing.
// Forms may post only to this server, and their answer may redirect only
// to formTarget's origin, because browsers hold the redirect after a form
// post to form-action too.
func contentSecurityPolicy(formTarget string, scripts bool) string {
	action := "'self'"
	if u, err := url.Parse(formTarget); err == nil && u.Scheme != "" && u.Host != "" {
		action += " " + u.Scheme + "://" + u.Host
	}
	script := []string{}
	if scripts {
		script = append(script, "script-src 'self'")
	}
	return strings.Join(append(script,
		"default-src 'none'",
		"style-src 'self'",
		"img-src 'self' data:",
		"form-action "+action,
		"frame-ancestors 'none'",
		"base-uri 'none'",
	), "; ")
}

// staticFiles serves web/static.
func staticFiles() http.Handler {
	sub, err := fs.Sub(web.Static, "static")
	if err != nil {
		panic("ui: static files: " + err.Error()) // the embed pattern guarantees the directory
	}
	return http.FileServerFS(sub)
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
