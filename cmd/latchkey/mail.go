package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/postgres"
)

// mailCommand looks at and acts on the mail outbox in the configured
// database: latchkey mail list|retry ID|test --to ADDRESS. It goes through
// mail.Manager, as the admin API does, so a retry or a test message is
// audited the same way, and no output ever holds a message's body.
func mailCommand(e env) *cobra.Command {
	return groupCommand("mail", "Watch the mail outbox, retry failed mail, send a test message",
		`Look at the mail outbox in the database LATCHKEY_DATABASE_URL names, where
every mail waits until a node with LATCHKEY_SMTP_URL delivers it: list what
is pending, failed or sent, give a failed message another run of attempts,
and send a test message to check the set-up. No command shows a message's
body, which may hold a single-use link meant for its recipient alone.`,
		mailListCommand(e), mailRetryCommand(e), mailTestCommand(e))
}

func mailListCommand(e env) *cobra.Command {
	cmd, r := mailSubcommand(e, &cobra.Command{
		Use:   "list",
		Short: "List messages in the outbox, newest first",
		Long: `List messages in the outbox, newest first: where each is in its delivery,
how many attempts it took, and the mail server's last answer. A failed
message has run out of attempts, or was refused for good; retry it once
the cause is mended.`,
		Args: noArgs,
	}, 0, mailList)
	cmd.Flags().StringVar(&r.status, "status", "", "only messages that are `pending|failed|sent`")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statusNames(), cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().IntVar(&r.limit, "limit", defaultMailLimit, "show at most `N` messages, the newest (0 shows all)")
	r.output = outputFlag(cmd)
	r.check = func(r *mailRun) error {
		var err error
		if r.query.Status, err = mail.ParseStatus(r.status); err != nil {
			return usageError("--status %v", err)
		}
		if r.limit < 0 {
			return usageError("--limit is %d; it must be 0 (all) or more", r.limit)
		}
		r.query.Limit = r.limit
		return nil
	}
	return cmd
}

func mailRetryCommand(e env) *cobra.Command {
	cmd, r := mailSubcommand(e, &cobra.Command{
		Use:   "retry ID",
		Short: "Give a failed message another run of attempts",
		Long: `Make a failed message pending again, due at once, with a fresh run of
attempts, once the cause (the mail server, its credentials, the address) is
mended. A pending message is retried by the nodes themselves. ID is as
latchkey mail list shows it.`,
		Args: oneArg,
	}, 0, mailRetry)
	r.output = outputFlag(cmd)
	r.check = (*mailRun).parseID
	return cmd
}

func mailTestCommand(e env) *cobra.Command {
	cmd, r := mailSubcommand(e, &cobra.Command{
		Use:   "test",
		Short: "Send a test message, to check that mail reaches people",
		Long: `Write a test message to the outbox, addressed to --to, for a node with
LATCHKEY_SMTP_URL to deliver; latchkey mail list shows how its delivery
goes. It reads LATCHKEY_SECRETS, which seals the outbox, and
LATCHKEY_ISSUER, whose host the message names, from the environment.`,
		Args: noArgs,
	}, config.NeedIssuer|config.NeedSecrets, mailTest)
	cmd.Flags().StringVar(&r.to, "to", "", "the email `ADDRESS` to send the test message to (required)")
	r.output = outputFlag(cmd)
	r.check = func(r *mailRun) error {
		if !r.given["to"] {
			return usageError("--to is required: the address to send the test message to")
		}
		return nil
	}
	return cmd
}

// defaultMailLimit is how many messages mail list shows unless told.
const defaultMailLimit = 50

// mailRun is one run of a latchkey mail subcommand: its argument and
// flags, and the manager that does the work.
type mailRun struct {
	e env
	// invocation's target is the message ID as given, for retry.
	invocation
	output *outputFormat
	status string
	limit  int
	query  mail.Query
	to     string
	id     int64
	// check, if set, rejects flags and arguments that parse but make no
	// sense, before the database is opened.
	check   func(*mailRun) error
	manager *mail.Manager
}

// mailSubcommand completes cmd, a subcommand of latchkey mail: it gives it
// the database settings as flags, and makes it run do with a mail.Manager
// on the database. need names the settings it needs besides the
// database's: a test message is sealed (LATCHKEY_SECRETS) and names the
// provider (LATCHKEY_ISSUER).
func mailSubcommand(e env, cmd *cobra.Command, need config.Requirement, do func(context.Context, *mailRun) error) (*cobra.Command, *mailRun) {
	r := &mailRun{e: e}
	check := func() error {
		if r.check == nil {
			return nil
		}
		return r.check(r)
	}
	return onDatabase(e, cmd, &r.invocation, check, func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
		var outbox *mail.Outbox
		if need != 0 {
			if err := cfg.Validate(need); err != nil {
				return err
			}
			box, err := seal.New(cfg.Secrets)
			if err != nil {
				return err
			}
			issuer, err := url.Parse(cfg.Issuer)
			if err != nil {
				return fmt.Errorf("issuer: %w", err)
			}
			if outbox, err = newOutbox(store, box, issuer); err != nil {
				return err
			}
		}
		r.manager = mail.NewManager(store, outbox, auditLog)
		return do(ctx, r)
	}), r
}

// parseID reads the ID argument of retry.
func (r *mailRun) parseID() error {
	id, err := strconv.ParseInt(r.target, 10, 64)
	if err != nil || id < 1 {
		return usageError("%q is not a message ID: IDs are whole numbers, as latchkey mail list shows them", r.target)
	}
	r.id = id
	return nil
}

// mailList prints the messages the flags select, newest first.
func mailList(ctx context.Context, r *mailRun) error {
	q := r.query
	if q.Limit > 0 {
		q.Limit++ // one more, to tell whether there are more
	}
	ms, err := r.manager.List(ctx, q)
	if err != nil {
		return err
	}
	more := r.query.Limit > 0 && len(ms) > r.query.Limit
	if more {
		ms = ms[:r.query.Limit]
	}
	if *r.output == outputJSON {
		return writeJSON(r.e.stdout, append([]*mail.Stored{}, ms...))
	}
	if err := writeMailTable(r.e.stdout, ms); err != nil {
		return err
	}
	if more {
		fmt.Fprintln(r.e.stderr, "(older messages follow; --limit 0 shows all)")
	}
	return nil
}

// mailRetry makes a failed message pending again and prints it.
func mailRetry(ctx context.Context, r *mailRun) error {
	m, err := r.manager.Retry(ctx, r.id)
	if err != nil {
		return mailError(r.id, err)
	}
	return r.show(m, fmt.Sprintf("message %d to %s is pending again; a node with LATCHKEY_SMTP_URL sends it shortly", m.ID, m.Recipient))
}

// mailTest writes the test message to the outbox and prints it.
func mailTest(ctx context.Context, r *mailRun) error {
	m, err := r.manager.SendTest(ctx, r.to)
	if err != nil {
		return err
	}
	return r.show(m, fmt.Sprintf("test message %d to %s is in the outbox; a node with LATCHKEY_SMTP_URL sends it shortly (latchkey mail list shows how it goes)", m.ID, m.Recipient))
}

// show prints one message: as JSON, or as the line that says what
// happened followed by the message's row.
func (r *mailRun) show(m *mail.Stored, what string) error {
	if *r.output == outputJSON {
		return writeJSON(r.e.stdout, m)
	}
	fmt.Fprintln(r.e.stdout, what)
	return writeMailTable(r.e.stdout, []*mail.Stored{m})
}

// mailError turns the Manager's expected errors into one line an operator
// can act on; anything else is returned as it is.
func mailError(id int64, err error) error {
	var notFailed *mail.NotFailedError
	switch {
	case errors.Is(err, mail.ErrNotFound):
		return fmt.Errorf("no message in the outbox has ID %d; latchkey mail list shows them", id)
	case errors.As(err, &notFailed):
		m := notFailed.Message
		if m.Status == mail.Sent {
			return fmt.Errorf("message %d was sent; only a failed message can be retried (latchkey mail test checks that mail still arrives)", id)
		}
		return fmt.Errorf("message %d is pending, not failed: a node retries it by itself, next at %s; only a failed message can be retried",
			id, m.NextAttemptAt.UTC().Format(time.RFC3339))
	}
	return err
}

// writeMailTable writes one row per message. The last error is cut to
// one short line; --output json shows it whole.
func writeMailTable(w io.Writer, ms []*mail.Stored) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTEMPLATE\tRECIPIENT\tATTEMPTS\tCREATED\tNEXT ATTEMPT/SENT\tLAST ERROR")
	for _, m := range ms {
		when := "-"
		switch {
		case m.Status == mail.Pending:
			when = m.NextAttemptAt.UTC().Format(time.RFC3339)
		case m.SentAt != nil:
			when = m.SentAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.ID, m.Status, m.Template, m.Recipient, m.Attempts,
			m.CreatedAt.UTC().Format(time.RFC3339), when, orDash(shortLine(m.LastError, 72)))
	}
	return tw.Flush()
}

// shortLine is s on one line, cut to at most n characters.
func shortLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// statusNames are the values of --status, for shell completion.
func statusNames() []string {
	names := make([]string, len(mail.Statuses))
	for i, s := range mail.Statuses {
		names[i] = string(s)
	}
	return names
}
