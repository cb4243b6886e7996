package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/logout"
)

// RecordSessionClient records that the app clientID was issued a code
// under the sign-in sid, so that ending the sign-in tells the app
// (back-channel logout). A sign-in that ended a moment before records
// nothing.
func (s *Store) RecordSessionClient(ctx context.Context, sid, clientID string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.db(ctx).Exec(ctx, `INSERT INTO session_clients (sid, client_id)
		SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM browser_sessions WHERE sid = $1)
		ON CONFLICT (sid, client_id) DO NOTHING`, sid, clientID)
	if err != nil {
		return errorf("postgres: record the app of sign-in: %w", err)
	}
	return nil
}

// endSessions ends the browser sessions b that where selects (a condition
// on browser_sessions b, with args) and, in the same statement and so in
// the same transaction, queues a back-channel logout for every app with a
// backchannel_logout_uri that was issued a code under one of them. Every
// path that signs a user out (sign-out, an admin's, disabling, a new
// password, deletion) goes through here, so none can forget the apps;
// sign-ins that merely expire are swept by the janitor and tell no one.
// It returns how many sessions ended.
func endSessions(ctx context.Context, q querier, where string, args ...any) (int64, error) {
	var ended, queued int64
	// The DELETE's cascade to session_clients happens at the end of the
	// statement: the INSERT still sees the rows it joins.
	err := q.QueryRow(ctx, `WITH ended AS (DELETE FROM browser_sessions b WHERE `+where+` RETURNING b.sid, b.user_id),
		queued AS (INSERT INTO logout_outbox (client_id, sid, subject)
			SELECT sc.client_id, e.sid, e.user_id::text FROM ended e
				JOIN session_clients sc ON sc.sid = e.sid
				JOIN clients c ON c.id = sc.client_id
			WHERE coalesce(c.metadata->>'backchannel_logout_uri', '') <> ''
			ON CONFLICT (sid, client_id) DO NOTHING RETURNING 1)
		SELECT (SELECT count(*) FROM ended), (SELECT count(*) FROM queued)`, args...).Scan(&ended, &queued)
	if err != nil {
		return 0, err
	}
	if queued > 0 {
		// The logout deliverers listen with the event deliverers.
		if err := announce(ctx, q, eventsChannel, ""); err != nil {
			return 0, err
		}
	}
	return ended, nil
}

// ClaimLogout claims, for lease, the oldest due back-channel logout that
// is not claimed, counting the attempt; nil when none is. The row is
// locked only while claiming (SKIP LOCKED), so two nodes never take one
// at once, and the claim outlives the transaction: a node that dies
// mid-send leaves it to be claimed again once the lease runs out.
func (s *Store) ClaimLogout(ctx context.Context, lease time.Duration) (*logout.Claimed, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `WITH c AS (
			SELECT id FROM logout_outbox
			WHERE status = 'pending' AND next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now())
			ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		UPDATE logout_outbox o SET claimed_until = now() + $1, claim = gen_random_uuid(), attempts = o.attempts + 1
		FROM c WHERE o.id = c.id
		RETURNING o.id, o.client_id, o.sid, o.subject, o.jti::text, o.attempts, o.created_at, o.claim::text`, lease)
	if err != nil {
		return nil, errorf("postgres: claim logout: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (*logout.Claimed, error) {
		var c logout.Claimed
		err := row.Scan(&c.ID, &c.ClientID, &c.SID, &c.Subject, &c.JTI, &c.Attempts, &c.CreatedAt, &c.Claim)
		return &c, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, errorf("postgres: claim logout: %w", err)
	}
	return c, nil
}

// MarkLogoutDelivered records a claimed logout delivered. A claim taken
// over since changes nothing.
func (s *Store) MarkLogoutDelivered(ctx context.Context, c *logout.Claimed, status int) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.db(ctx).Exec(ctx, `UPDATE logout_outbox SET status = 'delivered', delivered_at = now(), claimed_until = NULL,
		claim = NULL, last_error = '', last_status = $3 WHERE id = $1 AND claim = $2::uuid`, c.ID, c.Claim, status); err != nil {
		return errorf("postgres: mark logout %d delivered: %w", c.ID, err)
	}
	return nil
}

// RescheduleLogout records a failed attempt at a claimed logout: due again
// at next, or failed for good if giveUp.
func (s *Store) RescheduleLogout(ctx context.Context, c *logout.Claimed, next time.Time, lastError string, status int, giveUp bool) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.db(ctx).Exec(ctx, `UPDATE logout_outbox SET claimed_until = NULL, claim = NULL, next_attempt_at = $3,
		last_error = left($4, 1000), last_status = $5, status = CASE WHEN $6 THEN 'failed' ELSE status END
		WHERE id = $1 AND claim = $2::uuid`, c.ID, c.Claim, next, lastError, status, giveUp); err != nil {
		return errorf("postgres: reschedule logout %d: %w", c.ID, err)
	}
	return nil
}

// LogoutCounts returns how many back-channel logouts are pending and
// failed, for metrics read at scrape.
func (s *Store) LogoutCounts(ctx context.Context) (map[string]int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT status, count(*) FROM logout_outbox WHERE status <> 'delivered' GROUP BY 1`)
	if err != nil {
		return nil, errorf("postgres: count logouts: %w", err)
	}
	counts := map[string]int64{}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return nil, errorf("postgres: count logouts: %w", err)
		}
		counts[status] = n
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: count logouts: %w", err)
	}
	return counts, nil
}
