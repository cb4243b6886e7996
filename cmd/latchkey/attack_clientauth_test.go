package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
)

// This file attacks client authentication at the token, introspection
// and revocation endpoints: guessing a client's secret from one address.

// postFrom posts a form to a protocol endpoint as client id, from the
// loopback address ip. It may run outside the test's goroutine.
func (n *node) postFrom(t *testing.T, ip, path, id, secret string, form url.Values) (int, http.Header, map[string]any) {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, n.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := clientFrom(ip).Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, resp.Header, body
}

func TestGuessingAClientSecretIsThrottledPerClientAndAddress(t *testing.T) {
	t.Parallel()
	const limit = 5
	n := startNode(t, "LATCHKEY_CLIENT_AUTH_FAILURE_LIMIT", "5", "LATCHKEY_CLIENT_RATE_LIMIT", "0")
	backend, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	grant := url.Values{"grant_type": {"client_credentials"}}
	from := attackers(4)
	attacker, victim, bystander := from[0], from[1], from[2]

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	burst(t, 4*limit, []string{attacker}, func(i int, ip string) {
		status, header, body := n.postFrom(t, ip, "/oauth2/token", backend.ID, "guess", grant)
		if status == http.StatusTooManyRequests && (header.Get("Retry-After") == "" || body["error"] != "temporarily_unavailable") {
			t.Errorf("a refused guess: Retry-After %q, %v; want Retry-After and an RFC 6749 error", header.Get("Retry-After"), body)
		}
		mu.Lock()
		statuses[status]++
		mu.Unlock()
	})
	if statuses[http.StatusUnauthorized] != limit || statuses[http.StatusTooManyRequests] != 3*limit {
		t.Fatalf("a parallel burst of %d wrong secrets: %v; want exactly %d checked (401) and the rest refused (429)", 4*limit, statuses, limit)
	}

	// The allowance is the client's at that address, on every endpoint
	// that authenticates clients: the attacker has used it up ...
	for _, path := range []string{"/oauth2/introspect", "/oauth2/revoke"} {
		status, header, body := n.postFrom(t, attacker, path, backend.ID, "guess", url.Values{"token": {"x"}})
		limited(t, path, status, header, body)
	}
	// ... and the right secret too is refused from there, unchecked, until
	// the allowance refills: checking it would tell the attacker when a
	// guess is right.
	status, header, body := n.postFrom(t, attacker, "/oauth2/token", backend.ID, secret, grant)
	limited(t, "the right secret from the throttled address", status, header, body)

	// The client itself, from its own address, is not locked out.
	if status, _, body := n.postFrom(t, victim, "/oauth2/token", backend.ID, secret, grant); status != http.StatusOK {
		t.Fatalf("the right secret from another address: %d %v", status, body)
	}
	// Nor is another client at the attacker's address.
	other, _, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := n.postFrom(t, attacker, "/oauth2/token", other.ID, "guess", grant); status != http.StatusUnauthorized {
		t.Fatalf("a wrong secret for another client from the attacker's address: %d, want it checked (401)", status)
	}
	// Authentications that succeed use up nothing.
	for i := range 3 * limit {
		if status, _, body := n.postFrom(t, bystander, "/oauth2/token", backend.ID, secret, grant); status != http.StatusOK {
			t.Fatalf("successful request %d from one address: %d %v", i+1, status, body)
		}
	}
}
