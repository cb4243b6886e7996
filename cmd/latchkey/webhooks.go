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
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/events"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/postgres"
)

// webhooksCommand manages webhook subscriptions in the configured
// database: latchkey webhooks list|create|update|delete|enable|deliveries|
// rotate-secret|test. It goes through events.Manager, as the admin API
// does, so every change is checked and audited the same way.
func webhooksCommand(e env) *cobra.Command {
	return groupCommand("webhooks", "Subscribe receivers to audit events, and watch their deliveries",
		`Manage the webhook subscriptions in the database LATCHKEY_DATABASE_URL
names: every audit event whose type a subscription lists is posted to its
URL, signed the Standard Webhooks way, at least once and in order per
subject (docs/security-events.md). A secret is shown once, by create and
rotate-secret, which read LATCHKEY_SECRETS to seal it.`,
		webhooksListCommand(e), webhooksCreateCommand(e), webhooksUpdateCommand(e), webhooksDeleteCommand(e),
		webhooksEnableCommand(e), webhooksDeliveriesCommand(e), webhooksRotateCommand(e), webhooksTestCommand(e))
}

// webhookRun is one run of a latchkey webhooks subcommand.
type webhookRun struct {
	e env
	invocation
	output      *outputFormat
	url, events string
	description string
	status      string
	limit       int
	check       func(*webhookRun) error
	manager     *events.Manager
}

// webhookSubcommand completes cmd, a subcommand of latchkey webhooks,
// making it run do with an events.Manager on the database; sealing says
// it seals a secret, and so needs LATCHKEY_SECRETS.
func webhookSubcommand(e env, cmd *cobra.Command, sealing bool, do func(context.Context, *webhookRun) error) (*cobra.Command, *webhookRun) {
	r := &webhookRun{e: e}
	check := func() error {
		if r.check == nil {
			return nil
		}
		return r.check(r)
	}
	return onDatabase(e, cmd, &r.invocation, check, func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
		var box events.Sealer
		if sealing {
			if err := cfg.Validate(config.NeedSecrets); err != nil {
				return err
			}
			b, err := seal.New(cfg.Secrets)
			if err != nil {
				return err
			}
			box = b
		}
		r.manager = events.NewManager(store, box, auditLog)
		return do(ctx, r)
	}), r
}

func webhooksListCommand(e env) *cobra.Command {
	cmd, r := webhookSubcommand(e, &cobra.Command{
		Use: "list", Short: "List webhook subscriptions", Args: noArgs,
		Long: `List every webhook subscription: its URL, the event types it wants, whether
it is enabled and, if a node disabled it, why. Never a secret.`,
	}, false, func(ctx context.Context, r *webhookRun) error {
		subs, err := r.manager.List(ctx)
		if err != nil {
			return err
		}
		if *r.output == outputJSON {
			return writeJSON(r.e.stdout, append([]*events.Subscription{}, subs...))
		}
		return writeWebhookTable(r.e.stdout, subs)
	})
	r.output = outputFlag(cmd)
	return cmd
}

// inputFlags adds --url, --events and --description, and returns what
// the given ones set.
func (r *webhookRun) inputFlags(cmd *cobra.Command) func() events.Input {
	cmd.Flags().StringVar(&r.url, "url", "", "the receiver's `URL`: https, or http to this machine only")
	cmd.Flags().StringVar(&r.events, "events", "", "comma-separated event `TYPES`: actions (user.created), prefixes (user.*) or *")
	cmd.Flags().StringVar(&r.description, "description", "", "what the receiver is, for operators")
	return func() events.Input {
		var in events.Input
		if r.given["url"] {
			in.URL = &r.url
		}
		if r.given["events"] {
			types := []string{}
			for t := range strings.SplitSeq(r.events, ",") {
				if t = strings.TrimSpace(t); t != "" {
					types = append(types, t)
				}
			}
			in.EventTypes = &types
		}
		if r.given["description"] {
			in.Description = &r.description
		}
		return in
	}
}

func webhooksCreateCommand(e env) *cobra.Command {
	var input func() events.Input
	cmd, r := webhookSubcommand(e, &cobra.Command{
		Use: "create", Short: "Subscribe a receiver to events; prints its secret, once", Args: noArgs,
		Long: `Subscribe a receiver to events: latchkey webhooks create --url
https://siem.example.com/latchkey --events 'user.*,login.failed'. It prints
the subscription's signing secret, whsec_ and base64, this once: give it to
the receiver, which verifies every request with it.`,
	}, true, func(ctx context.Context, r *webhookRun) error {
		s, secret, err := r.manager.Create(ctx, input())
		if err != nil {
			return webhookError(err)
		}
		return r.showSecret(s, secret, "webhook subscription "+s.ID+" created")
	})
	input = r.inputFlags(cmd)
	r.output = outputFlag(cmd)
	r.check = func(r *webhookRun) error {
		if !r.given["url"] || !r.given["events"] {
			return usageError("--url and --events are required: where to post, and which events")
		}
		return nil
	}
	return cmd
}

func webhooksUpdateCommand(e env) *cobra.Command {
	var input func() events.Input
	cmd, r := webhookSubcommand(e, &cobra.Command{
		Use: "update ID", Short: "Change a subscription's URL, event types or description", Args: oneArg,
		Long: `Change the fields given (--url, --events, --description) of the subscription
ID names, as latchkey webhooks list shows it; the others stay.`,
	}, false, func(ctx context.Context, r *webhookRun) error {
		s, err := r.manager.Update(ctx, r.target, input())
		if err != nil {
			return webhookError(err)
		}
		return r.show(s, "webhook subscription "+s.ID+" updated")
	})
	input = r.inputFlags(cmd)
	r.output = outputFlag(cmd)
	r.check = func(r *webhookRun) error {
		if !r.given["url"] && !r.given["events"] && !r.given["description"] {
			return usageError("give --url, --events or --description: what to change")
		}
		return nil
	}
	return cmd
}

func webhooksDeleteCommand(e env) *cobra.Command {
	cmd, _ := webhookSubcommand(e, &cobra.Command{
		Use: "delete ID", Short: "Delete a subscription and its deliveries", Args: oneArg,
		Long: `Delete the subscription ID names, and every delivery of it, waiting or done.`,
	}, false, func(ctx context.Context, r *webhookRun) error {
		if err := r.manager.Delete(ctx, r.target); err != nil {
			return webhookError(err)
		}
		fmt.Fprintf(r.e.stdout, "webhook subscription %s deleted\n", r.target)
		return nil
	})
	return cmd
}

func webhooksEnableCommand(e env) *cobra.Command {
	cmd, r := webhookSubcommand(e, &cobra.Command{
		Use: "enable ID", Short: "Enable a subscription; its waiting events resume", Args: oneArg,
		Long: `Enable the subscription ID names, such as one a node disabled because every
delivery to it failed for a day. Mend the receiver first: its waiting events
are tried at once, in order, with a fresh three days of attempts.`,
	}, false, func(ctx context.Context, r *webhookRun) error {
		s, err := r.manager.Enable(ctx, r.target)
		if err != nil {
			return webhookError(err)
		}
		return r.show(s, "webhook subscription "+s.ID+" enabled; its waiting events are on their way")
	})
	r.output = outputFlag(cmd)
	return cmd
}

func webhooksRotateCommand(e env) *cobra.Command {
	cmd, r := webhookSubcommand(e, &cobra.Command{
		Use: "rotate-secret ID", Short: "Give a subscription a new signing secret; prints it, once", Args: oneArg,
		Long: `Give the subscription ID names a new signing secret, printed this once. Every
attempt from now on, retries included, is signed with it; the old secret
stops at once, so give the receiver the new one straight away.`,
	}, true, func(ctx context.Context, r *webhookRun) error {
		s, secret, err := r.manager.RotateSecret(ctx, r.target)
		if err != nil {
			return webhookError(err)
		}
		return r.showSecret(s, secret, "webhook subscription "+s.ID+" has a new secret")
	})
	r.output = outputFlag(cmd)
	return cmd
}

func webhooksTestCommand(e env) *cobra.Command {
	cmd, _ := webhookSubcommand(e, &cobra.Command{
		Use: "test ID", Short: "Send a test event to a subscription", Args: oneArg,
		Long: `Record a webhook.tested event, which a node posts to the subscription ID
names whatever its event types; latchkey webhooks deliveries ID shows how it
goes.`,
	}, false, func(ctx context.Context, r *webhookRun) error {
		id, err := r.manager.Test(ctx, r.target)
		if err != nil {
			return webhookError(err)
		}
		fmt.Fprintf(r.e.stdout, "test event %s is in the outbox; a node delivers it shortly (latchkey webhooks deliveries %s)\n", id, r.target)
		return nil
	})
	return cmd
}

func webhooksDeliveriesCommand(e env) *cobra.Command {
	cmd, r := webhookSubcommand(e, &cobra.Command{
		Use: "deliveries ID", Short: "List a subscription's deliveries, newest first", Args: oneArg,
		Long: `List the events on their way to the subscription ID names, newest first:
whether each is pending, delivered or failed, its attempts, and the
receiver's last answer.`,
	}, false, func(ctx context.Context, r *webhookRun) error {
		status, _ := events.ParseStatus(r.status)
		ds, err := r.manager.Deliveries(ctx, r.target, events.DeliveryQuery{Status: status, Limit: r.limit})
		if err != nil {
			return webhookError(err)
		}
		if *r.output == outputJSON {
			return writeJSON(r.e.stdout, append([]*events.Delivery{}, ds...))
		}
		return writeDeliveryTable(r.e.stdout, ds)
	})
	cmd.Flags().StringVar(&r.status, "status", "", "only deliveries that are `pending|delivered|failed`")
	cmd.Flags().IntVar(&r.limit, "limit", 50, "show at most `N` deliveries, the newest (0 shows all)")
	r.output = outputFlag(cmd)
	r.check = func(r *webhookRun) error {
		if _, err := events.ParseStatus(r.status); err != nil {
			return usageError("--status %v", err)
		}
		if r.limit < 0 {
			return usageError("--limit is %d; it must be 0 (all) or more", r.limit)
		}
		return nil
	}
	return cmd
}

// show prints a subscription: as JSON, or as what happened and its row.
func (r *webhookRun) show(s *events.Subscription, what string) error {
	if *r.output == outputJSON {
		return writeJSON(r.e.stdout, s)
	}
	fmt.Fprintln(r.e.stdout, what)
	return writeWebhookTable(r.e.stdout, []*events.Subscription{s})
}

// showSecret prints a subscription with its secret, shown this once.
func (r *webhookRun) showSecret(s *events.Subscription, secret, what string) error {
	if *r.output == outputJSON {
		return writeJSON(r.e.stdout, struct {
			*events.Subscription
			Secret string `json:"secret"`
		}{s, secret})
	}
	fmt.Fprintf(r.e.stdout, "%s\nsecret: %s\n(shown this once: give it to the receiver now)\n", what, secret)
	return nil
}

// webhookError turns the Manager's expected errors into one line an
// operator can act on.
func webhookError(err error) error {
	switch {
	case errors.Is(err, events.ErrNotFound):
		return errors.New("no webhook subscription has this ID; latchkey webhooks list shows them")
	case errors.Is(err, events.ErrTooMany):
		return fmt.Errorf("there are %d webhook subscriptions already, the most there may be; delete one first", events.MaxSubscriptions)
	}
	return err
}

func writeWebhookTable(w io.Writer, subs []*events.Subscription) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENABLED\tURL\tEVENTS\tFAILURES\tDISABLED BECAUSE")
	for _, s := range subs {
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\t%d\t%s\n", s.ID, s.Enabled, s.URL, strings.Join(s.EventTypes, ","),
			s.ConsecutiveFailures, orDash(shortLine(s.DisabledReason, 60)))
	}
	return tw.Flush()
}

func writeDeliveryTable(w io.Writer, ds []*events.Delivery) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT\tTYPE\tSUBJECT\tSTATUS\tATTEMPTS\tNEXT ATTEMPT/DELIVERED\tLAST ERROR")
	for _, d := range ds {
		when := d.NextAttemptAt.UTC().Format(time.RFC3339)
		if d.DeliveredAt != nil {
			when = d.DeliveredAt.UTC().Format(time.RFC3339)
		} else if d.Status == events.Failed {
			when = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", events.EventID(d.EventID), d.EventType, d.Subject, d.Status,
			d.Attempts, when, orDash(shortLine(d.LastError, 60)))
	}
	return tw.Flush()
}
