package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
)

// keysCommand manages signing keys: latchkey keys list|rotate|retire KID,
// and reseal, which re-encrypts everything sealed under LATCHKEY_SECRETS
// with its first secret. Running nodes pick up new and retired keys within
// LATCHKEY_KEYS_RELOAD_INTERVAL.
func keysCommand(e env) *cobra.Command {
	list := keysSubcommand(e, &cobra.Command{
		Use:   "list",
		Short: "List the signing keys in use: signing, published or retired",
		Args:  noArgs,
	}, func(ctx context.Context, m *keys.Manager, _ []string) ([]keys.Info, error) {
		return m.List(ctx)
	})
	rotate := keysSubcommand(e, &cobra.Command{
		Use:   "rotate",
		Short: "Add a new RS256, ES256 and EdDSA key, which sign from now on",
		Long: `Add a new RS256, ES256 and EdDSA key, which sign from now on; the keys they
replace stay published, so that tokens they signed still verify, until
retired.`,
		Args: noArgs,
	}, func(ctx context.Context, m *keys.Manager, _ []string) ([]keys.Info, error) {
		return m.Rotate(ctx)
	})
	retire := keysSubcommand(e, &cobra.Command{
		Use:   "retire KID",
		Short: "Remove a key that no longer signs from the JWKS",
		Long: `Remove a key that no longer signs from the JWKS, once the tokens it signed
have expired. The signing key of an algorithm cannot be retired: rotate
first.`,
		Args: oneArg,
	}, func(ctx context.Context, m *keys.Manager, args []string) ([]keys.Info, error) {
		k, err := m.Retire(ctx, args[0])
		return []keys.Info{k}, err
	})

	reseal := &cobra.Command{
		Use:   "reseal",
		Short: "Re-encrypt every sealed secret under the first of LATCHKEY_SECRETS",
		Long: `Re-encrypt the signing keys and TOTP secrets sealed under any secret in
LATCHKEY_SECRETS with the first one, so that the others can be removed.
Safe to run again after a failure: each batch commits on its own.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	settings := databaseFlags(reseal)
	reseal.RunE = func(cmd *cobra.Command, _ []string) error {
		return withKeys(cmd.Context(), e, settings, func(ctx context.Context, m *keys.Manager, mfa *identity.MFA) error {
			return resealAll(ctx, e, m, mfa)
		})
	}

	return groupCommand("keys", "Manage signing keys and sealed secrets",
		`Manage the signing keys and the secrets sealed under LATCHKEY_SECRETS, which
every keys command reads from the environment. Running nodes pick up new
and retired keys within LATCHKEY_KEYS_RELOAD_INTERVAL (docs/keys.md).`,
		list, rotate, retire, reseal)
}

// keysSubcommand completes cmd, a keys subcommand that does something to
// the signing keys and prints those it names, as a table or as JSON.
func keysSubcommand(e env, cmd *cobra.Command, do func(context.Context, *keys.Manager, []string) ([]keys.Info, error)) *cobra.Command {
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	settings := databaseFlags(cmd)
	output := outputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return withKeys(cmd.Context(), e, settings, func(ctx context.Context, m *keys.Manager, _ *identity.MFA) error {
			shown, err := do(ctx, m, args)
			if err != nil {
				return err
			}
			if *output == outputJSON {
				return writeJSON(e.stdout, append([]keys.Info{}, shown...))
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tCREATED\tSTATE")
			for _, k := range shown {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.UTC().Format(time.RFC3339), state(k))
			}
			return tw.Flush()
		})
	}
	return cmd
}

// withKeys runs f with the key manager, and the second factors' store for
// reseal, on the database and secrets the settings name.
func withKeys(ctx context.Context, e env, settings *config.Flags, f func(context.Context, *keys.Manager, *identity.MFA) error) error {
	cfg, err := settings.Load(e.lookupEnv)
	if err != nil {
		return err
	}
	if err := cfg.Validate(config.NeedDatabase | config.NeedSecrets); err != nil {
		return err
	}
	box, err := seal.New(cfg.Secrets)
	if err != nil {
		return err
	}
	store, err := openStore(cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx, auditLog := operatorAudit(ctx, store, cfg)
	return f(ctx, keys.NewManager(store, box, newLogger(e.stderr, cfg), auditLog),
		identity.NewMFA(store, box, "", identity.Throttle{}, auditLog))
}

// resealAll moves the signing keys and TOTP secrets sealed under an older
// secret onto the current one. Each batch commits on its own: a run that
// fails part-way leaves every value readable, and running it again
// finishes the job.
func resealAll(ctx context.Context, e env, m *keys.Manager, mfa *identity.MFA) error {
	nKeys, err := m.Reseal(ctx)
	if err != nil {
		return err
	}
	nTOTP, err := mfa.Reseal(ctx)
	if err != nil {
		return fmt.Errorf("re-encrypted %d signing keys, then: %w", nKeys, err)
	}
	fmt.Fprintf(e.stdout, "re-encrypted %d signing keys and %d TOTP secrets under the first secret in LATCHKEY_SECRETS; the others can now be removed\n", nKeys, nTOTP)
	return nil
}

// state is a key's STATE in the table: signing, published, or retired
// and when.
func state(k keys.Info) string {
	switch {
	case k.RetiredAt != nil:
		return "retired " + k.RetiredAt.UTC().Format(time.RFC3339)
	case k.Current:
		return "signing"
	default:
		return "published"
	}
}
