package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Event delivery's labels (pkg/events): the kind of sink, never which
// subscription, whose URL and ID would make a series per receiver.
var (
	eventSinks   = []string{"webhook", "log"}
	eventResults = []string{"delivered", "retry", "failed"}
)

// eventMetrics counts event deliveries and subscriptions a node disabled.
type eventMetrics struct {
	deliveries *prometheus.CounterVec
	disabled   prometheus.Counter
}

func newEventMetrics(r *prometheus.Registry) eventMetrics {
	e := eventMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_event_deliveries_total",
			Help: "Attempts at delivering audit events from the event outbox, by sink (webhook or log) and result: delivered, retry (failed, will be retried) or failed (given up after three days).",
		}, []string{"sink", "result"}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latchkey_webhooks_disabled_total",
			Help: "Webhook subscriptions this node disabled because every delivery to them kept failing.",
		}),
	}
	for _, s := range eventSinks {
		for _, res := range eventResults {
			e.deliveries.WithLabelValues(s, res)
		}
	}
	r.MustRegister(e.deliveries, e.disabled)
	return e
}

// EventDelivery counts an attempt at delivering an event, by sink kind
// ("webhook" or "log") and how it ended ("delivered", "retry", "failed").
func (m *Metrics) EventDelivery(sink, result string) {
	m.events.deliveries.WithLabelValues(sink, result).Inc()
}

// WebhookDisabled counts a subscription this node disabled.
func (m *Metrics) WebhookDisabled() { m.events.disabled.Inc() }

var (
	eventOutboxDesc = prometheus.NewDesc("latchkey_event_outbox_events",
		"Rows in the event outbox by sink (webhook or log) and status: pending (not yet delivered) or failed (given up). Counted across all nodes.",
		[]string{"sink", "status"}, nil)
	webhooksDisabledDesc = prometheus.NewDesc("latchkey_webhooks_disabled",
		"Webhook subscriptions disabled now, by a node or an admin; an admin enables them again (latchkey webhooks enable).",
		nil, nil)
)

// EventCounter reads the event outbox's counts: pending and failed rows by
// sink kind and status, and disabled subscriptions.
type EventCounter func(ctx context.Context) (map[[2]string]int64, int64, error)

// WatchEvents adds gauges of the event outbox and of disabled
// subscriptions, read through count at each scrape.
func (m *Metrics) WatchEvents(count EventCounter) {
	m.registry.MustRegister(&eventsCollector{count: count})
}

type eventsCollector struct{ count EventCounter }

func (c *eventsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- eventOutboxDesc
	ch <- webhooksDisabledDesc
}

func (c *eventsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxScrapeTimeout)
	defer cancel()
	counts, disabled, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(eventOutboxDesc, err)
		return
	}
	for _, s := range eventSinks {
		for _, st := range []string{"pending", "failed"} {
			ch <- prometheus.MustNewConstMetric(eventOutboxDesc, prometheus.GaugeValue, float64(counts[[2]string{s, st}]), s, st)
		}
	}
	ch <- prometheus.MustNewConstMetric(webhooksDisabledDesc, prometheus.GaugeValue, float64(disabled))
}
