package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/audit"
)

var _ audit.Store = (*Store)(nil)

// InsertAuditEvent stores an event, in the transaction ctx carries if any,
// and fills in its ID and time.
func (s *Store) InsertAuditEvent(ctx context.Context, e *audit.Event) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err := s.db(ctx).QueryRow(ctx, `INSERT INTO audit_events (actor, action, target, ip, request_id, details)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, at`,
		e.Actor, e.Action, e.Target, e.IP, e.RequestID, e.Details).Scan(&e.ID, &e.At)
	if err != nil {
		return errorf("postgres: record audit event %s: %w", e.Action, err)
	}
	return nil
}

// AuditEvents returns the events q selects, newest first. Only the filters
// q sets become conditions, so that each query can use its index; their
// values are always bound parameters.
func (s *Store) AuditEvents(ctx context.Context, q audit.Query) ([]audit.Event, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var w where
	w.addIf(q.Actor != "", "actor = ?", q.Actor)
	w.addIf(q.Action != "", "action = ?", q.Action)
	w.addIf(q.Target != "", "target = ?", q.Target)
	w.addIf(!q.Since.IsZero(), "at >= ?", q.Since)
	w.addIf(!q.Until.IsZero(), "at < ?", q.Until)
	w.addIf(q.BeforeID > 0, "id < ?", q.BeforeID)
	sql := `SELECT id, at, actor, action, target, ip, request_id, details FROM audit_events` +
		w.sql() + ` ORDER BY id DESC` + w.limit(q.Limit)
	rows, err := s.db(ctx).Query(ctx, sql, w.args...)
	if err != nil {
		return nil, errorf("postgres: list audit events: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (audit.Event, error) {
		var e audit.Event
		err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.IP, &e.RequestID, &e.Details)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, errorf("postgres: list audit events: %w", err)
	}
	return events, nil
}
