package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/examples/internal/latchkeytest"
	"github.com/latchkey/latchkey/examples/resourceserver/notes"
	"github.com/latchkey/latchkey/internal/proctest"
)

func TestMain(m *testing.M) { latchkeytest.Main(m) }

// The command reads its settings from the environment, as README.md says,
// serves the API until it is told to stop, and then stops cleanly.
func TestServesTheNotesAPIUntilStopped(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.Start(t)
	rs := srv.CreateClient(t, "--id", notes.DefaultAudience, "--name", "Notes API", "--grant-type", "client_credentials")
	backend := srv.CreateClient(t, "--name", "reports", "--grant-type", "client_credentials",
		"--scope", notes.ScopeRead, "--audience", notes.DefaultAudience)
	addr := proctest.FreeAddr(t)
	env := map[string]string{"ISSUER": srv.Issuer, "CLIENT_ID": rs.ID, "CLIENT_SECRET": rs.Secret, "ADDR": addr}

	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(k string) string { return env[k] }) }()

	cc := clientcredentials.Config{ClientID: backend.ID, ClientSecret: backend.Secret, TokenURL: srv.Endpoint(t).TokenURL}
	hc := cc.Client(t.Context())
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; {
		var err error
		if resp, err = hc.Get("http://" + addr + "/api/notes"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API did not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/notes with a backend's token: %d", resp.StatusCode)
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run ended with %v, want a clean stop", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestRefusesToStartWithoutItsClient(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), func(k string) string { return map[string]string{"ISSUER": "http://localhost:8080"}[k] })
	if err == nil || !strings.Contains(err.Error(), "CLIENT_ID") {
		t.Fatalf("run without a client: %v, want an error naming CLIENT_ID", err)
	}
}
