package ui

import (
	"net/http"
	"strings"
)

// ProblemPage tells a person that what they tried cannot go on: in plain
// words what happened and what to do next, with ways on where there are
// any, and the technical detail folded away for whoever must fix it (an
// app's developers, or Latchkey's operator).
type ProblemPage struct {
	page
	// Title says in a few words what went wrong, as the page's heading.
	Title string
	// Happened says what went wrong; Next what the person can do about
	// it. Both are for someone who knows nothing of OAuth.
	Happened, Next string
	// Links are ways on from the page, the most likely first.
	Links  []Link
	Detail ProblemDetail
}

// ProblemDetail is the technical side of a problem. The page folds it
// away: the person who reads the page can pass it on without having to
// make sense of it.
type ProblemDetail struct {
	// Error and Description are the OAuth 2.0 error code and its
	// error_description (RFC 6749 §4.1.2.1), when the problem is one.
	Error, Description string
	// RequestID finds the request in Latchkey's logs.
	RequestID string
}

// Empty reports whether there is no detail to show.
func (d ProblemDetail) Empty() bool { return d == ProblemDetail{} }

// Link is a way on from a page: where it goes and the words on it.
type Link struct {
	Text, Href string
}

// Problem renders a problem page with status.
func (p *Pages) Problem(w http.ResponseWriter, status int, d ProblemPage) {
	d.page = p.base(d.Title)
	p.render(w, status, "problem", "", d)
}

// AuthorizationError is an authorization request the authorization
// endpoint refused, as the protocol layer knows it.
type AuthorizationError struct {
	// Code and Description are the RFC 6749 §4.1.2.1 error and
	// error_description.
	Code, Description string
	// ClientKnown says the request named a registered app, and
	// RedirectKnown that its redirect_uri is one the app registered.
	// Without both, the browser cannot be sent back to the app with the
	// error (RFC 9700 §4.1.1), so a person reads it instead.
	ClientKnown, RedirectKnown bool
	// RequestID finds the request in Latchkey's logs.
	RequestID string
}

// Codes of RFC 6749 §4.1.2.1 and §5.2 that AuthorizationProblem tells
// apart.
const (
	errInvalidClient          = "invalid_client"
	errTemporarilyUnavailable = "temporarily_unavailable"
)

// AuthorizationProblem says in plain words what went wrong with an app's
// authorization request and what the person can do, for the page shown
// when the error cannot go back to the app. The person is not the app's
// developer: what the developer needs (the error code and description,
// the request ID) is in the folded detail. The words never name the app,
// whose ID anyone can put in a link, so that a forged request cannot make
// the page blame a real app.
func AuthorizationProblem(e AuthorizationError) ProblemPage {
	d := ProblemPage{
		Title: "Cannot sign in to this app",
		Next: "Go back to the app you came from and try again. If it happens again, let the app's developers know: " +
			"the technical details below tell them what to fix.",
		Detail: ProblemDetail{Error: e.Code, Description: e.Description, RequestID: e.RequestID},
	}
	switch {
	case e.Code == errTemporarilyUnavailable:
		d.Title = "Try again in a moment"
		d.Happened = "Latchkey cannot reach its database just now, so it cannot check the app that sent you here."
		d.Next = "Go back to the app and try again in a moment."
	case !e.ClientKnown && e.Code == errInvalidClient:
		d.Happened = "The app that sent you here is not registered with Latchkey, so Latchkey cannot sign you in to it."
		d.Next = "If you followed a link or a bookmark, it may be out of date: go to the app itself and sign in from there. " +
			"If it happens again, let the app's developers know: the technical details below tell them what to fix."
	case e.ClientKnown && !e.RedirectKnown && mentionsRedirect(e.Description):
		d.Happened = "The app asked Latchkey to send you back to an address it has not registered. " +
			"To keep your account safe, Latchkey does not send you there."
	default:
		d.Happened = "The app that sent you here asked Latchkey to sign you in in a way Latchkey does not accept, " +
			"and Latchkey cannot safely send you back to the app to tell it so."
	}
	return d
}

// mentionsRedirect reports whether an error description is about the
// redirect URI. fosite says so only in words ("The 'redirect_uri'
// parameter does not match ..."), and the words are all there is to tell
// a wrong redirect URI from another mistake made before it was checked.
func mentionsRedirect(description string) bool {
	d := strings.ToLower(description)
	return strings.Contains(d, "redirect_uri") || strings.Contains(d, "redirect uri")
}

// SignOutProblem is the page for a sign-out request that cannot be
// followed, why being what was wrong with it in plain words. Nothing
// changed, and the account page is where the user can sign out instead.
func SignOutProblem(why, accountURL string) ProblemPage {
	return ProblemPage{
		Title:    "Cannot sign out",
		Happened: why,
		Next: "Nothing has changed: if you were signed in to Latchkey, you still are. " +
			"To sign out, go to your account page and choose Sign out next to this browser.",
		Links: []Link{{Text: "Go to your account", Href: accountURL}},
	}
}
