package oauth

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/handler/pkce"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/latchkey/latchkey/pkg/client"
)

// Store is what the protocol keeps in the database (storage/postgres):
// fosite's storage of clients, codes, tokens, PKCE challenges and OpenID
// Connect requests, in transactions; assertion jti values per client
// (assertion.go); and the client as it is now, for Latchkey's own APIs.
//
// Beyond fosite's own contract (FOSITE.md), the store reports what the
// errors below name, so that the protocol can answer each one truthfully,
// and marks an unreachable database (server.Unavailable).
type Store interface {
	GetClient(ctx context.Context, id string) (fosite.Client, error)
	oauth2.CoreStorage
	oauth2.TokenRevocationStorage
	pkce.PKCERequestStorage
	openid.OpenIDConnectRequestStorage
	fositestorage.Transactional

	AssertionJTIUsed(ctx context.Context, clientID, jti string) error
	RecordAssertionJTI(ctx context.Context, clientID, jti string, exp time.Time) error
	ClientByID(ctx context.Context, id string) (*client.Client, error)
	PushedRequests
	// RecordSessionClient records that a sign-in (sid) issued a code to
	// an app, so that the app is told when the sign-in ends (pkg/logout).
	RecordSessionClient(ctx context.Context, sid, clientID string) error
	// GuardTransactions returns a context under which every transaction
	// BeginTX starts is recorded, and a function that rolls back those
	// still open: a handler that lets fosite run a flow defers it, so that
	// a path that forgets to end one cannot keep a connection, and its
	// locks, for ever.
	GuardTransactions(ctx context.Context) (context.Context, func())
}

// The store tells what happened to a token by errors with a method that
// returns true, which protocolError asks for:
//
//   - Raced: a code or refresh token was redeemed by another request at
//     the same moment; exactly one of them wins (fosite issue #778).
//   - RefreshTokenRevoked, CodeRevoked: a refresh token or code that was
//     revoked, not spent, so that presenting it again is no reuse (RFC
//     9700 §4.14.2). It reaches fosite wrapped in fosite.ErrNotFound.
//   - ClientGone: a token could not be stored because its client was
//     deleted a moment ago.
//
// And server.Unavailable, for an unreachable database.
func says(err error, what func(storeOutcome) bool) bool {
	var o storeOutcome
	return errors.As(err, &o) && what(o)
}

// storeOutcome is an error of the store that says what happened to a token.
type storeOutcome interface {
	error
	Raced() bool
	RefreshTokenRevoked() bool
	CodeRevoked() bool
	ClientGone() bool
}
