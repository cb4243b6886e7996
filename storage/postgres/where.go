package postgres

import (
	"strconv"
	"strings"
)

// where builds the WHERE clause of a list query from the filters a caller
// set. Conditions are fixed SQL written here; every value is a bound
// parameter, never spliced into the text.
type where struct {
	conds []string
	args  []any
}

// arg binds v and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// addIf adds the condition cond, with v bound in place of its ?, when ok.
func (w *where) addIf(ok bool, cond string, v any) {
	if ok {
		w.conds = append(w.conds, strings.Replace(cond, "?", w.arg(v), 1))
	}
}

// limit is a LIMIT clause for n rows, or nothing for n <= 0: no limit.
func (w *where) limit(n int) string {
	if n <= 0 {
		return ""
	}
	return " LIMIT " + w.arg(n)
}

// sql is the WHERE clause, or nothing when no filter is set.
func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
