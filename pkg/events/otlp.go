package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
)

// OTLP writes each event as an OpenTelemetry log record, over OTLP/HTTP
// to the collector the standard OTEL_EXPORTER_OTLP_* variables name. Each
// record is exported before WriteEvent returns, and an export that fails
// is WriteEvent's error: the row is retried, as a webhook's is, rather
// than lost in a batch.
type OTLP struct {
	provider *sdklog.LoggerProvider
	logger   otellog.Logger
}

// NewOTLP builds the exporter from the environment. service names the
// emitting service and version its build, as pkg/tracing does for spans.
func NewOTLP(ctx context.Context, service, version string) (*OTLP, error) {
	// The outbox retries a failed export with its own backoff; the
	// exporter's retries (for up to a minute) would only hold the
	// delivery worker meanwhile.
	exporter, err := otlploghttp.New(ctx, otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
	if err != nil {
		return nil, fmt.Errorf("events: OTLP log exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(), resource.WithFromEnv())
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, fmt.Errorf("events: OTLP resource: %w", err)
	}
	p := sdklog.NewLoggerProvider(sdklog.WithProcessor(&syncExport{exporter: exporter}), sdklog.WithResource(res))
	return &OTLP{provider: p, logger: p.Logger("github.com/latchkey/latchkey/pkg/events")}, nil
}

// WriteEvent emits payload as a record whose body is the event's JSON and
// whose attributes name its ID, type and subject, for filtering.
func (o *OTLP) WriteEvent(ctx context.Context, payload []byte) error {
	var p Payload
	if err := json.Unmarshal(payload, &p); err != nil {
		return fmt.Errorf("events: read the event: %w", err)
	}
	var rec otellog.Record
	rec.SetTimestamp(p.At)
	rec.SetObservedTimestamp(time.Now())
	rec.SetEventName(p.Type)
	rec.SetSeverity(otellog.SeverityInfo)
	rec.SetSeverityText("INFO")
	rec.SetBody(attribute.StringValue(string(payload)))
	rec.AddAttributes(
		attribute.String("event.id", p.ID),
		attribute.String("event.type", p.Type),
		attribute.String("latchkey.subject", p.Data.Subject),
		attribute.String("latchkey.actor", p.Data.Actor),
	)
	var exported error
	o.logger.Emit(context.WithValue(ctx, exportErrKey{}, &exported), rec)
	return exported
}

// Shutdown flushes and closes the exporter.
func (o *OTLP) Shutdown(ctx context.Context) error { return o.provider.Shutdown(ctx) }

type exportErrKey struct{}

// syncExport is a processor that exports each record as it is emitted and
// leaves the export's error where WriteEvent looks for it: the SDK's own
// processors batch, or drop the error.
type syncExport struct{ exporter sdklog.Exporter }

func (p *syncExport) OnEmit(ctx context.Context, r *sdklog.Record) error {
	err := p.exporter.Export(ctx, []sdklog.Record{r.Clone()})
	if slot, ok := ctx.Value(exportErrKey{}).(*error); ok {
		*slot = err
	}
	return err
}

func (p *syncExport) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }

func (p *syncExport) Shutdown(ctx context.Context) error   { return p.exporter.Shutdown(ctx) }
func (p *syncExport) ForceFlush(ctx context.Context) error { return p.exporter.ForceFlush(ctx) }
