package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/server"
)

// untouchable is a body that fails the test if anything reads it.
type untouchable struct{ t *testing.T }

func (u untouchable) Read([]byte) (int, error) {
	u.t.Error("the body was read")
	return 0, io.EOF
}

// formRouter is a router with the public listener's body policy and a
// handler that echoes the form it got. Browsers are answered with a page
// that names its status and title.
func formRouter(t *testing.T, maxBytes int64) http.Handler {
	t.Helper()
	r := server.NewRouter(server.Options{
		Logger: slog.New(slog.DiscardHandler),
		Ready:  alwaysReady,
		Bodies: server.BodyPolicy{MaxBytes: maxBytes, FormsOnly: true,
			Refuse: server.ProtocolRefusal(func(w http.ResponseWriter, _ *http.Request, status int, title, message string) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, "<h1>"+title+"</h1><p>"+message+"</p>")
			})},
	})
	r.HandleFunc("/form", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, r.PostForm.Encode())
	})
	return r
}

func TestTheBodyPolicyRefusesBeforeAnythingReadsTheBody(t *testing.T) {
	h := formRouter(t, 1024)
	for _, tt := range []struct {
		name, method, contentType string
		length                    int64
		status                    int
	}{
		{"an upload", http.MethodPost, "multipart/form-data; boundary=x", 100, http.StatusUnsupportedMediaType},
		{"an upload by GET", http.MethodGet, "multipart/form-data; boundary=x", 100, http.StatusUnsupportedMediaType},
		{"an upload of unknown length", http.MethodPost, "multipart/form-data; boundary=x", -1, http.StatusUnsupportedMediaType},
		{"JSON", http.MethodPost, "application/json", 100, http.StatusUnsupportedMediaType},
		{"no media type", http.MethodPost, "", 100, http.StatusUnsupportedMediaType},
		{"a form too large", http.MethodPost, "application/x-www-form-urlencoded", 1025, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/form", untouchable{t})
			req.ContentLength = tt.length
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var body map[string]string
			_ = json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body["error"] != "invalid_request" || body["error_description"] == "" ||
				!strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("%d %s %s, want %d and an RFC 6749 invalid_request", rec.Code, rec.Header().Get("Content-Type"), rec.Body, tt.status)
			}
		})
	}
}

func TestTheBodyPolicyAnswersBrowsersWithAPage(t *testing.T) {
	h := formRouter(t, 1024)
	req := httptest.NewRequest(http.MethodPost, "/form", strings.NewReader("--x--"))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	req.Header.Set("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnsupportedMediaType || !strings.Contains(rec.Body.String(), "<h1>Cannot read this form</h1>") ||
		!strings.Contains(rec.Body.String(), "Go back") {
		t.Fatalf("%d %s, want 415 as a page that says what to do", rec.Code, rec.Body)
	}
}

func TestAnOverlongBodyOfUnknownLengthIs413(t *testing.T) {
	h := formRouter(t, 1024)
	for _, tt := range []struct {
		name   string
		body   string
		status int
	}{
		{"within the limit", "a=" + strings.Repeat("b", 1022), http.StatusOK},
		{"over it", "a=" + strings.Repeat("b", 1023), http.StatusRequestEntityTooLarge},
	} {
		req := httptest.NewRequest(http.MethodPost, "/form", io.MultiReader(strings.NewReader(tt.body)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.status || (tt.status == http.StatusOK && rec.Body.String() != tt.body) {
			t.Errorf("%s: %d %.100s, want %d", tt.name, rec.Code, rec.Body, tt.status)
		}
	}
}

func TestABodilessRequestIsNotJudgedByItsMediaType(t *testing.T) {
	h := formRouter(t, 1024)
	req := httptest.NewRequest(http.MethodGet, "/form?a=b", nil)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("a GET without a body but with a Content-Type: %d %s", rec.Code, rec.Body)
	}
}

func TestAListenerWithItsOwnAnswerGetsTheRefusal(t *testing.T) {
	var got server.Refusal
	r := server.NewRouter(server.Options{
		Logger: slog.New(slog.DiscardHandler),
		Ready:  alwaysReady,
		Bodies: server.BodyPolicy{MaxBytes: 10, Refuse: func(w http.ResponseWriter, _ *http.Request, why server.Refusal) {
			got = why
			w.WriteHeader(why.Status)
		}},
	})
	r.Post("/json", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, tt := range []struct {
		contentType, body string
		status            int
	}{
		{"application/json", `{"a":1}`, http.StatusNoContent}, // any media type: the handler judges
		{"application/json", `{"a":"0123456789"}`, http.StatusRequestEntityTooLarge},
	} {
		req := httptest.NewRequest(http.MethodPost, "/json", strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.contentType)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s: %d, want %d", tt.body, rec.Code, tt.status)
		}
	}
	if got.Status != http.StatusRequestEntityTooLarge || !strings.Contains(got.Detail, "10 bytes") {
		t.Fatalf("the listener's answer was given %+v", got)
	}
}

// BenchmarkTheBodyPolicyOnATokenRequest measures what the public
// listener's body policy adds to a client-credentials token request, the
// hot path: the router with and without it, around a handler that reads
// the form.
func BenchmarkTheBodyPolicyOnATokenRequest(b *testing.B) {
	const form = "grant_type=client_credentials&scope=invoices.read"
	for _, bb := range []struct {
		name   string
		policy server.BodyPolicy
	}{
		{"without", server.BodyPolicy{}},
		{"with", server.BodyPolicy{MaxBytes: server.FormBodyLimit, FormsOnly: true}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			r := server.NewRouter(server.Options{Logger: slog.New(slog.DiscardHandler), Ready: alwaysReady, Bodies: bb.policy})
			r.Post("/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
				if r.ParseForm() != nil || r.PostForm.Get("grant_type") == "" {
					w.WriteHeader(http.StatusBadRequest)
				}
			})
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}

// The registration endpoint's path and those under it take JSON and
// nothing else; every other path still takes forms only, a path that
// merely starts with the same letters included.
func TestJSONPathsTakeJSONAndOnlyThem(t *testing.T) {
	r := server.NewRouter(server.Options{
		Logger: slog.New(slog.DiscardHandler),
		Ready:  alwaysReady,
		Bodies: server.BodyPolicy{MaxBytes: 1024, FormsOnly: true, JSONPaths: []string{"/t/oauth2/register"}},
	})
	r.HandleFunc("/*", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	for _, tt := range []struct {
		path, contentType string
		status            int
	}{
		{"/t/oauth2/register", "application/json", http.StatusOK},
		{"/t/oauth2/register/abc", "application/json; charset=utf-8", http.StatusOK},
		{"/t/oauth2/register", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"/t/oauth2/register", "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"/t/oauth2/register", "", http.StatusUnsupportedMediaType},
		{"/t/oauth2/registered", "application/json", http.StatusUnsupportedMediaType},
		{"/t/oauth2/token", "application/json", http.StatusUnsupportedMediaType},
		{"/t/oauth2/token", "application/x-www-form-urlencoded", http.StatusOK},
	} {
		req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader("{}"))
		if tt.contentType != "" {
			req.Header.Set("Content-Type", tt.contentType)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%s as %q: %d %s, want %d", tt.path, tt.contentType, rec.Code, rec.Body, tt.status)
		}
	}
	// The size limit holds for JSON as for forms.
	req := httptest.NewRequest(http.MethodPost, "/t/oauth2/register", strings.NewReader(strings.Repeat(" ", 2000)))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized JSON: %d", rec.Code)
	}
}
