package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/risk"
)

var _ risk.Store = (*Store)(nil)

// Networks lists the user's networks last seen after since, latest first
// (risk_networks_user_last_seen).
func (s *Store) Networks(ctx context.Context, userID string, since time.Time, limit int) ([]risk.Seen, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	rows, err := s.db(ctx).Query(ctx, `SELECT network, country, latitude, longitude, first_seen, last_seen
		FROM risk_networks WHERE user_id = $1 AND last_seen > $2 ORDER BY last_seen DESC LIMIT $3`, userID, since, limit)
	if err != nil {
		return nil, errorf("postgres: risk networks: %w", err)
	}
	seen, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (risk.Seen, error) {
		var (
			n        risk.Seen
			lat, lon *float64
		)
		if err := row.Scan(&n.Network, &n.Place.Country, &lat, &lon, &n.FirstSeen, &n.LastSeen); err != nil {
			return n, err
		}
		if lat != nil && lon != nil {
			n.Place.HasCoordinates, n.Place.Latitude, n.Place.Longitude = true, *lat, *lon
		}
		return n, nil
	})
	if err != nil {
		return nil, errorf("postgres: risk networks: %w", err)
	}
	return seen, nil
}

// SeeNetwork records, in the transaction ctx carries, that the user
// signed in from the network now, at its latest place.
func (s *Store) SeeNetwork(ctx context.Context, userID string, n risk.Seen, keep time.Duration) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var lat, lon *float64
	if n.Place.HasCoordinates {
		lat, lon = &n.Place.Latitude, &n.Place.Longitude
	}
	_, err := s.db(ctx).Exec(ctx, `INSERT INTO risk_networks (user_id, network, country, latitude, longitude, expires_at)
		VALUES ($1, $2, $3, $4, $5, now() + $6::interval)
		ON CONFLICT (user_id, network) DO UPDATE SET country = excluded.country, latitude = excluded.latitude,
			longitude = excluded.longitude, last_seen = now(), expires_at = excluded.expires_at`,
		userID, n.Network, n.Place.Country, lat, lon, keep)
	if err != nil {
		return errorf("postgres: see risk network: %w", err)
	}
	return nil
}

// RecordFailure records a failed sign-in from network at account.
func (s *Store) RecordFailure(ctx context.Context, network string, account []byte, window time.Duration) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	_, err := s.db(ctx).Exec(ctx, `INSERT INTO risk_failures (network, account, expires_at)
		VALUES ($1, $2, now() + $3::interval)`, network, account, window)
	if err != nil {
		return errorf("postgres: record risk failure: %w", err)
	}
	return nil
}

// FailureSpread counts the distinct accounts failed from network, and the
// distinct networks failed at account, within window.
func (s *Store) FailureSpread(ctx context.Context, network string, account []byte, window time.Duration) (accounts, networks int, err error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	err = s.db(ctx).QueryRow(ctx, `SELECT
		(SELECT count(DISTINCT account) FROM risk_failures WHERE network = $1 AND at > clock_timestamp() - $3::interval),
		(SELECT count(DISTINCT network) FROM risk_failures WHERE account = $2 AND at > clock_timestamp() - $3::interval)`,
		network, account, window).Scan(&accounts, &networks)
	if err != nil {
		return 0, 0, errorf("postgres: count risk failures: %w", err)
	}
	return accounts, networks, nil
}

// Latch holds key for d unless it is held: an expired latch is taken
// again. The upsert's row lock makes parallel callers take turns, and
// only the first finds the latch free.
func (s *Store) Latch(ctx context.Context, key, reason string, d time.Duration) (bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `INSERT INTO risk_latches (key, until, reason) VALUES ($1, now() + $2::interval, $3)
		ON CONFLICT (key) DO UPDATE SET until = excluded.until, reason = excluded.reason, created_at = now()
		WHERE risk_latches.until <= now()`, key, d, reason)
	if err != nil {
		return false, errorf("postgres: latch: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Latched returns the latest time any of keys is held until.
func (s *Store) Latched(ctx context.Context, keys []string) (time.Time, bool, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var until *time.Time
	err := s.db(ctx).QueryRow(ctx, `SELECT max(until) FROM risk_latches WHERE key = ANY($1) AND until > now()`, keys).Scan(&until)
	if err != nil {
		return time.Time{}, false, errorf("postgres: latched: %w", err)
	}
	if until == nil {
		return time.Time{}, false, nil
	}
	return *until, true, nil
}

// BlockedNetworks counts the networks blocked now, for metrics.
func (s *Store) BlockedNetworks(ctx context.Context) (int64, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var n int64
	err := s.db(ctx).QueryRow(ctx, `SELECT count(*) FROM risk_latches WHERE key LIKE $1 AND until > now()`,
		risk.BlockPrefix+"%").Scan(&n)
	if err != nil {
		return 0, errorf("postgres: count blocked networks: %w", err)
	}
	return n, nil
}
