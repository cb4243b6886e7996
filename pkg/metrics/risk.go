package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

var blockedDesc = prometheus.NewDesc("latchkey_risk_blocked_networks",
	"Networks (IPv4 /24, IPv6 /64) whose sign-ins are blocked now by the risk policy. Counted across all nodes.",
	nil, nil)

// risk is the risk assessment's metrics (pkg/risk), registered by
// WatchRisk.
type risk struct {
	signals, actions *prometheus.CounterVec
}

// WatchRisk adds the risk assessment's metrics: its signals and actions by
// name (every one of signals and actions exists from the start), and a
// gauge of the blocked networks, read through blocked at each scrape. The
// labels are the policy's words, never a user or an address.
func (m *Metrics) WatchRisk(signals, actions []string, blocked func(ctx context.Context) (int64, error)) {
	m.risk = &risk{
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_risk_signals_total",
			Help: "Risk signals seen, by signal (pkg/risk; docs/security-events.md).",
		}, []string{"signal"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_risk_actions_total",
			Help: "Actions the risk policy took, by action: allow, step_up, notify, block or alert.",
		}, []string{"action"}),
	}
	initLabels(m.risk.signals, signals)
	initLabels(m.risk.actions, actions)
	m.registry.MustRegister(m.risk.signals, m.risk.actions, &gaugeCollector{desc: blockedDesc, count: blocked})
}

// RiskSignal counts a risk signal seen.
func (m *Metrics) RiskSignal(signal string) {
	if m.risk != nil {
		m.risk.signals.WithLabelValues(signal).Inc()
	}
}

// RiskAction counts an action the risk policy took.
func (m *Metrics) RiskAction(action string) {
	if m.risk != nil {
		m.risk.actions.WithLabelValues(action).Inc()
	}
}

// gaugeCollector reads one label-less gauge at each scrape.
type gaugeCollector struct {
	desc  *prometheus.Desc
	count func(ctx context.Context) (int64, error)
}

func (c *gaugeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), outboxScrapeTimeout)
	defer cancel()
	n, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
