// Package events delivers Latchkey's audit events (pkg/audit) beyond the
// database: to webhook subscriptions, signed the Standard Webhooks way,
// and to a log stream for a SIEM (JSON lines on stdout, or OpenTelemetry
// log records), at least once and in order per subject.
//
// # The outbox
//
// Outbox is an audit.Reactor: as an event is recorded, in the transaction
// that records it, it writes one row per sink (each subscription whose
// event types match, and the log stream when one is configured) to the
// event outbox. The rows exist if and only if the change committed, so a
// crash or a receiver outage loses nothing.
//
// # Order per subject
//
// An event's subject is its Target, else its Actor ("user:SUB",
// "client:ID"). Two guarantees together give order per (sink, subject):
//
//   - rows are inserted under a transaction-scoped advisory lock on the
//     subject, held until commit, so that of two transactions touching one
//     subject the second inserts only after the first committed: outbox ids
//     of one subject follow commit order, and no row of a subject becomes
//     visible before an older one;
//   - a Deliverer claims a row only if no older row of the same sink and
//     subject is still pending (a claimed row is still pending), so the
//     next event of a subject waits until the one before it is delivered,
//     or failed for good.
//
// A transaction that recorded events on two subjects would take two
// locks, and two such transactions taking them in opposite orders would
// deadlock; Postgres would then abort one, and its change would fail
// rather than go unrecorded. Every change Latchkey makes records its
// events on one subject (a passkey added and the trusted browsers it
// forgets are both the user's), so this does not arise; a change that
// must record events on two subjects should record them in a fixed order
// of subject.
//
// # Delivery
//
// A Deliverer on every node claims one due row at a time for a lease (FOR
// UPDATE SKIP LOCKED, so two nodes never take one row at once), makes one
// attempt, and records it: a 2xx answer is delivered; anything else, or no
// answer within the timeout, is retried with exponential backoff and
// jitter (10s doubling to 1h by default) for three days, after which the
// row fails and its subject's next event proceeds. A subscription every
// attempt at which has failed for a day (Deliverer.DisableAfter) is
// disabled, audited (webhook.disabled) and counted; an admin enables it
// again and its pending events resume.
//
// Delivery is at least once: a node that dies after the receiver answered
// and before the row is marked sends it again once its lease runs out.
// Every copy carries the same webhook-id, evt_ followed by the audit
// event's id, by which receivers drop repeats.
package events
