package latchkeytest

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey/examples/resourceserver/notes"
)

// NotesAPI serves the resource server example's demo API (package notes,
// examples/resourceserver) for the test, registered at s as a confidential
// client of its own under the ID its callers name as audience, as
// docs/guide-resource-server.md describes, and returns its base URL. It
// reuses an introspection answer for at most maxCacheAge (zero: the
// default). Tokens for it need the scope notes.ScopeRead and the audience
// notes.DefaultAudience.
func (s *Server) NotesAPI(t testing.TB, maxCacheAge time.Duration) string {
	t.Helper()
	c := s.CreateClient(t, "--id", notes.DefaultAudience, "--name", "Notes API", "--grant-type", "client_credentials")
	api, err := notes.New(t.Context(), notes.Config{
		Issuer: s.Issuer, ClientID: c.ID, ClientSecret: c.Secret, MaxCacheAge: maxCacheAge,
	})
	if err != nil {
		t.Fatalf("latchkeytest: %v", err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv.URL
}
