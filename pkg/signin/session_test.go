package signin_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/signin"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// site is a server with the session handler and three routes: /park parks
// a request, /signin signs the user in, /whoami says who is signed in.
type site struct {
	url   string
	dbURL string
	user  string
}

func newSite(t *testing.T, cfg signin.SessionConfig) *site {
	t.Helper()
	dbURL := pgtest.URL(t)
	store := pgtest.Open(t, dbURL)
	u := &identity.User{ID: "11111111-2222-4333-8444-555555555555", Email: "ada@example.com"}
	if err := store.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	m := signin.NewSessions(store, audit.New(store, slog.New(slog.DiscardHandler)), cfg)
	mux := http.NewServeMux()
	mux.HandleFunc("/park", func(w http.ResponseWriter, r *http.Request) {
		handle, err := m.Park(r.Context(), url.Values{"client_id": {"app"}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte(handle))
	})
	mux.HandleFunc("/signin", func(w http.ResponseWriter, r *http.Request) {
		if _, err := m.SignIn(r.Context(), r, u.ID, []string{"pwd"}, signin.SignInNotes{}); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		a, ok, err := m.Current(r.Context())
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if ok {
			_, _ = w.Write([]byte(a.UserID + " " + strings.Join(a.AMR, ",")))
		}
	})
	srv := httptest.NewServer(m.Handler(mux))
	t.Cleanup(srv.Close)
	return &site{url: srv.URL, dbURL: dbURL, user: u.ID}
}

// get requests path with the session cookie, if any, and returns the body
// and the cookie the answer sets.
func (s *site) get(t *testing.T, path string, cookie *http.Cookie) (string, *http.Cookie) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var set *http.Cookie
	if cs := resp.Cookies(); len(cs) > 0 {
		set = cs[0]
	}
	return string(body), set
}

var hour = signin.SessionConfig{IdleTimeout: time.Hour, Lifetime: time.Hour}

func TestCookieUnderHTTPSIsHostBoundSecureHttpOnlyAndLax(t *testing.T) {
	t.Parallel()
	s := newSite(t, signin.SessionConfig{Secure: true, IdleTimeout: time.Hour, Lifetime: time.Hour})
	_, c := s.get(t, "/park", nil)
	if c == nil {
		t.Fatal("no session cookie")
	}
	if c.Name != "__Host-latchkey_session" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("cookie %+v: want __Host- prefixed, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain", c)
	}
	if len(c.Value) < 22 { // 128 bits in base64
		t.Fatalf("session identifier %q is shorter than 128 bits", c.Value)
	}
}

func TestSigningInIssuesANewIdentifier(t *testing.T) {
	t.Parallel()
	s := newSite(t, hour)
	_, before := s.get(t, "/park", nil)
	_, after := s.get(t, "/signin", before)
	if after == nil || after.Value == before.Value {
		t.Fatal("signing in kept the session identifier (session fixation)")
	}
	if who, _ := s.get(t, "/whoami", after); who != s.user+" pwd" {
		t.Fatalf("after sign-in: %q, want the user and how they signed in", who)
	}
	if who, _ := s.get(t, "/whoami", before); who != "" {
		t.Fatalf("the identifier from before sign-in still works: %q", who)
	}
}

func TestSessionEndsAtItsLifetime(t *testing.T) {
	t.Parallel()
	s := newSite(t, signin.SessionConfig{IdleTimeout: time.Hour, Lifetime: 2 * time.Second})
	_, c := s.get(t, "/signin", nil)
	if who, _ := s.get(t, "/whoami", c); who == "" {
		t.Fatal("not signed in right after signing in")
	}
	time.Sleep(2100 * time.Millisecond)
	if who, _ := s.get(t, "/whoami", c); who != "" {
		t.Fatalf("still signed in after the session's lifetime: %q", who)
	}
}

func TestSessionEndsWhenItsSignInRecordIsDeleted(t *testing.T) {
	t.Parallel()
	s := newSite(t, hour)
	_, c := s.get(t, "/signin", nil)
	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `DELETE FROM browser_sessions WHERE user_id = $1`, s.user); err != nil {
		t.Fatal(err)
	}
	if who, _ := s.get(t, "/whoami", c); who != "" {
		t.Fatalf("a session whose sign-in was revoked still counts: %q", who)
	}
}
