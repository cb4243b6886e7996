package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsUnavailable reports whether err, anywhere in its chain, means the
// database could not be reached or did not answer in time, rather than
// that a query was wrong. Every error the store returns for such a cause
// says so itself (see unavailableError); handlers ask server.Unavailable,
// which needs no knowledge of pgx.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources, such as too many connections
			"57": // operator intervention: shutdown, statement timeout
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	// A connection that dies mid-query ends in EOF.
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// unavailableError is an error of the store that means the database could
// not be reached or did not answer in time. It says so with the behaviour
// server.Unavailable looks for, so that handlers answer 503 without
// importing this package.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// Unavailable reports that the database is unavailable: always true.
func (e *unavailableError) Unavailable() bool { return true }

// marked returns err, marked as an unavailableError if it is one by
// IsUnavailable. Every error the store returns passes through it (through
// errorf, or at the return), so that none reaches a handler unmarked.
func marked(err error) error {
	var done *unavailableError
	if !IsUnavailable(err) || errors.As(err, &done) {
		return err
	}
	return &unavailableError{err}
}

// errorf is fmt.Errorf for the store's errors: it also marks those that
// mean the database is unavailable.
func errorf(format string, args ...any) error {
	return marked(fmt.Errorf(format, args...))
}
