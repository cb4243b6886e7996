package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/ory/fosite"
)

// StorePushedRequest keeps the parameters of a pushed authorization request
// (RFC 9126) under signature, the digest of its request_uri, until
// expiresAt, unless clientID already holds most live ones: then it stores
// nothing and returns false. The count and the insert are one statement,
// so a burst can overshoot the cap by at most the requests in flight.
func (s *Store) StorePushedRequest(ctx context.Context, signature, clientID string, params url.Values, expiresAt time.Time, most int) (bool, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return false, fmt.Errorf("postgres: encode pushed request: %w", err)
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `INSERT INTO oauth_pushed_requests (signature, client_id, params, expires_at)
		SELECT $1, $2, $3, $4
		WHERE (SELECT count(*) FROM oauth_pushed_requests WHERE client_id = $2 AND expires_at > now()) < $5`,
		signature, clientID, raw, expiresAt, most)
	if err != nil {
		return false, errorf("postgres: store pushed request: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// RedeemPushedRequest takes the pushed request signature names, if it was
// pushed by clientID and has not expired, and deletes it in the same
// statement: of any number of requests redeeming it at once, exactly one
// gets it. Anything else, another client's included, is fosite.ErrNotFound,
// and leaves the request for its own client.
func (s *Store) RedeemPushedRequest(ctx context.Context, signature, clientID string) (url.Values, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var raw []byte
	err := s.db(ctx).QueryRow(ctx, `DELETE FROM oauth_pushed_requests
		WHERE signature = $1 AND client_id = $2 AND expires_at > now() RETURNING params`, signature, clientID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: redeem pushed request: %w", err)
	}
	var params url.Values
	if err := json.Unmarshal(raw, &params); err != nil {
		return nil, fmt.Errorf("postgres: decode pushed request: %w", err)
	}
	return params, nil
}
