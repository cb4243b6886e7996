package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// logoutResults label back-channel logout attempts (pkg/logout), never by
// app, whose IDs would make a series per client.
var logoutResults = []string{"delivered", "retry", "failed"}

// logoutMetrics counts back-channel logout deliveries.
type logoutMetrics struct {
	deliveries *prometheus.CounterVec
}

func newLogoutMetrics(r *prometheus.Registry) logoutMetrics {
	l := logoutMetrics{deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "latchkey_logout_deliveries_total",
		Help: "Attempts at delivering back-channel logout tokens to apps, by result: delivered, retry (failed, will be retried) or failed (given up, or the app no longer has a backchannel_logout_uri).",
	}, []string{"result"})}
	for _, res := range logoutResults {
		l.deliveries.WithLabelValues(res)
	}
	r.MustRegister(l.deliveries)
	return l
}

// LogoutDelivery counts an attempt at delivering a logout token, by how it
// ended ("delivered", "retry", "failed").
func (m *Metrics) LogoutDelivery(result string) {
	m.logout.deliveries.WithLabelValues(result).Inc()
}

var logoutOutboxDesc = prometheus.NewDesc("latchkey_logout_outbox_logouts",
	"Back-channel logouts in the logout outbox by status: pending (not yet delivered) or failed (given up). Counted across all nodes.",
	[]string{"status"}, nil)

// logoutCollector reads the logout outbox's counts at scrape.
type logoutCollector struct {
	count func(context.Context) (map[string]int64, error)
}

func (c logoutCollector) Describe(ch chan<- *prometheus.Desc) { ch <- logoutOutboxDesc }

func (c logoutCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxScrapeTimeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		return
	}
	for _, status := range []string{"pending", "failed"} {
		ch <- prometheus.MustNewConstMetric(logoutOutboxDesc, prometheus.GaugeValue, float64(counts[status]), status)
	}
}

// WatchLogouts publishes the logout outbox's pending and failed counts,
// read by count at each scrape.
func (m *Metrics) WatchLogouts(count func(context.Context) (map[string]int64, error)) {
	m.registry.MustRegister(logoutCollector{count: count})
}
