// Package validation reports invalid input field by field, so that whoever
// sent it can fix every problem in one round: the CLI prints the problems
// on one line, and the admin API lists them in its problem details.
package validation

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with one field, named by its JSON path
// ("redirect_uris", "claims.locale").
type Problem struct {
	Field, Message string
}

// Error lists every problem found with a document.
type Error struct {
	// Of names the document: "client metadata", "user", "role".
	Of       string
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return "invalid " + e.Of + ": " + strings.Join(parts, "; ")
}

// Add records a problem with field.
func (e *Error) Add(field, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err returns e if it holds any problem, and nil otherwise.
func (e *Error) Err() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}
