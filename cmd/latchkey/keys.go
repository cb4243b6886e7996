package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
)

// keysCommand manages signing keys: latchkey keys list|rotate|retire KID.
// Running nodes pick up the change within LATCHKEY_KEYS_RELOAD_INTERVAL.
func keysCommand(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	cfg, err := config.Parse(fs, args, e.lookupEnv)
	if err != nil {
		return err
	}
	sub := fs.Arg(0)
	switch {
	case (sub == "list" || sub == "rotate") && fs.NArg() == 1:
	case sub == "retire" && fs.NArg() == 2:
	default:
		return usageError("latchkey keys list | rotate | retire KID")
	}
	if err := cfg.Validate(config.NeedDatabase | config.NeedSecrets); err != nil {
		return err
	}
	box, err := seal.New(cfg.Secrets)
	if err != nil {
		return err
	}
	store, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx, auditLog := operatorAudit(ctx, store)
	m := keys.NewManager(store, box, newLogger(e.stderr, cfg), auditLog)

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
