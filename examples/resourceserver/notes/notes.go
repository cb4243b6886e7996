// Package notes is the demo API the resource server example serves: a
// notes service whose routes each demand something different of the
// caller's token, checked with package bearer.
//
//	GET /api/notes  scope notes.read                                   (apps and backends)
//	GET /api/vault  scope notes.read, a second factor, in the last 10 minutes  (step-up)
//	GET /healthz    no token; says the process is up
//
// The vault shows RFC 9470 step-up: a token from a password-only sign-in,
// or from a sign-in longer ago than ten minutes, gets a 401
// insufficient_user_authentication challenge that tells the app what to
// ask Latchkey for.
package notes

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/latchkey/latchkey/examples/resourceserver/bearer"
)

// Latchkey's values that the API's routes demand.
const (
	// ScopeRead lets a token read notes. Register it for the apps and
	// backends that call the API (--scope).
	ScopeRead = "notes.read"
	// ACRMFA is Latchkey's acr for a sign-in with a second factor
	// (docs/mfa.md).
	ACRMFA = "urn:latchkey:acr:mfa"
	// DefaultAudience identifies the API in tokens' aud. Register the
	// API's own client under it (--id), and it for the apps and backends
	// that call the API (--audience): Latchkey then describes their tokens
	// to the API.
	DefaultAudience = "notes-api"
	// VaultMaxAge is how recent a sign-in the vault demands.
	VaultMaxAge = 10 * time.Minute
)

// Config is what the API needs to know to check tokens.
type Config struct {
	// Issuer is Latchkey's issuer URL; the introspection endpoint is found
	// in its discovery document.
	Issuer string
	// ClientID and ClientSecret are the API's own confidential client,
	// with which it introspects tokens. Latchkey describes to it the tokens
	// whose aud names this ID, so register it as the Audience.
	ClientID, ClientSecret string
	// Audience is the API's identifier in tokens; DefaultAudience if
	// empty.
	Audience string
	// MaxCacheAge bounds how long an introspection answer is reused, and
	// so how long a revoked token is still accepted; bearer's default if
	// zero.
	MaxCacheAge time.Duration
	// HTTPClient makes the calls to Latchkey; nil means bearer's default.
	HTTPClient *http.Client
}

// New discovers Latchkey's introspection endpoint and returns the API's
// handler.
func New(ctx context.Context, cfg Config) (http.Handler, error) {
	if cfg.Audience == "" {
		cfg.Audience = DefaultAudience
	}
	if cfg.HTTPClient != nil {
		ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	}
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("notes: discovery: %w", err)
	}
	var meta struct {
		IntrospectionEndpoint string `json:"introspection_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil || meta.IntrospectionEndpoint == "" {
		return nil, fmt.Errorf("notes: %s publishes no introspection_endpoint", cfg.Issuer)
	}
	guard := bearer.New(bearer.Config{
		IntrospectionURL: meta.IntrospectionEndpoint,
		ClientID:         cfg.ClientID,
		ClientSecret:     cfg.ClientSecret,
		Audience:         cfg.Audience,
		MaxCacheAge:      cfg.MaxCacheAge,
		Realm:            "notes",
		HTTPClient:       cfg.HTTPClient,
	})
	return Handler(guard), nil
}

// Handler serves the API's routes, each behind the rule it needs.
func Handler(guard *bearer.Guard) http.Handler {
	mux := http.NewServeMux()
	read := guard.Require(bearer.Rule{Scopes: []string{ScopeRead}})
	stepUp := guard.Require(bearer.Rule{Scopes: []string{ScopeRead}, ACRValues: []string{ACRMFA}, MaxAge: VaultMaxAge})
	mux.Handle("GET /api/notes", read(http.HandlerFunc(list)))
	mux.Handle("GET /api/vault", stepUp(http.HandlerFunc(vault)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Note is one note, as the API returns it.
type Note struct {
	Title string `json:"title"`
	Body  string `json:"body"`
}

// List is the answer of GET /api/notes.
type List struct {
	// Caller is the token's subject: a user's sub, or a backend's client ID.
	Caller string `json:"caller"`
	Notes  []Note `json:"notes"`
}

// Vault is the answer of GET /api/vault.
type Vault struct {
	Caller string `json:"caller"`
	// ACR and AuthTime say how and when the caller signed in.
	ACR      string `json:"acr"`
	AuthTime int64  `json:"auth_time"`
	Secrets  []Note `json:"secrets"`
}

func list(w http.ResponseWriter, r *http.Request) {
	c, _ := bearer.ClaimsFrom(r.Context())
	writeJSON(w, List{Caller: c.Subject, Notes: []Note{
		{Title: "Shopping", Body: "Bread, milk, a new notebook."},
		{Title: "Ideas", Body: "An engine that computes tables."},
	}})
}

func vault(w http.ResponseWriter, r *http.Request) {
	c, _ := bearer.ClaimsFrom(r.Context())
	writeJSON(w, Vault{Caller: c.Subject, ACR: c.ACR, AuthTime: c.AuthTime, Secrets: []Note{
		{Title: "Bank", Body: "The safe's combination is 12-34-56."},
	}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
