package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/config"
)

// healthcheckCommand asks the local node's admin listener whether it is
// ready, for container healthchecks: the image has no shell or curl.
func healthcheckCommand(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the local node is ready, for container healthchecks",
		Long: `Ask the local node's admin listener, at LATCHKEY_ADMIN_ADDR, whether it is
ready (/readyz), and exit 0 if it is and 1 if not: a container healthcheck
for an image without a shell or curl.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	settings := config.Bind(cmd.Flags(), []string{"LATCHKEY_ADMIN_ADDR"}, nil)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := settings.Load(e.lookupEnv)
		if err != nil {
			return err
		}
		return healthcheck(cmd.Context(), e, cfg)
	}
	return cmd
}

// healthcheck asks the admin listener cfg names for /readyz.
func healthcheck(ctx context.Context, e env, cfg config.Config) error {
	if err := cfg.Validate(0); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(cfg.AdminAddr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	fmt.Fprintln(e.stdout, "ready")
	return nil
}
