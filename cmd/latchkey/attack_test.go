package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
)

// This file holds what the adversarial tests (attack_*_test.go) share: a
// way to attack from several hosts at once, and clients that authenticate
// with signed assertions. Linux routes all of 127.0.0.0/8 to this machine,
// so a connection from 127.0.0.2 reaches a node listening on 127.0.0.1 and
// the node sees 127.0.0.2 as its peer, as it would see another host.

// attackers returns n loopback source addresses, 127.0.0.2 onwards.
func attackers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	return out
}

// transportFrom returns a transport whose connections come from ip.
func transportFrom(ip string) *http.Transport {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}
}

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(ip string) *http.Client {
	return &http.Client{Transport: transportFrom(ip), Timeout: 60 * time.Second}
}

// from makes the browser's connections come from ip.
func (b *browser) from(ip string) *browser {
	b.http.Transport = transportFrom(ip)
	return b
}

// burst runs attempt n times at once, spreading the attempts over the
// given source addresses in turn, and waits for all of them. attempt gets
// its index and the address it comes from.
func burst(t *testing.T, n int, from []string, attempt func(i int, ip string)) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			attempt(i, from[i%len(from)])
		})
	}
	close(start)
	wg.Wait()
}

// postForm posts a form to the node as a browser's page would, from
// client; safe to call from any goroutine, it returns what went wrong
// rather than failing the test.
func (n *node) postForm(client *http.Client, path string, form url.Values) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, n.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", n.issuer)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// events returns the audit events of action, newest first, whose details
// have every given key and value (key, value, ...).
func (n *node) events(t *testing.T, action string, details ...string) []audit.Event {
	t.Helper()
	all, err := audit.New(n.store, quietLogger()).List(t.Context(), audit.Query{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range all {
		match := true
		for i := 0; i+1 < len(details); i += 2 {
			if v, _ := e.Details[details[i]].(string); v != details[i+1] {
				match = false
			}
		}
		if match {
			out = append(out, e)
		}
	}
	return out
}

// keyClient is a backend that authenticates with private_key_jwt (RFC 7523):
// it holds an ES256 key and registered only the public half.
type keyClient struct {
	id  string
	key *ecdsa.PrivateKey
}

// keyClient registers a client-credentials backend that signs assertions.
func (n *node) keyClient(t *testing.T) keyClient {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := n.clients.Create(t.Context(), client.Client{
		Name: "signer", GrantTypes: []string{client.GrantClientCredentials},
		TokenEndpointAuthMethod: client.AuthPrivateKeyJWT, TokenEndpointAuthSigningAlg: "ES256", JWKS: set,
	})
	if err != nil {
		t.Fatal(err)
	}
	return keyClient{id: c.ID, key: key}
}

// assertion signs an assertion for n's token endpoint with jti, issued at
// iat (no iat claim if zero) and expiring at exp.
func (k keyClient) assertion(t *testing.T, n *node, jti string, iat, exp time.Time) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	claims := josejwt.Claims{Issuer: k.id, Subject: k.id, Audience: josejwt.Audience{n.issuer + "/oauth2/token"},
		ID: jti, Expiry: josejwt.NewNumericDate(exp)}
	if !iat.IsZero() {
		claims.IssuedAt = josejwt.NewNumericDate(iat)
	}
	raw, err := josejwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// token asks n for a client-credentials token with the assertion, and
// returns the status and the answer.
func (k keyClient) token(t *testing.T, n *node, assertion string) (int, map[string]any) {
	t.Helper()
	return doJSON(t, assertionRequest(n, assertion))
}

// assertionRequest is a client-credentials token request to n that
// authenticates with the assertion.
func assertionRequest(n *node, assertion string) *http.Request {
	form := url.Values{
		"grant_type":            {client.GrantClientCredentials},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, _ := http.NewRequest(http.MethodPost, n.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}
