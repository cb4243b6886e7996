package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/trust"
	"github.com/latchkey/latchkey/storage/postgres"
)

// userArgHelp explains the USER argument in -h output, since it takes two
// kinds of value.
const userArgHelp = "USER is the user's sub (a UUID) or their email address, in any case."

// passwordSource explains in -h output where a password comes from: never
// the command line, which every user of the machine can read in ps.
const passwordSource = "The password is asked for twice, without echo, when stdin is a terminal;\n" +
	"otherwise it is the first line of stdin."

// maxPasswordLine bounds how much of stdin is read for a password. Any line
// that long breaks the length rule of the policy, so cutting it short
// changes no answer, and a wrong file piped in is not read whole.
const maxPasswordLine = 64 << 10

// errNoPassword is the answer when stdin has no password to give: nothing
// piped in, or an empty first line.
var errNoPassword = errors.New("no password on stdin")

// usersCommand manages users directly in the configured database: latchkey
// users create|list|get|update|disable|enable|unlock|delete|set-password|
// reset-mfa|trusted-devices|forget-devices. It goes through identity.Manager, so a user stored here is
// validated, and their password checked against the policy and hashed,
// exactly as anywhere else.
func usersCommand(e env) *cobra.Command {
	return groupCommand("users", "Manage users",
		`Manage users directly in the database LATCHKEY_DATABASE_URL names. A user is
checked, and a password checked against the policy and hashed, exactly as
anywhere else (docs/users.md). A password never comes from the command
line: `+passwordSource+"\n\n"+userArgHelp,
		usersCreateCommand(e), usersListCommand(e), usersGetCommand(e), usersUpdateCommand(e),
		usersAction(e, "disable", "Stop a user signing in, and sign them out everywhere",
			"Stops the user signing in, and at once ends their browser sessions and revokes their access and refresh tokens.",
			usersDisable),
		usersAction(e, "enable", "Let a disabled user sign in again",
			"Lets a disabled user sign in again. Sessions and tokens ended by disable stay ended.",
			usersEnable),
		usersAction(e, "unlock", "Lift the pause or lock on a user's sign-ins",
			"Forgets the user's recent wrong passwords and codes, so that an account paused or locked after too many failures can sign in at once.",
			usersUnlock),
		usersAction(e, "delete", "Remove a user for good",
			"Removes the user for good, with their sessions and consents, and revokes their tokens.",
			usersDelete),
		usersAction(e, "set-password", "Replace a user's password",
			"Replaces the user's password and signs them out everywhere. "+passwordSource+"\n\n"+noticeSettings,
			usersSetPassword, mailing...),
		usersAction(e, "reset-mfa", "Remove a user's second factors",
			"Removes the user's second factors, for a user who lost them: the authenticator app's, with its recovery codes, and every passkey; the browsers they trusted to skip them are forgotten too. They enrol again where a factor is required.\n\n"+noticeSettings,
			usersResetMFA, mailing...),
		usersAction(e, "passkeys", "List a user's passkeys",
			"Lists the user's passkeys: each one's ID (for remove-passkey), its name, when it was added and when it last signed the user in.",
			usersPasskeys),
		usersRemovePasskeyCommand(e),
		usersTrustedDevicesCommand(e),
		usersAction(e, "forget-devices", "Forget every browser a user trusts to skip the second factor",
			"Ends the trust of every browser on which the user ticked \"Don't ask again on this browser\": each asks for the second factor again at the next sign-in. Sessions already signed in go on. Recorded in the audit log as device.forgotten.",
			usersForgetDevices),
		usersInviteCommand(e), usersRevokeInviteCommand(e),
	)
}

func usersCreateCommand(e env) *cobra.Command {
	cmd, r := usersSubcommand(e, &cobra.Command{
		Use:   "create",
		Short: "Add a user",
		Long: "Adds a user with a new, random sub. " + passwordSource + "\n\n" +
			"With --invite, the user gets no password: they are mailed a link, good for\n" +
			"7 days, to choose their own. Without --email-verified, the address is mailed\n" +
			"a link that verifies it. " + mailSettings,
		Args: noArgs,
	}, usersCreate, mailing...)
	r.profile.register(cmd.Flags(), true)
	cmd.Flags().BoolVar(&r.noPassword, "no-password", false, "create the user without a password; they cannot sign in until set-password gives them one")
	cmd.Flags().BoolVar(&r.invite, "invite", false, "create the user without a password and mail them a link to choose one")
	r.output = outputFlag(cmd)
	r.check = func(r *usersRun) error {
		if !r.given["email"] {
			return usageError("--email is required")
		}
		if r.invite && r.noPassword {
			return usageError("--invite and --no-password do not go together: an invited user has no password until they choose one")
		}
		return nil
	}
	return cmd
}

func usersListCommand(e env) *cobra.Command {
	cmd, r := usersSubcommand(e, &cobra.Command{
		Use:   "list",
		Short: "List every user, by email",
		Args:  noArgs,
	}, usersList)
	r.output = outputFlag(cmd)
	return cmd
}

func usersGetCommand(e env) *cobra.Command {
	cmd, r := usersSubcommand(e, &cobra.Command{
		Use:   "get USER",
		Short: "Show one user",
		Long:  "Shows one user.\n\n" + userArgHelp,
		Args:  oneArg,
	}, usersGet)
	r.output = outputFlag(cmd)
	return cmd
}

func usersUpdateCommand(e env) *cobra.Command {
	cmd, r := usersSubcommand(e, &cobra.Command{
		Use:   "update USER",
		Short: "Change the fields of a user that the flags name",
		Long: "Changes the fields the flags name and keeps the rest. A new email clears\n" +
			"email_verified unless --email-verified is given too, and the new address is\n" +
			"mailed a link that verifies it. " + mailSettings + "\n\n" + userArgHelp,
		Args: oneArg,
	}, usersUpdate, mailing...)
	r.profile.register(cmd.Flags(), false)
	r.output = outputFlag(cmd)
	r.check = func(r *usersRun) error {
		if !r.profile.changes(r.given) {
			return usageError("nothing to change: give a flag for each field to change")
		}
		return nil
	}
	return cmd
}

// usersAction is a subcommand of latchkey users that does one thing to the
// user its one argument names, and takes no flags of its own.
func usersAction(e env, name, short, long string, do func(context.Context, *usersRun) error, more ...string) *cobra.Command {
	cmd, _ := usersSubcommand(e, &cobra.Command{
		Use:   name + " USER",
		Short: short,
		Long:  long + "\n\n" + userArgHelp,
		Args:  oneArg,
	}, do, more...)
	return cmd
}

// usersRun is one run of a latchkey users subcommand: the user it names,
// its flags, and the managers that do the work.
type usersRun struct {
	e env
	// invocation's target is the USER argument as given: a sub or an
	// email.
	invocation
	// output is --output, for subcommands that print users.
	output     *outputFormat
	profile    profileFlags
	noPassword bool
	invite     bool
	// check, if set, rejects flags that parse but make no sense together,
	// before the database is opened.
	check   func(*usersRun) error
	manager *identity.Manager
	mfa     *identity.MFA
	// passkeys lists and removes passkeys; it runs no ceremonies.
	passkeys *passkey.Manager
	// passkeyID is remove-passkey's second argument.
	passkeyID string
	// trust lists and forgets the user's trusted browsers.
	trust *trust.Manager
	// accounts mails links (invitations, verifications) through the
	// outbox; nil when LATCHKEY_ISSUER or LATCHKEY_SECRETS is not set.
	accounts *account.Service
	// cfg is the command's configuration, for telling what accounts
	// lacks; store and audit are what the managers work on.
	cfg   config.Config
	store *postgres.Store
	audit *audit.Log
}

// usersSubcommand completes cmd, a subcommand of latchkey users: it gives
// it the database settings as flags, and makes it run do with the managers
// of users and their second factors on the database. The caller adds the
// subcommand's own flags, which fill the returned usersRun. There is
// deliberately no password flag: see readPassword.
func usersSubcommand(e env, cmd *cobra.Command, do func(context.Context, *usersRun) error, more ...string) (*cobra.Command, *usersRun) {
	r := &usersRun{e: e}
	check := func() error {
		if r.check == nil {
			return nil
		}
		return r.check(r)
	}
	return onDatabase(e, cmd, &r.invocation, check, func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
		var (
			outbox *mail.Outbox
			box    *seal.Box
			err    error
		)
		if cfg.Issuer != "" && len(cfg.Secrets) > 0 {
			if outbox, box, auditLog, err = cliMail(cfg, store); err != nil {
				return err
			}
		}
		r.cfg, r.store, r.audit = cfg, store, auditLog
		r.manager = identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{})
		// Removing a factor needs no secrets, so neither does the CLI.
		r.mfa = identity.NewMFA(store, nil, "", identity.Throttle{}, auditLog)
		if r.passkeys, err = passkey.New("", "", store, auditLog); err != nil {
			return err
		}
		// Listing and forgetting trusted browsers needs no secrets either.
		r.trust = trust.New(store, auditLog, nil, 0, false)
		if outbox != nil {
			r.accounts = cliAccounts(cfg, store, outbox, box, auditLog, r.manager)
		}
		return do(ctx, r)
	}, more...), r
}

// profileFlags are the flags of create and update, one per field of the
// user's profile.
type profileFlags struct {
	email, name, givenName, familyName string
	emailVerified                      bool
	claims                             claimFlags
}

// register puts the profile flags on fs. Each flag's help names the claim
// it sets, the name the JSON output uses.
func (p *profileFlags) register(fs *pflag.FlagSet, create bool) {
	email := "email: the user's email address, unique regardless of case"
	verified := "email_verified: the email address is known to be the user's"
	if create {
		email += " (required)"
	} else {
		verified += " (a new --email clears it unless this is given too)"
	}
	fs.StringVar(&p.email, "email", "", email)
	fs.BoolVar(&p.emailVerified, "email-verified", false, verified)
	fs.StringVar(&p.name, "name", "", "name: the user's full name, as shown to people")
	fs.StringVar(&p.givenName, "given-name", "", "given_name")
	fs.StringVar(&p.familyName, "family-name", "", "family_name")
	fs.Var(&p.claims, "claim", "another standard claim, as `NAME=VALUE`, such as locale=en-GB or phone_number=+441632960000; "+
		"NAME= removes it; repeatable")
}

// setters returns, for each profile flag by name, how it changes u. Only
// the given ones run, which is what makes update a partial change.
func (p *profileFlags) setters(u *identity.User) map[string]func() {
	return map[string]func(){
		"email":          func() { u.Email = p.email },
		"email-verified": func() { u.EmailVerified = p.emailVerified },
		"name":           func() { u.Name = p.name },
		"given-name":     func() { u.GivenName = p.givenName },
		"family-name":    func() { u.FamilyName = p.familyName },
		"claim": func() {
			for _, c := range p.claims {
				if c.value == nil {
					delete(u.Claims, c.name)
					continue
				}
				if u.Claims == nil {
					u.Claims = map[string]any{}
				}
				u.Claims[c.name] = c.value
			}
		},
	}
}

// apply changes u as the given flags say. (A new email address is
// unverified unless --email-verified is given too: identity.Manager.Update
// sees to that.)
func (p *profileFlags) apply(u *identity.User, given map[string]bool) {
	for name, set := range p.setters(u) {
		if given[name] {
			set()
		}
	}
}

// changes reports whether the given flags change any of the profile.
func (p *profileFlags) changes(given map[string]bool) bool {
	for name := range p.setters(&identity.User{}) {
		if given[name] {
			return true
		}
	}
	return false
}

// claimEdit is one --claim: a claim to set, or, with a nil value, to
// remove.
type claimEdit struct {
	name  string
	value any
}

// claimFlags is the repeatable --claim flag, kept in order so that a later
// --claim for the same name wins, as it would reading left to right.
type claimFlags []claimEdit

// ownFlags maps the claims that have a flag of their own to that flag, so
// that --claim name=Ada points the operator to --name.
var ownFlags = map[string]string{
	"email": "email", "email_verified": "email-verified", "name": "name",
	"given_name": "given-name", "family_name": "family-name",
}

// Type names the kind of value in -h output.
func (c *claimFlags) Type() string { return "NAME=VALUE" }

// String shows the values for -h output.
func (c *claimFlags) String() string {
	var parts []string
	for _, e := range *c {
		parts = append(parts, fmt.Sprintf("%s=%v", e.name, e.value))
	}
	return strings.Join(parts, " ")
}

// Set adds one NAME=VALUE. Whether NAME is a claim Latchkey keeps is left
// to identity.User.Validate, so that the list lives in one place.
func (c *claimFlags) Set(s string) error {
	name, text, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return errors.New("want NAME=VALUE, such as locale=en-GB, or NAME= to remove a claim")
	}
	if f, own := ownFlags[name]; own {
		return fmt.Errorf("%s has a flag of its own: --%s", name, f)
	}
	value, err := claimValue(name, text)
	if err != nil {
		return err
	}
	*c = append(*c, claimEdit{name: name, value: value})
	return nil
}

// claimValue turns the text of a --claim into the value the claim has in
// ID tokens and userinfo, whose types OpenID Connect Core §5.1 fixes:
// phone_number_verified is a boolean and address a JSON object; the rest
// are strings. Empty text means removal, and gives nil.
func claimValue(name, text string) (any, error) {
	switch {
	case text == "":
		return nil, nil
	case name == "phone_number_verified":
		b, err := strconv.ParseBool(text)
		if err != nil {
			return nil, errors.New("phone_number_verified must be true or false")
		}
		return b, nil
	case name == "address":
		// Plain text is the whole address, which is what the formatted
		// member is for; a JSON object gives the parts.
		if !strings.HasPrefix(strings.TrimSpace(text), "{") {
			return map[string]any{"formatted": text}, nil
		}
		var addr map[string]any
		if err := json.Unmarshal([]byte(text), &addr); err != nil {
			return nil, errors.New(`address must be plain text or a JSON object such as {"street_address": "12 Acacia Avenue", "locality": "London", "country": "GB"}`)
		}
		return addr, nil
	}
	return text, nil
}

// usersCreate adds a user and prints them. The profile is checked, and the
// email looked up, before the password is asked for, so that the operator
// does not type a password only to be told the email is wrong.
func usersCreate(ctx context.Context, r *usersRun) error {
	var u identity.User
	r.profile.apply(&u, r.given)
	u.Email = strings.TrimSpace(u.Email)
	if err := u.Validate(); err != nil {
		return err
	}
	if r.invite {
		if err := r.needMail("--invite"); err != nil {
			return err
		}
		created, err := r.accounts.Invite(ctx, u, "")
		if err != nil {
			return usersError(u.Email, u.Email, err)
		}
		fmt.Fprintf(r.e.stderr, "invitation mailed to %s, good for 7 days\n", created.Email)
		return r.show(created)
	}
	var password string
	if !r.noPassword && !r.invite {
		switch _, err := r.manager.GetByEmail(ctx, u.Email); {
		case err == nil:
			return usersError(u.Email, u.Email, identity.ErrEmailTaken)
		case !errors.Is(err, identity.ErrNotFound):
			return err
		}
		var err error
		if password, err = r.readPassword(ctx, u.Email); err != nil {
			return err
		}
	}
	var (
		created *identity.User
		err     error
	)
	if r.accounts != nil {
		// An unverified address gets a verification link.
		created, err = r.accounts.Create(ctx, u, password)
	} else {
		created, err = r.manager.Create(ctx, u, password)
	}
	if err != nil {
		return usersError(u.Email, u.Email, err)
	}
	r.noteVerification(created, true)
	return r.show(created)
}

// usersList prints every user.
func usersList(ctx context.Context, r *usersRun) error {
	us, err := r.manager.List(ctx)
	if err != nil {
		return err
	}
	if *r.output == outputJSON {
		if us == nil {
			us = []*identity.User{}
		}
		return writeJSON(r.e.stdout, us)
	}
	return writeUserList(r.e.stdout, us)
}

// usersGet prints one user.
func usersGet(ctx context.Context, r *usersRun) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	return r.show(u)
}

// usersUpdate changes the fields of a user that the flags name and leaves
// the rest as stored.
func usersUpdate(ctx context.Context, r *usersRun) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	update := r.manager.Update
	if r.accounts != nil {
		// A new, unverified address gets a verification link.
		update = r.accounts.Update
	}
	updated, err := update(ctx, u.ID, func(u *identity.User) error {
		r.profile.apply(u, r.given)
		return nil
	})
	if err != nil {
		return usersError(r.target, strings.TrimSpace(r.profile.email), err)
	}
	r.noteVerification(updated, updated.Email != u.Email)
	return r.show(updated)
}

// usersDisable stops a user signing in and, in the same transaction, ends
// their browser sessions and revokes their tokens, so that they are out at
// once rather than when their tokens expire.
func usersDisable(ctx context.Context, r *usersRun) error {
	return r.act(ctx, "disabled user", r.manager.Disable)
}

// usersEnable lets a disabled user sign in again.
func usersEnable(ctx context.Context, r *usersRun) error {
	return r.act(ctx, "enabled user", r.manager.Enable)
}

// usersUnlock lifts the throttle on a user's sign-ins.
func usersUnlock(ctx context.Context, r *usersRun) error {
	return r.act(ctx, "unlocked user", r.manager.Unlock)
}

// usersDelete removes a user with their sessions, consents and tokens.
func usersDelete(ctx context.Context, r *usersRun) error {
	return r.act(ctx, "deleted user", r.manager.Delete)
}

// usersResetMFA removes a user's second factor.
func usersResetMFA(ctx context.Context, r *usersRun) error {
	return r.act(ctx, "reset the second factor of", r.mfa.Reset)
}

// usersPasskeys lists a user's passkeys.
func usersPasskeys(ctx context.Context, r *usersRun) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	keys, err := r.passkeys.List(ctx, u.ID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(r.e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tADDED\tLAST USED")
	for _, k := range keys {
		last := "never"
		if !k.LastUsedAt.IsZero() {
			last = k.LastUsedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", passkey.EncodeID(k.ID), k.Name, k.CreatedAt.UTC().Format(time.RFC3339), last)
	}
	return tw.Flush()
}

func usersRemovePasskeyCommand(e env) *cobra.Command {
	cmd, r := usersSubcommand(e, &cobra.Command{
		Use:   "remove-passkey USER ID",
		Short: "Remove one of a user's passkeys",
		Long: "Removes one of the user's passkeys, for a user who lost the device it was on. ID is\n" +
			"as users passkeys lists it. reset-mfa removes them all.\n\n" + userArgHelp,
		Args: cobra.ExactArgs(2),
	}, usersRemovePasskey)
	// The common run reads USER alone; the passkey's ID is this
	// command's own.
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		r.passkeyID = args[1]
		return run(cmd, args[:1])
	}
	return cmd
}

// usersRemovePasskey removes one of a user's passkeys.
func usersRemovePasskey(ctx context.Context, r *usersRun) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	id, err := passkey.DecodeID(r.passkeyID)
	if err == nil {
		err = r.passkeys.Remove(ctx, u.ID, id)
	}
	if errors.Is(err, passkey.ErrNotFound) {
		return fmt.Errorf("%s (%s) has no passkey %q", u.Email, u.ID, r.passkeyID)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(r.e.stdout, "removed passkey %s of %s (%s)\n", r.passkeyID, u.Email, u.ID)
	return nil
}

// usersSetPassword replaces a user's password. The user is looked up first,
// so that an unknown USER is reported before the operator types anything.
func usersSetPassword(ctx context.Context, r *usersRun) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	password, err := r.readPassword(ctx, u.Email)
	if err != nil {
		return err
	}
	if err := r.manager.SetPassword(ctx, u.ID, password); err != nil {
		return usersError(r.target, u.Email, err)
	}
	fmt.Fprintf(r.e.stdout, "password set for %s (%s)\n", u.Email, u.ID)
	return nil
}

// act runs do on the user named by USER and reports it in one line that
// names the user both ways, so that a log of operator commands reads
// unambiguously.
func (r *usersRun) act(ctx context.Context, done string, do func(context.Context, string) error) error {
	u, err := r.find(ctx)
	if err != nil {
		return err
	}
	if err := do(ctx, u.ID); err != nil {
		return usersError(r.target, u.Email, err)
	}
	fmt.Fprintf(r.e.stdout, "%s %s (%s)\n", done, u.Email, u.ID)
	return nil
}

// find returns the user USER names: by email if it has an @, which no sub
// has, and by sub otherwise.
func (r *usersRun) find(ctx context.Context) (*identity.User, error) {
	var (
		u   *identity.User
		err error
	)
	if strings.Contains(r.target, "@") {
		u, err = r.manager.GetByEmail(ctx, r.target)
	} else {
		u, err = r.manager.Get(ctx, r.target)
	}
	if err != nil {
		return nil, usersError(r.target, "", err)
	}
	return u, nil
}

// usersError turns the Manager's expected errors into one line an operator
// can act on. who is the user as the operator named them, email the address
// that was being given to a user. A *validation.Error and
// identity.ErrWeakPassword already say what is wrong, and are returned as
// they are, like anything else.
func usersError(who, email string, err error) error {
	switch {
	case errors.Is(err, identity.ErrNotFound):
		return fmt.Errorf("no user %q", who)
	case errors.Is(err, identity.ErrEmailTaken):
		return fmt.Errorf("another user already has the email %s", email)
	case errors.Is(err, identity.ErrNoFactor):
		return fmt.Errorf("%s has no second factor to reset", who)
	case errors.Is(err, account.ErrHasPassword):
		return fmt.Errorf("%s has set a password, so there is nothing to invite them to; they can sign in, or use \"Forgot password?\"", who)
	case errors.Is(err, account.ErrNoInvitation):
		return fmt.Errorf("%s has no unused invitation to revoke", who)
	}
	return err
}

// readPassword gets a new password for the user with the given email and
// checks it against the policy before anything is stored. It never comes
// from the arguments, which other users of the machine can read in ps and
// which shells keep in their history. At a terminal it is typed twice
// without echo; otherwise it is the first line of stdin, which is how
// scripts and secret stores hand it over.
func (r *usersRun) readPassword(ctx context.Context, email string) (string, error) {
	if f, ok := r.e.stdin.(*os.File); ok && f == os.Stdin && term.IsTerminal(int(f.Fd())) {
		return promptPassword(ctx, int(f.Fd()), r.e.stderr, email)
	}
	password, err := firstLine(r.e.stdin)
	if err != nil {
		return "", err
	}
	if err := identity.CheckPassword(password, email); err != nil {
		return "", err
	}
	return password, nil
}

// firstLine returns the first line of in without its line ending. Only the
// line ending is trimmed: spaces are as much a part of a password as any
// other character.
func firstLine(in io.Reader) (string, error) {
	if in == nil {
		return "", errNoPassword
	}
	line, err := bufio.NewReader(io.LimitReader(in, maxPasswordLine)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errNoPassword
	}
	return line, nil
}

// promptPassword asks for a password at the terminal fd, prompting on
// prompt. The policy is checked after the first entry, so that a refused
// password need not be typed twice; the second entry must match, because
// a typo nobody saw would otherwise lock the user out.
func promptPassword(ctx context.Context, fd int, prompt io.Writer, email string) (string, error) {
	first, err := readHidden(ctx, fd, prompt, "Password: ")
	if err != nil {
		return "", err
	}
	if err := identity.CheckPassword(first, email); err != nil {
		return "", err
	}
	second, err := readHidden(ctx, fd, prompt, "Repeat password: ")
	if err != nil {
		return "", err
	}
	if first != second {
		return "", errors.New("the passwords do not match")
	}
	return first, nil
}

// readHidden reads one line from the terminal fd without echo. Ctrl-C
// cancels ctx while term.ReadPassword is blocked reading; the terminal's
// echo is then turned back on here, since ReadPassword cannot do it before
// the process exits.
func readHidden(ctx context.Context, fd int, prompt io.Writer, label string) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	fmt.Fprint(prompt, label)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		done <- result{b, err}
	}()
	select {
	case res := <-done:
		// The Enter that ended the line was not echoed either.
		fmt.Fprintln(prompt)
		if res.err != nil {
			return "", fmt.Errorf("read the password: %w", res.err)
		}
		return string(res.b), nil
	case <-ctx.Done():
		_ = term.Restore(fd, state)
		fmt.Fprintln(prompt)
		return "", errors.New("interrupted; nothing was changed")
	}
}

// show prints a user in the chosen format. The JSON is identity.User's own,
// which leaves the password hash out.
func (r *usersRun) show(u *identity.User) error {
	if *r.output == outputJSON {
		return writeJSON(r.e.stdout, u)
	}
	return writeUserTable(r.e.stdout, u)
}

// writeUserTable writes a user's fields one per line, named as the JSON
// output and the claims in tokens name them.
func writeUserTable(w io.Writer, u *identity.User) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(field, value string) {
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\n", field, value)
	}
	row("sub", u.ID)
	row("email", u.Email)
	row("email_verified", strconv.FormatBool(u.EmailVerified))
	row("name", u.Name)
	row("given_name", u.GivenName)
	row("family_name", u.FamilyName)
	for _, name := range slices.Sorted(maps.Keys(u.Claims)) {
		row(name, claimText(u.Claims[name]))
	}
	row("disabled", strconv.FormatBool(u.Disabled))
	row("created_at", u.CreatedAt.UTC().Format(time.RFC3339))
	row("updated_at", u.UpdatedAt.UTC().Format(time.RFC3339))
	return tw.Flush()
}

// claimText shows a claim's value in a table: strings as they are, and
// anything else (a boolean, an address) as JSON.
func claimText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// writeUserList writes one line per user, enough to find the one to look
// at with get.
func writeUserList(w io.Writer, us []*identity.User) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUB\tEMAIL\tNAME\tDISABLED\tCREATED")
	for _, u := range us {
		name := u.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, name,
			strconv.FormatBool(u.Disabled), u.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
