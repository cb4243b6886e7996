package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/notify"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/signin"
	"github.com/latchkey/latchkey/storage/postgres"
)

// mailing are the settings a users subcommand that mails takes as flags
// besides the database's: the issuer, which links are built on, and the
// security notices the operator has on (the change may be one). (The
// secrets, which seal the mail in the outbox, come only from the
// environment, as for every command.)
var mailing = []string{"LATCHKEY_ISSUER", "LATCHKEY_NOTIFICATIONS"}

// mailSettings explains in -h output how the CLI mails: through the
// outbox, which the servers deliver.
const mailSettings = "The mail is written to the outbox, which the servers deliver; it needs\n" +
	"LATCHKEY_ISSUER and LATCHKEY_SECRETS, as the servers have them."

// noticeSettings explains in -h output when a change from the CLI is
// told to the user.
const noticeSettings = "The user is mailed a security notice (LATCHKEY_NOTIFICATIONS) through the\n" +
	"outbox when LATCHKEY_ISSUER and LATCHKEY_SECRETS are set, as the servers have them."

// cliMail is the mail of a users subcommand given the issuer and the
// secrets: an outbox, which the running servers' senders deliver, the
// account lifecycle that mails links through it, and an audit log whose
// events mail the security notices their changes call for, as the
// servers' do. Without either setting, the CLI mails nothing.
func cliMail(cfg config.Config, store *postgres.Store) (*mail.Outbox, *seal.Box, *audit.Log, error) {
	box, err := seal.New(cfg.Secrets)
	if err != nil {
		return nil, nil, nil, err
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("issuer: %w", err)
	}
	outbox, err := newOutbox(store, box, issuer)
	if err != nil {
		return nil, nil, nil, err
	}
	return outbox, box, audit.New(store, slog.New(slog.DiscardHandler), notify.New(store, outbox, notices(cfg)), eventOutbox(store, cfg)), nil
}

// cliAccounts is the account lifecycle as the CLI uses it: links mailed
// through outbox.
func cliAccounts(cfg config.Config, store *postgres.Store, outbox *mail.Outbox, box *seal.Box, auditLog *audit.Log, users *identity.Manager) *account.Service {
	base := strings.TrimSuffix(cfg.Issuer, "/")
	return &account.Service{Store: store, Users: users, Audit: auditLog, Mail: outbox, Box: box,
		Issuer: base, SignIn: base + signin.LoginPath, Forgot: base + signin.ForgotPath}
}

// needMail says, in one line, what the command lacks to mail a link, for
// what (a flag or a command) needs it.
func (r *usersRun) needMail(what string) error {
	if r.accounts != nil {
		return nil
	}
	var missing []string
	if r.cfg.Issuer == "" {
		missing = append(missing, "LATCHKEY_ISSUER (--issuer)")
	}
	if len(r.cfg.Secrets) == 0 {
		missing = append(missing, "LATCHKEY_SECRETS")
	}
	return fmt.Errorf("%s mails a link, which needs %s, set as for the servers; nothing was changed", what, strings.Join(missing, " and "))
}

// noteVerification tells the operator, on stderr, what became of the
// verification of u's address after a create or an update (changed says
// the address is new): mailed, or not, and why.
func (r *usersRun) noteVerification(u *identity.User, changed bool) {
	if u.EmailVerified || !changed {
		return
	}
	if r.accounts != nil {
		fmt.Fprintf(r.e.stderr, "verification link mailed to %s\n", u.Email)
		return
	}
	fmt.Fprintf(r.e.stderr, "email_verified is false, and no verification link was mailed: set LATCHKEY_ISSUER and LATCHKEY_SECRETS to mail one, or give --email-verified\n")
}

func usersInviteCommand(e env) *cobra.Command {
	cmd, _ := usersSubcommand(e, &cobra.Command{
		Use:   "invite USER",
		Short: "Mail a user without a password a new invitation",
		Long: "Mails the user a new link, good for 7 days, to choose their password, and\n" +
			"voids the links mailed before. For a user made with create --invite whose\n" +
			"mail was lost or whose link expired. " + mailSettings + "\n\n" + userArgHelp,
		Args: oneArg,
	}, usersInvite, mailing...)
	return cmd
}

func usersRevokeInviteCommand(e env) *cobra.Command {
	cmd, _ := usersSubcommand(e, &cobra.Command{
		Use:   "revoke-invite USER",
		Short: "Void a user's unused invitation links",
		Long: "Voids the user's unused invitation links: following one then does nothing.\n" +
			"The user stays, without a password; delete them if they are not wanted.\n\n" + userArgHelp,
		Args: oneArg,
	}, usersRevokeInvite)
	return cmd
}

// usersInvite mails a user a new invitation.
func usersInvite(ctx context.Context, r *usersRun) error {
	if err := r.needMail("invite"); err != nil {
		return err
	}
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	if _, err := r.accounts.ResendInvitation(ctx, u.ID, ""); err != nil {
		return usersError(r.target, u.Email, err)
	}
	fmt.Fprintf(r.e.stdout, "invitation mailed to %s (%s), good for 7 days\n", u.Email, u.ID)
	return nil
}

// usersRevokeInvite voids a user's invitation links. It mails nothing,
// so it needs no more than the database.
func usersRevokeInvite(ctx context.Context, r *usersRun) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	accounts := &account.Service{Store: r.store, Users: r.manager, Audit: r.audit}
	if err := accounts.RevokeInvitation(ctx, u.ID); err != nil {
		return usersError(r.target, u.Email, err)
	}
	fmt.Fprintf(r.e.stdout, "revoked the invitation of %s (%s)\n", u.Email, u.ID)
	return nil
}
