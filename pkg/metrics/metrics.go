// Package metrics keeps a node's Prometheus metrics and serves them, at
// /metrics on the admin listener: HTTP requests and their latency, tokens
// issued, introspections, sign-ins and second-factor codes, rate-limit
// refusals, refresh-token reuse, and the database pool.
//
// The packages that do the counting do not import Prometheus. Each
// declares the small interface it reports through (server.Observer,
// oauth.Observer, ui.Observer), and cmd/latchkey hands them a *Metrics,
// which has the methods of all of them.
//
// Every label value is one of a few fixed words or a route pattern, never
// a client ID, user, email, token or raw path: these would make a series
// per caller, and some are personal data. docs/observability.md lists each
// metric with its labels and their values.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The values each label takes, so that every series exists from the start:
// rate() over a series that appears only at its first increment misses
// that increment, and alerts on absent series never fire.
var (
	grantTypes           = []string{"authorization_code", "refresh_token", "client_credentials"}
	tokenFormats         = []string{"opaque", "jwt"}
	introspectionResults = []string{"active", "inactive", "rejected", "error"}
	loginResults         = []string{"succeeded", "failed", "error"}
	secondFactorResults  = []string{"succeeded", "failed", "throttled", "error"}
	mailResults          = []string{"sent", "retry", "failed"}
	limitedEndpoints     = []string{"token", "introspect", "revoke", "sign_in", "authorize", "client_auth", "device"}
	meteredEndpoints     = []string{"token", "introspect", "revoke"}
	usageResults         = []string{"served", "rate", "quota"}
)

// latencyBuckets span the token endpoint's milliseconds to a slow
// password hash and a database timeout.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics is one node's metrics, on a registry of its own: nothing else in
// the process can add to it, and tests can run several nodes at once.
type Metrics struct {
	registry *prometheus.Registry

	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	tokens         *prometheus.CounterVec
	introspections *prometheus.CounterVec
	logins         *prometheus.CounterVec
	secondFactors  *prometheus.CounterVec
	rateLimited    *prometheus.CounterVec
	usageCalls     *prometheus.CounterVec
	refreshReuse   prometheus.Counter
	mailDeliveries *prometheus.CounterVec
	// risk is nil until WatchRisk.
	risk   *risk
	events eventMetrics
	logout logoutMetrics
}

// New returns the metrics of a node running version, with the Go runtime's
// and the process's. pool, if not nil, is read at each scrape for the
// database connection pool's statistics.
func New(version string, pool func() *pgxpool.Stat) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_http_requests_total",
			Help: "HTTP requests answered, by listener, method, route pattern and status code.",
		}, []string{"listener", "method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latchkey_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by listener, method and route pattern.",
			Buckets: latencyBuckets,
		}, []string{"listener", "method", "route"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_tokens_issued_total",
			Help: "Successful token responses, by grant type and access token format (opaque or jwt).",
		}, []string{"grant_type", "format"}),
		introspections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_introspections_total",
			Help: "Token introspection requests, by result: active, inactive, rejected (the request was refused) or error.",
		}, []string{"result"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_logins_total",
			Help: "Passwords submitted on the login page, by result: succeeded, failed or error.",
		}, []string{"result"}),
		secondFactors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_mfa_verifications_total",
			Help: "Second-factor codes submitted, by result: succeeded, failed, throttled or error.",
		}, []string{"result"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_rate_limited_total",
			Help: "Requests refused with 429 by a per-node rate limit, by endpoint: token, introspect, revoke (per client), sign_in or authorize (per address), or client_auth (failed client authentications per client ID and address).",
		}, []string{"endpoint"}),
		usageCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_usage_calls_total",
			Help: "Authenticated calls charged to usage plans, by endpoint (token, introspect, revoke) and result: served, or refused with 429 for a plan's rate or quota. Calls of clients without a plan are served.",
		}, []string{"endpoint", "result"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latchkey_refresh_token_reuse_total",
			Help: "Spent refresh tokens presented again, each of which revoked its grant.",
		}),
		mailDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latchkey_mail_deliveries_total",
			Help: "Attempts at delivering mail from the outbox, by result: sent, retry (failed, will be retried) or failed (given up).",
		}, []string{"result"}),
	}
	for _, g := range grantTypes {
		for _, f := range tokenFormats {
			m.tokens.WithLabelValues(g, f)
		}
	}
	initLabels(m.introspections, introspectionResults)
	initLabels(m.logins, loginResults)
	initLabels(m.secondFactors, secondFactorResults)
	initLabels(m.rateLimited, limitedEndpoints)
	for _, e := range meteredEndpoints {
		for _, r := range usageResults {
			m.usageCalls.WithLabelValues(e, r)
		}
	}
	initLabels(m.mailDeliveries, mailResults)

	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "latchkey_build_info",
		Help:        "Always 1; the version label is the running build's.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
		m.requests, m.duration, m.tokens, m.introspections, m.logins, m.secondFactors, m.rateLimited, m.usageCalls, m.refreshReuse, m.mailDeliveries,
	)
	m.events = newEventMetrics(m.registry)
	m.logout = newLogoutMetrics(m.registry)
	if pool != nil {
		m.registry.MustRegister(newPoolCollector(pool))
	}
	return m
}

func initLabels(v *prometheus.CounterVec, values []string) {
	for _, s := range values {
		v.WithLabelValues(s)
	}
}

// Handler serves the metrics in Prometheus's text format. A collector that
// fails leaves its metrics out rather than failing the whole scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// HTTP returns what counts the requests of the listener named listener
// ("public" or "admin"), for server.Options.Observer.
func (m *Metrics) HTTP(listener string) *HTTP {
	l := prometheus.Labels{"listener": listener}
	return &HTTP{requests: m.requests.MustCurryWith(l), duration: m.duration.MustCurryWith(l)}
}

// HTTP counts one listener's requests and their latency.
type HTTP struct {
	requests *prometheus.CounterVec
	duration prometheus.ObserverVec
}

// ObserveRequest counts a request that route (a route pattern) answered
// with status after elapsed.
func (h *HTTP) ObserveRequest(method, route string, status int, elapsed time.Duration) {
	method = methodLabel(method)
	h.requests.WithLabelValues(method, route, statusLabel(status)).Inc()
	h.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
}

// methodLabel keeps the method label to the standard methods: anyone can
// send any word as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// statusLabels are the status codes as label values, made once rather
// than on every request.
var statusLabels = func() (s [600]string) {
	for code := 100; code < len(s); code++ {
		s[code] = strconv.Itoa(code)
	}
	return s
}()

func statusLabel(code int) string {
	if code >= 100 && code < len(statusLabels) {
		return statusLabels[code]
	}
	return "other"
}

// TokenIssued counts a token response of grantType whose access token is
// in format, "opaque" or "jwt".
func (m *Metrics) TokenIssued(grantType, format string) {
	m.tokens.WithLabelValues(grantType, format).Inc()
}

// Introspected counts an introspection request that ended in result:
// "active", "inactive", "rejected" or "error".
func (m *Metrics) Introspected(result string) { m.introspections.WithLabelValues(result).Inc() }

// Login counts a password submitted on the login page that ended in
// result: "succeeded", "failed" or "error".
func (m *Metrics) Login(result string) { m.logins.WithLabelValues(result).Inc() }

// SecondFactor counts a second-factor code submitted that ended in result:
// "succeeded", "failed", "throttled" or "error".
func (m *Metrics) SecondFactor(result string) { m.secondFactors.WithLabelValues(result).Inc() }

// RateLimited counts a request to endpoint refused by a per-node rate
// limit: "token", "introspect", "revoke", "sign_in", "authorize",
// "client_auth" or "device" (wrong user codes at /device).
func (m *Metrics) RateLimited(endpoint string) { m.rateLimited.WithLabelValues(endpoint).Inc() }

// Charged counts a call charged to a usage plan (usage.Observer): its
// endpoint and result, served, rate or quota; never its subject.
func (m *Metrics) Charged(endpoint, result string) {
	m.usageCalls.WithLabelValues(endpoint, result).Inc()
}

// MailDelivery counts an attempt at delivering mail, by how it ended:
// "sent", "retry" or "failed".
func (m *Metrics) MailDelivery(result string) { m.mailDeliveries.WithLabelValues(result).Inc() }

// WatchOutbox adds gauges of the mail outbox's pending and failed
// messages, read through count at each scrape.
func (m *Metrics) WatchOutbox(count func(ctx context.Context) (pending, failed int64, err error)) {
	m.registry.MustRegister(&outboxCollector{count: count})
}

// RefreshTokenReused counts a spent refresh token presented again.
func (m *Metrics) RefreshTokenReused() { m.refreshReuse.Inc() }
