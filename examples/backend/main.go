// Command backend is a service that calls the Notes API (the resource
// server example) as itself, with tokens from Latchkey's client credentials
// grant, fetching a token only when the last one is about to expire. See
// README.md for running it against latchkey dev.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, slog.Default()); err != nil {
		slog.Error("backend", "err", err)
		os.Exit(1)
	}
}

// run calls the API every EVERY until ctx ends, configured by getenv:
//
//	ISSUER         Latchkey's issuer URL (required)
//	CLIENT_ID      the backend's client (required)
//	CLIENT_SECRET  its secret (required)
//	SCOPE          the scopes to ask for (default notes.read)
//	API_URL        the Notes API (default http://127.0.0.1:9090)
//	EVERY          the time between calls (default 5s)
func run(ctx context.Context, getenv func(string) string, log *slog.Logger) error {
	issuer, id, secret := getenv("ISSUER"), getenv("CLIENT_ID"), getenv("CLIENT_SECRET")
	if issuer == "" || id == "" || secret == "" {
		return errors.New("set ISSUER, CLIENT_ID and CLIENT_SECRET")
	}
	scope, api, every := getenv("SCOPE"), getenv("API_URL"), 5*time.Second
	if scope == "" {
		scope = "notes.read"
	}
	if api == "" {
		api = "http://127.0.0.1:9090"
	}
	if s := getenv("EVERY"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("EVERY: %q is not a positive duration", s)
		}
		every = d
	}
	provider, err := oidc.NewProvider(ctx, issuer) // reads the token endpoint from discovery
	if err != nil {
		return err
	}
	notes := New(ctx, Config{
		TokenURL: provider.Endpoint().TokenURL, ClientID: id, ClientSecret: secret,
		Scopes: strings.Fields(scope), APIURL: api,
	})

	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		l, err := notes.List(ctx)
		switch {
		case ctx.Err() != nil: // stopping: the call was cut short
			return nil
		case err != nil:
			log.Error("calling the Notes API", "err", err)
		default:
			log.Info("called the Notes API", "caller", l.Caller, "notes", len(l.Notes))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
