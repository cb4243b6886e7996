// Command resourceserver serves the demo Notes API (package notes), which
// checks the bearer tokens it receives by introspection at Latchkey with
// package bearer. See README.md for running it against latchkey dev.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/latchkey/latchkey/examples/resourceserver/notes"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		slog.Error("resourceserver", "err", err)
		os.Exit(1)
	}
}

// run serves the API on ADDR until ctx ends, configured by getenv:
//
//	ISSUER         Latchkey's issuer URL (required)
//	CLIENT_ID      the API's own client, for introspection, registered
//	               under the ID callers name as audience (required)
//	CLIENT_SECRET  its secret (required)
//	AUDIENCE       the API's identifier in tokens (default notes-api)
//	CACHE_MAX_AGE  how long an introspection answer is reused, and so how
//	               long a revoked token is still accepted (default 1m)
//	ADDR           where to listen (default 127.0.0.1:9090)
func run(ctx context.Context, getenv func(string) string) error {
	cfg := notes.Config{
		Issuer:       getenv("ISSUER"),
		ClientID:     getenv("CLIENT_ID"),
		ClientSecret: getenv("CLIENT_SECRET"),
		Audience:     getenv("AUDIENCE"),
	}
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return errors.New("set ISSUER, CLIENT_ID and CLIENT_SECRET")
	}
	if s := getenv("CACHE_MAX_AGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("CACHE_MAX_AGE: %w", err)
		}
		cfg.MaxCacheAge = d
	}
	addr := getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:9090"
	}
	api, err := notes.New(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	slog.Info("serving the Notes API", "url", "http://"+ln.Addr().String(), "issuer", cfg.Issuer)
	return serve(ctx, ln, api)
}

// serve serves h on ln until ctx ends, then lets requests in flight finish.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
