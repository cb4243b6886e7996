// Package risk is the risk assessment of sign-ins: the signals that
// something is off (a new device, network or country, impossible travel,
// credential stuffing, an account guessed at from many networks, and
// events other packages record: refresh-token reuse, a locked account, a
// cloned passkey) and the policy that maps each to actions (allow, step
// up, notify, block, alert). Each rule lives here once;
// docs/security-events.md describes them for operators.
//
// # The flow
//
// pkg/signin asks three things of an Assessor, through an interface of
// its own. Before a password is checked, Blocked: is the address's
// network, or the account typed, blocked (one indexed read, alike for
// accounts that exist and those that do not)? After a wrong one, Failed:
// it records the failure for a short window and counts its two spreads,
// and acts once per window when one crosses its threshold. After a right
// one, Assess: it reads the user's own history once, finds the signals
// (weigh), and applies the policy (decide). The Decision says whether to
// step up past a trusted browser and whether to block; when the policy
// does more than allow, a risk.detected event (and risk.alert for an
// alert) is recorded, and pkg/notify mails the user for notify in its
// transaction.
//
// The Assessor is also an audit.Reactor. On login.succeeded, by any
// method, it adds the sign-in's network to the user's history in the
// sign-in's transaction: a password whose second factor never came
// teaches the history nothing. On the events that are signals it applies
// their rules in their transactions.
//
// # Across nodes
//
// Everything the signals count is in PostgreSQL (Store): the history,
// failures, and latches, keys held until a time. A block is a latch every
// node reads; a signal that acts once per window takes a latch first, and
// of any number of nodes crossing the threshold at once one takes it.
package risk
