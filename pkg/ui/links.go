package ui

import "net/http"

// linkPageNames are the templates of the pages around the links Latchkey
// mails (pkg/account): asking for one, and following one.
var linkPageNames = []string{"forgot", "newpassword", "confirmlink", "signup", "done"}

// ForgotPage asks for the address to send a password-reset link to, and
// then, whatever the address, says that a link is on its way if an
// account has it (Sent).
type ForgotPage struct {
	page
	Action string
	Email  string
	Error  string
	// Sent says the request was taken: the page then only says what to
	// expect, the same for every address.
	Sent bool
	// Minutes is how long a reset link works.
	Minutes int
	// SignIn is the sign-in page, to go back to.
	SignIn string
}

// NewPasswordPage is where a reset or invitation link leads: the form
// that sets the password, and spends the link.
type NewPasswordPage struct {
	page
	Action string
	// Token is the link's, which the form posts back; it is never shown.
	Token string
	// Email is the account's address, shown so the user knows which
	// account they set the password of (and for password managers).
	Email string
	// Code asks for a code from the user's second factor as well.
	Code bool
	// Invite says the password is the user's first.
	Invite bool
	Error  string
	// MinLength is the password policy's shortest password.
	MinLength int
}

// ConfirmLinkPage is where a verification or sign-up link leads: a page
// that says what following it does, and a button that does it. Mail
// scanners open links; only the button, a POST, spends one.
type ConfirmLinkPage struct {
	page
	Action, Token string
	// Lead says what the button does; Button is its label.
	Lead, Button string
}

// SignUpPage is the form that asks for an account, and then, whatever the
// address, says to look for the mail (Sent).
type SignUpPage struct {
	page
	Action      string
	Email, Name string
	Error       string
	// Domains, if any, are the only email domains sign-up accepts.
	Domains []string
	// MinLength is the password policy's shortest password.
	MinLength int
	Sent      bool
	// Hours is how long the sign-up link works.
	Hours  int
	SignIn string
}

// DonePage says that following a link did what it does, with the ways on.
type DonePage struct {
	page
	Message string
	Links   []Link
}

// Forgot renders the forgot-password page.
func (p *Pages) Forgot(w http.ResponseWriter, status int, d ForgotPage) {
	title := "Forgot your password?"
	if d.Sent {
		title = "Check your email"
	}
	d.page = p.base(title)
	p.render(w, status, "forgot", "", d)
}

// NewPassword renders the page that sets a password from a link.
func (p *Pages) NewPassword(w http.ResponseWriter, status int, d NewPasswordPage) {
	title := "Choose a new password"
	if d.Invite {
		title = "Choose your password"
	}
	d.page = p.base(title)
	p.render(w, status, "newpassword", "", d)
}

// ConfirmLink renders the page that follows a link with one button.
func (p *Pages) ConfirmLink(w http.ResponseWriter, title string, d ConfirmLinkPage) {
	d.page = p.base(title)
	p.render(w, http.StatusOK, "confirmlink", "", d)
}

// SignUp renders the sign-up page.
func (p *Pages) SignUp(w http.ResponseWriter, status int, d SignUpPage) {
	title := "Create an account"
	if d.Sent {
		title = "Check your email"
	}
	d.page = p.base(title)
	p.render(w, status, "signup", "", d)
}

// Done renders the page after a link did its work.
func (p *Pages) Done(w http.ResponseWriter, title string, d DonePage) {
	d.page = p.base(title)
	p.render(w, http.StatusOK, "done", "", d)
}
