package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	fositestorage "github.com/ory/fosite/storage"
)

var _ fositestorage.Transactional = (*Store)(nil)

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

type txKey struct{}

// db returns the transaction ctx carries, if fosite began one, so that every
// call inside a fosite flow joins it; otherwise the pool.
func (s *Store) db(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok {
		return tx
	}
	return s.pool
}

// BeginTX starts a transaction and returns a context that carries it; fosite
// calls it around the writes that must happen together, such as spending a
// refresh token and issuing its successor. Inside an existing transaction it
// starts a savepoint.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	bctx, cancel := s.deadline(ctx)
	defer cancel()
	tx, err := s.db(ctx).Begin(bctx)
	if err != nil {
		return ctx, errorf("postgres: begin: %w", err)
	}
	if g, ok := ctx.Value(guardKey{}).(*txGuard); ok {
		g.add(tx)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction ctx carries.
func (s *Store) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	if !ok {
		return errors.New("postgres: commit: no transaction in context")
	}
	cctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := tx.Commit(cctx); err != nil {
		return errorf("postgres: commit: %w", err)
	}
	return nil
}

// Rollback rolls back the transaction ctx carries.
func (s *Store) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	if !ok {
		return errors.New("postgres: rollback: no transaction in context")
	}
	rctx, cancel := s.deadline(context.WithoutCancel(ctx))
	defer cancel()
	if err := tx.Rollback(rctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return errorf("postgres: rollback: %w", err)
	}
	return nil
}

type guardKey struct{}

// guardRollbackTimeout bounds the clean-up of forgotten transactions; a dead
// connection is then closed rather than waited on.
const guardRollbackTimeout = 5 * time.Second

// txGuard remembers the transactions begun under one request.
type txGuard struct {
	mu  sync.Mutex
	txs []pgx.Tx
}

func (g *txGuard) add(tx pgx.Tx) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.txs = append(g.txs, tx)
}

// GuardTransactions returns a context under which every transaction BeginTX
// starts is recorded, and a function that rolls back those still open. A
// handler that lets fosite run a flow defers the function, so that a path
// that forgets to commit or roll back (or panics) cannot keep a pooled
// connection, and its locks, forever.
func (s *Store) GuardTransactions(ctx context.Context) (context.Context, func()) {
	g := &txGuard{}
	return context.WithValue(ctx, guardKey{}, g), func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), guardRollbackTimeout)
		defer cancel()
		for i := len(g.txs) - 1; i >= 0; i-- {
			// Rolling back a finished transaction is a harmless no-op.
			_ = g.txs[i].Rollback(ctx)
		}
		g.txs = nil
	}
}
