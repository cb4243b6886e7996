package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Config is what the backend needs to call the Notes API as itself.
type Config struct {
	// TokenURL is Latchkey's token endpoint, from its discovery document.
	TokenURL string
	// ClientID and ClientSecret are the backend's own client, registered
	// with the client_credentials grant.
	ClientID, ClientSecret string
	// Scopes narrows the tokens to some of the client's scopes; empty asks
	// for all of them.
	Scopes []string
	// APIURL is the Notes API's base URL.
	APIURL string
	// RenewBefore is how long before a token expires the next call fetches
	// a new one, so that a token never expires on its way to the API. Zero
	// keeps golang.org/x/oauth2's default, ten seconds.
	RenewBefore time.Duration
	// HTTPClient makes the token requests and the API calls. Nil means a
	// client with a ten-second timeout.
	HTTPClient *http.Client
}

// Notes calls the Notes API with client-credentials tokens. It is safe for
// concurrent use, and all its calls share one token: the first call fetches
// it, later calls reuse it, and the first call within RenewBefore of its
// expiry fetches the next one. Concurrent calls never fetch twice.
type Notes struct {
	api  string
	http *http.Client
}

// New returns a Notes client. ctx must live as long as the client: the
// token source keeps it and makes every token request with it, also those
// long after New returns, so pass the program's context, never a
// request's.
func New(ctx context.Context, cfg Config) *Notes {
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 10 * time.Second}
	}
	// oauth2 makes its token requests with the client it finds here.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, base)
	cc := &clientcredentials.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		TokenURL:     cfg.TokenURL,
		Scopes:       cfg.Scopes,
		// Latchkey's default method, client_secret_basic; saying so spares
		// the library guessing with a failed request first.
		AuthStyle: oauth2.AuthStyleInHeader,
	}
	// TokenSource caches the token (oauth2.ReuseTokenSource) and fetches
	// a new one only once the cached one is about to expire.
	tokens := cc.TokenSource(ctx)
	if cfg.RenewBefore > 0 {
		tokens = oauth2.ReuseTokenSourceWithExpiry(nil, tokens, cfg.RenewBefore)
	}
	hc := oauth2.NewClient(ctx, tokens) // adds Authorization: Bearer to every request
	hc.Timeout = base.Timeout
	return &Notes{api: cfg.APIURL, http: hc}
}

// Note is one note.
type Note struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// List is what GET /api/notes answers.
type List struct {
	// Caller is who the API took the caller for: the backend's client ID.
	Caller string `json:"caller"`
	Notes  []Note `json:"notes"`
}

// List fetches the notes.
func (n *Notes) List(ctx context.Context) (*List, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.api+"/api/notes", nil)
	if err != nil {
		return nil, fmt.Errorf("notes: %w", err)
	}
	resp, err := n.http.Do(req)
	if err != nil {
		// Includes a failed token request: *oauth2.RetrieveError inside
		// says what Latchkey answered (invalid_client, invalid_scope...).
		return nil, fmt.Errorf("notes: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("notes: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		// The challenge says why: invalid_token, insufficient_scope...
		return nil, fmt.Errorf("notes: the API answered %s (%s)", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	var l List
	if err := json.Unmarshal(body, &l); err != nil {
		return nil, fmt.Errorf("notes: the API's answer: %w", err)
	}
	return &l, nil
}
