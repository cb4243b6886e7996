package postgres

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/apikey"
)

var _ apikey.Store = (*Store)(nil)

// apiKeyColumns are a key's columns as scanAPIKey reads them.
const apiKeyColumns = /* #nosec G101 -- column names, not a credential */ `k.id, k.prefix, coalesce(k.client_id, ''), coalesce(k.user_id::text, ''), k.name,
	array_to_string(k.scopes, ' '), k.audience, k.allowed_addresses, k.expires_at, k.created_at,
	k.last_used_at, k.last_used_from`

func scanAPIKey(row pgx.Row, k *apikey.Key, extra ...any) error {
	var from *netip.Addr
	dest := append([]any{&k.ID, &k.Prefix, &k.ClientID, &k.UserID, &k.Name, &k.Scope, &k.Audience,
		&k.AllowedAddresses, &k.ExpiresAt, &k.CreatedAt, &k.LastUsedAt, &from}, extra...)
	if err := row.Scan(dest...); err != nil {
		return err
	}
	if from != nil {
		k.LastUsedFrom = from.String()
	}
	return nil
}

// ownerIs is the condition, on an indexed column, that a key k belongs
// to owner, whose ID is the query's parameter n, and that ID.
func ownerIs(owner apikey.Owner, n string) (string, string) {
	if owner.UserID != "" {
		return "k.user_id = $" + n + "::uuid", owner.UserID
	}
	return "k.client_id = $" + n, owner.ClientID
}

// CreateAPIKey stores a key unless its owner holds max already. The owner's
// advisory lock, held to the end of the transaction, makes the count and
// the insert one step for parallel creations on any node.
func (s *Store) CreateAPIKey(ctx context.Context, k *apikey.Key, digest []byte, max int) error {
	owner := "client:" + k.ClientID
	if k.UserID != "" {
		owner = "user:" + k.UserID
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('api_keys ' || $1, 0))`, owner); err != nil {
			return err
		}
		var n int
		cond, id := ownerIs(k.Owner(), "1")
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys k WHERE `+cond, id).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return apikey.ErrTooMany
		}
		audience, nets := k.Audience, k.AllowedAddresses
		if audience == nil {
			audience = []string{}
		}
		if nets == nil {
			nets = []netip.Prefix{}
		}
		_, err := tx.Exec(ctx, `INSERT INTO api_keys (id, digest, prefix, client_id, user_id, name, scopes, audience,
				allowed_addresses, expires_at, created_at)
			VALUES ($1, $2, $3, nullif($4, ''), nullif($5, '')::uuid, $6, string_to_array($7, ' '), $8, $9, $10, $11)`,
			k.ID, digest, k.Prefix, k.ClientID, k.UserID, k.Name, k.Scope, audience, nets, k.ExpiresAt, k.CreatedAt)
		return err
	})
	if errors.Is(err, apikey.ErrTooMany) {
		return err
	}
	if err != nil {
		return errorf("postgres: create API key: %w", err)
	}
	return nil
}

// APIKeyByDigest is the one query introspecting a key costs: the key by
// its unique digest, its client's scope now or its user's disabled flag,
// and whether the address was seen, all through primary keys.
func (s *Store) APIKeyByDigest(ctx context.Context, digest []byte, from netip.Addr) (*apikey.Found, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var addr *netip.Addr
	if from.IsValid() {
		addr = &from
	}
	f := &apikey.Found{}
	err := scanAPIKey(s.db(ctx).QueryRow(ctx, `SELECT `+apiKeyColumns+`,
			coalesce(c.metadata->>'scope', ''), coalesce(u.disabled, false),
			EXISTS (SELECT 1 FROM api_key_addresses a WHERE a.key_id = k.id AND a.address = $2),
			k.addresses_full_at IS NOT NULL
		FROM api_keys k
		LEFT JOIN clients c ON c.id = k.client_id
		LEFT JOIN users u ON u.id = k.user_id
		WHERE k.digest = $1`, digest, addr), &f.Key, &f.OwnerScope, &f.OwnerDisabled, &f.AddressKnown, &f.AddressesFull)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apikey.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: look up API key: %w", err)
	}
	return f, nil
}

// RecordAPIKeyAddress records the key's use from an address, unless the
// key has max addresses already. Calls for one key take its row's lock,
// so that parallel calls on any number of nodes cannot record more than
// max, and exactly one of them finds the addresses full first; the
// primary key of api_key_addresses lets exactly one insert an address.
// Only uses from addresses not recorded come here, at most max+1 writes
// per key. The first use from an address is also the key's last use.
func (s *Store) RecordAPIKeyAddress(ctx context.Context, id string, from netip.Addr, now time.Time, max int) (apikey.AddressRecord, error) {
	rec := apikey.AddressKnown
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var full bool
		var count int
		// The lock first, then the count, in its own statement: a
		// statement that waited for the lock still sees the addresses as
		// they were when it began.
		err := tx.QueryRow(ctx, `SELECT addresses_full_at IS NOT NULL FROM api_keys WHERE id = $1 FOR UPDATE`, id).Scan(&full)
		if err == nil && !full {
			err = tx.QueryRow(ctx, `SELECT count(*) FROM api_key_addresses WHERE key_id = $1`, id).Scan(&count)
		}
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil // revoked meanwhile: nothing to record
		case err != nil:
			return err
		case full:
			rec = apikey.AddressRefused
			return nil
		case count >= max:
			rec = apikey.AddressesFull
			_, err = tx.Exec(ctx, `UPDATE api_keys SET addresses_full_at = $2, last_used_at = $2, last_used_from = $3 WHERE id = $1`, id, now, from)
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO api_key_addresses (key_id, address, first_seen) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, id, from, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		rec = apikey.AddressNew
		_, err = tx.Exec(ctx, `UPDATE api_keys SET last_used_at = $2, last_used_from = $3 WHERE id = $1`, id, now, from)
		return err
	})
	if err != nil {
		return apikey.AddressKnown, errorf("postgres: record API key address: %w", err)
	}
	return rec, nil
}

// TouchAPIKey records a use unless one within every is recorded already:
// of parallel calls on any number of nodes, one writes.
func (s *Store) TouchAPIKey(ctx context.Context, id string, from netip.Addr, now time.Time, every time.Duration) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var addr *netip.Addr
	if from.IsValid() {
		addr = &from
	}
	_, err := s.db(ctx).Exec(ctx, `UPDATE api_keys SET last_used_at = $2, last_used_from = coalesce($3, last_used_from)
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $4)`, id, now, addr, now.Add(-every))
	if err != nil {
		return errorf("postgres: touch API key: %w", err)
	}
	return nil
}

// APIKeys lists the owner's keys, newest first.
func (s *Store) APIKeys(ctx context.Context, owner apikey.Owner) ([]apikey.Key, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	cond, oid := ownerIs(owner, "1")
	rows, err := s.db(ctx).Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys k WHERE `+cond+`
		ORDER BY k.created_at DESC, k.id`, oid)
	if err != nil {
		return nil, errorf("postgres: list API keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (apikey.Key, error) {
		var k apikey.Key
		return k, scanAPIKey(row, &k)
	})
	if err != nil {
		return nil, errorf("postgres: list API keys: %w", err)
	}
	return keys, nil
}

// DeleteAPIKey deletes the owner's key; a key of another owner is not
// found.
func (s *Store) DeleteAPIKey(ctx context.Context, owner apikey.Owner, id string) (*apikey.Key, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var k apikey.Key
	cond, oid := ownerIs(owner, "2")
	err := scanAPIKey(s.db(ctx).QueryRow(ctx, `DELETE FROM api_keys k WHERE k.id = $1 AND `+cond+`
		RETURNING `+apiKeyColumns, id, oid), &k)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apikey.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: revoke API key: %w", err)
	}
	return &k, nil
}
