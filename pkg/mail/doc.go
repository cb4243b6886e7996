// Package mail is how Latchkey's mail leaves the database: password
// resets, verifications, invitations and security notifications.
//
// Nothing is sent from a request. The code that makes a change (a reset
// asked for, a password changed) renders its mail from the templates in
// web/templates/mail and writes it to the outbox with Outbox.Enqueue, in
// the same transaction as the change: the mail exists if and only if the
// change committed, and the request succeeds whether or not a mail server
// is up. The outbox's rows are sealed (they carry single-use links) and
// erased once sent.
//
// A Sender on every node delivers the outbox. It claims one due message
// at a time for a lease (SKIP LOCKED, so two nodes never take the same
// one), sends it over SMTP, and records it sent; a failed attempt is
// retried with exponential backoff, for three days, and a mail server's
// permanent refusal fails the message at once. Failed messages stay for an
// admin to see and retry. A store announces each new message to every
// node's sender (Postgres NOTIFY, delivered on commit), so mail goes out
// at once rather than at the next poll.
//
// Delivery is at least once; see Sender for the one window in which a
// message can be sent twice, and how a repeat is recognisable.
package mail
