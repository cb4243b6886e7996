package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/server"
)

// spanNamed waits for the span called name, which ends only once its
// response has gone out, and returns it with every span exported so far.
func spanNamed(t *testing.T, exporter *tracetest.InMemoryExporter, name string) (tracetest.SpanStub, tracetest.SpanStubs) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		spans := exporter.GetSpans()
		for _, s := range spans {
			if s.Name == name {
				return s, spans
			}
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.Name)
			}
			t.Fatalf("no span %q; the spans are %q", name, names)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// descendsFrom reports whether span is root or lies below it.
func descendsFrom(span, root tracetest.SpanStub, spans tracetest.SpanStubs) bool {
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, s := range spans {
		byID[s.SpanContext.SpanID()] = s
	}
	for s, ok := span, true; ok; s, ok = byID[s.Parent.SpanID()] {
		if s.SpanContext.Equal(root.SpanContext) {
			return true
		}
	}
	return false
}

func TestATracedTokenRequestShowsItsDatabaseCallsAndRequestID(t *testing.T) {
	t.Parallel()
	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	n := startTracedNode(t, tp)
	backend, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	exporter.Reset() // what setting up the node did is not the request's

	status, header, body := n.tokenRequest(t, backend.ID, secret)
	if status != http.StatusOK {
		t.Fatalf("client credentials: %d %v", status, body)
	}
	requestID := header.Get("X-Request-Id")
	token, _ := body["access_token"].(string)

	httpSpan, spans := spanNamed(t, exporter, "POST /oauth2/token")
	if httpSpan.SpanKind != trace.SpanKindServer {
		t.Errorf("the request's span is a %s span, want server", httpSpan.SpanKind)
	}
	attrs := map[string]string{}
	for _, a := range httpSpan.Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	if requestID == "" || attrs[server.RequestIDAttribute] != requestID {
		t.Errorf("the request's span has %s = %q, want the X-Request-Id %q", server.RequestIDAttribute, attrs[server.RequestIDAttribute], requestID)
	}
	if attrs["http.route"] != "/oauth2/token" || attrs["http.response.status_code"] != "200" {
		t.Errorf("the request's span has route %q and status %q, want /oauth2/token and 200", attrs["http.route"], attrs["http.response.status_code"])
	}

	var queries []string
	for _, s := range spans {
		var query string
		for _, a := range s.Attributes {
			if a.Key == "db.query.text" {
				query = a.Value.AsString()
			}
			// Query arguments hold token signatures, secret digests and
			// password hashes: they are never recorded.
			for _, secretive := range []string{secret, token, token[strings.LastIndexByte(token, '.')+1:]} {
				if strings.Contains(a.Value.String(), secretive) {
					t.Errorf("span %q attribute %s holds a secret or token", s.Name, a.Key)
				}
			}
		}
		if query == "" {
			continue
		}
		if !descendsFrom(s, httpSpan, spans) {
			t.Errorf("database span %q (%s) is not part of the request's trace", s.Name, query)
		}
		queries = append(queries, query)
	}
	if !containsAny(queries, "INSERT INTO oauth_access_tokens") {
		t.Errorf("no span for storing the token among the request's queries:\n%s", strings.Join(queries, "\n"))
	}
}

func containsAny(queries []string, part string) bool {
	for _, q := range queries {
		if strings.Contains(q, part) {
			return true
		}
	}
	return false
}
