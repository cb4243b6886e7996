package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/resource"
)

var _ resource.Store = (*Store)(nil)

const resourceColumns = `uri, name, scopes, created_at, updated_at`

// CreateResource registers r, filling in its times; resource.ErrExists if
// its URI is taken.
func (s *Store) CreateResource(ctx context.Context, r *resource.Resource) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err := s.db(ctx).QueryRow(ctx, `INSERT INTO resources (uri, name, scopes) VALUES ($1, $2, $3) RETURNING created_at, updated_at`,
		r.URI, r.Name, r.Scopes).Scan(&r.CreatedAt, &r.UpdatedAt)
	if isUniqueViolation(err) {
		return resource.ErrExists
	}
	if err != nil {
		return errorf("postgres: create resource: %w", err)
	}
	return nil
}

// Resource returns a resource, or resource.ErrNotFound.
func (s *Store) Resource(ctx context.Context, uri string) (*resource.Resource, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+resourceColumns+` FROM resources WHERE uri = $1`, uri)
	if err != nil {
		return nil, errorf("postgres: get resource: %w", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByPos[resource.Resource])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, resource.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: get resource: %w", err)
	}
	return &r, nil
}

// FindResources lists resources by URI.
func (s *Store) FindResources(ctx context.Context, q resource.Query) ([]resource.Resource, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var w where
	w.addIf(q.After != "", "uri > ?", q.After)
	sql := `SELECT ` + resourceColumns + ` FROM resources` + w.sql() + ` ORDER BY uri` + w.limit(q.Limit)
	rows, err := s.db(ctx).Query(ctx, sql, w.args...)
	if err != nil {
		return nil, errorf("postgres: list resources: %w", err)
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[resource.Resource])
	if err != nil {
		return nil, errorf("postgres: list resources: %w", err)
	}
	return rs, nil
}

// ReplaceResource changes the name and scopes of the resource r.URI names,
// filling in r's times; resource.ErrNotFound if there is none.
func (s *Store) ReplaceResource(ctx context.Context, r *resource.Resource) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err := s.db(ctx).QueryRow(ctx, `UPDATE resources SET name = $2, scopes = $3, updated_at = now() WHERE uri = $1
		RETURNING created_at, updated_at`, r.URI, r.Name, r.Scopes).Scan(&r.CreatedAt, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return resource.ErrNotFound
	}
	if err != nil {
		return errorf("postgres: replace resource: %w", err)
	}
	return nil
}

// DeleteResource removes a resource; resource.ErrNotFound if there is none.
func (s *Store) DeleteResource(ctx context.Context, uri string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `DELETE FROM resources WHERE uri = $1`, uri)
	if err != nil {
		return errorf("postgres: delete resource: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return resource.ErrNotFound
	}
	return nil
}
