package server

import "errors"

// Unavailable reports whether err, anywhere in its chain, says that what
// the node needs to answer (its database) could not be reached or did not
// answer in time, rather than that the request was wrong. Handlers answer
// such errors with 503 and Retry-After, which tells clients to retry
// instead of blaming their request or their credentials.
//
// An error says so with a method Unavailable() bool that returns true.
// storage/postgres marks its errors that way, so that the packages that
// answer requests need neither import it nor know the database's error
// codes.
func Unavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}
