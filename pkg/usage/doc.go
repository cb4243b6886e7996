// Package usage is Latchkey's usage plans: named limits an admin assigns
// to a client or an API key, charged at the token, introspection and
// revocation endpoints, and the usage reported per subject, endpoint and
// day.
//
// # Subjects and plans
//
// A plan is charged to a subject: "client:ID" for a client's own calls,
// "key:ID" for introspections of an API key. A subject has at most one
// plan; a subject without one is not limited here (the failed-
// authentication throttle of pkg/oauth still applies). Each limit of a
// plan is for one endpoint or for all together ("*"); a call is charged
// to every limit that covers its endpoint and is refused by the first it
// is over, taking nothing from the others.
//
// # Rates: per node
//
// per_second and per_minute are token buckets on each node (pkg/ratelimit),
// with no database round trip: they bound bursts against one node. Behind
// N nodes a subject can get up to N times the rate; a rate that must hold
// across nodes is a quota.
//
// # Quotas: across nodes, strictly
//
// per_day and per_month hold across all nodes, for UTC calendar days and
// months. Each quota is one row in the database (usage_quotas) counting
// the budget nodes have reserved. A node reserves a slice of what is left
// with one statement (a quarter of it, at least 1, and at most a second of
// the node's calls at their recent pace, within MinSlice and MaxSlice),
// serves calls from the slice in memory, and reserves the next slice in
// the background when half of the last is used. A call waits for the
// database only when its node holds nothing of the quota: its first call
// of the period, or when calls outrun the background reservation.
//
// Overshoot: none. A call is served only from budget reserved in the
// database, and reservations never exceed the quota, so all nodes together
// serve at most the quota.
//
// Undershoot: budget a node reserved and has not used is parked there: at
// most its last slice, a quarter of what was left when it reserved it and
// at most MaxSlice, per quota per node. A node gives it back when it has been
// idle for IdleReturn, and all of it when it stops, so parked budget is
// lost only to a node that dies; other nodes refused meanwhile ask again
// every second. A node that crashes loses what it held of each quota (at
// most its last slice) for the rest of the period.
//
// # Usage reporting
//
// Every node counts calls per subject, endpoint and day in memory, served
// and refused, and adds them to usage_daily every FlushEvery and when it
// stops: no write per call. Metrics count calls by endpoint and result,
// never by subject.
package usage
