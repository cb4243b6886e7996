package events_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collectorlogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/latchkey/latchkey/pkg/events"
)

// collector is an OTLP/HTTP log receiver, as an OpenTelemetry Collector
// is: it decodes each export and answers with status, which the test sets.
type collector struct {
	mu       sync.Mutex
	status   int
	requests []*collectorlogs.ExportLogsServiceRequest
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req collectorlogs.ExportLogsServiceRequest
	if r.URL.Path != "/v1/logs" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "not an OTLP log export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != http.StatusOK {
		w.WriteHeader(c.status)
		return
	}
	c.requests = append(c.requests, &req)
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectorlogs.ExportLogsServiceResponse{})
	_, _ = w.Write(out)
}

// An event sent to a SIEM over OTLP arrives as one log record whose body
// is the event's JSON and whose attributes name it; a collector that
// refuses it makes WriteEvent fail, so that the outbox tries again rather
// than lose it. (Not parallel: the exporter reads the OTEL_* environment.)
func TestAnEventArrivesAtAnOpenTelemetryCollectorAsOneLogRecord(t *testing.T) {
	c := &collector{status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(c)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", srv.URL+"/v1/logs")
	t.Setenv("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "2000")
	o, err := events.NewOTLP(t.Context(), "latchkey", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = o.Shutdown(t.Context()) }()
	payload, _ := json.Marshal(events.Payload{ID: "evt_42", Type: "user.disabled", At: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC),
		Data: events.Data{Actor: "cli:root", Target: "user:7f9c", Subject: "user:7f9c"}})

	if err := o.WriteEvent(t.Context(), payload); err == nil {
		t.Fatal("a collector answering 503 took the event, says WriteEvent; the outbox would not retry it")
	}
	c.mu.Lock()
	c.status = http.StatusOK
	c.mu.Unlock()
	if err := o.WriteEvent(t.Context(), payload); err != nil {
		t.Fatalf("a working collector: %v", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.requests) != 1 || len(c.requests[0].ResourceLogs) != 1 {
		t.Fatalf("%d exports, want one", len(c.requests))
	}
	rl := c.requests[0].ResourceLogs[0]
	var service string
	for _, a := range rl.GetResource().GetAttributes() {
		if a.Key == "service.name" {
			service = a.GetValue().GetStringValue()
		}
	}
	if service != "latchkey" {
		t.Errorf("service.name %q", service)
	}
	records := rl.ScopeLogs[0].LogRecords
	if len(records) != 1 {
		t.Fatalf("%d records, want one", len(records))
	}
	r := records[0]
	if got := r.GetBody().GetStringValue(); got != string(payload) {
		t.Errorf("body %s, want the event's JSON %s", got, payload)
	}
	attrs := map[string]string{}
	for _, a := range r.Attributes {
		attrs[a.Key] = a.GetValue().GetStringValue()
	}
	if attrs["event.id"] != "evt_42" || attrs["event.type"] != "user.disabled" || attrs["latchkey.subject"] != "user:7f9c" {
		t.Errorf("attributes %v", attrs)
	}
	if r.EventName != "user.disabled" || r.TimeUnixNano != uint64(time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC).UnixNano()) {
		t.Errorf("event name %q, time %d", r.EventName, r.TimeUnixNano)
	}
}
