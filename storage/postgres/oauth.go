package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"

	"github.com/latchkey/latchkey/pkg/client"
)

// The fosite storage interfaces the Store implements.
var (
	_ oauth2.CoreStorage                 = (*Store)(nil)
	_ oauth2.TokenRevocationStorage      = (*Store)(nil)
	_ pkce.PKCERequestStorage            = (*Store)(nil)
	_ openid.OpenIDConnectRequestStorage = (*Store)(nil)
)

// Errors the token tables report. pkg/oauth answers each one as RFC 6749
// says; it asks by behaviour, a method that returns true, as it asks
// whether the database is unavailable, so that it need not import this
// package (oauth.Store).
var (
	// ErrTokenRace reports that a code or refresh token was redeemed by
	// another request at the same moment; exactly one of them wins (fosite
	// issue #778).
	ErrTokenRace error = tokenError{"the token was redeemed by a concurrent request", raced}
	// ErrRefreshTokenRevoked and ErrCodeRevoked report a refresh token or
	// an authorization code that was revoked rather than spent. They reach
	// fosite wrapped in fosite.ErrNotFound, so that it refuses the grant as
	// it does an unknown one: a revoked refresh token presented again is
	// not reuse (RFC 9700 §4.14.2 is about spent tokens), and must neither
	// revoke anything nor be recorded as an attack.
	ErrRefreshTokenRevoked error = tokenError{"the refresh token was revoked", refreshRevoked}
	ErrCodeRevoked         error = tokenError{"the authorization code was revoked", codeRevoked}
	// ErrClientGone reports that a token could not be stored because its
	// client was deleted in the meantime.
	ErrClientGone error = tokenError{"the client was deleted", clientGone}
)

// tokenError is one of the errors above: what happened to a token.
type tokenError struct {
	msg  string
	what tokenOutcome
}

type tokenOutcome int

const (
	raced tokenOutcome = iota
	refreshRevoked
	codeRevoked
	clientGone
)

func (e tokenError) Error() string { return "postgres: " + e.msg }

// Raced, RefreshTokenRevoked, CodeRevoked and ClientGone say which it is,
// for pkg/oauth.
func (e tokenError) Raced() bool               { return e.what == raced }
func (e tokenError) RefreshTokenRevoked() bool { return e.what == refreshRevoked }
func (e tokenError) CodeRevoked() bool         { return e.what == codeRevoked }
func (e tokenError) ClientGone() bool          { return e.what == clientGone }

// tokenTable names a table of fosite requests keyed by token signature. The
// names are constants, never input, so building SQL from them is safe.
type tokenTable string

const (
	accessTokens   tokenTable = "oauth_access_tokens"  // #nosec G101 -- a table name, not a credential
	refreshTokens  tokenTable = "oauth_refresh_tokens" // #nosec G101 -- a table name, not a credential
	codes          tokenTable = "oauth_authorization_codes"
	pkceChallenges tokenTable = "oauth_pkce_requests"
	oidcSessions   tokenTable = "oauth_oidc_sessions"
)

// recordsRevocation reports whether t tells a revoked row from a spent one
// (its revoked_at column): refresh tokens, whose reuse is an attack, and
// codes, whose reuse revokes what they issued.
func (t tokenTable) recordsRevocation() bool { return t == refreshTokens || t == codes }

// revoke returns the statement that revokes the active rows of t that
// where selects, recording that they were revoked where t keeps that.
// Every revocation goes through it: RFC 7009 and the family revocations of
// fosite, signing a user out everywhere, withdrawing consent, and revoking
// a client's tokens.
func (t tokenTable) revoke(where string) string {
	set := `active = false`
	if t.recordsRevocation() {
		set += `, revoked_at = now()`
	}
	return `UPDATE ` + string(t) + ` SET ` + set + ` WHERE ` + where + ` AND active`
}

// storedRequest is the part of a fosite.Requester kept in the request
// column. The session is kept in a column of its own.
type storedRequest struct {
	RequestedScope    []string   `json:"requested_scope"`
	GrantedScope      []string   `json:"granted_scope"`
	RequestedAudience []string   `json:"requested_audience"`
	GrantedAudience   []string   `json:"granted_audience"`
	Form              url.Values `json:"form"`
}

// secretParameters never reach the database, whatever fosite's sanitising
// lets through: they are credentials, or tokens that the signature stands for.
var secretParameters = []string{"client_secret", "client_assertion", "code", "refresh_token", "password", "code_verifier"}

// expiryOf returns when the row for a token of type tt stops being useful:
// its own expiry, or, for a PKCE challenge, that of its code.
func expiryOf(r fosite.Requester, tt fosite.TokenType) time.Time {
	if exp := r.GetSession().GetExpiresAt(tt); !exp.IsZero() {
		return exp
	}
	// fosite leaves an expiry unset only where a lifespan does not apply;
	// keep such rows for a day so the janitor still removes them.
	return time.Now().Add(24 * time.Hour)
}

// insertToken stores r under signature in table t.
func (s *Store) insertToken(ctx context.Context, t tokenTable, signature string, r fosite.Requester, tt fosite.TokenType, extraCol string, extraVal any) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	form := url.Values{}
	for k, v := range r.GetRequestForm() {
		form[k] = v
	}
	for _, k := range secretParameters {
		form.Del(k)
	}
	req, err := json.Marshal(storedRequest{
		RequestedScope:    r.GetRequestedScopes(),
		GrantedScope:      r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(),
		GrantedAudience:   r.GetGrantedAudience(),
		Form:              form,
	})
	if err != nil {
		return errorf("postgres: encode request: %w", err)
	}
	sess, err := json.Marshal(r.GetSession())
	if err != nil {
		return errorf("postgres: encode session: %w", err)
	}
	cols := `signature, request_id, client_id, subject, requested_at, expires_at, request, session`
	vals := `$1, $2, $3, $4, $5, $6, $7, $8`
	args := []any{signature, r.GetID(), r.GetClient().GetID(), r.GetSession().GetSubject(),
		r.GetRequestedAt(), expiryOf(r, tt), req, sess}
	if extraCol != "" {
		cols += ", " + extraCol
		vals += ", $9"
		args = append(args, extraVal)
	}
	insert := `INSERT INTO ` + string(t) + ` (` + cols + `) VALUES (` + vals + `)`
	if _, inTx := ctx.Value(txKey{}).(pgx.Tx); t == accessTokens && !inTx {
		err = s.insertAsync(ctx, insert, args)
	} else {
		_, err = s.db(ctx).Exec(ctx, insert, args...)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		// The client's row is gone: it was deleted, on another node, after
		// this one loaded it. Nothing was stored.
		return ErrClientGone
	}
	if err != nil {
		return errorf("postgres: store %s: %w", t, err)
	}
	return nil
}

// insertAsync runs an insert with synchronous_commit off for its own
// transaction only: the commit returns without waiting for the WAL to
// reach disk. It is used for one thing, an access token issued on its own
// (client credentials), where it is the largest single cost of issuing.
// If the database crashes in the fraction of a second before the WAL is
// flushed, the token is forgotten: its holder gets 401 and asks for a new
// one, exactly as after a revocation. Nothing that makes a token valid or
// invalid is committed this way: revocations, code and refresh-token
// redemptions (which run in transactions), assertion jtis and client
// changes all wait for the disk.
//
// Both statements go in one batch, which Postgres runs as one implicit
// transaction, so the setting costs no round trip and ends with it.
func (s *Store) insertAsync(ctx context.Context, insert string, args []any) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(insert, args...)
	return s.pool.SendBatch(ctx, b).Close()
}

// getToken loads the request stored under signature, with its client, and
// decodes its session into session. It returns fosite.ErrNotFound for an unknown signature, and for a refresh
// token or code that was revoked (wrapping ErrRefreshTokenRevoked or
// ErrCodeRevoked); and the request with fosite.ErrInactiveToken for one
// that was used (or, for other tokens, revoked). A nil session (fosite's
// revocation passes one) skips decoding it.
func (s *Store) getToken(ctx context.Context, t tokenTable, signature string, session fosite.Session) (fosite.Requester, error) {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var (
		r        = &fosite.Request{Form: url.Values{}}
		active   bool
		revoked  bool
		reqJSON  []byte
		sessJSON []byte
	)
	revokedColumn := `false`
	if t.recordsRevocation() {
		revokedColumn = `t.revoked_at IS NOT NULL`
	}
	var clientID string
	err := s.db(ctx).QueryRow(ctx, `SELECT t.request_id, t.requested_at, t.active, `+revokedColumn+`, t.request, t.session, t.client_id
		FROM `+string(t)+` t WHERE t.signature = $1`, signature).Scan(&r.ID, &r.RequestedAt, &active, &revoked, &reqJSON, &sessJSON, &clientID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: load %s: %w", t, err)
	}
	// The client comes from the cache, which every change to a client
	// evicts on every node (clientcache.go): decoding its metadata for
	// each token looked up was the largest cost of introspection. A token
	// whose client is gone is gone with it (the rows cascade).
	c, err := s.cachedClient(ctx, clientID)
	if errors.Is(err, client.ErrNotFound) {
		return nil, fosite.ErrNotFound
	}
	if err != nil {
		return nil, errorf("postgres: load %s: %w", t, err)
	}
	var sr storedRequest
	if err := json.Unmarshal(reqJSON, &sr); err != nil {
		return nil, errorf("postgres: decode %s request: %w", t, err)
	}
	r.Client = c
	r.RequestedScope, r.GrantedScope = sr.RequestedScope, sr.GrantedScope
	r.RequestedAudience, r.GrantedAudience = sr.RequestedAudience, sr.GrantedAudience
	if sr.Form != nil {
		r.Form = sr.Form
	}
	if session != nil {
		// Numbers keep their exact form: decoded as float64, an integer
		// claim such as updated_at would come back as 1.796410335e+09.
		dec := json.NewDecoder(bytes.NewReader(sessJSON))
		dec.UseNumber()
		if err := dec.Decode(session); err != nil {
			return nil, errorf("postgres: decode %s session: %w", t, err)
		}
		r.Session = session
	}
	if !active {
		switch {
		case revoked && t == refreshTokens:
			return nil, fosite.ErrNotFound.WithWrap(ErrRefreshTokenRevoked).WithDebug(ErrRefreshTokenRevoked.Error())
		case revoked:
			return nil, fosite.ErrNotFound.WithWrap(ErrCodeRevoked).WithDebug(ErrCodeRevoked.Error())
		}
		switch t {
		case codes:
			return r, fosite.ErrInvalidatedAuthorizeCode
		case pkceChallenges, oidcSessions:
			// A spent challenge or OIDC request is gone; fosite answers
			// invalid_grant, or issues no ID token.
			return nil, fosite.ErrNotFound
		}
		return r, fosite.ErrInactiveToken
	}
	return r, nil
}

// deactivate makes the one active row under signature inactive. It fails
// with ErrTokenRace if there is none, which is how the loser of two
// concurrent redemptions learns it lost: the UPDATE takes the row lock, and
// the second one re-reads the row after the first commits.
func (s *Store) deactivate(ctx context.Context, t tokenTable, signature string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `UPDATE `+string(t)+` SET active = false WHERE signature = $1 AND active`, signature)
	if err != nil {
		return errorf("postgres: invalidate %s: %w", t, err)
	}
	if tag.RowsAffected() != 1 {
		return ErrTokenRace
	}
	return nil
}

// deactivateOnce makes the row under signature inactive, if it still is:
// for fosite's deletions, which must not fail when the row was spent
// already, since the row stays until it expires either way.
func (s *Store) deactivateOnce(ctx context.Context, t tokenTable, signature string) error {
	err := s.deactivate(ctx, t, signature)
	if errors.Is(err, ErrTokenRace) {
		return nil
	}
	return err
}

// revokeFamily revokes every active row of a grant.
func (s *Store) revokeFamily(ctx context.Context, t tokenTable, requestID string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if _, err := s.db(ctx).Exec(ctx, t.revoke(`request_id = $1`), requestID); err != nil {
		return errorf("postgres: revoke %s: %w", t, err)
	}
	return nil
}

// CreateAuthorizeCodeSession stores the request behind an authorization code.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.insertToken(ctx, codes, signature, r, fosite.AuthorizeCode, "", nil)
}

// GetAuthorizeCodeSession loads the request behind a code; for a code
// already used it returns the request with fosite.ErrInvalidatedAuthorizeCode
// so that fosite can revoke what the code's first use issued.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getToken(ctx, codes, signature, session)
}

// InvalidateAuthorizeCodeSession spends a code; of two concurrent
// exchanges, the second gets ErrTokenRace.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	return s.deactivate(ctx, codes, signature)
}

// CreatePKCERequestSession stores a code's PKCE challenge.
func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.insertToken(ctx, pkceChallenges, signature, r, fosite.AuthorizeCode, "", nil)
}

// GetPKCERequestSession loads a code's PKCE challenge.
func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getToken(ctx, pkceChallenges, signature, session)
}

// DeletePKCERequestSession spends a PKCE challenge.
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	return s.deactivate(ctx, pkceChallenges, signature)
}

// CreateAccessTokenSession stores the request behind an access token.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.insertToken(ctx, accessTokens, signature, r, fosite.AccessToken, "", nil)
}

// GetAccessTokenSession loads the request behind an access token.
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getToken(ctx, accessTokens, signature, session)
}

// DeleteAccessTokenSession makes an access token inactive. The row stays
// until it expires, like every other token's.
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.deactivateOnce(ctx, accessTokens, signature)
}

// CreateRefreshTokenSession stores the request behind a refresh token.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	return s.insertToken(ctx, refreshTokens, signature, r, fosite.RefreshToken, "access_token_signature", accessSignature)
}

// GetRefreshTokenSession loads the request behind a refresh token. For one
// already used it returns the request with fosite.ErrInactiveToken, which is
// how fosite detects reuse and revokes the whole family; for one that was
// revoked, fosite.ErrNotFound wrapping ErrRefreshTokenRevoked, so that it
// is refused without raising that alarm.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	return s.getToken(ctx, refreshTokens, signature, session)
}

// DeleteRefreshTokenSession makes a refresh token inactive. fosite calls it
// when it detects reuse; keeping the row means a later reuse is detected
// again rather than looking like an unknown token.
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.deactivateOnce(ctx, refreshTokens, signature)
}

// RotateRefreshToken spends the refresh token being redeemed and retires
// the access tokens issued before it; fosite then stores their successors in
// the same transaction. Of two concurrent redemptions, the second gets
// ErrTokenRace and issues nothing.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	if err := s.deactivate(ctx, refreshTokens, signature); err != nil {
		return err
	}
	return s.revokeFamily(ctx, accessTokens, requestID)
}

// RevokeRefreshToken revokes every refresh token of a grant: for RFC 7009,
// a reused code, or a reused refresh token. The tokens still active are
// marked revoked; those already spent stay spent, so that presenting one
// again is still reuse.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.revokeFamily(ctx, refreshTokens, requestID)
}

// RevokeAccessToken revokes every access token of a grant (RFC 7009).
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.revokeFamily(ctx, accessTokens, requestID)
}

// oidcKey is what the OpenID Connect request behind a code is stored under.
// fosite hands this storage the code itself, not its signature; a digest
// keeps the code out of the database like every other token.
func oidcKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// CreateOpenIDConnectSession stores the OpenID Connect request (nonce,
// max_age, the ID token claims) behind a code.
func (s *Store) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.insertToken(ctx, oidcSessions, oidcKey(code), r, fosite.AuthorizeCode, "", nil)
}

// GetOpenIDConnectSession loads the OpenID Connect request behind a code,
// decoding its session into a copy of r's.
func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) (fosite.Requester, error) {
	return s.getToken(ctx, oidcSessions, oidcKey(code), r.GetSession().Clone())
}

// DeleteOpenIDConnectSession spends the OpenID Connect request behind a
// code once its ID token is issued.
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	return s.deactivateOnce(ctx, oidcSessions, oidcKey(code))
}

// latestStorableTime is far past any token's life and well within
// timestamptz (year 294276) and pgx's microsecond encoding.
var latestStorableTime = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// AssertionJTIUsed returns fosite.ErrJTIKnown if clientID presented a
// private_key_jwt assertion with this jti that has not expired. A jti is
// unique per client (RFC 7523 §3), so another client's jti is no concern.
func (s *Store) AssertionJTIUsed(ctx context.Context, clientID, jti string) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	var known bool
	if err := s.db(ctx).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM oauth_client_assertion_jtis
		WHERE client_id = $1 AND jti = $2 AND expires_at > now())`, clientID, jti).Scan(&known); err != nil {
		return errorf("postgres: check assertion jti: %w", err)
	}
	if known {
		return fosite.ErrJTIKnown
	}
	return nil
}

// RecordAssertionJTI records that clientID used jti, until exp. The
// primary key makes this the real replay check: of two requests with the
// same assertion, whatever AssertionJTIUsed told them, only one inserts. A
// row left by an assertion that has expired is taken over.
//
// fosite has checked that exp is in the future, so an exp outside what
// timestamptz holds (or one before 1970, which is how fosite passes an exp
// too large for an int64) is kept as the latest time we store: pgx would
// otherwise wrap it into the past, and the jti could be replayed.
func (s *Store) RecordAssertionJTI(ctx context.Context, clientID, jti string, exp time.Time) error {
	if exp.Before(time.Unix(0, 0)) || exp.After(latestStorableTime) {
		exp = latestStorableTime
	}
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	tag, err := s.db(ctx).Exec(ctx, `INSERT INTO oauth_client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (client_id, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
		WHERE oauth_client_assertion_jtis.expires_at <= now()`, clientID, jti, exp)
	if err != nil {
		return errorf("postgres: record assertion jti: %w", err)
	}
	if tag.RowsAffected() != 1 {
		return fosite.ErrJTIKnown
	}
	return nil
}
