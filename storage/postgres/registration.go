package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/registration"
)

var _ registration.Store = (*Store)(nil)

// registrationTokenColumns are an initial access token's columns as
// scanRegistrationToken reads them.
const registrationTokenColumns = /* #nosec G101 -- column names, not a credential */ `t.id, t.prefix, t.name, t.max_uses, t.uses, t.policy, t.expires_at, t.created_at`

func scanRegistrationToken(row pgx.CollectableRow) (registration.InitialToken, error) {
	var (
		t      registration.InitialToken
		policy []byte
	)
	if err := row.Scan(&t.ID, &t.Prefix, &t.Name, &t.MaxUses, &t.Uses, &policy, &t.ExpiresAt, &t.CreatedAt); err != nil {
		return t, err
	}
	return t, json.Unmarshal(policy, &t.Policy)
}

// CreateRegistrationToken stores a new initial access token under digest.
func (s *Store) CreateRegistrationToken(ctx context.Context, t *registration.InitialToken, digest []byte) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	policy, err := json.Marshal(t.Policy)
	if err != nil {
		return errorf("postgres: create registration token: %w", err)
	}
	if _, err := s.db(ctx).Exec(ctx, `INSERT INTO registration_tokens (id, digest, prefix, name, max_uses, policy, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, t.ID, digest, t.Prefix, t.Name, t.MaxUses, policy, t.ExpiresAt, t.CreatedAt); err != nil {
		return errorf("postgres: create registration token: %w", err)
	}
	return nil
}

// RegistrationTokens lists the initial access tokens, newest first.
func (s *Store) RegistrationTokens(ctx context.Context) ([]registration.InitialToken, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT `+registrationTokenColumns+` FROM registration_tokens t ORDER BY t.created_at DESC, t.id`)
	if err != nil {
		return nil, errorf("postgres: list registration tokens: %w", err)
	}
	ts, err := pgx.CollectRows(rows, scanRegistrationToken)
	if err != nil {
		return nil, errorf("postgres: list registration tokens: %w", err)
	}
	return ts, nil
}

// DeleteRegistrationToken deletes an initial access token and returns it.
func (s *Store) DeleteRegistrationToken(ctx context.Context, id string) (*registration.InitialToken, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `DELETE FROM registration_tokens t WHERE t.id = $1 RETURNING `+registrationTokenColumns, id)
	if err != nil {
		return nil, errorf("postgres: revoke registration token: %w", err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanRegistrationToken)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registration.ErrTokenNotFound
	}
	if err != nil {
		return nil, errorf("postgres: revoke registration token: %w", err)
	}
	return &t, nil
}

// SpendRegistrationToken adds a use to the token in one statement, which
// locks its row: a parallel registration with the same token waits for
// this transaction, then finds the uses as it left them, so no more
// registrations succeed than the token has uses.
func (s *Store) SpendRegistrationToken(ctx context.Context, digest []byte, now time.Time) (*registration.InitialToken, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `UPDATE registration_tokens t SET uses = t.uses + 1
		WHERE t.digest = $1 AND t.uses < t.max_uses AND t.expires_at > $2
		RETURNING `+registrationTokenColumns, digest, now)
	if err != nil {
		return nil, errorf("postgres: spend registration token: %w", err)
	}
	t, err := pgx.CollectExactlyOneRow(rows, scanRegistrationToken)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registration.ErrTokenRefused
	}
	if err != nil {
		return nil, errorf("postgres: spend registration token: %w", err)
	}
	return &t, nil
}

// LockOpenRegistrations takes a transaction-scoped advisory lock, so that
// the counts it returns stay true until the registration that asked is
// stored or abandoned, on any node. network is an address or a prefix.
func (s *Store) LockOpenRegistrations(ctx context.Context, network string, since time.Time) (total, fromNetwork int, err error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	db := s.db(ctx)
	if _, err := db.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('client_registrations open', 0))`); err != nil {
		return 0, 0, errorf("postgres: lock open registrations: %w", err)
	}
	if err := db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE registered_from <<= $1 AND created_at > $2)
		FROM client_registrations WHERE open`, parseNetwork(network), since).Scan(&total, &fromNetwork); err != nil {
		return 0, 0, errorf("postgres: count open registrations: %w", err)
	}
	return total, fromNetwork, nil
}

// parseAddr is address as the inet column takes it, or nil (NULL) if it
// is not an address.
// parseNetwork reads a prefix, or an address as the prefix of itself
// alone; nil (matching nothing) if it is neither.
func parseNetwork(network string) *netip.Prefix {
	if p, err := netip.ParsePrefix(network); err == nil {
		return &p
	}
	a, err := netip.ParseAddr(network)
	if err != nil {
		return nil
	}
	p := netip.PrefixFrom(a, a.BitLen())
	return &p
}

func parseAddr(address string) *netip.Addr {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return nil
	}
	return &a
}

// CreateRegistration stores a client's registration.
func (s *Store) CreateRegistration(ctx context.Context, r *registration.Registration) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	policy, err := json.Marshal(r.Policy)
	if err != nil {
		return errorf("postgres: create registration: %w", err)
	}
	if err := s.db(ctx).QueryRow(ctx, `INSERT INTO client_registrations (client_id, token_digest, policy, open, initial_token_id, registered_from)
		VALUES ($1, $2, $3, $4, nullif($5, '')::uuid, $6) RETURNING created_at`,
		r.ClientID, r.Digest, policy, r.Open, r.TokenID, parseAddr(r.From)).Scan(&r.CreatedAt); err != nil {
		return errorf("postgres: create registration: %w", err)
	}
	return nil
}

// RegistrationOf returns a client's registration.
func (s *Store) RegistrationOf(ctx context.Context, clientID string) (*registration.Registration, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var (
		r      registration.Registration
		policy []byte
		from   *netip.Addr
	)
	err := s.db(ctx).QueryRow(ctx, `SELECT client_id, token_digest, policy, open, coalesce(initial_token_id::text, ''), registered_from, created_at
		FROM client_registrations WHERE client_id = $1`, clientID).
		Scan(&r.ClientID, &r.Digest, &policy, &r.Open, &r.TokenID, &from, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, registration.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: get registration: %w", err)
	}
	if from != nil {
		r.From = from.String()
	}
	return &r, json.Unmarshal(policy, &r.Policy)
}
