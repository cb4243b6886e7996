// Package logout tells apps that a user signed out of Latchkey: OpenID
// Connect Back-Channel Logout 1.0.
//
// # What is sent, and when
//
// Each sign-in (a browser session, named by its sid) records the apps it
// issued a code to (storage/postgres RecordSessionClient, from
// pkg/oauth's Approve). When the sign-in ends — the user signs out at the
// end-session endpoint, or a server ends it with an id_token_hint (pkg/
// signin), an admin signs the user out of one session or everywhere, the
// user is disabled, given a new password or deleted — the statement that
// ends it also writes, in the same transaction, one row to the logout
// outbox for each of those apps that registered a backchannel_logout_uri.
// The rows exist if and only if the sign-out committed, so a crash or an
// app's outage loses nothing. A sign-in that merely expires tells no one:
// the apps' own sessions are bounded by the tokens they were given.
//
// # Delivery
//
// A Deliverer on every node claims one due row at a time for a lease (FOR
// UPDATE SKIP LOCKED, so two nodes never take one row at once), signs a
// logout token and POSTs it to the app as logout_token, form-encoded
// (§2.5). A 2xx answer is delivered; anything else, or no answer within
// the timeout, is retried with exponential backoff and jitter (10s
// doubling to 1h) for three days. Delivery is at least once: a node that
// dies after the app answered and before the row is marked sends it again
// once its lease runs out, with the same jti, by which the app can drop
// the repeat.
//
// The token is signed at each attempt rather than stored: it lives two
// minutes (§2.4 asks for a short life), and a retry hours later must not
// send one that has expired. It is signed with the provider's current key
// of the algorithm the app's ID tokens use, so that the app verifies it
// exactly as it verifies those, with typ logout+jwt (§2.4, as RFC 8725
// §3.11 advises) so that it can never pass for an ID token, and it never
// carries a nonce.
//
// Addresses are dialled as webhooks are (pkg/events.NewClient): never
// link-local, multicast or unspecified addresses, checked after name
// resolution, and redirects are not followed.
package logout
