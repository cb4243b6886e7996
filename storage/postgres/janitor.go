package postgres

import (
	"context"
	"fmt"
	"time"
)

// sweptTables are the tables whose rows expire, with the column that says
// when. Every one has an index on that column.
var sweptTables = []struct{ table, expiry string }{
	{string(accessTokens), "expires_at"},
	{string(refreshTokens), "expires_at"},
	{string(codes), "expires_at"},
	{string(pkceChallenges), "expires_at"},
	{string(oidcSessions), "expires_at"},
	{"oauth_client_assertion_jtis", "expires_at"},
	// The previous release's jti table, until a migration drops it.
	{"oauth_assertion_jtis", "expires_at"},
	{"browser_sessions", "expires_at"},
	{"auth_failures", "expires_at"},
	{"sessions", "expiry"}, // scs's table, whose schema is the library's
}

// Sweep deletes rows that expired before cutoff, batch rows per statement,
// so that no statement holds locks for long or bloats one transaction, and
// returns how many it deleted from each table.
//
// A used or revoked token keeps its row until its own expiry, so presenting
// a spent refresh token is recognised as reuse for as long as the token
// could otherwise have worked. Several nodes may sweep at once: each skips
// the rows another is deleting.
func (s *Store) Sweep(ctx context.Context, cutoff time.Time, batch int) (map[string]int64, error) {
	deleted := map[string]int64{}
	for _, t := range sweptTables {
		for {
			if err := ctx.Err(); err != nil {
				return deleted, err
			}
			n, err := s.sweepBatch(ctx, t.table, t.expiry, cutoff, batch)
			deleted[t.table] += n
			if err != nil {
				return deleted, err
			}
			if n < int64(batch) {
				break
			}
		}
	}
	return deleted, nil
}

func (s *Store) sweepBatch(ctx context.Context, table, expiry string, cutoff time.Time, batch int) (int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+table+` WHERE ctid = ANY (ARRAY (
		SELECT ctid FROM `+table+` WHERE `+expiry+` < $1 LIMIT $2 FOR UPDATE SKIP LOCKED))`, cutoff, batch)
	if err != nil {
		return 0, fmt.Errorf("postgres: sweep %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}
