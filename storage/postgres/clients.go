package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/validation"
)

var _ client.Store = (*Store)(nil)

// clientColumns selects a client from the clients table aliased c, as
// clientRow scans it.
const clientColumns = `c.id, c.metadata, c.secret_hash, c.previous_secret_hash, c.previous_secret_expires_at, c.secret_rotated_at, c.created_at, c.updated_at`

// CreateClient stores a new client, and tells every node, which may
// remember its ID as no client's. It returns client.ErrExists if the ID
// is taken.
func (s *Store) CreateClient(ctx context.Context, c *client.Client) error {
	meta, err := json.Marshal(c)
	if err != nil {
		return errorf("postgres: create client: %w", err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO clients (id, name, metadata, secret_hash, previous_secret_hash, previous_secret_expires_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at, updated_at`,
			c.ID, c.Name, meta, c.SecretHash, c.PreviousSecretHash, nullTime(c.PreviousSecretExpiresAt),
		).Scan(&c.CreatedAt, &c.UpdatedAt); err != nil {
			return err
		}
		return announceClientChange(ctx, tx, c.ID)
	})
	// This node forgets a miss at once; the others on commit.
	s.clients.evict(c.ID)
	if isUniqueViolation(err) {
		return client.ErrExists
	}
	if err != nil {
		return errorf("postgres: create client: %w", err)
	}
	return nil
}

// ClientByID returns a client, or client.ErrNotFound.
func (s *Store) ClientByID(ctx context.Context, id string) (*client.Client, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+clientColumns+` FROM clients c WHERE c.id = $1`, id)
	if err != nil {
		return nil, errorf("postgres: get client: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanClient)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, client.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: get client: %w", err)
	}
	return c, nil
}

// FindClients returns the clients q selects, ordered by ID; all of them
// when q.Limit is 0.
func (s *Store) FindClients(ctx context.Context, q client.Query) ([]*client.Client, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var w where
	w.addIf(q.NamePrefix != "", "starts_with(lower(c.name), ?)", strings.ToLower(q.NamePrefix))
	w.addIf(q.After != "", "c.id > ?", q.After)
	sql := `SELECT ` + clientColumns + ` FROM clients c` + w.sql() + ` ORDER BY c.id` + w.limit(q.Limit)
	rows, err := s.db(ctx).Query(ctx, sql, w.args...)
	if err != nil {
		return nil, errorf("postgres: list clients: %w", err)
	}
	cs, err := pgx.CollectRows(rows, scanClient)
	if err != nil {
		return nil, errorf("postgres: list clients: %w", err)
	}
	return cs, nil
}

// RevokeClientTokens revokes every token and unused code of a client, in
// one transaction, and returns how many there were.
func (s *Store) RevokeClientTokens(ctx context.Context, id string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM clients WHERE id = $1)`, id).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return client.ErrNotFound
		}
		for _, t := range []tokenTable{accessTokens, refreshTokens, codes} {
			tag, err := tx.Exec(ctx, t.revoke(`client_id = $1`), id)
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	if errors.Is(err, client.ErrNotFound) {
		return 0, err
	}
	if err != nil {
		return 0, errorf("postgres: revoke tokens of client %s: %w", id, err)
	}
	return n, nil
}

// UpdateClient locks the client, lets update change it, and stores the
// result, all in one transaction; an error from update changes nothing and
// is returned as is.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(*client.Client) error) (*client.Client, error) {
	var updated *client.Client
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+clientColumns+` FROM clients c WHERE c.id = $1 FOR UPDATE`, id)
		if err != nil {
			return err
		}
		c, err := pgx.CollectExactlyOneRow(rows, scanClient)
		if errors.Is(err, pgx.ErrNoRows) {
			return client.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := update(c); err != nil {
			return err
		}
		meta, err := json.Marshal(c)
		if err != nil {
			return err
		}
		updated = c
		if err := tx.QueryRow(ctx, `UPDATE clients SET name = $2, metadata = $3, secret_hash = $4,
			previous_secret_hash = $5, previous_secret_expires_at = $6, secret_rotated_at = $7, updated_at = now()
			WHERE id = $1 RETURNING updated_at`,
			id, c.Name, meta, c.SecretHash, c.PreviousSecretHash, nullTime(c.PreviousSecretExpiresAt), nullTime(c.SecretRotatedAt),
		).Scan(&c.UpdatedAt); err != nil {
			return err
		}
		return announceClientChange(ctx, tx, id)
	})
	// Other nodes hear of the change on commit; this one forgets at once, so
	// that a rotated-out secret stops working here before this returns.
	s.clients.evict(id)
	var verr *validation.Error
	if errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrNoSecret) || errors.As(err, &verr) {
		return nil, err
	}
	if err != nil {
		return nil, errorf("postgres: update client %s: %w", id, err)
	}
	return updated, nil
}

// DeleteClient removes a client and, by cascade, every token issued to it,
// and tells every node to forget it.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	defer s.clients.evict(id)
	var deleted bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if deleted = tag.RowsAffected() == 1; !deleted {
			return nil
		}
		return announceClientChange(ctx, tx, id)
	})
	if err != nil {
		return errorf("postgres: delete client: %w", err)
	}
	if !deleted {
		return client.ErrNotFound
	}
	return nil
}

// GetClient is fosite's way to load a client, which it does on every
// request it authenticates; it is served from the client cache.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.cachedClient(ctx, id)
	if errors.Is(err, client.ErrNotFound) {
		return nil, fosite.ErrNotFound.WithDebug("no such client")
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

func scanClient(row pgx.CollectableRow) (*client.Client, error) {
	var cr clientRow
	if err := row.Scan(cr.fields()...); err != nil {
		return nil, err
	}
	return cr.client()
}

// clientRow receives the columns clientColumns selects.
type clientRow struct {
	c                client.Client
	meta             []byte
	prevExp, rotated *time.Time
}

func (cr *clientRow) fields() []any {
	return []any{&cr.c.ID, &cr.meta, &cr.c.SecretHash, &cr.c.PreviousSecretHash, &cr.prevExp, &cr.rotated, &cr.c.CreatedAt, &cr.c.UpdatedAt}
}

// client decodes the metadata around the columns, which are authoritative.
func (cr *clientRow) client() (*client.Client, error) {
	c := cr.c
	if err := json.Unmarshal(cr.meta, &c); err != nil {
		return nil, fmt.Errorf("client %s: metadata: %w", cr.c.ID, err)
	}
	c.ID, c.CreatedAt, c.UpdatedAt = cr.c.ID, cr.c.CreatedAt, cr.c.UpdatedAt
	if cr.prevExp != nil {
		c.PreviousSecretExpiresAt = *cr.prevExp
	}
	if cr.rotated != nil {
		c.SecretRotatedAt = *cr.rotated
	}
	return &c, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
