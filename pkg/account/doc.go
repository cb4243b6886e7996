// Package account is account lifecycle by email: the single-use links
// Latchkey mails, and what following each one does.
//
// # Links
//
// A link carries a token of 32 random bytes (base64url, in the link's
// query). Only its SHA-256 digest is stored, with the link's purpose, the
// user it acts for and the address it went to, so a copy of the database
// holds no link that works. Each purpose has a fixed lifetime (Lifetime):
//
//	reset    30 minutes  set a new password; any later password change voids it
//	verify   24 hours    prove an address: the user's own, or one they change to
//	invite    7 days     set a first password, which also proves the address
//	signup   24 hours    create the account a sign-up asked for
//
// Opening a link never spends it: mail scanners fetch links before people
// do, so a GET only shows a page with a form (Inspect), and the form's
// POST spends the link, atomically and in the same transaction as what
// following it does and its audit event. Of a parallel burst, one
// request spends the link and the others find it used. A link that cannot
// be followed says why (unknown, used, expired or replaced, meant for
// another page, another user's), only so that the page can offer the way
// forward; the reasons tell nobody anything they did not hold already.
//
// # Mail
//
// Every mail is written to the outbox (pkg/mail) in the transaction of the
// change that causes it, so it is sent if and only if the change commits.
// Mails anyone can ask for (a reset, a sign-up) are counted per account or
// address in the database under a lock (Store.ReserveMail), so a flood of
// requests for one address, on any number of nodes, sends at most
// MailsPerHour of them an hour.
//
// # What nobody can learn
//
// Asking for a reset, or signing up, gets the same answer whether or not
// an account has the address: RequestReset does nothing for an unknown or
// disabled account, and SignUp mails the owner of a taken address a
// notice instead of a link. The pages (pkg/signin) answer both alike and
// no sooner than a fixed time.
package account
