package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	peerKey
)

// peer is who sent a request: its address and its browser. One context
// value holds both, so that every request pays for one, as before the
// browser was kept.
type peer struct {
	ip, userAgent string
}

// RequestID returns the ID of the request ctx belongs to, for logs and error
// pages, so that an operator can find a user's failed request.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// ClientIP returns the address the request ctx belongs to came from, for
// the audit log.
func ClientIP(ctx context.Context) string {
	p, _ := ctx.Value(peerKey).(*peer)
	if p == nil {
		return ""
	}
	return p.ip
}

// UserAgent returns the User-Agent header of the request ctx belongs to,
// so that what reacts to a change deep below the handler (pkg/notify's
// mail) can say which browser made it.
func UserAgent(ctx context.Context) string {
	p, _ := ctx.Value(peerKey).(*peer)
	if p == nil {
		return ""
	}
	return p.userAgent
}

// clientIP records where a request came from, and with which browser
// (UserAgent): the peer, unless the peer is a trusted proxy, in which case
// X-Forwarded-For says. Anyone can send X-Forwarded-For, so it is believed
// only from trusted proxies, and read from the right (the end each proxy
// appends to) past every trusted proxy: the first address a trusted proxy
// did not add itself is the client's (RFC 9700 §4.13).
func clientIP(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := &peer{ip: forwardedFor(r, trusted), userAgent: r.UserAgent()}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerKey, p)))
		})
	}
}

func forwardedFor(r *http.Request, trusted []netip.Prefix) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip := peer.Addr().Unmap()
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0 && isTrusted(ip); i-- {
		hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A hop that is not an address: the trusted proxy that passed
			// it on is as far back as can be told.
			break
		}
		ip = hop.Unmap()
	}
	return ip.String()
}

// RequestIDAttribute is the attribute of a request's trace span that holds
// its request ID, the one in its log lines and error pages: an operator who
// has one finds the other.
const RequestIDAttribute = "latchkey.request_id"

// validRequestID limits what we accept from a proxy's X-Request-Id, so that a
// client cannot inject text into logs.
var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestID keeps an upstream proxy's X-Request-Id when it is well formed, so
// that logs correlate across hops, and otherwise makes a random one.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
			span.SetAttributes(attribute.String(RequestIDAttribute, id))
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// securityHeaders sets the headers every response carries. The default
// Content-Security-Policy allows nothing at all; pages that render HTML set a
// policy of their own. frame-ancestors 'none' (and X-Frame-Options for old
// browsers) stops clickjacking of every form we will ever serve.
func securityHeaders(hsts bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
			h.Set("X-Frame-Options", "DENY")
			if hsts {
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// statusRecorder remembers what a handler wrote, for the access log and
// the metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe logs one line per request, tells obs (if any) of it, and names
// the request's span (if it is traced) for its route. The log has the path
// without the query, because OAuth queries carry codes, states and tokens;
// metrics and spans have the route instead, so that they hold no IDs and
// their labels stay few.
func observe(mux *chi.Mux, logger *slog.Logger, obs Observer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			elapsed := time.Since(start)
			status := rec.status
			if status == 0 {
				// The handler wrote nothing; net/http answers 200.
				status = http.StatusOK
			}
			ctx := r.Context()
			logger.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("request_id", RequestID(ctx)),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int("bytes", rec.bytes),
				slog.Duration("duration", elapsed),
				slog.String("remote", r.RemoteAddr),
			)
			span := trace.SpanFromContext(ctx)
			if obs == nil && !span.IsRecording() {
				return
			}
			route := routeOf(mux, r, status)
			if obs != nil {
				obs.ObserveRequest(r.Method, route, status, elapsed)
			}
			if !span.IsRecording() {
				return
			}
			// otelhttp, outside clientIP, believes any X-Forwarded-For.
			span.SetAttributes(attribute.String("client.address", ClientIP(ctx)))
			// OpenTelemetry's HTTP conventions name a span for a request
			// that matched no route by its method alone, without http.route.
			if route != Unmatched {
				span.SetName(r.Method + " " + route)
				span.SetAttributes(attribute.String("http.route", route))
			}
		})
	}
}

// routeOf is the pattern of the route that answered r, read once the
// handler has run (routing happens inside it), or Unmatched. A 404 or 405
// is Unmatched unless a route does match: one that answered "no such
// client" has a pattern, while the router's own 404 under a mounted
// router would show only the mount point's.
func routeOf(mux *chi.Mux, r *http.Request, status int) string {
	route := chi.RouteContext(r.Context()).RoutePattern()
	if route == "" {
		return Unmatched
	}
	if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		if !mux.Match(chi.NewRouteContext(), r.Method, path) {
			return Unmatched
		}
	}
	return route
}

// recoverPanics turns a panicking handler into a generic 500 and logs the
// stack; the panic's text never reaches the client.
func recoverPanics(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler {
					panic(v) // net/http's way to abort a response; not a bug
				}
				logger.ErrorContext(r.Context(), "panic serving request",
					"request_id", RequestID(r.Context()),
					"panic", v,
					"stack", string(debug.Stack()))
				WriteJSON(w, http.StatusInternalServerError, map[string]string{
					"error":             "server_error",
					"error_description": "internal error; request ID " + RequestID(r.Context()),
				})
			}()
			next.ServeHTTP(w, r)
		})
	}
}
