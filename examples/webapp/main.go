// Command webapp is a web app that signs its users in with Latchkey
// (OpenID Connect, the authorization code flow with PKCE), shows who they
// are, calls the Notes API (the resource server example) with their access
// token, steps up to a second factor when the API asks (RFC 9470), and
// signs them out of Latchkey too. See README.md for running it against
// latchkey dev.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		slog.Error("webapp", "err", err)
		os.Exit(1)
	}
}

// run serves the app on ADDR until ctx ends, configured by getenv:
//
//	ISSUER         Latchkey's issuer URL (required)
//	CLIENT_ID      the app's client (required)
//	CLIENT_SECRET  its secret (required)
//	BASE_URL       where browsers reach the app (default http://127.0.0.1:3000)
//	API_URL        the Notes API (default http://127.0.0.1:9090)
//	ADDR           where to listen (default 127.0.0.1:3000)
func run(ctx context.Context, getenv func(string) string) error {
	cfg := Config{
		Issuer:       getenv("ISSUER"),
		ClientID:     getenv("CLIENT_ID"),
		ClientSecret: getenv("CLIENT_SECRET"),
		BaseURL:      or(getenv("BASE_URL"), "http://127.0.0.1:3000"),
		APIURL:       or(getenv("API_URL"), "http://127.0.0.1:9090"),
	}
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.ClientSecret == "" {
		return errors.New("set ISSUER, CLIENT_ID and CLIENT_SECRET")
	}
	app, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", or(getenv("ADDR"), "127.0.0.1:3000"))
	if err != nil {
		return err
	}
	slog.Info("serving the web app", "url", cfg.BaseURL, "issuer", cfg.Issuer)
	srv := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 10 * time.Second}
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

// or is value, or fallback if value is empty.
func or(value, fallback string) string {
	if value == "" {
		return fallback
	}
	return value
}
