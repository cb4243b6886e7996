package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reports pgxpool's statistics, read at each scrape: pgx
// keeps the counts itself, so the request path does no extra work.
type poolCollector struct {
	stat func() *pgxpool.Stat

	acquired, idle, constructing, total, max                   *prometheus.Desc
	acquires, acquireSeconds, emptyAcquires, emptyWait         *prometheus.Desc
	canceledAcquires, newConns, lifetimeDestroys, idleDestroys *prometheus.Desc
}

func newPoolCollector(stat func() *pgxpool.Stat) *poolCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("latchkey_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		stat:             stat,
		acquired:         desc("acquired_connections", "Connections in use by a request or task now."),
		idle:             desc("idle_connections", "Connections open and waiting for use now."),
		constructing:     desc("constructing_connections", "Connections being opened now."),
		total:            desc("connections", "Connections open or being opened now."),
		max:              desc("max_connections", "Most connections the pool opens (LATCHKEY_DATABASE_MAX_CONNS)."),
		acquires:         desc("acquires_total", "Connections handed out."),
		acquireSeconds:   desc("acquire_duration_seconds_total", "Time spent getting connections, waiting included."),
		emptyAcquires:    desc("empty_acquires_total", "Connections asked for when none was idle, so the caller waited or one was opened."),
		emptyWait:        desc("empty_acquire_wait_seconds_total", "Time spent waiting for a connection when none was idle."),
		canceledAcquires: desc("canceled_acquires_total", "Requests for a connection given up (deadline or cancellation) before one was free."),
		newConns:         desc("new_connections_total", "Connections opened."),
		lifetimeDestroys: desc("max_lifetime_destroys_total", "Connections closed for reaching their maximum lifetime."),
		idleDestroys:     desc("max_idle_destroys_total", "Connections closed for being idle too long."),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.acquired, c.idle, c.constructing, c.total, c.max,
		c.acquires, c.acquireSeconds, c.emptyAcquires, c.emptyWait,
		c.canceledAcquires, c.newConns, c.lifetimeDestroys, c.idleDestroys,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	gauge := func(d *prometheus.Desc, v int32) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquired, s.AcquiredConns())
	gauge(c.idle, s.IdleConns())
	gauge(c.constructing, s.ConstructingConns())
	gauge(c.total, s.TotalConns())
	gauge(c.max, s.MaxConns())
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.emptyWait, s.EmptyAcquireWaitTime().Seconds())
	counter(c.canceledAcquires, float64(s.CanceledAcquireCount()))
	counter(c.newConns, float64(s.NewConnsCount()))
	counter(c.lifetimeDestroys, float64(s.MaxLifetimeDestroyCount()))
	counter(c.idleDestroys, float64(s.MaxIdleDestroyCount()))
}
