package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchkey/latchkey/pkg/usage"
)

var (
	_ usage.PlanStore  = (*Store)(nil)
	_ usage.MeterStore = (*Store)(nil)
)

const planColumns = `name, description, limits, created_at, updated_at`

func scanPlan(row pgx.Row) (*usage.Plan, error) {
	var p usage.Plan
	var limits []byte
	if err := row.Scan(&p.Name, &p.Description, &limits, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(limits, &p.Limits); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreatePlan stores a new plan, or returns usage.ErrExists.
func (s *Store) CreatePlan(ctx context.Context, p *usage.Plan) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	limits, err := json.Marshal(p.Limits)
	if err != nil {
		return err
	}
	err = s.db(ctx).QueryRow(ctx, `INSERT INTO usage_plans (name, description, limits) VALUES ($1, $2, $3)
		RETURNING created_at, updated_at`, p.Name, p.Description, limits).Scan(&p.CreatedAt, &p.UpdatedAt)
	if isUniqueViolation(err) {
		return usage.ErrExists
	}
	if err != nil {
		return errorf("postgres: create plan: %w", err)
	}
	return nil
}

// Plan returns a plan, or usage.ErrNotFound.
func (s *Store) Plan(ctx context.Context, name string) (*usage.Plan, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	p, err := scanPlan(s.db(ctx).QueryRow(ctx, `SELECT `+planColumns+` FROM usage_plans WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, usage.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: get plan: %w", err)
	}
	return p, nil
}

// Plans returns every plan, by name.
func (s *Store) Plans(ctx context.Context) ([]usage.Plan, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+planColumns+` FROM usage_plans ORDER BY name`)
	if err != nil {
		return nil, errorf("postgres: list plans: %w", err)
	}
	defer rows.Close()
	plans := []usage.Plan{}
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return nil, errorf("postgres: list plans: %w", err)
		}
		plans = append(plans, *p)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: list plans: %w", err)
	}
	return plans, nil
}

// UpdatePlan replaces a plan's description and limits.
func (s *Store) UpdatePlan(ctx context.Context, p *usage.Plan) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	limits, err := json.Marshal(p.Limits)
	if err != nil {
		return err
	}
	err = s.db(ctx).QueryRow(ctx, `UPDATE usage_plans SET description = $2, limits = $3, updated_at = now()
		WHERE name = $1 RETURNING created_at, updated_at`, p.Name, p.Description, limits).Scan(&p.CreatedAt, &p.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return usage.ErrNotFound
	}
	if err != nil {
		return errorf("postgres: update plan: %w", err)
	}
	return nil
}

// DeletePlan removes a plan and, by cascade, its assignments.
func (s *Store) DeletePlan(ctx context.Context, name string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `DELETE FROM usage_plans WHERE name = $1`, name)
	if err != nil {
		return errorf("postgres: delete plan: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return usage.ErrNotFound
	}
	return nil
}

// AssignPlan gives subject the plan and returns the one it had.
func (s *Store) AssignPlan(ctx context.Context, subject, name string) (string, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var before string
	err := s.db(ctx).QueryRow(ctx, `SELECT plan FROM usage_assignments WHERE subject = $1 FOR UPDATE`, subject).Scan(&before)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", errorf("postgres: assign plan: %w", err)
	}
	_, err = s.db(ctx).Exec(ctx, `INSERT INTO usage_assignments (subject, plan) VALUES ($1, $2)
		ON CONFLICT (subject) DO UPDATE SET plan = excluded.plan, created_at = now()`, subject, name)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return "", usage.ErrNotFound
	}
	if err != nil {
		return "", errorf("postgres: assign plan: %w", err)
	}
	return before, nil
}

// UnassignPlan takes the plan from subject and reports whether it had it;
// usage.ErrNotFound if the plan does not exist.
func (s *Store) UnassignPlan(ctx context.Context, subject, name string) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `DELETE FROM usage_assignments WHERE subject = $1 AND plan = $2`, subject, name)
	if err != nil {
		return false, errorf("postgres: unassign plan: %w", err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.Plan(ctx, name); err != nil {
			return false, err
		}
	}
	return tag.RowsAffected() == 1, nil
}

// PlanSubjects lists the subjects a plan is assigned to, or
// usage.ErrNotFound.
func (s *Store) PlanSubjects(ctx context.Context, name string) ([]string, error) {
	if _, err := s.Plan(ctx, name); err != nil {
		return nil, err
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT subject FROM usage_assignments WHERE plan = $1 ORDER BY subject`, name)
	if err != nil {
		return nil, errorf("postgres: plan subjects: %w", err)
	}
	subjects, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, errorf("postgres: plan subjects: %w", err)
	}
	return subjects, nil
}

// AssignedPlans returns every subject that has a plan, with it; subjects
// of one plan share it.
func (s *Store) AssignedPlans(ctx context.Context) (map[string]*usage.Plan, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT a.subject, p.name, p.description, p.limits, p.created_at, p.updated_at
		FROM usage_assignments a JOIN usage_plans p ON p.name = a.plan`)
	if err != nil {
		return nil, errorf("postgres: assigned plans: %w", err)
	}
	defer rows.Close()
	byName := map[string]*usage.Plan{}
	out := map[string]*usage.Plan{}
	for rows.Next() {
		var subject string
		var p usage.Plan
		var limits []byte
		if err := rows.Scan(&subject, &p.Name, &p.Description, &limits, &p.CreatedAt, &p.UpdatedAt); err != nil {
			return nil, errorf("postgres: assigned plans: %w", err)
		}
		shared, ok := byName[p.Name]
		if !ok {
			if err := json.Unmarshal(limits, &p.Limits); err != nil {
				return nil, errorf("postgres: plan %s: %w", p.Name, err)
			}
			shared = &p
			byName[p.Name] = shared
		}
		out[subject] = shared
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("postgres: assigned plans: %w", err)
	}
	return out, nil
}

// ReserveQuota takes the next slice of a quota's budget in one statement:
// a quarter of what is left (the divisor is pkg/usage's), at least 1 and
// at most most, or nothing when nothing is left. The row is locked by the
// statement, so reservations on any number of nodes never hand out more
// than limit between them. In an UPDATE, SET reads the row as it was, so
// last_grant is what this reservation added. It runs on the pool, never in
// a transaction the context carries: the node spends the budget in memory
// at once, so a rollback must not take the reservation back.
func (s *Store) ReserveQuota(ctx context.Context, k usage.QuotaKey, limit, most int64) (int64, int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var granted, reserved int64
	err := s.pool.QueryRow(ctx, `
		INSERT INTO usage_quotas AS q (subject, scope, period, period_start, reserved, last_grant)
		VALUES ($1, $2, $3, $4, LEAST(GREATEST($5::bigint / 4, 1), $6::bigint, $5::bigint),
		                        LEAST(GREATEST($5::bigint / 4, 1), $6::bigint, $5::bigint))
		ON CONFLICT (subject, scope, period, period_start) DO UPDATE SET
			last_grant = GREATEST(LEAST(GREATEST(($5::bigint - q.reserved) / 4, 1), $6::bigint, $5::bigint - q.reserved), 0),
			reserved = q.reserved + GREATEST(LEAST(GREATEST(($5::bigint - q.reserved) / 4, 1), $6::bigint, $5::bigint - q.reserved), 0)
		RETURNING last_grant, reserved`,
		k.Subject, k.Scope, k.Period, k.Start, limit, most).Scan(&granted, &reserved)
	if err != nil {
		return 0, 0, errorf("postgres: reserve quota: %w", err)
	}
	return granted, reserved, nil
}

// ReturnQuota gives back n calls of reserved budget, on the pool, as
// ReserveQuota reserves it.
func (s *Store) ReturnQuota(ctx context.Context, k usage.QuotaKey, n int64) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `UPDATE usage_quotas SET reserved = GREATEST(reserved - $5, 0)
		WHERE subject = $1 AND scope = $2 AND period = $3 AND period_start = $4`, k.Subject, k.Scope, k.Period, k.Start, n)
	if err != nil {
		return errorf("postgres: return quota: %w", err)
	}
	return nil
}

// AddUsage adds a batch of daily counts in one statement.
func (s *Store) AddUsage(ctx context.Context, calls []usage.Daily) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	subjects := make([]string, len(calls))
	endpoints := make([]string, len(calls))
	days := make([]time.Time, len(calls))
	served := make([]int64, len(calls))
	refused := make([]int64, len(calls))
	for i, c := range calls {
		subjects[i], endpoints[i], days[i], served[i], refused[i] = c.Subject, c.Endpoint, c.Day, c.Served, c.Refused
	}
	_, err := s.db(ctx).Exec(ctx, `INSERT INTO usage_daily AS u (subject, endpoint, day, served, refused)
		SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[], $5::bigint[])
		ON CONFLICT (subject, day, endpoint) DO UPDATE SET
			served = u.served + excluded.served, refused = u.refused + excluded.refused`,
		subjects, endpoints, days, served, refused)
	if err != nil {
		return errorf("postgres: add usage: %w", err)
	}
	return nil
}

// Usage returns subject's daily usage between two days, both included.
func (s *Store) Usage(ctx context.Context, subject string, from, to time.Time) ([]usage.Daily, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT subject, day, endpoint, served, refused FROM usage_daily
		WHERE subject = $1 AND day BETWEEN $2 AND $3 ORDER BY day, endpoint`, subject, from, to)
	if err != nil {
		return nil, errorf("postgres: usage: %w", err)
	}
	ds, err := pgx.CollectRows(rows, pgx.RowToStructByPos[usage.Daily])
	if err != nil {
		return nil, errorf("postgres: usage: %w", err)
	}
	return ds, nil
}
