package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// ErrNotFound is returned when the row a call names does not exist.
var ErrNotFound = errors.New("not found")

// Options tunes the connection pool.
type Options struct {
	// MaxConns caps the pool; several nodes share the database's
	// max_connections, so size it per node.
	MaxConns int32
	// Timeout bounds every call. It is also sent to the server as
	// statement_timeout, and doubles as idle_in_transaction_session_timeout,
	// so a stalled client cannot hold locks.
	Timeout time.Duration
	// Tracer, if not nil, traces every database call made within a traced
	// request: a span per query, batch, transaction statement and
	// connection wait, a child of the request's. Query texts are recorded,
	// and never their arguments, which hold token signatures and hashes.
	Tracer trace.TracerProvider
}

// Store is the pgx-backed store behind every Latchkey package.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
	// clients caches clients for the token path while
	// ListenForChanges runs.
	clients clientCache
}

// Open prepares a pool for databaseURL. It does not connect: the first call
// does, so that a node can start (and report itself unready) while the
// database is still coming up.
func Open(databaseURL string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's message can quote the URL, which may hold a password.
		return nil, errors.New("postgres: the database URL does not parse")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	ms := strconv.FormatInt(opts.Timeout.Milliseconds(), 10)
	rp := cfg.ConnConfig.RuntimeParams
	rp["application_name"] = "latchkey"
	rp["statement_timeout"] = ms
	rp["idle_in_transaction_session_timeout"] = ms
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > opts.Timeout {
		cfg.ConnConfig.ConnectTimeout = opts.Timeout
	}
	if opts.Tracer != nil {
		// Its metrics would go to a global OpenTelemetry meter; Latchkey's
		// metrics are Prometheus's (pkg/metrics), so it gets none.
		cfg.ConnConfig.Tracer = otelpgx.NewTracer(
			otelpgx.WithTracerProvider(opts.Tracer),
			otelpgx.WithMeterProvider(metricnoop.NewMeterProvider()),
		)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, errorf("postgres: open pool: %w", err)
	}
	return &Store{pool: pool, timeout: opts.Timeout}, nil
}

// PoolStat returns the connection pool's statistics now, for metrics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }

// Close waits for calls in flight and closes every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers, within the store's deadline.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return errorf("postgres: ping: %w", err)
	}
	return nil
}

// Migrate applies pending migrations; see the package function Migrate.
// statement_timeout bounds requests, not migrations, which may rebuild a
// large table: it is off while they run, and back on before the
// connection returns to the pool (or the connection is closed).
func (s *Store) Migrate(ctx context.Context) error {
	return s.withConn(ctx, func(c *pgx.Conn) error {
		if _, err := c.Exec(ctx, "SET statement_timeout = 0"); err != nil {
			return errorf("postgres: migrate: %w", err)
		}
		defer func() {
			rctx, cancel := s.deadline(context.WithoutCancel(ctx))
			defer cancel()
			if _, err := c.Exec(rctx, "RESET statement_timeout"); err != nil {
				_ = c.Close(rctx)
			}
		}()
		return Migrate(ctx, c)
	})
}

// SchemaStatus reports how far the database is from this binary's schema.
func (s *Store) SchemaStatus(ctx context.Context) (SchemaStatus, error) {
	var st SchemaStatus
	err := s.withConn(ctx, func(c *pgx.Conn) (err error) {
		st, err = Status(ctx, c)
		return err
	})
	return st, err
}

// withConn lends one pooled connection, for libraries that want a *pgx.Conn.
// Migrations may take longer than a request, so only the acquisition is
// bounded by the store's deadline; callers bound the rest through ctx.
func (s *Store) withConn(ctx context.Context, f func(*pgx.Conn) error) error {
	actx, cancel := s.deadline(ctx)
	defer cancel()
	c, err := s.pool.Acquire(actx)
	if err != nil {
		return errorf("postgres: acquire connection: %w", err)
	}
	defer c.Release()
	return f(c.Conn())
}

// deadline bounds a call by the store's timeout, so that no request waits on
// an unreachable database for longer than that.
func (s *Store) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// inTx runs f in a transaction under the store's deadline, committing if f
// returns nil and rolling back otherwise. Inside a transaction that ctx
// carries, it runs in a savepoint of that transaction, so that the outer
// one still decides.
func (s *Store) inTx(ctx context.Context, f func(pgx.Tx) error) error {
	ctx, cancel := s.deadline(ctx)
	defer cancel()
	return marked(pgx.BeginFunc(ctx, s.db(ctx), f))
}

// InTx runs f in a transaction that the context f receives carries: every
// store call made with that context joins it, so that a change and its
// audit event (pkg/audit) commit together or not at all. Inside a
// transaction already, f runs in a savepoint of it.
func (s *Store) InTx(ctx context.Context, f func(ctx context.Context) error) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		return f(context.WithValue(ctx, txKey{}, tx))
	})
}
