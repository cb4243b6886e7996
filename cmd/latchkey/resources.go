package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/resource"
	"github.com/latchkey/latchkey/storage/postgres"
)

// resourcesCommand manages RFC 8707 resources in the configured database:
// latchkey resources list|create|delete. It goes through resource.Manager,
// as the admin API does, so every change is checked and audited the same
// way.
func resourcesCommand(e env) *cobra.Command {
	return groupCommand("resources", "Register the APIs clients may ask tokens for (RFC 8707)",
		`Manage the protected resources in the database LATCHKEY_DATABASE_URL names:
the APIs a client may name in the resource parameter (RFC 8707) at the
authorization and token endpoints, each with the scopes it accepts. A client
may use a resource its audience lists (latchkey clients update --audience);
its tokens then carry the resource as aud, and only the scopes it accepts
(docs/tokens.md).`,
		resourcesListCommand(e), resourcesCreateCommand(e), resourcesDeleteCommand(e))
}

// resourceRun is one run of a latchkey resources subcommand.
type resourceRun struct {
	e env
	invocation
	output  *outputFormat
	name    string
	scopes  []string
	manager *resource.Manager
}

// resourceSubcommand completes cmd, making it run do with a
// resource.Manager on the database.
func resourceSubcommand(e env, cmd *cobra.Command, do func(context.Context, *resourceRun) error) (*cobra.Command, *resourceRun) {
	r := &resourceRun{e: e}
	return onDatabase(e, cmd, &r.invocation, func() error { return nil }, func(ctx context.Context, _ config.Config, store *postgres.Store, auditLog *audit.Log) error {
		r.manager = resource.NewManager(store, auditLog)
		return do(ctx, r)
	}), r
}

func resourcesListCommand(e env) *cobra.Command {
	cmd, r := resourceSubcommand(e, &cobra.Command{
		Use: "list", Short: "List resources", Args: noArgs,
		Long: "List every registered resource with the scopes it accepts.",
	}, func(ctx context.Context, r *resourceRun) error {
		rs, err := r.manager.Find(ctx, resource.Query{})
		if err != nil {
			return err
		}
		if *r.output == outputJSON {
			if rs == nil {
				rs = []resource.Resource{}
			}
			return writeJSON(r.e.stdout, rs)
		}
		tw := tabwriter.NewWriter(r.e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "URI\tSCOPES\tNAME")
		for _, res := range rs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", res.URI, strings.Join(res.Scopes, " "), res.Name)
		}
		return tw.Flush()
	})
	r.output = outputFlag(cmd)
	return cmd
}

func resourcesCreateCommand(e env) *cobra.Command {
	cmd, r := resourceSubcommand(e, &cobra.Command{
		Use: "create URI", Short: "Register a resource", Args: oneArg,
		Long: `Register a resource: latchkey resources create https://api.example.com
--scope invoices.read --scope invoices.write. URI is an absolute URI without
a fragment (RFC 8707 §2); it is the aud of the tokens for it and never
changes.`,
	}, func(ctx context.Context, r *resourceRun) error {
		res, err := r.manager.Create(ctx, resource.Resource{URI: r.target, Name: r.name, Scopes: r.scopes})
		if err != nil {
			return resourceError(err)
		}
		fmt.Fprintf(r.e.stdout, "resource %s created\n", res.URI)
		return nil
	})
	cmd.Flags().StringArrayVar(&r.scopes, "scope", nil, "a `SCOPE` the resource accepts; repeatable")
	cmd.Flags().StringVar(&r.name, "name", "", "what the resource is, for people")
	return cmd
}

func resourcesDeleteCommand(e env) *cobra.Command {
	cmd, _ := resourceSubcommand(e, &cobra.Command{
		Use: "delete URI", Short: "Remove a resource", Args: oneArg,
		Long: "Remove a resource: clients can no longer ask for tokens for it by\nresource. Tokens already issued for it live out their lifespan.",
	}, func(ctx context.Context, r *resourceRun) error {
		if err := r.manager.Delete(ctx, r.target); err != nil {
			return resourceError(err)
		}
		fmt.Fprintf(r.e.stdout, "resource %s deleted\n", r.target)
		return nil
	})
	return cmd
}

// resourceError says what went wrong in the operator's terms.
func resourceError(err error) error {
	switch {
	case errors.Is(err, resource.ErrNotFound):
		return errors.New("no resource has this URI; latchkey resources list shows them")
	case errors.Is(err, resource.ErrExists):
		return errors.New("a resource with this URI is already registered")
	}
	return err
}
