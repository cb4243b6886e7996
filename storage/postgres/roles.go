package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchkey/latchkey/pkg/roles"
)

var _ roles.Store = (*Store)(nil)

const roleColumns = `name, description, created_at, updated_at`

// CreateRole stores a new role, or returns roles.ErrExists.
func (s *Store) CreateRole(ctx context.Context, r *roles.Role) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err := s.db(ctx).QueryRow(ctx, `INSERT INTO roles (name, description) VALUES ($1, $2) RETURNING created_at, updated_at`,
		r.Name, r.Description).Scan(&r.CreatedAt, &r.UpdatedAt)
	if isUniqueViolation(err) {
		return roles.ErrExists
	}
	if err != nil {
		return errorf("postgres: create role: %w", err)
	}
	return nil
}

// Role returns a role, or roles.ErrNotFound.
func (s *Store) Role(ctx context.Context, name string) (*roles.Role, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+roleColumns+` FROM roles WHERE name = $1`, name)
	if err != nil {
		return nil, errorf("postgres: get role: %w", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[roles.Role])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, roles.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: get role: %w", err)
	}
	return &r, nil
}

// FindRoles returns the roles q selects, by name.
func (s *Store) FindRoles(ctx context.Context, q roles.Query) ([]roles.Role, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var w where
	w.addIf(q.After != "", "name > ?", q.After)
	sql := `SELECT ` + roleColumns + ` FROM roles` + w.sql() + ` ORDER BY name` + w.limit(q.Limit)
	rows, err := s.db(ctx).Query(ctx, sql, w.args...)
	if err != nil {
		return nil, errorf("postgres: list roles: %w", err)
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[roles.Role])
	if err != nil {
		return nil, errorf("postgres: list roles: %w", err)
	}
	return rs, nil
}

// UpdateRoleDescription changes a role's description.
func (s *Store) UpdateRoleDescription(ctx context.Context, name, description string) (*roles.Role, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `UPDATE roles SET description = $2, updated_at = now() WHERE name = $1
		RETURNING `+roleColumns, name, description)
	if err != nil {
		return nil, errorf("postgres: update role: %w", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[roles.Role])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, roles.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: update role: %w", err)
	}
	return &r, nil
}

// DeleteRole removes a role and, by cascade, every assignment of it.
func (s *Store) DeleteRole(ctx context.Context, name string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `DELETE FROM roles WHERE name = $1`, name)
	if err != nil {
		return errorf("postgres: delete role: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return roles.ErrNotFound
	}
	return nil
}

// AssignRole gives a user a role and reports whether they lacked it.
func (s *Store) AssignRole(ctx context.Context, userID, name string) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `INSERT INTO user_roles (user_id, role) VALUES ($1, $2) ON CONFLICT DO NOTHING`, userID, name)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23503" && pgErr.ConstraintName == "user_roles_role_fkey":
		return false, roles.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23503":
		return false, roles.ErrUserNotFound
	case err != nil:
		return false, errorf("postgres: assign role: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// UnassignRole takes a role from a user and reports whether they had it.
// It returns roles.ErrNotFound for a role that does not exist and
// roles.ErrUserNotFound for an unknown user.
func (s *Store) UnassignRole(ctx context.Context, userID, name string) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var removed, roleExists, userExists bool
	err := s.db(ctx).QueryRow(ctx, `WITH d AS (DELETE FROM user_roles WHERE user_id = $1 AND role = $2 RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM d), EXISTS (SELECT 1 FROM roles WHERE name = $2), EXISTS (SELECT 1 FROM users WHERE id = $1)`,
		userID, name).Scan(&removed, &roleExists, &userExists)
	switch {
	case err != nil:
		return false, errorf("postgres: unassign role: %w", err)
	case !roleExists:
		return false, roles.ErrNotFound
	case !userExists:
		return false, roles.ErrUserNotFound
	}
	return removed, nil
}

// UserRoles returns the names of a user's roles, sorted.
func (s *Store) UserRoles(ctx context.Context, userID string) ([]string, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role`, userID)
	if err != nil {
		return nil, errorf("postgres: roles of user: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, errorf("postgres: roles of user: %w", err)
	}
	return names, nil
}
