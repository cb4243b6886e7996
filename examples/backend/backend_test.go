package main

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/examples/internal/latchkeytest"
	"github.com/latchkey/latchkey/examples/resourceserver/notes"
	"github.com/latchkey/latchkey/internal/proctest"
)

func TestMain(m *testing.M) { latchkeytest.Main(m) }

// recorder is an HTTP transport that notes every request it carries: to
// the token endpoint, and to the API with which bearer token.
type recorder struct {
	tokenURL string
	mu       sync.Mutex
	fetched  []time.Time // when each token request was sent
	bearers  []string    // the token of each API call, in order
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	if req.URL.String() == r.tokenURL {
		r.fetched = append(r.fetched, time.Now())
	} else {
		r.bearers = append(r.bearers, strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer "))
	}
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// seen returns the token requests so far and the distinct bearer tokens
// the API received.
func (r *recorder) seen() (fetched []time.Time, tokens []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bearers {
		if len(tokens) == 0 || tokens[len(tokens)-1] != b {
			tokens = append(tokens, b)
		}
	}
	return append([]time.Time(nil), r.fetched...), tokens
}

// reports is a backend registered as an operator would: the client
// credentials grant, the API's scope and audience, and short-lived tokens.
func reports(t *testing.T, srv *latchkeytest.Server, lifespan string) latchkeytest.Client {
	t.Helper()
	return srv.CreateClient(t, "--name", "reports", "--grant-type", "client_credentials",
		"--scope", notes.ScopeRead, "--audience", notes.DefaultAudience, "--access-token-lifespan", lifespan)
}

// Many calls, at once or one after another, cost one token request: the
// token is cached and reused until RenewBefore its expiry, and then the
// next call fetches a new one before the old one could expire in flight.
func TestCallsShareOneTokenUntilItIsAboutToExpire(t *testing.T) {
	t.Parallel()
	const (
		lifespan    = 8 * time.Second
		renewBefore = 2 * time.Second
	)
	srv := latchkeytest.Start(t)
	api := srv.NotesAPI(t, 0)
	c := reports(t, srv, lifespan.String())
	rec := &recorder{tokenURL: srv.Endpoint(t).TokenURL}
	n := New(t.Context(), Config{
		TokenURL: rec.tokenURL, ClientID: c.ID, ClientSecret: c.Secret, Scopes: []string{notes.ScopeRead},
		APIURL: api, RenewBefore: renewBefore, HTTPClient: &http.Client{Transport: rec, Timeout: 10 * time.Second},
	})
	call := func() error {
		l, err := n.List(t.Context())
		if err == nil && l.Caller != c.ID {
			t.Errorf("the API took the caller for %q, want the backend %s", l.Caller, c.ID)
		}
		return err
	}

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := call(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	fetched, tokens := rec.seen()
	if len(fetched) != 1 || len(tokens) != 1 {
		t.Fatalf("20 concurrent calls: %d token requests and %d distinct tokens, want 1 and 1", len(fetched), len(tokens))
	}

	// Keep calling until the backend renews the token.
	for {
		if err := call(); err != nil {
			t.Fatalf("a call while the token ages: %v", err)
		}
		if fetched, _ = rec.seen(); len(fetched) > 1 {
			break
		}
		if time.Since(fetched[0]) > lifespan {
			t.Fatalf("no new token %v after the first, which lived %v", time.Since(fetched[0]), lifespan)
		}
		time.Sleep(100 * time.Millisecond)
	}
	age := fetched[1].Sub(fetched[0])
	// expires_in is whole seconds, so the token may be taken to expire up to
	// a second early.
	if age < lifespan-renewBefore-time.Second {
		t.Fatalf("the token was renewed after %v, before it was within %v of expiring (lifespan %v)", age, renewBefore, lifespan)
	}
	if _, tokens = rec.seen(); len(tokens) != 2 {
		t.Fatalf("after the renewal the API saw %d distinct tokens, want 2", len(tokens))
	}
	t.Logf("the first token served every call for %v; calls went on with the second", age.Round(time.Millisecond))
}

// A backend that is not allowed what it asks for learns why, from the
// token endpoint or from the API's challenge.
func TestRefusalsSayWhy(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.Start(t)
	api := srv.NotesAPI(t, 0)
	tokenURL := srv.Endpoint(t).TokenURL
	c := reports(t, srv, "0")
	other := srv.CreateClient(t, "--name", "audit", "--grant-type", "client_credentials",
		"--scope", "audit.read", "--audience", notes.DefaultAudience)

	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"a scope the client is not registered for", Config{ClientID: c.ID, ClientSecret: c.Secret, Scopes: []string{"notes.write"}}, "invalid_scope"},
		{"a wrong secret", Config{ClientID: c.ID, ClientSecret: "not-the-secret", Scopes: []string{notes.ScopeRead}}, "invalid_client"},
		{"a token without the API's scope", Config{ClientID: other.ID, ClientSecret: other.Secret}, `error="insufficient_scope", error_description="The access token lacks a scope this request needs", scope="notes.read"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.TokenURL, tt.cfg.APIURL = tokenURL, api
			_, err := New(t.Context(), tt.cfg).List(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %s", err, tt.want)
			}
		})
	}
}

// The command reads its settings from the environment, as README.md says,
// calls the API, and stops when told to.
func TestRunCallsTheAPIUntilStopped(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.Start(t)
	api := srv.NotesAPI(t, 0)
	c := reports(t, srv, "0")
	env := map[string]string{"ISSUER": srv.Issuer, "CLIENT_ID": c.ID, "CLIENT_SECRET": c.Secret, "API_URL": api, "EVERY": "50ms"}
	var log proctest.Output
	ctx, stop := context.WithTimeout(t.Context(), 2*time.Second)
	defer stop()
	if err := run(ctx, func(k string) string { return env[k] }, slog.New(slog.NewTextHandler(&log, nil))); err != nil {
		t.Fatal(err)
	}
	out := log.String()
	if !strings.Contains(out, `msg="called the Notes API" caller=`+c.ID) || strings.Contains(out, "ERROR") {
		t.Fatalf("the backend logged:\n%s", out)
	}
}
