package openidclient_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/latchkey/latchkey/internal/openidclient"
)

func TestAScenarioReadsItsInputAndItsOutputIsDecoded(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "token_endpoint": srv.URL + "/token"})
	}))
	defer srv.Close()
	var meta struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	openidclient.Run(t, "discover.mjs", map[string]any{"issuer": srv.URL}, &meta)
	if meta.TokenEndpoint != srv.URL+"/token" {
		t.Fatalf("token_endpoint = %q", meta.TokenEndpoint)
	}
	// A failing scenario's error is the library's message.
	if err := openidclient.Try(t, "discover.mjs", map[string]any{"issuer": srv.URL + "/other"}, nil); err == nil {
		t.Fatal("discovery of an issuer that does not match its metadata succeeded")
	}
}
