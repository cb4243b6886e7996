package tracing_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/latchkey/latchkey/pkg/tracing"
)

func TestTracingIsOffUnlessTheEnvironmentAsksForIt(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"only a service name", map[string]string{"OTEL_SERVICE_NAME": "id"}, false},
		{"a console exporter", map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{"an OTLP exporter", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"an OTLP endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"an OTLP endpoint for traces", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"exporter none beats an endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{"the SDK disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}, false},
		{"the SDK disabled, in capitals", map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{"the SDK not disabled", map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"}, true},
	} {
		if got := tracing.Enabled(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("%s: Enabled = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// clearOTel unsets every variable that could turn tracing on, whatever the
// machine running the tests has set.
func clearOTel(t *testing.T) {
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
}

func TestStartReturnsNoProviderByDefault(t *testing.T) {
	clearOTel(t)
	tp, err := tracing.Start(t.Context(), "v1.2.3")
	if err != nil || tp != nil {
		t.Fatalf("Start with no OTEL_* set = %v, %v; want no provider and no error", tp, err)
	}
}

func TestStartUsesTheExporterTheEnvironmentNames(t *testing.T) {
	clearOTel(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_SERVICE_NAME", "")
	tp, err := tracing.Start(t.Context(), "v1.2.3")
	if err != nil || tp == nil {
		t.Fatalf("Start with OTEL_TRACES_EXPORTER=console = %v, %v; want a provider", tp, err)
	}
	_, span := tp.Tracer("test").Start(t.Context(), "probe")
	span.End()
	attrs := map[string]string{}
	for _, a := range span.(sdktrace.ReadOnlySpan).Resource().Attributes() {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["service.name"] != "latchkey" || attrs["service.version"] != "v1.2.3" {
		t.Errorf("spans come from service %q version %q, want latchkey v1.2.3", attrs["service.name"], attrs["service.version"])
	}
	if err := tp.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestTheServiceNameComesFromTheEnvironmentWhenSet(t *testing.T) {
	clearOTel(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	t.Setenv("OTEL_SERVICE_NAME", "id-eu-west")
	tp, err := tracing.Start(t.Context(), "v1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tp.Shutdown(t.Context()) }()
	_, span := tp.Tracer("test").Start(t.Context(), "probe")
	span.End()
	for _, a := range span.(sdktrace.ReadOnlySpan).Resource().Attributes() {
		if a.Key == "service.name" && a.Value.AsString() != "id-eu-west" {
			t.Errorf("service.name = %q, want OTEL_SERVICE_NAME's id-eu-west", a.Value.AsString())
		}
	}
}

func TestAnUnknownExporterFailsTheStart(t *testing.T) {
	clearOTel(t)
	t.Setenv("OTEL_TRACES_EXPORTER", "carrier-pigeon")
	if tp, err := tracing.Start(t.Context(), "v1.2.3"); err == nil {
		_ = tp.Shutdown(t.Context())
		t.Fatal("Start accepted OTEL_TRACES_EXPORTER=carrier-pigeon")
	}
}

func TestLogLinesInASpanCarryItsIDs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(tracing.LogHandler(slog.NewJSONHandler(&buf, nil))).With("node", "a")
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(t.Context()) }()
	ctx, span := tp.Tracer("test").Start(t.Context(), "request")
	logger.InfoContext(ctx, "in a span")
	span.End()
	logger.InfoContext(t.Context(), "outside any span")

	dec := json.NewDecoder(&buf)
	var in, out map[string]any
	if err := dec.Decode(&in); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	sc := span.SpanContext()
	if in["trace_id"] != sc.TraceID().String() || in["span_id"] != sc.SpanID().String() || in["node"] != "a" {
		t.Errorf("line in the span: %v; want trace_id %s, span_id %s and the logger's own attributes", in, sc.TraceID(), sc.SpanID())
	}
	if _, ok := out["trace_id"]; ok {
		t.Errorf("line outside any span has a trace_id: %v", out)
	}
}
