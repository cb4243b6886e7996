// Package signin is the browser sign-in: the authorization endpoint's
// conversation with the user, from the app's request to the answer the app
// gets back, and the pages around it (the account page, signing out).
//
// # The flow
//
// An app sends the browser to the authorization endpoint. pkg/oauth reads
// and checks the request (the client, its redirect URI, PKCE, the claims
// parameter) and hands it here as an oauth.AuthorizeRequest. The sign-in
// then asks, of each step in turn (steps), whether the request still needs
// it:
//
//	password      nobody signed in, another user named, or proof again needed without a second factor
//	secondFactor  a second factor wanted (require_mfa, acr) or proof again needed, from a user who has one
//	enrolment     a second factor required from a user who has none
//	consent       the app asks for scopes the user has not allowed it
//
// The first step needed gets the browser: the request is parked in the
// browser's session under a random handle, and the browser goes to the
// step's page with the handle. When the user has done what the page asked,
// the same question runs again (proceed), and the browser goes to the next
// step's page, or, when no step is needed, back to the app with a code
// (oauth.Provider.Approve). A request with prompt=none that needs a step
// gets that step's error instead. Each step is a small type in its own
// file; a new way to sign in is a new step.
//
// # Devices
//
// With the device authorization grant on (RFC 8628, pkg/oauth device.go),
// DevicePath asks for the code a device shows (device.go). A right code
// becomes a request like an authorization request (oauth.AuthorizeRequest,
// IsDevice), parked under its ID only, which goes through the same steps:
// password, second factor, passkeys, and the consent page, which a device
// always gets, since its code may be someone else's (RFC 8628 §5.4). Its
// answer goes to the device's next poll, not to a redirect URI, and the
// browser gets a page saying so. Wrong codes are guesses at a short
// secret: each one is counted per address and of all addresses in
// Postgres (Guesses), before the code is looked at.
//
// # Passwordless sign-in
//
// The password step's page also offers a passkey instead
// (passwordless.go): a button, and passkey autofill on the email field
// (conditional mediation), both answering one WebAuthn ceremony that asks
// for any discoverable passkey of the site with the user verified
// (pkg/passkey). The answer goes to PasswordlessPath, an attempt like
// every form that checks a credential; a verified passkey signs its user
// in with amr hwk or swk, user and mfa (RFC 8176), and the sign-in goes
// on as after a password. It is not a step of its own: it needs nothing
// the password step does not, and ends where that step ends.
//
// The page is shown to anyone, so beginning the ceremony stores nothing:
// a bare /login makes no session. The ceremony's session data is sealed
// into the page's form and bound to the browser by a cookie holding a
// random nonce (Ceremonies), so that it cannot be finished in another
// browser; pkg/passkey spends its challenge in Postgres once an answer
// verifies, so that it cannot be answered twice. A passkey whose user is
// disabled or gone signs nobody in.
//
// # Trusted browsers
//
// A user who ticks "Don't ask again on this browser" on the code page
// makes the browser a trusted device (pkg/trust). At a later password
// sign-in there, the password step signs them in without the second
// factor, where the request allows it (trustStandsIn: never prompt=login,
// max_age, or an app that asks for the MFA level), and the sign-in says
// what it was: amr pwd alone. Any step that needs more than that still
// asks for it.
//
// # Risk
//
// The password step asks the risk assessment (Risk, pkg/risk) whether
// the address's network or the account is blocked before it checks the
// password, tells it of a wrong one, and has it weigh a right one. Its
// decision may block the sign-in (a page that says until when, alike for
// every account), or step it up: trust then does not stand in for the
// second factor (trustStandsIn). The signals and actions go into the
// sign-in's audit event (RiskDetail); the ID token says only how the user
// signed in.
//
// # Parked requests
//
// The request's parameters never leave the server: the pages carry only
// the handle, and each page parses the parked parameters again as they
// first arrived, so a page cannot be used to alter them, and the handle
// means nothing in another browser. Parking stores what an anonymous
// caller sent, so it is bounded: each address may park
// SessionConfig.ParkRateLimit requests a minute on a node, a browser holds
// at most maxPending of them, and a session that holds only parked
// requests, nobody signed in, lives only as long as they do (pendingTTL).
// What each request holds is bounded by pkg/oauth, which parks only the
// parameters it uses.
//
// # Browser sessions
//
// Session data lives in Postgres through github.com/alexedwards/scs, under
// the SHA-256 digest of a random 256-bit token that only the browser holds,
// in a cookie that is HttpOnly, SameSite=Lax, and under https Secure and
// __Host- prefixed. Signing in issues a new token (no session fixation) and
// records the sign-in, named by sid, in browser_sessions. A session counts
// only while that record stands, so deleting it (sign-out, "sign out
// everywhere", disabling the user) ends the session on every node at once,
// and tells the apps it reached (back-channel logout, pkg/logout).
//
// # Signing out
//
// The end-session endpoint (endsession.go) serves RP-Initiated Logout: a
// browser with a valid id_token_hint for its user is signed out at once,
// otherwise asked to confirm. An app's server may call it too, with no
// browser: then the hint's sid names the sign-in to end, and a call that
// ends none is answered 400 with why, never as a success.
//
// # Forms
//
// Every POST of a page's form goes through http.CrossOriginProtection,
// which refuses requests that browsers mark as cross-site (Sec-Fetch-Site)
// or whose Origin is another site's. The session cookie is SameSite=Lax,
// so a cross-site POST would not carry it either, and without the session
// there is no parked request to act on. Pages cannot be framed
// (frame-ancestors 'none'). The forms that check a password, a code or a
// passkey are limited per address (attempt), and the account page's
// sensitive actions need a recent sign-in (reauthenticated).
//
// # Mailed links
//
// The pages around the links Latchkey mails (pkg/account) live here too
// (links.go): forgot password, the new-password page a reset or an
// invitation leads to, verification, sign-up, and the account page's
// change of address. A link's GET only shows a form, since mail scanners
// open links; the form's POST spends it. The forms that ask for mail
// about any address (forgot password, sign-up) answer alike for every
// address, no sooner than AnswerFloor, and are limited per IP address
// (MailLimit).
//
// # The account page
//
// Besides two-step verification, apps and browsers, the account page
// changes the account itself, each in a file of its own: the password
// (password_change.go, proven by the current password, which counts as a
// sign-in attempt), the profile (profile.go, through
// identity.Manager.Update) and, where the operator allows it, deleting the
// account (deletion.go, with the typed email and a recent sign-in). A
// sign-in on a browser that had not signed in to the account before is
// marked in its audit event (NewBrowser), for the user's notice
// (pkg/notify).
package signin
