package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// databaseDown is an error as storage/postgres returns it while the
// database cannot be reached.
type databaseDown struct{}

func (databaseDown) Error() string     { return "postgres: get user: connection refused" }
func (databaseDown) Unavailable() bool { return true }

// An unreachable database is the operator's 503, to retry, not a 500 that
// blames Latchkey; nothing of the cause reaches the caller.
func TestAnUnreachableDatabaseIsA503WithRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("identity: %w", databaseDown{}), http.StatusServiceUnavailable},
		{errors.New("postgres: connection refused"), http.StatusInternalServerError},
	} {
		rec := httptest.NewRecorder()
		a := &API{Logger: slog.New(slog.DiscardHandler)}
		a.writeError(rec, httptest.NewRequest(http.MethodGet, "/admin/users", nil), tt.err)
		var p Problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		if rec.Code != tt.status || p.Status != tt.status {
			t.Errorf("%v: %d %+v, want %d", tt.err, rec.Code, p, tt.status)
		}
		if retry := rec.Header().Get("Retry-After"); (retry != "") != (tt.status == http.StatusServiceUnavailable) {
			t.Errorf("%v: Retry-After %q", tt.err, retry)
		}
		if p.Detail == tt.err.Error() {
			t.Errorf("%v: the answer quotes the error", tt.err)
		}
	}
}
