package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/registration"
	"github.com/latchkey/latchkey/storage/postgres"
)

// registrationTokenNotice goes to stderr whenever a token is printed:
// only its digest is stored, so this is the one chance to copy it.
const registrationTokenNotice = "latchkey registration-tokens: store the token now; it cannot be shown again" // #nosec G101 -- a message, not a credential

// registrationTokensCommand manages the initial access tokens of dynamic
// client registration directly in the configured database: latchkey
// registration-tokens create|list|revoke. It goes through
// registration.Manager, as the admin API does.
func registrationTokensCommand(e env) *cobra.Command {
	return groupCommand("registration-tokens", "Manage initial access tokens for client registration",
		`Manage the initial access tokens that let apps register themselves as
clients when LATCHKEY_REGISTRATION is token (RFC 7591): make one, single- or
multi-use, expiring, and capped in the grant types, scopes and redirect
URIs it may register; list them; revoke one, at once on every node
(docs/clients.md).`,
		registrationTokensCreateCommand(e), registrationTokensListCommand(e), registrationTokensRevokeCommand(e))
}

// registrationManager is the registration manager over store, allowing
// what cfg says, recording changes in auditLog.
func registrationManager(cfg config.Config, store *postgres.Store, auditLog *audit.Log) *registration.Manager {
	return registration.New(store, client.NewManager(store, auditLog, cfg.ClientSecretGracePeriod), auditLog, registrationConfig(cfg))
}

func registrationTokensCreateCommand(e env) *cobra.Command {
	var (
		inv    invocation
		req    registration.TokenRequest
		life   time.Duration
		output *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make an initial access token and print it, once",
		Long: `Make an initial access token and print it: the only time the token is
shown, since only its digest is stored. Give it to whoever is to register
clients; they send it as Authorization: Bearer TOKEN to the registration
endpoint. Left out, its grant types, scopes and redirect URI rules are
those of open registration (LATCHKEY_REGISTRATION_SCOPES and
LATCHKEY_REGISTRATION_REDIRECT_URIS; authorization_code and refresh_token).`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&req.Name, "name", "", "whom or what the token is for")
	fs.IntVar(&req.MaxUses, "uses", 1, "how many clients the token may register")
	fs.DurationVar(&life, "expires-in", 24*time.Hour, "how long the token works")
	fs.StringSliceVar(&req.GrantTypes, "grant-types", nil, "grant types registered clients may have")
	fs.StringVar(&req.Scope, "scope", "", "space-separated scopes registered clients may have")
	fs.StringSliceVar(&req.RedirectURIs, "redirect-uris", nil, "redirect URI rules: loopback, any, or https URL prefixes ending in /")
	output = outputFlag(cmd)
	return onDatabase(e, cmd, &inv, func() error {
		if life <= 0 {
			return usageError("--expires-in is %s; it must be more than 0", life)
		}
		return nil
	}, func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
		req.ExpiresIn = life.String()
		t, secret, err := registrationManager(cfg, store, auditLog).CreateToken(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stderr, registrationTokenNotice)
		if *output == outputJSON {
			return writeJSON(e.stdout, struct {
				*registration.InitialToken
				Secret string `json:"token"`
			}{t, secret})
		}
		if err := writeRegistrationTokens(e.stdout, []registration.InitialToken{*t}); err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "\ntoken: %s\n", secret)
		return err
	})
}

func registrationTokensListCommand(e env) *cobra.Command {
	var (
		inv    invocation
		output *outputFormat
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the initial access tokens, never the tokens themselves",
		Args:  noArgs,
	}
	output = outputFlag(cmd)
	return onDatabase(e, cmd, &inv, func() error { return nil },
		func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
			ts, err := registrationManager(cfg, store, auditLog).Tokens(ctx)
			if err != nil {
				return err
			}
			if *output == outputJSON {
				if ts == nil {
					ts = []registration.InitialToken{}
				}
				return writeJSON(e.stdout, ts)
			}
			return writeRegistrationTokens(e.stdout, ts)
		})
}

func registrationTokensRevokeCommand(e env) *cobra.Command {
	var inv invocation
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an initial access token, by its ID, at once on every node",
		Long: `Revoke an initial access token, by its ID: it registers nothing more. The
clients it registered stay; delete them with latchkey clients delete.`,
		Args: oneArg,
	}
	return onDatabase(e, cmd, &inv, func() error { return nil },
		func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
			err := registrationManager(cfg, store, auditLog).RevokeToken(ctx, inv.target)
			if errors.Is(err, registration.ErrTokenNotFound) {
				return errors.New("no initial access token has this ID; latchkey registration-tokens list shows them")
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.stdout, "revoked initial access token %s\n", inv.target)
			return err
		})
}

// writeRegistrationTokens writes one token a line.
func writeRegistrationTokens(w io.Writer, ts []registration.InitialToken) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPREFIX\tNAME\tUSES\tEXPIRES\tGRANT TYPES\tSCOPE\tREDIRECT URIS")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s…\t%s\t%d/%d\t%s\t%s\t%s\t%s\n", t.ID, t.Prefix, strings.ReplaceAll(t.Name, "\t", " "),
			t.Uses, t.MaxUses, t.ExpiresAt.UTC().Format(time.RFC3339), strings.Join(t.Policy.GrantTypes, ","),
			strings.Join(t.Policy.Scopes, " "), strings.Join(t.Policy.RedirectURIs, ","))
	}
	return tw.Flush()
}
