package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/keys"
)

var _ keys.Store = (*Store)(nil)

// signingKeysLock serialises key creation across nodes that start together.
// It is an arbitrary constant shared by every Latchkey node.
const signingKeysLock = 0x4c4b_6b65_7973 // "LKkeys"

const signingKeyColumns = `kid, algorithm, public_jwk, private_key, created_at, retired_at`

// SigningKeys lists keys, newest first; retired ones only if includeRetired.
func (s *Store) SigningKeys(ctx context.Context, includeRetired bool) ([]keys.Stored, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys
		WHERE $1 OR retired_at IS NULL ORDER BY created_at DESC, kid`, includeRetired)
	if err != nil {
		return nil, errorf("postgres: list signing keys: %w", err)
	}
	stored, err := pgx.CollectRows(rows, scanSigningKey)
	if err != nil {
		return nil, errorf("postgres: list signing keys: %w", err)
	}
	return stored, nil
}

// EnsureSigningKeys gives every algorithm in algs an active key, calling
// generate for those that have none. It holds a transaction-scoped advisory
// lock, so nodes starting together on an empty database create one key per
// algorithm between them, not one each. It returns the keys it created.
//
// The keys are made before the transaction: an RSA key can take longer
// than the database deadline on a loaded machine, and no other node need
// wait on the lock while one is made. A key made for an algorithm another
// node gave a key meanwhile is dropped.
func (s *Store) EnsureSigningKeys(ctx context.Context, algs []string, generate func(alg string) (keys.Stored, error)) ([]keys.Stored, error) {
	have, err := s.activeKeyAlgorithms(ctx, s.db(ctx))
	if err != nil {
		return nil, errorf("postgres: ensure signing keys: %w", err)
	}
	made := map[string]keys.Stored{}
	for _, alg := range algs {
		if !have[alg] {
			if made[alg], err = generate(alg); err != nil {
				return nil, errorf("postgres: ensure signing keys: %w", err)
			}
		}
	}
	if len(made) == 0 {
		return nil, nil
	}
	var created []keys.Stored
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		created = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, signingKeysLock); err != nil {
			return err
		}
		have, err := s.activeKeyAlgorithms(ctx, tx)
		if err != nil {
			return err
		}
		for _, alg := range algs {
			if have[alg] {
				continue
			}
			k, ok := made[alg]
			if !ok { // retired by another node since the first look
				if k, err = generate(alg); err != nil {
					return err
				}
			}
			if k, err = insertSigningKey(ctx, tx, k); err != nil {
				return err
			}
			created = append(created, k)
		}
		return nil
	})
	if err != nil {
		return nil, errorf("postgres: ensure signing keys: %w", err)
	}
	return created, nil
}

// AddSigningKeys stores new keys in one transaction, so a rotation adds a
// key for every algorithm or for none.
func (s *Store) AddSigningKeys(ctx context.Context, fresh []keys.Stored) ([]keys.Stored, error) {
	var added []keys.Stored
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		added = added[:0]
		for _, k := range fresh {
			k, err := insertSigningKey(ctx, tx, k)
			if err != nil {
				return err
			}
			added = append(added, k)
		}
		return nil
	})
	if err != nil {
		return nil, errorf("postgres: add signing keys: %w", err)
	}
	return added, nil
}

// RetireSigningKey takes a key out of the JWKS. It refuses, with
// keys.ErrInUse, to retire the newest active key of an algorithm, and
// returns keys.ErrNotFound for an unknown or already retired kid.
func (s *Store) RetireSigningKey(ctx context.Context, kid string) (keys.Stored, error) {
	var retired keys.Stored
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock the algorithm's active keys so that a concurrent retirement
		// cannot leave it with none.
		rows, err := tx.Query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys
			WHERE retired_at IS NULL AND algorithm = (SELECT algorithm FROM signing_keys WHERE kid = $1)
			ORDER BY created_at DESC, kid FOR UPDATE`, kid)
		if err != nil {
			return err
		}
		active, err := pgx.CollectRows(rows, scanSigningKey)
		if err != nil {
			return err
		}
		i := indexOfKID(active, kid)
		switch {
		case i < 0:
			return keys.ErrNotFound
		case i == 0:
			return keys.ErrInUse
		}
		if err := tx.QueryRow(ctx, `UPDATE signing_keys SET retired_at = now() WHERE kid = $1
			RETURNING `+signingKeyColumns, kid).Scan(signingKeyFields(&retired)...); err != nil {
			return err
		}
		return announce(ctx, tx, keysChannel, kid)
	})
	if err != nil {
		return keys.Stored{}, errorf("postgres: retire signing key %s: %w", kid, err)
	}
	return retired, nil
}

func indexOfKID(stored []keys.Stored, kid string) int {
	for i, k := range stored {
		if k.KID == kid {
			return i
		}
	}
	return -1
}

// insertSigningKey stores a key and tells every node to reload its keys
// once the transaction commits.
func insertSigningKey(ctx context.Context, tx pgx.Tx, k keys.Stored) (keys.Stored, error) {
	err := tx.QueryRow(ctx, `INSERT INTO signing_keys (kid, algorithm, public_jwk, private_key)
		VALUES ($1, $2, $3, $4) RETURNING `+signingKeyColumns,
		k.KID, k.Algorithm, k.PublicJWK, k.PrivateKey).Scan(signingKeyFields(&k)...)
	if err != nil {
		return k, err
	}
	return k, announce(ctx, tx, keysChannel, k.KID)
}

func signingKeyFields(k *keys.Stored) []any {
	return []any{&k.KID, &k.Algorithm, &k.PublicJWK, &k.PrivateKey, &k.CreatedAt, &k.RetiredAt}
}

// activeKeyAlgorithms returns the algorithms that have a key that is not
// retired.
func (s *Store) activeKeyAlgorithms(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (map[string]bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := q.Query(ctx, `SELECT DISTINCT algorithm FROM signing_keys WHERE retired_at IS NULL`)
	if err != nil {
		return nil, err
	}
	algs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	have := make(map[string]bool, len(algs))
	for _, a := range algs {
		have[a] = true
	}
	return have, nil
}

func scanSigningKey(row pgx.CollectableRow) (keys.Stored, error) {
	var k keys.Stored
	err := row.Scan(signingKeyFields(&k)...)
	return k, err
}
