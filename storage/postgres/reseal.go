package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ResealTOTPSecrets re-encrypts the stored TOTP secrets for which reseal
// returns a new value (nil means the value stays), and says how many it
// changed.
func (s *Store) ResealTOTPSecrets(ctx context.Context, reseal func(id string, sealed []byte) ([]byte, error)) (int, error) {
	return s.reseal(ctx, sealedColumn{table: "totp_factors", id: "user_id", idType: "uuid", value: "secret",
		first: "00000000-0000-0000-0000-000000000000"}, reseal)
}

// ResealSigningKeys re-encrypts the stored private signing keys, retired
// ones too, for which reseal returns a new value, and says how many it
// changed.
func (s *Store) ResealSigningKeys(ctx context.Context, reseal func(id string, sealed []byte) ([]byte, error)) (int, error) {
	return s.reseal(ctx, sealedColumn{table: "signing_keys", id: "kid", idType: "text", value: "private_key"}, reseal)
}

// sealedColumn names a column of sealed values and the key of its table.
// first sorts before every key.
type sealedColumn struct {
	table, id, idType, value, first string
}

// resealBatch is how many rows one transaction locks, so that sign-ins of
// the users in a batch wait for milliseconds, not for the whole table.
var resealBatch = 500

// reseal walks the table in key order, a batch per transaction. Each batch
// is locked while it is rewritten, so a value changed meanwhile (a new
// enrolment, say) is never overwritten with an older one.
func (s *Store) reseal(ctx context.Context, c sealedColumn, reseal func(id string, sealed []byte) ([]byte, error)) (int, error) {
	// #nosec G201 -- the names are constants of this file, not input.
	query := fmt.Sprintf(`SELECT %[2]s::text, %[3]s FROM %[1]s WHERE %[2]s > $1::%[4]s ORDER BY %[2]s LIMIT %[5]d FOR UPDATE`,
		c.table, c.id, c.value, c.idType, resealBatch)
	update := fmt.Sprintf(`UPDATE %[1]s SET %[3]s = $2 WHERE %[2]s = $1::%[4]s`, c.table, c.id, c.value, c.idType) // #nosec G201 -- as above
	changed, after := 0, c.first
	for {
		n, last, batchChanged := 0, "", 0
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			type row struct {
				id     string
				sealed []byte
			}
			rows, err := tx.Query(ctx, query, after)
			if err != nil {
				return err
			}
			batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
				var x row
				return x, r.Scan(&x.id, &x.sealed)
			})
			if err != nil {
				return err
			}
			n = len(batch)
			for _, x := range batch {
				last = x.id
				resealed, err := reseal(x.id, x.sealed)
				if err != nil {
					return err
				}
				if resealed == nil {
					continue
				}
				if _, err := tx.Exec(ctx, update, x.id, resealed); err != nil {
					return err
				}
				batchChanged++
			}
			return nil
		})
		if err != nil {
			// The batches before this one are committed, and stay so.
			return changed, errorf("postgres: re-encrypt %s.%s: %w", c.table, c.value, err)
		}
		changed += batchChanged
		if n < resealBatch {
			return changed, nil
		}
		after = last
	}
}
