package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
)

// keysCommand manages signing keys: latchkey keys list|rotate|retire KID,
// and reseal, which re-encrypts everything sealed under LATCHKEY_SECRETS
// with its first secret. Running nodes pick up new and retired keys within
// LATCHKEY_KEYS_RELOAD_INTERVAL.
func keysCommand(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfg, err := config.Parse(fs, args, e.lookupEnv)
	if err != nil {
		return err
	}
	sub := fs.Arg(0)
	switch {
	case (sub == "list" || sub == "rotate" || sub == "reseal") && fs.NArg() == 1:
	case sub == "retire" && fs.NArg() == 2:
	default:
		return usageError("latchkey keys list | rotate | retire KID | reseal")
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
	ctx, auditLog := operatorAudit(ctx, store)
	m := keys.NewManager(store, box, newLogger(e.stderr, cfg), auditLog)
	if sub == "reseal" {
		return reseal(ctx, e, m, identity.NewMFA(store, box, "", identity.Throttle{}, auditLog))
	}

	var shown []keys.Info
	switch sub {
	case "list":
		shown, err = m.List(ctx)
	case "rotate":
		shown, err = m.Rotate(ctx)
	case "retire":
		var k keys.Info
		k, err = m.Retire(ctx, fs.Arg(1))
		shown = []keys.Info{k}
	}
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED\tSTATE")
	for _, k := range shown {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.UTC().Format(time.RFC3339), state(k))
	}
	return tw.Flush()
}

// reseal moves the signing keys and TOTP secrets sealed under an older
// secret onto the current one. Each batch commits on its own: a run that
// fails part-way leaves every value readable, and running it again
// finishes the job.
func reseal(ctx context.Context, e env, m *keys.Manager, mfa *identity.MFA) error {
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
