// This file holds what the pages around the links Latchkey mails share
// (pkg/account): their routes, the limits on asking for mail, and the
// page a link that cannot be followed leads to. Each page has a file of
// its own: forgot.go, newpassword.go, verify.go, signup.go, and
// emailchange.go for the account page's part.

package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/ui"
)

// Paths of the pages that ask for mail, relative to the issuer. The pages
// the mailed links lead to are at account.Purpose.Path.
const (
	ForgotPath       = "/login/forgot"
	SignUpPath       = "/signup"
	AccountEmailPath = AccountPath + "/email"
	// AccountVerifyPath sends a new link that verifies the address the
	// user has.
	AccountVerifyPath = AccountPath + "/email/verify"
)

// Accounts makes the links Latchkey mails and follows them (pkg/account).
type Accounts interface {
	RequestReset(ctx context.Context, email, locale string) error
	Inspect(ctx context.Context, purpose account.Purpose, token, viewer string) (*account.Opened, error)
	ResetPassword(ctx context.Context, token, password, code string) (*identity.User, error)
	AcceptInvitation(ctx context.Context, token, password string) (*identity.User, error)
	Verify(ctx context.Context, token, viewer string) (*identity.User, error)
	SignUp(ctx context.Context, email, name, password, locale string) error
	CompleteSignUp(ctx context.Context, token string) (*identity.User, error)
	RequestEmailChange(ctx context.Context, userID, newEmail, locale string) error
	ResendVerification(ctx context.Context, userID, locale string) error
	PendingEmail(ctx context.Context, userID string) (string, error)
}

// AnswerFloor is the least time the pages that ask for mail about an
// address anyone may type (forgot password, sign-up) take to answer. Their
// answer is the same whether or not an account has the address, and so
// must be their time: the work differs (a link and a mail, or a notice, or
// nothing) but takes well under this (a sign-up hashes its password either
// way, some 65 ms, plus a few queries), so both answers come after it.
const AnswerFloor = time.Second

// waitOut sleeps until AnswerFloor has passed since start, or the request
// is gone.
func waitOut(ctx context.Context, start time.Time) {
	t := time.NewTimer(time.Until(start.Add(AnswerFloor)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// mountLinks adds the pages around mailed links to r; post adds a form's
// POST route with the cross-origin check.
func (s *Service) mountLinks(r chi.Router, post func(string, http.Handler)) {
	r.Get(ForgotPath, s.showForgot)
	post(ForgotPath, http.HandlerFunc(s.submitForgot))
	for _, p := range []newPassword{{s, account.Reset}, {s, account.Invite}} {
		r.Get(p.purpose.Path(), p.show)
		// A reset may check a second-factor code: an attempt, like the
		// sign-in forms.
		post(p.purpose.Path(), s.attempt(p.submit))
	}
	r.Get(account.Verify.Path(), s.showVerify)
	post(account.Verify.Path(), http.HandlerFunc(s.submitVerify))
	post(AccountEmailPath, s.attempt(s.accountChangeEmail))
	post(AccountVerifyPath, http.HandlerFunc(s.accountResendVerification))
	// When sign-up is off, its pages are not there at all.
	if s.SignUp {
		r.Get(SignUpPath, s.showSignUp)
		post(SignUpPath, http.HandlerFunc(s.submitSignUp))
		r.Get(account.SignUp.Path(), s.showSignUpConfirm)
		post(account.SignUp.Path(), http.HandlerFunc(s.submitSignUpConfirm))
	}
}

// mailAllowed takes one request from the address's MailLimit; over it, it
// answers and returns false.
func (s *Service) mailAllowed(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := s.MailLimit.Allow(ratelimit.AddressKey(server.ClientIP(r.Context())))
	if ok {
		return true
	}
	s.metrics().RateLimited("mail")
	mins := int(wait/time.Minute) + 1
	w.Header().Set("Retry-After", strconv.Itoa(int(wait/time.Second)+1))
	s.Pages.Message(w, http.StatusTooManyRequests, "Too many requests", ui.MessagePage{
		Message: fmt.Sprintf("There have been too many requests for mail from your network. Wait %d minutes, then try again.", mins),
	})
	return false
}

// locale is the browser's languages, for mail to someone whose own locale
// is not known.
func locale(r *http.Request) string { return r.Header.Get("Accept-Language") }

// linkProblem answers a link that cannot be followed as purpose, with a
// page that says so plainly and offers the way forward; any other error
// is a failure.
func (s *Service) linkProblem(w http.ResponseWriter, r *http.Request, purpose account.Purpose, err error) {
	signIn := ui.Link{Text: "Sign in", Href: s.Base + LoginPath}
	var again ui.Link
	var next string
	switch purpose {
	case account.Reset:
		again, next = ui.Link{Text: "Ask for a new link", Href: s.Base + ForgotPath}, "Ask for a new link, and use the newest mail."
	case account.Invite:
		next = "Ask the administrator who invited you to send a new invitation. If you have set your password already, sign in."
	case account.Verify:
		again = ui.Link{Text: "Go to your account", Href: s.Base + AccountPath}
		next = "To change your address, ask again from your account page, and use the newest mail."
	case account.SignUp:
		if s.SignUp {
			again = ui.Link{Text: "Create an account", Href: s.Base + SignUpPath}
		}
		next = "Sign up again, and use the newest mail. If you created your account with this link already, sign in."
	}
	d := ui.ProblemPage{Next: next, Links: []ui.Link{signIn}}
	if again.Href != "" {
		d.Links = []ui.Link{again, signIn}
	}
	status := http.StatusGone
	switch {
	case errors.Is(err, account.ErrLinkUnknown):
		status, d.Title = http.StatusNotFound, "This link does not work"
		d.Happened = "The link is incomplete or was changed on the way. Open it again straight from the email, or copy all of it."
	case errors.Is(err, account.ErrLinkUsed):
		d.Title, d.Happened = "This link was used already", "Each link works once, and this one has been used."
	case errors.Is(err, account.ErrLinkExpired):
		d.Title = "This link has expired"
		d.Happened = "Links work for a limited time, and a newer link, or a change of password or address, replaces the ones before it."
	case errors.Is(err, account.ErrLinkPurpose):
		status, d.Title = http.StatusBadRequest, "This link is for another page"
		d.Happened = "The link was changed on the way. Open it exactly as it is in the email."
		d.Next = ""
	case errors.Is(err, account.ErrLinkForeign):
		status, d.Title = http.StatusForbidden, "Sign out first"
		d.Happened = "This link is for another account than the one signed in on this browser."
		d.Next = "Sign out on your account page, then open the link again. Nothing has changed."
		d.Links = []ui.Link{{Text: "Go to your account", Href: s.Base + AccountPath}}
	case errors.Is(err, account.ErrAccountUnavailable):
		status, d.Title = http.StatusForbidden, "This link cannot be used"
		d.Happened = "The account this link is for cannot be used just now."
		d.Next, d.Links = "If you think this is a mistake, ask your administrator.", nil
	case errors.Is(err, account.ErrAddressTaken):
		status, d.Title = http.StatusConflict, "This address has an account already"
		d.Happened = "Another account has taken this address since the link was sent, so nothing has changed."
		d.Next = "If that account is yours, sign in to it, or ask for a new password if you have forgotten it."
		d.Links = []ui.Link{signIn, {Text: "Forgot password?", Href: s.Base + ForgotPath}}
	default:
		s.fail(w, r, err)
		return
	}
	d.Detail.RequestID = server.RequestID(r.Context())
	s.Pages.Problem(w, status, d)
}
