package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/events"
)

var (
	_ events.OutboxStore    = (*Store)(nil)
	_ events.DelivererStore = (*Store)(nil)
	_ events.ManagerStore   = (*Store)(nil)
)

// subjectLockSpace is the first key of the two-key advisory locks taken
// on an event's subject; the second is the subject's hash. Two-key locks
// never collide with one-key ones (such as tern's), and a collision of
// two subjects' hashes only makes them wait for each other.
const subjectLockSpace = 0x4c4b4556 // "LKEV"

// webhooksLock is the advisory lock under which subscriptions are counted
// before one is added.
const webhooksLock = 1

const webhookColumns = `id, url, description, event_types, secret, enabled, disabled_reason, disabled_at,
	consecutive_failures, failing_since, last_success_at, created_at, updated_at`

func scanWebhook(row pgx.CollectableRow) (*events.Subscription, error) {
	var w events.Subscription
	err := row.Scan(&w.ID, &w.URL, &w.Description, &w.EventTypes, &w.Sealed, &w.Enabled, &w.DisabledReason, &w.DisabledAt,
		&w.ConsecutiveFailures, &w.FailingSince, &w.LastSuccessAt, &w.CreatedAt, &w.UpdatedAt)
	return &w, err
}

// Webhooks returns every subscription, oldest first.
func (s *Store) Webhooks(ctx context.Context) ([]*events.Subscription, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY created_at, id`)
	if err != nil {
		return nil, errorf("postgres: list webhooks: %w", err)
	}
	ws, err := pgx.CollectRows(rows, scanWebhook)
	if err != nil {
		return nil, errorf("postgres: list webhooks: %w", err)
	}
	return ws, nil
}

// WebhookByID returns one subscription; events.ErrNotFound if none.
func (s *Store) WebhookByID(ctx context.Context, id string) (*events.Subscription, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return nil, errorf("postgres: webhook %s: %w", id, err)
	}
	w, err := pgx.CollectExactlyOneRow(rows, scanWebhook)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, events.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: webhook %s: %w", id, err)
	}
	return w, nil
}

// InsertWebhook stores a new subscription unless max exist already; the
// count is taken under a transaction-scoped lock, so it must run in a
// transaction (the audit event's).
func (s *Store) InsertWebhook(ctx context.Context, w *events.Subscription, max int) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	q := s.db(ctx)
	var n int
	if err := q.QueryRow(ctx, `SELECT pg_advisory_xact_lock($1, $2), (SELECT count(*) FROM webhooks)`,
		subjectLockSpace, webhooksLock).Scan(nil, &n); err != nil {
		return errorf("postgres: count webhooks: %w", err)
	}
	if n >= max {
		return events.ErrTooMany
	}
	_, err := q.Exec(ctx, `INSERT INTO webhooks (id, url, description, event_types, secret) VALUES ($1, $2, $3, $4, $5)`,
		w.ID, w.URL, w.Description, w.EventTypes, w.Sealed)
	if err != nil {
		return errorf("postgres: insert webhook: %w", err)
	}
	return nil
}

// UpdateWebhook stores a subscription's URL, description, event types and
// secret.
func (s *Store) UpdateWebhook(ctx context.Context, w *events.Subscription) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE webhooks SET url = $2, description = $3, event_types = $4, secret = $5, updated_at = now()
		WHERE id = $1`, w.ID, w.URL, w.Description, w.EventTypes, w.Sealed)
	if err != nil {
		return errorf("postgres: update webhook %s: %w", w.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return events.ErrNotFound
	}
	return nil
}

// DeleteWebhook deletes a subscription; its deliveries go with it.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return errorf("postgres: delete webhook %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return events.ErrNotFound
	}
	return nil
}

// EnableWebhook enables a subscription with its failures forgotten, makes
// its pending rows due now with a fresh run of attempts, and wakes every
// node's deliverer.
func (s *Store) EnableWebhook(ctx context.Context, id string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	q := s.db(ctx)
	tag, err := q.Exec(ctx, `UPDATE webhooks SET enabled = true, disabled_reason = '', disabled_at = NULL,
		consecutive_failures = 0, failing_since = NULL, updated_at = now() WHERE id = $1`, id)
	if err != nil {
		return errorf("postgres: enable webhook %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return events.ErrNotFound
	}
	if _, err := q.Exec(ctx, `UPDATE event_outbox SET next_attempt_at = now(), attempts_since = now(), attempts = 0
		WHERE webhook_id = $1 AND status = 'pending'`, id); err != nil {
		return errorf("postgres: enable webhook %s: %w", id, err)
	}
	if err := announce(ctx, q, eventsChannel, ""); err != nil {
		return errorf("postgres: enable webhook %s: %w", id, err)
	}
	return nil
}

// EnqueueEvents writes rows, all of subject, to the event outbox under a
// lock on the subject held until the transaction ends: of two
// transactions writing rows of one subject, the second waits for the
// first to commit, so ids of a subject follow commit order (see
// pkg/events). It announces the rows to every node on commit.
func (s *Store) EnqueueEvents(ctx context.Context, subject string, rows []events.Delivery) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	q := s.db(ctx)
	if _, err := q.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, subjectLockSpace, subject); err != nil {
		return errorf("postgres: lock event subject: %w", err)
	}
	for _, r := range rows {
		var webhook *string
		if r.WebhookID != "" {
			webhook = &r.WebhookID
		}
		if _, err := q.Exec(ctx, `INSERT INTO event_outbox (sink, webhook_id, event_id, event_type, subject, payload)
			VALUES ($1, $2, $3, $4, $5, $6)`, r.Sink, webhook, r.EventID, r.EventType, subject, []byte(r.Payload)); err != nil {
			return errorf("postgres: enqueue event %d: %w", r.EventID, err)
		}
	}
	if err := announce(ctx, q, eventsChannel, ""); err != nil {
		return errorf("postgres: enqueue events: %w", err)
	}
	return nil
}

const deliveryColumns = `o.id, o.sink, coalesce(o.webhook_id::text, ''), o.event_id, o.event_type, o.subject, o.status, o.attempts,
	o.next_attempt_at, o.last_error, o.last_status, o.created_at, o.attempts_since, o.delivered_at, o.payload`

func scanDelivery(row pgx.CollectableRow) (*events.Delivery, error) {
	var d events.Delivery
	var payload []byte
	err := row.Scan(&d.ID, &d.Sink, &d.WebhookID, &d.EventID, &d.EventType, &d.Subject, &d.Status, &d.Attempts,
		&d.NextAttemptAt, &d.LastError, &d.LastStatus, &d.CreatedAt, &d.AttemptsSince, &d.DeliveredAt, &payload)
	d.Payload = payload
	return &d, err
}

// ClaimEvent claims, for lease, the oldest due row that is not claimed,
// whose subscription is enabled (the log stream's only if logs), and that
// no older pending row of its sink and subject precedes; it counts the
// attempt. A claimed row stays pending, so the rows after it wait. As
// with mail, the row is locked only while claiming (SKIP LOCKED), and the
// claim outlives the transaction.
func (s *Store) ClaimEvent(ctx context.Context, lease time.Duration, logs bool) (*events.Claimed, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `WITH c AS (
			SELECT o.id FROM event_outbox o
			WHERE o.status = 'pending' AND o.next_attempt_at <= now() AND (o.claimed_until IS NULL OR o.claimed_until < now())
				AND (CASE WHEN o.webhook_id IS NULL THEN $2
					ELSE EXISTS (SELECT 1 FROM webhooks w WHERE w.id = o.webhook_id AND w.enabled) END)
				AND NOT EXISTS (SELECT 1 FROM event_outbox p
					WHERE p.sink = o.sink AND p.subject = o.subject AND p.status = 'pending' AND p.id < o.id)
			ORDER BY o.next_attempt_at, o.id LIMIT 1 FOR UPDATE OF o SKIP LOCKED)
		UPDATE event_outbox o SET claimed_until = now() + $1, claim = gen_random_uuid(), attempts = o.attempts + 1
		FROM c WHERE o.id = c.id
		RETURNING `+deliveryColumns+`, o.claim::text,
			coalesce((SELECT url FROM webhooks WHERE id = o.webhook_id), ''), (SELECT secret FROM webhooks WHERE id = o.webhook_id)`,
		lease, logs)
	if err != nil {
		return nil, errorf("postgres: claim event: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (*events.Claimed, error) {
		var c events.Claimed
		d := &c.Delivery
		var payload []byte
		err := row.Scan(&d.ID, &d.Sink, &d.WebhookID, &d.EventID, &d.EventType, &d.Subject, &d.Status, &d.Attempts,
			&d.NextAttemptAt, &d.LastError, &d.LastStatus, &d.CreatedAt, &d.AttemptsSince, &d.DeliveredAt, &payload,
			&c.Claim, &c.URL, &c.Sealed)
		d.Payload = payload
		return &c, err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, errorf("postgres: claim event: %w", err)
	}
	return c, nil
}

// MarkEventDelivered records a claimed row delivered and, for a webhook,
// its subscription's run of failures over. A claim taken over since
// changes nothing.
func (s *Store) MarkEventDelivered(ctx context.Context, c *events.Claimed, status int) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE event_outbox SET status = 'delivered', delivered_at = now(), claimed_until = NULL, claim = NULL,
		last_error = '', last_status = $3 WHERE id = $1 AND claim = $2::uuid`, c.ID, c.Claim, status)
	if err != nil {
		return errorf("postgres: mark event delivery %d: %w", c.ID, err)
	}
	if tag.RowsAffected() == 1 && c.WebhookID != "" {
		if _, err := s.db(ctx).Exec(ctx, `UPDATE webhooks SET consecutive_failures = 0, failing_since = NULL, last_success_at = now()
			WHERE id = $1`, c.WebhookID); err != nil {
			return errorf("postgres: mark event delivery %d: %w", c.ID, err)
		}
	}
	return nil
}

// RescheduleEvent records a failed attempt at a claimed row and, for a
// webhook, counts it on the subscription, returning since when its
// attempts have all failed.
func (s *Store) RescheduleEvent(ctx context.Context, c *events.Claimed, next time.Time, lastError string, status int, giveUp bool) (*time.Time, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE event_outbox SET claimed_until = NULL, claim = NULL, next_attempt_at = $3,
		last_error = left($4, 1000), last_status = $5, status = CASE WHEN $6 THEN 'failed' ELSE status END
		WHERE id = $1 AND claim = $2::uuid`, c.ID, c.Claim, next, lastError, status, giveUp)
	if err != nil {
		return nil, errorf("postgres: reschedule event delivery %d: %w", c.ID, err)
	}
	if tag.RowsAffected() == 0 || c.WebhookID == "" {
		return nil, nil
	}
	var since *time.Time
	err = s.db(ctx).QueryRow(ctx, `UPDATE webhooks SET consecutive_failures = consecutive_failures + 1,
		failing_since = coalesce(failing_since, now()) WHERE id = $1 RETURNING failing_since`, c.WebhookID).Scan(&since)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, errorf("postgres: count webhook failure: %w", err)
	}
	return since, nil
}

// DisableFailingWebhook disables a subscription that is enabled and has
// failed every attempt for failingFor; of nodes racing to, one does.
func (s *Store) DisableFailingWebhook(ctx context.Context, id, reason string, failingFor time.Duration) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE webhooks SET enabled = false, disabled_reason = $2, disabled_at = now(), updated_at = now()
		WHERE id = $1 AND enabled AND failing_since <= now() - $3::interval`, id, reason, failingFor)
	if err != nil {
		return false, errorf("postgres: disable webhook %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Deliveries returns the rows q selects, newest first.
func (s *Store) Deliveries(ctx context.Context, q events.DeliveryQuery) ([]*events.Delivery, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var w where
	w.addIf(q.WebhookID != "", "o.webhook_id = ?", q.WebhookID)
	w.addIf(q.Status != "", "o.status = ?", string(q.Status))
	w.addIf(q.BeforeID != 0, "o.id < ?", q.BeforeID)
	rows, err := s.db(ctx).Query(ctx, `SELECT `+deliveryColumns+` FROM event_outbox o`+w.sql()+` ORDER BY o.id DESC`+w.limit(q.Limit), w.args...)
	if err != nil {
		return nil, errorf("postgres: list event deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, scanDelivery)
	if err != nil {
		return nil, errorf("postgres: list event deliveries: %w", err)
	}
	return ds, nil
}

// EventCounts returns how many rows are pending and failed, by sink kind
// ("webhook", "log"), and how many subscriptions are disabled, for
// metrics read at scrape.
func (s *Store) EventCounts(ctx context.Context) (map[[2]string]int64, int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT CASE WHEN webhook_id IS NULL THEN 'log' ELSE 'webhook' END, status, count(*)
		FROM event_outbox WHERE status <> 'delivered' GROUP BY 1, 2`)
	if err != nil {
		return nil, 0, errorf("postgres: count events: %w", err)
	}
	counts := map[[2]string]int64{}
	for rows.Next() {
		var kind, status string
		var n int64
		if err := rows.Scan(&kind, &status, &n); err != nil {
			rows.Close()
			return nil, 0, errorf("postgres: count events: %w", err)
		}
		counts[[2]string{kind, status}] = n
	}
	if err := rows.Err(); err != nil {
		return nil, 0, errorf("postgres: count events: %w", err)
	}
	var disabled int64
	if err := s.db(ctx).QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE NOT enabled`).Scan(&disabled); err != nil {
		return nil, 0, errorf("postgres: count webhooks: %w", err)
	}
	return counts, disabled, nil
}
