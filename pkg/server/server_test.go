package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/tracing"
)

func newRouter(t *testing.T, hsts bool, ready func(context.Context) error) (http.Handler, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	r := server.NewRouter(server.Options{
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		HSTS:   hsts,
		Ready:  ready,
	})
	r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("secret internal detail") })
	r.Get("/hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") })
	return r, &logs
}

func alwaysReady(context.Context) error { return nil }

func get(h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestEveryResponseCarriesSecurityHeaders(t *testing.T) {
	h, _ := newRouter(t, true, alwaysReady)
	for _, path := range []string{"/hello", "/healthz", "/no-such-page", "/boom"} {
		rec := get(h, path)
		for name, want := range map[string]string{
			"X-Content-Type-Options":    "nosniff",
			"Referrer-Policy":           "no-referrer",
			"X-Frame-Options":           "DENY",
			"Strict-Transport-Security": "max-age=",
		} {
			if got := rec.Header().Get(name); !strings.Contains(got, want) {
				t.Errorf("%s: %s = %q, want it to contain %q", path, name, got, want)
			}
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy = %q lacks frame-ancestors 'none'", path, csp)
		}
	}
}

func TestHSTSOnlyWhenIssuerIsHTTPS(t *testing.T) {
	h, _ := newRouter(t, false, alwaysReady)
	if got := get(h, "/hello").Header().Get("Strict-Transport-Security"); got != "" {
		t.Fatalf("HSTS sent for a plain-http issuer: %q", got)
	}
}

func TestRequestIDs(t *testing.T) {
	h, logs := newRouter(t, false, alwaysReady)

	generated := get(h, "/hello").Header().Get("X-Request-Id")
	if len(generated) < 16 {
		t.Fatalf("generated request ID %q is too short", generated)
	}
	if other := get(h, "/hello").Header().Get("X-Request-Id"); other == generated {
		t.Fatal("two requests got the same ID")
	}
	if !strings.Contains(logs.String(), `"request_id":"`+generated+`"`) {
		t.Fatalf("access log lacks the request ID: %s", logs)
	}

	tests := []struct{ upstream, want string }{
		{"proxy-abc.123", "proxy-abc.123"}, // kept for correlation
		{"bad id\nforged log line", ""},    // replaced
		{strings.Repeat("x", 65), ""},      // too long: replaced
	}
	for _, tt := range tests {
		got := get(h, "/hello", "X-Request-Id", tt.upstream).Header().Get("X-Request-Id")
		if tt.want != "" && got != tt.want {
			t.Errorf("upstream %q: got %q, want it kept", tt.upstream, got)
		}
		if tt.want == "" && (got == tt.upstream || got == "") {
			t.Errorf("upstream %q: got %q, want a fresh ID", tt.upstream, got)
		}
	}
}

func TestAccessLogOmitsQuery(t *testing.T) {
	h, logs := newRouter(t, false, alwaysReady)
	get(h, "/hello?code=SECRETCODE&state=xyz")
	if strings.Contains(logs.String(), "SECRETCODE") {
		t.Fatalf("access log contains the query string: %s", logs)
	}
	if !strings.Contains(logs.String(), `"path":"/hello"`) || !strings.Contains(logs.String(), `"status":200`) {
		t.Fatalf("access log lacks path or status: %s", logs)
	}
}

func TestPanicAnswersGeneric500AndLogsStack(t *testing.T) {
	h, logs := newRouter(t, false, alwaysReady)
	rec := get(h, "/boom")
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "secret internal detail") {
		t.Fatalf("the panic's text reached the client: %s", rec.Body)
	}
	if !strings.Contains(rec.Body.String(), "server_error") {
		t.Fatalf("body %s lacks the error code", rec.Body)
	}
	if !strings.Contains(logs.String(), "secret internal detail") || !strings.Contains(logs.String(), "server_test.go") {
		t.Fatalf("log lacks the panic value or its stack: %s", logs)
	}
	if get(h, "/hello").Code != http.StatusOK {
		t.Fatal("the server stopped serving after a panic")
	}
}

func TestHealthAndReadiness(t *testing.T) {
	var dbErr error
	h, _ := newRouter(t, false, func(context.Context) error { return dbErr })

	if rec := get(h, "/healthz"); rec.Code != http.StatusOK {
		t.Fatalf("/healthz = %d", rec.Code)
	}
	if rec := get(h, "/readyz"); rec.Code != http.StatusOK {
		t.Fatalf("/readyz with the database up = %d", rec.Code)
	}
	dbErr = errors.New("connection refused to 10.0.0.5")
	rec := get(h, "/readyz")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database down = %d, want 503", rec.Code)
	}
	if strings.Contains(rec.Body.String(), "10.0.0.5") {
		t.Fatalf("/readyz leaks the internal error: %s", rec.Body)
	}
	if rec := get(h, "/healthz"); rec.Code != http.StatusOK {
		t.Fatalf("/healthz must not depend on the database; got %d", rec.Code)
	}
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), 10*time.Second,
			server.Listener{Name: "public", Listener: ln, Handler: h})
	}()

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()

	<-entered
	cancel() // as on SIGTERM, with a request in flight
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) before the in-flight request finished", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener still accepts connections during shutdown")
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: body %q, err %v; want it completed", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	r := server.NewRouter(server.Options{
		Logger:         slog.New(slog.DiscardHandler),
		Ready:          alwaysReady,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
	})
	r.Get("/ip", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, server.ClientIP(r.Context())) })
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy", "203.0.113.9:5000", nil, "203.0.113.9"},
		{"an untrusted peer's claim is ignored", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"through a trusted proxy", "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a forged first hop is skipped over", "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"through two trusted proxies", "10.1.2.3:5000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines", "10.1.2.3:5000", []string{"1.1.1.1", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"only trusted hops", "10.1.2.3:5000", []string{"10.0.0.5"}, "10.0.0.5"},
		{"garbage stops the walk", "10.1.2.3:5000", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"IPv6 proxy", "[2001:db8::1]:5000", []string{"2001:db8:ffff::2, 198.51.100.7"}, "198.51.100.7"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, "/ip", nil)
		req.RemoteAddr = tt.peer
		for _, v := range tt.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if got := rec.Body.String(); got != tt.want {
			t.Errorf("%s: client IP %q, want %q", tt.name, got, tt.want)
		}
	}
}

// observed records what a router tells its Observer.
type observed struct {
	mu       sync.Mutex
	requests []string
}

func (o *observed) ObserveRequest(method, route string, status int, elapsed time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if elapsed <= 0 { // every request takes some time: it was not measured
		route += " (no time taken)"
	}
	o.requests = append(o.requests, fmt.Sprintf("%s %s %d", method, route, status))
}

func TestObserverSeesRoutePatternsNeverPaths(t *testing.T) {
	obs := &observed{}
	r := server.NewRouter(server.Options{Logger: slog.New(slog.DiscardHandler), Ready: alwaysReady, Observer: obs})
	clients := chi.NewRouter()
	clients.Get("/{id}", func(w http.ResponseWriter, r *http.Request) {
		if chi.URLParam(r, "id") == "gone" {
			http.NotFound(w, r) // a route that answers 404 is still its route
			return
		}
		_, _ = io.WriteString(w, "a client")
	})
	clients.NotFound(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	r.Mount("/admin/clients", clients)
	r.Get("/hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") })
	r.Get("/quiet", func(http.ResponseWriter, *http.Request) {})

	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/admin/clients/c-4f9a"},
		{http.MethodGet, "/admin/clients/gone"},
		{http.MethodGet, "/admin/clients/c-4f9a/secret/x"}, // the mounted router's own 404
		{http.MethodGet, "/ada@example.com"},
		{http.MethodPost, "/hello"},
		{http.MethodGet, "/hello?code=SECRET"},
		{http.MethodGet, "/quiet"},
		{http.MethodGet, "/healthz"},
	} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	want := []string{
		"GET /admin/clients/{id} 200",
		"GET /admin/clients/{id} 404",
		"GET unmatched 404",
		"GET unmatched 404",
		"POST unmatched 405",
		"GET /hello 200",
		"GET /quiet 200",
		"GET /healthz 200",
	}
	if !slices.Equal(obs.requests, want) {
		t.Fatalf("observed:\n%s\nwant:\n%s", strings.Join(obs.requests, "\n"), strings.Join(want, "\n"))
	}
}

func TestATracedRequestsSpanIsNamedForItsRouteAndCarriesItsRequestID(t *testing.T) {
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	defer func() { _ = tp.Shutdown(t.Context()) }()
	var logs bytes.Buffer
	r := server.NewRouter(server.Options{
		Logger: slog.New(tracing.LogHandler(slog.NewJSONHandler(&logs, nil))),
		Ready:  alwaysReady,
		Tracer: tp,
	})
	r.Get("/clients/{id}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "a client") })

	rec := get(r, "/clients/c-4f9a", "X-Forwarded-For", "198.51.100.66") // not from a trusted proxy
	spans := exporter.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans for one request, want 1", len(spans))
	}
	span := spans[0]
	if span.Name != "GET /clients/{id}" {
		t.Errorf("span name %q, want the method and route pattern", span.Name)
	}
	attrs := map[string]string{}
	for _, a := range span.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["client.address"] != "192.0.2.1" {
		t.Errorf("span has client.address %q, want the peer 192.0.2.1: the forwarded address is not to be believed", attrs["client.address"])
	}
	if id := rec.Header().Get("X-Request-Id"); attrs[server.RequestIDAttribute] != id {
		t.Errorf("span has %s = %q, want the response's X-Request-Id %q", server.RequestIDAttribute, attrs[server.RequestIDAttribute], id)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("access log: %v: %s", err, logs.String())
	}
	if line["trace_id"] != span.SpanContext.TraceID().String() || line["request_id"] != rec.Header().Get("X-Request-Id") {
		t.Errorf("access log line %v lacks the span's trace_id %s or the request ID", line, span.SpanContext.TraceID())
	}

	// A proxy that traces passes its trace on, and the request joins it.
	parent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	get(r, "/clients/c-4f9a", "Traceparent", parent)
	if got := exporter.GetSpans()[1]; got.Parent.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" || !got.Parent.IsRemote() {
		t.Errorf("a request with traceparent %s started trace %s, want it continued", parent, got.SpanContext.TraceID())
	}
}
