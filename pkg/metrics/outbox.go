package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// outboxScrapeTimeout bounds the count at each scrape: a slow database
// must not hold the scrape, whose other metrics still matter then.
const outboxScrapeTimeout = 2 * time.Second

var outboxDesc = prometheus.NewDesc("latchkey_mail_outbox_messages",
	"Messages in the mail outbox by status: pending (not yet sent) or failed (given up; an admin can retry them). Counted across all nodes.",
	[]string{"status"}, nil)

// outboxCollector reads the outbox's counts at each scrape, so that every
// node reports the same, current figures without a loop of its own.
type outboxCollector struct {
	count func(ctx context.Context) (pending, failed int64, err error)
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- outboxDesc }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxScrapeTimeout)
	defer cancel()
	pending, failed, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(pending), "pending")
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(failed), "failed")
}
