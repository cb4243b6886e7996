package postgres

import (
	"context"
	"time"
)

// sweptTables are the tables whose rows expire, with the column that says
// when. Every one has an index on that column, as audit_events has on at.
var sweptTables = []struct{ table, expiry string }{
	{string(accessTokens), "expires_at"},
	{string(refreshTokens), "expires_at"},
	{string(codes), "expires_at"},
	{string(pkceChallenges), "expires_at"},
	{string(oidcSessions), "expires_at"},
	{"oauth_client_assertion_jtis", "expires_at"},
	{"oauth_pushed_requests", "expires_at"},
	// The previous release's jti table, until a migration drops it.
	{"oauth_assertion_jtis", "expires_at"},
	{"browser_sessions", "expires_at"},
	{"auth_failures", "expires_at"},
	{"sessions", "expiry"}, // scs's table, whose schema is the library's
	{"mail_quota", "expires_at"},
	{"trusted_devices", "expires_at"},
	// A spent challenge is kept only while an answer to it could still
	// verify.
	{"passkey_challenges", "expires_at"},
	// pkg/risk: each user's networks, failed sign-ins by network, and
	// blocks and once-per-window marks.
	{"risk_networks", "expires_at"},
	{"risk_failures", "expires_at"},
	{"risk_latches", "until"},
	// RFC 8628 device codes, whatever their state, once they expire.
	{"device_codes", "expires_at"},
}

// linkRetention is how long a link's row outlives its expiry or its use:
// opening it again within that time says it expired or was used, rather
// than that it never existed, and a reset link still counts towards its
// account's mails of the last hour (pkg/account) after it expired.
const linkRetention = 24 * time.Hour

// retainedLinks are the columns after whose time, plus linkRetention,
// email_links rows go; each has an index.
var retainedLinks = []string{"expires_at", "used_at"}

// sentMailKept is how long the outbox keeps a sent message's row (its
// body is erased at once), for admins looking into a mail someone says
// never came. Pending and failed messages are never swept.
const sentMailKept = 7 * 24 * time.Hour

// deliveredEventsKept is how long the event outbox keeps a delivered row.
const deliveredEventsKept = 7 * 24 * time.Hour

// quotasKept is how long a usage quota counter is kept after its period
// started: every period is over by then (a month is at most 31 days), and
// the daily usage report does not read the counters.
const quotasKept = 62 * 24 * time.Hour

// auditEvents is the audit log's table, whose rows do not expire by
// themselves: they are kept for a retention period, from their time.
const auditEvents = "audit_events"

// Sweep deletes rows that expired before now, single-use links a day after
// they expired or were used, sent mail and delivered events a week after, and audit events recorded
// more than auditRetention before it (none when it is 0), batch rows per
// statement, so that no statement holds locks for long or bloats one
// transaction, and returns how many it deleted from each table.
//
// A used or revoked token keeps its row until its own expiry, so presenting
// a spent refresh token is recognised as reuse for as long as the token
// could otherwise have worked. Several nodes may sweep at once: each skips
// the rows another is deleting.
func (s *Store) Sweep(ctx context.Context, now time.Time, batch int, auditRetention time.Duration) (map[string]int64, error) {
	deleted := map[string]int64{}
	sweep := func(table, column string, cutoff time.Time) error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			n, err := s.sweepBatch(ctx, table, column, cutoff, batch)
			deleted[table] += n
			if err != nil || n < int64(batch) {
				return err
			}
		}
	}
	for _, t := range sweptTables {
		if err := sweep(t.table, t.expiry, now); err != nil {
			return deleted, err
		}
	}
	for _, column := range retainedLinks {
		if err := sweep("email_links", column, now.Add(-linkRetention)); err != nil {
			return deleted, err
		}
	}
	// sent_at is NULL, and so never before the cutoff, until a message is
	// sent.
	if err := sweep("mail_outbox", "sent_at", now.Add(-sentMailKept)); err != nil {
		return deleted, err
	}
	// Delivered events likewise, a week after delivery, for admins looking
	// into an event a receiver says never came; pending and failed rows
	// stay.
	if err := sweep("event_outbox", "delivered_at", now.Add(-deliveredEventsKept)); err != nil {
		return deleted, err
	}
	// Back-channel logouts likewise (pkg/logout).
	if err := sweep("logout_outbox", "delivered_at", now.Add(-deliveredEventsKept)); err != nil {
		return deleted, err
	}
	// Quota counters of periods long over (pkg/usage); the daily usage
	// is kept, for reports.
	if err := sweep("usage_quotas", "period_start", now.Add(-quotasKept)); err != nil {
		return deleted, err
	}
	if auditRetention > 0 {
		if err := sweep(auditEvents, "at", now.Add(-auditRetention)); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
}

func (s *Store) sweepBatch(ctx context.Context, table, expiry string, cutoff time.Time, batch int) (int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+table+` WHERE ctid = ANY (ARRAY (
		SELECT ctid FROM `+table+` WHERE `+expiry+` < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`, cutoff, batch)
	if err != nil {
		return 0, errorf("postgres: sweep %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}
