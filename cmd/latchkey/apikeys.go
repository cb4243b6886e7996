package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/storage/postgres"
)

// keyNotice goes to stderr whenever a key is printed: only its digest is
// stored, so this is the one chance to copy it.
const keyNotice = "latchkey api-keys: store the key now; it cannot be shown again"

// apiKeysCommand manages API keys directly in the configured database:
// latchkey api-keys create|list|revoke. It goes through apikey.Manager, as
// the admin API does.
func apiKeysCommand(e env) *cobra.Command {
	return groupCommand("api-keys", "Manage API keys",
		`Manage API keys directly in the database LATCHKEY_DATABASE_URL names: make
them for a service client, list a client's or a user's, and revoke them.
A revoked key stops working on every node at once (docs/api-keys.md).`,
		apiKeysCreateCommand(e), apiKeysListCommand(e), apiKeysRevokeCommand(e))
}

// apiKeysRun is one run of a latchkey api-keys subcommand.
type apiKeysRun struct {
	e              env
	inv            invocation
	client, user   string
	name, scope    string
	expiresIn      time.Duration
	audience, nets []string
	output         *outputFormat
}

// owner is the client or user the flags name.
func (r *apiKeysRun) owner() apikey.Owner {
	if r.user != "" {
		return apikey.User(r.user)
	}
	return apikey.Client(r.client)
}

// oneOwner checks that exactly one of --client and --user is given.
func (r *apiKeysRun) oneOwner(userAllowed bool) error {
	switch {
	case !userAllowed && r.client == "":
		return usageError("give --client, the service client the key is for")
	case userAllowed && (r.client == "") == (r.user == ""):
		return usageError("give one of --client and --user")
	}
	return nil
}

// manager is the API key manager over store, recording changes in
// auditLog. It makes keys for clients only, so it needs no personal scopes.
func (r *apiKeysRun) manager(cfg config.Config, store *postgres.Store, auditLog *audit.Log) *apikey.Manager {
	return apikey.New(store, client.NewManager(store, auditLog, cfg.ClientSecretGracePeriod), auditLog, slog.New(slog.NewTextHandler(r.e.stderr, nil)), apikey.Config{})
}

func apiKeysCreateCommand(e env) *cobra.Command {
	r := &apiKeysRun{e: e}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make an API key for a service client and print it, once",
		Long: `Make an API key for a service client and print it: the only time the key is
shown, since only its digest is stored. Its scopes must be among the
client's registered scopes, and never the admin scopes. A client holds at
most 20 keys.`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&r.client, "client", "", "the `ID` of the client the key is for")
	fs.StringVar(&r.name, "name", "", "what the key is for, to tell it apart from the client's others")
	fs.StringVar(&r.scope, "scope", "", "space-separated scopes, among the client's")
	fs.DurationVar(&r.expiresIn, "expires-in", 0, "how long the key works, such as 2160h; 0 until revoked")
	fs.StringSliceVar(&r.audience, "audience", nil, "client IDs, besides the owner, that may introspect the key")
	fs.StringSliceVar(&r.nets, "allow", nil, "addresses or CIDR networks the key may be used from, as resource servers report them")
	r.output = outputFlag(cmd)
	return onDatabase(e, cmd, &r.inv, func() error {
		if r.expiresIn < 0 {
			return usageError("--expires-in is %s; it must be 0 or more", r.expiresIn)
		}
		return r.oneOwner(false)
	}, func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
		req := apikey.Request{Name: r.name, Scope: r.scope, Audience: r.audience, AllowedAddresses: r.nets}
		if r.expiresIn > 0 {
			exp := time.Now().Add(r.expiresIn)
			req.ExpiresAt = &exp
		}
		k, secret, err := r.manager(cfg, store, auditLog).Create(ctx, r.owner(), req)
		if err != nil {
			return apiKeysError(err)
		}
		fmt.Fprintln(e.stderr, keyNotice)
		if *r.output == outputJSON {
			return writeJSON(e.stdout, struct {
				*apikey.Key
				Secret string `json:"key"`
			}{k, secret})
		}
		if err := writeAPIKeys(e.stdout, []apikey.Key{*k}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "\nkey: %s\n", secret)
		return err
	})
}

func apiKeysListCommand(e env) *cobra.Command {
	r := &apiKeysRun{e: e}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a client's or a user's API keys, never the keys themselves",
		Args:  noArgs,
	}
	cmd.Flags().StringVar(&r.client, "client", "", "list this client's keys")
	cmd.Flags().StringVar(&r.user, "user", "", "list this user's personal keys (by sub)")
	r.output = outputFlag(cmd)
	return onDatabase(e, cmd, &r.inv, func() error { return r.oneOwner(true) },
		func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
			keys, err := r.manager(cfg, store, auditLog).List(ctx, r.owner())
			if err != nil {
				return apiKeysError(err)
			}
			if *r.output == outputJSON {
				if keys == nil {
					keys = []apikey.Key{}
				}
				return writeJSON(e.stdout, keys)
			}
			return writeAPIKeys(e.stdout, keys)
		})
}

func apiKeysRevokeCommand(e env) *cobra.Command {
	r := &apiKeysRun{e: e}
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key, by its ID, at once on every node",
		Args:  oneArg,
	}
	cmd.Flags().StringVar(&r.client, "client", "", "the client that owns the key")
	cmd.Flags().StringVar(&r.user, "user", "", "the user (sub) who owns the personal key")
	return onDatabase(e, cmd, &r.inv, func() error { return r.oneOwner(true) },
		func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
			if err := r.manager(cfg, store, auditLog).Revoke(ctx, r.owner(), r.inv.target); err != nil {
				return apiKeysError(err)
			}
			_, err := fmt.Fprintf(e.stdout, "revoked API key %s\n", r.inv.target)
			return err
		})
}

// apiKeysError says what to do about err.
func apiKeysError(err error) error {
	switch {
	case errors.Is(err, apikey.ErrNotFound):
		return errors.New("the owner has no API key with this ID; latchkey api-keys list shows its keys")
	case errors.Is(err, client.ErrNotFound):
		return errors.New("no client has this ID")
	case errors.Is(err, apikey.ErrTooMany):
		return fmt.Errorf("the owner holds %d keys already, the most there may be; revoke one first", apikey.MaxPerOwner)
	}
	return err
}

// writeAPIKeys writes one key a line.
func writeAPIKeys(w io.Writer, keys []apikey.Key) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tNAME\tSCOPE\tEXPIRES\tLAST USED\tFROM")
	when := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, k := range keys {
		from := k.LastUsedFrom
		if from == "" {
			from = "-"
		}
		fmt.Fprintf(tw, "%s\t%s…\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Prefix, strings.ReplaceAll(k.Name, "\t", " "), k.Scope,
			when(k.ExpiresAt), when(k.LastUsedAt), from)
	}
	return tw.Flush()
}
