package bearer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/latchkey/latchkey/examples/internal/latchkeytest"
	"github.com/latchkey/latchkey/examples/resourceserver/bearer"
)

func TestMain(m *testing.M) { latchkeytest.Main(m) }

// audience is the API's identifier in these tests: the aud its callers'
// tokens carry, and the client ID it introspects them with.
const audience = "invoices-api"

// api is an API protected by a Guard, talking to a live Latchkey.
type api struct {
	srv *latchkeytest.Server
	url string
	// introspections counts the calls the Guard made to Latchkey.
	introspections *atomic.Int32
}

// newAPI serves one route per rule: GET /{name} with rules[name]. The
// handler answers with the subject of the token the Guard accepted. The
// API's client is registered under its audience, as
// docs/guide-resource-server.md sets one up.
func newAPI(t *testing.T, srv *latchkeytest.Server, maxCacheAge time.Duration, rules map[string]bearer.Rule) *api {
	t.Helper()
	return newAPIAs(t, srv, maxCacheAge, rules, "--id", audience)
}

// newAPIAs is newAPI with the API's client registered with the given
// extra flags of latchkey clients create.
func newAPIAs(t *testing.T, srv *latchkeytest.Server, maxCacheAge time.Duration, rules map[string]bearer.Rule, flags ...string) *api {
	t.Helper()
	rs := srv.CreateClient(t, append([]string{"--name", "Invoices API", "--grant-type", "client_credentials"}, flags...)...)
	counter := &countingTransport{}
	guard := bearer.New(bearer.Config{
		IntrospectionURL: srv.Issuer + "/oauth2/introspect",
		ClientID:         rs.ID,
		ClientSecret:     rs.Secret,
		Audience:         audience,
		MaxCacheAge:      maxCacheAge,
		Realm:            "invoices",
		HTTPClient:       &http.Client{Transport: counter, Timeout: 10 * time.Second},
	})
	mux := http.NewServeMux()
	for name, rule := range rules {
		mux.Handle("GET /"+name, guard.Require(rule)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := bearer.ClaimsFrom(r.Context())
			if !ok {
				t.Error("the handler got no claims")
			}
			fmt.Fprint(w, c.Subject)
		})))
	}
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return &api{srv: srv, url: s.URL, introspections: &counter.n}
}

// countingTransport is the default transport, counting requests.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// answer is what the API said to one request.
type answer struct {
	status    int
	challenge string
	body      string
}

// call sends GET path with the given Authorization header ("" for none).
func (a *api) call(t *testing.T, path, authorization string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: string(body)}
}

// backend registers a backend with scope and audience and returns a token
// source for it.
func backend(t *testing.T, srv *latchkeytest.Server, flags ...string) (latchkeytest.Client, *clientcredentials.Config) {
	t.Helper()
	c := srv.CreateClient(t, append([]string{"--name", "billing", "--grant-type", "client_credentials"}, flags...)...)
	return c, &clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: srv.Endpoint(t).TokenURL}
}

func token(t *testing.T, cfg *clientcredentials.Config) string {
	t.Helper()
	tok, err := cfg.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func TestRequestsWithoutAGoodTokenGetRFC6750Answers(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.Start(t)
	a := newAPI(t, srv, 0, map[string]bearer.Rule{"invoices": {Scopes: []string{"invoices.read"}}})
	billing, cfg := backend(t, srv, "--scope", "invoices.read invoices.write", "--audience", audience)
	_, other := backend(t, srv, "--scope", "invoices.read", "--audience", "another-api")
	otherToken := token(t, other)
	good := token(t, cfg)
	cfg.Scopes = []string{"invoices.write"}
	writeOnly := token(t, cfg)

	tests := []struct {
		name          string
		path          string
		authorization string
		wantStatus    int
		wantChallenge string
	}{
		{"no token: a challenge without an error code", "/invoices", "",
			401, `Bearer realm="invoices"`},
		{"another scheme counts as no token", "/invoices", "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
			401, `Bearer realm="invoices"`},
		{"an empty bearer token is malformed", "/invoices", "Bearer ",
			400, `Bearer realm="invoices", error="invalid_request", error_description="The Authorization header does not hold a bearer token"`},
		{"a token with characters no token has is malformed", "/invoices", "Bearer a b",
			400, `Bearer realm="invoices", error="invalid_request", error_description="The Authorization header does not hold a bearer token"`},
		{"a token in the URL is refused, even with a good one in the header", "/invoices?access_token=" + good, "Bearer " + good,
			400, `Bearer realm="invoices", error="invalid_request", error_description="Send the access token in the Authorization header, not in the URL"`},
		{"an unknown token is invalid", "/invoices", "Bearer lk_at_made-up",
			401, `Bearer realm="invoices", error="invalid_token", error_description="The access token is not active: it expired, was revoked, or is unknown"`},
		// Latchkey does not describe another API's token to this one.
		{"a token for another API is invalid here", "/invoices", "Bearer " + otherToken,
			401, `Bearer realm="invoices", error="invalid_token", error_description="The access token is not active: it expired, was revoked, or is unknown"`},
		{"a token without the scope is forbidden, naming the scope", "/invoices", "Bearer " + writeOnly,
			403, `Bearer realm="invoices", error="insufficient_scope", error_description="The access token lacks a scope this request needs", scope="invoices.read"`},
		{"a good token gets through", "/invoices", "Bearer " + good,
			200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := a.call(t, tt.path, tt.authorization)
			if got.status != tt.wantStatus || got.challenge != tt.wantChallenge {
				t.Fatalf("got %d with WWW-Authenticate %q, want %d with %q", got.status, got.challenge, tt.wantStatus, tt.wantChallenge)
			}
			if tt.wantStatus == 200 && got.body != billing.ID {
				t.Fatalf("the handler saw subject %q, want the backend %s", got.body, billing.ID)
			}
			if tt.wantStatus != 200 && tt.wantChallenge != `Bearer realm="invoices"` {
				var body struct{ Error string }
				if err := json.Unmarshal([]byte(got.body), &body); err != nil || !strings.Contains(tt.wantChallenge, `error="`+body.Error+`"`) {
					t.Fatalf("body %q does not carry the challenge's error", got.body)
				}
			}
		})
	}

	// An API whose client may introspect any token learns about another
	// API's token, and refuses it itself, by its aud.
	t.Run("a token for another API is refused by an API that may see it", func(t *testing.T) {
		wide := newAPIAs(t, srv, 0, map[string]bearer.Rule{"invoices": {}}, "--introspect-any-token")
		got := wide.call(t, "/invoices", "Bearer "+otherToken)
		want := `Bearer realm="invoices", error="invalid_token", error_description="The access token was issued for another API"`
		if got.status != 401 || got.challenge != want {
			t.Fatalf("got %d %q, want 401 %q", got.status, got.challenge, want)
		}
	})

	t.Run("two Authorization headers are malformed", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+"/invoices", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Add("Authorization", "Bearer "+good)
		req.Header.Add("Authorization", "Bearer "+writeOnly)
		if got := send(t, req); got.status != 400 || !strings.Contains(got.challenge, `error="invalid_request"`) {
			t.Fatalf("got %d %q, want 400 invalid_request", got.status, got.challenge)
		}
	})
}

// Revoking a token at Latchkey takes effect at the API within MaxCacheAge,
// and not before: that is the bargain the cache makes, and it spares
// Latchkey a call per request.
func TestARevokedTokenIsRefusedOnceItsCacheEntryEnds(t *testing.T) {
	t.Parallel()
	const maxCacheAge = 3 * time.Second
	srv := latchkeytest.Start(t)
	a := newAPI(t, srv, maxCacheAge, map[string]bearer.Rule{"invoices": {}})
	billing, cfg := backend(t, srv, "--audience", audience)
	tok := token(t, cfg)

	for range 5 {
		if got := a.call(t, "/invoices", "Bearer "+tok); got.status != 200 {
			t.Fatalf("a fresh token: %d %q", got.status, got.challenge)
		}
	}
	if n := a.introspections.Load(); n != 1 {
		t.Fatalf("five requests with one token cost %d introspections, want 1", n)
	}

	revoke(t, srv, billing, tok)
	revoked := time.Now()
	for {
		got := a.call(t, "/invoices", "Bearer "+tok)
		if got.status == http.StatusUnauthorized && strings.Contains(got.challenge, `error="invalid_token"`) {
			break
		}
		if got.status != 200 {
			t.Fatalf("the revoked token, while its answer is cached: %d %q", got.status, got.challenge)
		}
		if time.Since(revoked) > maxCacheAge+time.Second {
			t.Fatalf("the revoked token is still accepted %v after revocation, with MaxCacheAge %v", time.Since(revoked), maxCacheAge)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("revocation took effect after %v (MaxCacheAge %v)", time.Since(revoked).Round(time.Millisecond), maxCacheAge)
}

func revoke(t *testing.T, srv *latchkeytest.Server, c latchkeytest.Client, tok string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.Issuer+"/oauth2/revoke",
		strings.NewReader(url.Values{"token": {tok}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, c.Secret)
	if got := send(t, req); got.status != 200 {
		t.Fatalf("revocation answered %d %s", got.status, got.body)
	}
}

// A cached answer never outlives its token, however long MaxCacheAge is.
func TestACachedAnswerEndsWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.Start(t)
	a := newAPI(t, srv, time.Hour, map[string]bearer.Rule{"invoices": {}})
	_, cfg := backend(t, srv, "--audience", audience, "--access-token-lifespan", "3s")
	tok, err := cfg.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := a.call(t, "/invoices", "Bearer "+tok.AccessToken); got.status != 200 {
		t.Fatalf("a fresh token: %d %q", got.status, got.challenge)
	}
	time.Sleep(time.Until(tok.Expiry) + 1100*time.Millisecond) // exp is whole seconds
	if got := a.call(t, "/invoices", "Bearer "+tok.AccessToken); got.status != 401 || !strings.Contains(got.challenge, `error="invalid_token"`) {
		t.Fatalf("the expired token: %d %q, want 401 invalid_token", got.status, got.challenge)
	}
	if n := a.introspections.Load(); n != 2 {
		t.Fatalf("introspections: %d, want 2 (the expired token's cached answer must end with it)", n)
	}
}

// The step-up rules judge how and when the user signed in, from the acr
// and auth_time introspection reports, and say in the challenge what a new
// sign-in must achieve (RFC 9470).
func TestRulesOnTheSignInAnswerWithAStepUpChallenge(t *testing.T) {
	t.Parallel()
	srv := latchkeytest.Start(t)
	const (
		pwd = "urn:latchkey:acr:pwd"
		mfa = "urn:latchkey:acr:mfa"
	)
	a := newAPI(t, srv, 0, map[string]bearer.Rule{
		"any-sign-in":    {ACRValues: []string{mfa, pwd}},
		"mfa":            {ACRValues: []string{mfa}},
		"within-an-hour": {MaxAge: time.Hour},
		"within-1s":      {MaxAge: time.Second},
		"mfa-within-1s":  {ACRValues: []string{mfa}, MaxAge: time.Second},
	})
	ada := srv.CreateUser(t, "ada@example.com", "correct horse battery staple")
	app := srv.CreateClient(t, "--name", "Invoices", "--grant-type", "authorization_code",
		"--redirect-uri", "http://127.0.0.1/callback", "--scope", "openid", "--audience", audience, "--skip-consent")
	conf := &oauth2.Config{ClientID: app.ID, ClientSecret: app.Secret, RedirectURL: "http://127.0.0.1/callback",
		Scopes: []string{"openid"}, Endpoint: srv.Endpoint(t)}
	userToken := "Bearer " + srv.Agent(t, ada).SignIn(t, conf).AccessToken
	_, cfg := backend(t, srv, "--audience", audience)
	backendToken := "Bearer " + token(t, cfg)

	check := func(t *testing.T, path, authorization string, wantStatus int, wantChallenge string) {
		t.Helper()
		got := a.call(t, path, authorization)
		if got.status != wantStatus || got.challenge != wantChallenge {
			t.Errorf("%s: got %d %q, want %d %q", path, got.status, got.challenge, wantStatus, wantChallenge)
		}
	}
	check(t, "/any-sign-in", userToken, 200, "")
	check(t, "/within-an-hour", userToken, 200, "")
	check(t, "/mfa", userToken, 401,
		`Bearer realm="invoices", error="insufficient_user_authentication", error_description="A stronger sign-in is required", acr_values="urn:latchkey:acr:mfa"`)
	// A backend's token has no user behind it: no sign-in can be judged.
	check(t, "/within-an-hour", backendToken, 401,
		`Bearer realm="invoices", error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="3600"`)

	time.Sleep(2100 * time.Millisecond) // auth_time is in whole seconds
	check(t, "/within-1s", userToken, 401,
		`Bearer realm="invoices", error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="1"`)
	check(t, "/mfa-within-1s", userToken, 401,
		`Bearer realm="invoices", error="insufficient_user_authentication", error_description="A stronger and more recent sign-in is required", acr_values="urn:latchkey:acr:mfa", max_age="1"`)
}

// When Latchkey cannot be asked, the API neither accepts the token nor
// calls it invalid, and caches nothing: the client should retry.
func TestAnUnreachableAuthorizationServerIsA503(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	guard := bearer.New(bearer.Config{IntrospectionURL: closed.URL + "/oauth2/introspect", ClientID: "api", ClientSecret: "secret",
		Logger: slog.New(slog.DiscardHandler)})
	h := guard.Require(bearer.Rule{})(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a request got through without its token being checked")
	}))
	for range 2 {
		rec := httptest.NewRecorder()
		req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/", nil)
		req.Header.Set("Authorization", "Bearer lk_at_anything")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || rec.Header().Get("WWW-Authenticate") != "" {
			t.Fatalf("got %d, Retry-After %q, WWW-Authenticate %q; want 503 with Retry-After and no challenge",
				rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("WWW-Authenticate"))
		}
	}
}
