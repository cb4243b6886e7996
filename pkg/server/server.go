// Package server runs Latchkey's HTTP listeners: it builds routers with the
// middleware every response needs (request IDs, access logs, panic recovery,
// security headers, and when asked, metrics and a trace span per request),
// serves /healthz and /readyz, and shuts down gracefully. It also holds
// the policy on request bodies that every route of a listener shares
// (BodyPolicy): their size, and on the public listener their media type.
//
// What each listener serves is decided in cmd/latchkey, which mounts the
// domain packages' handlers on the routers made here.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// readyTimeout bounds the readiness probe, so that a load balancer learns of
// an unreachable database quickly instead of waiting on a hung probe.
const readyTimeout = 2 * time.Second

// Options configures a router.
type Options struct {
	// Logger receives access logs and panics.
	Logger *slog.Logger
	// HSTS adds Strict-Transport-Security; set it when the issuer is https.
	HSTS bool
	// Ready reports whether the node can serve, normally a database ping.
	Ready func(context.Context) error
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (ClientIP).
	TrustedProxies []netip.Prefix
	// Observer, if not nil, is told of every request once it is answered:
	// the metrics of the listener.
	Observer Observer
	// Tracer, if not nil, traces every request: a span named for the route,
	// carrying the request ID, which the handlers' own spans (database
	// calls) descend from. Nil installs nothing, so tracing that is off
	// costs nothing.
	Tracer trace.TracerProvider
	// Bodies is which request bodies the listener takes, enforced on every
	// route (BodyPolicy). The zero value takes any.
	Bodies BodyPolicy
}

// Observer is told of each request a router answered, once its handler
// has returned. route is the pattern the request matched, such as
// "/admin/clients/{id}", or Unmatched, so that it never holds an ID or
// anything else a caller chose.
type Observer interface {
	ObserveRequest(method, route string, status int, elapsed time.Duration)
}

// Unmatched is the route of a request that matched no route: a 404 or 405
// from the router itself.
const Unmatched = "unmatched"

// NewRouter returns a router with the standard middleware and the health
// endpoints mounted. Callers mount their routes on it.
func NewRouter(opts Options) *chi.Mux {
	r := chi.NewRouter()
	if opts.Tracer != nil {
		// First, so that every later middleware, and every log line of the
		// request, runs inside the span. The name is the method until the
		// route is known (observe renames it), as OpenTelemetry's HTTP
		// conventions ask. An incoming W3C traceparent, from a proxy that
		// traces, is continued. Its OpenTelemetry metrics are not wanted:
		// Observer has the requests.
		r.Use(otelhttp.NewMiddleware("http.server",
			otelhttp.WithTracerProvider(opts.Tracer),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelhttp.WithPropagators(propagation.TraceContext{}),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }),
		))
	}
	r.Use(
		requestID,
		clientIP(opts.TrustedProxies),
		securityHeaders(opts.HSTS),
		observe(r, opts.Logger, opts.Observer),
		recoverPanics(opts.Logger),
		// Last, so that refusals are logged, observed and traced like
		// any answer, and first of all that touches the body.
		limitBodies(opts.Bodies),
	)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusOK, status{Status: "ok"})
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := opts.Ready(ctx); err != nil {
			opts.Logger.WarnContext(r.Context(), "not ready", "request_id", RequestID(r.Context()), "err", err)
			WriteJSON(w, http.StatusServiceUnavailable, status{Status: "unavailable", Reason: "database unreachable"})
			return
		}
		WriteJSON(w, http.StatusOK, status{Status: "ok"})
	})
	return r
}

type status struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// Listener is one address and what it serves.
type Listener struct {
	// Name appears in logs: "public" or "admin".
	Name     string
	Listener net.Listener
	Handler  http.Handler
}

// Serve serves every listener until ctx ends or one of them fails, then
// stops accepting connections and lets requests in flight finish for up to
// drain before closing them.
func Serve(ctx context.Context, logger *slog.Logger, drain time.Duration, listeners ...Listener) error {
	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	for i, l := range listeners {
		srv := &http.Server{
			Handler:           l.Handler,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		servers[i] = srv
		logger.Info("listening", "listener", l.Name, "addr", l.Listener.Addr().String())
		go func() {
			if err := srv.Serve(l.Listener); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server: %s listener: %w", l.Name, err)
			}
		}()
	}

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
	}

	logger.Info("shutting down", "drain", drain)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(shutdownCtx); err != nil {
				errs[i] = fmt.Errorf("server: drain %s listener: %w", listeners[i].Name, err)
				_ = srv.Close()
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, failed)...)
}

// CookieName is the name to give one of Latchkey's cookies: under https
// (secure), name with the __Host- prefix, which browsers honour only for
// a cookie that is Secure, has path / and names no domain, so that no
// other host or path can set or shadow it; plain name over http, where
// browsers refuse the prefix.
func CookieName(name string, secure bool) string {
	if secure {
		return "__Host-" + name
	}
	return name
}
