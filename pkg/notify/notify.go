// Package notify tells users by email when something happens to their
// account that they should know of, so that someone who did not do it
// can act: a password changed, an email address changed, two-step
// verification turned on or off, recovery codes used or renewed, a
// sign-in from a browser new to the account, and unusual activity the
// risk policy (pkg/risk) says to tell them of.
//
// A Notifier is an audit.Reactor. It reads the events the account's
// changes record anyway and writes its mail to the outbox (pkg/mail) in
// the transaction that records them: a notice goes out if and only if its
// change commits, and no change can happen without the event that tells
// of it. Which notices are sent is the operator's choice
// (LATCHKEY_NOTIFICATIONS, by the words in config.Notifications).
//
// A notice never holds a secret: it says what happened, when, from which
// browser and address (unless an administrator did it), and what to do if
// it was not the user. Its links lead to the sign-in and account pages,
// never to a link that acts by itself.
package notify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/device"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/risk"
	"github.com/latchkey/latchkey/pkg/server"
)

// The notices, by the word LATCHKEY_NOTIFICATIONS turns each on with.
const (
	Password      = "password"
	Email         = "email"
	MFA           = "mfa"
	RecoveryCodes = "recovery-codes"
	NewBrowser    = "new-browser"
)

// Kinds lists the notices, as config.Notifications must.
var Kinds = []string{Password, Email, MFA, RecoveryCodes, NewBrowser}

// notice is what an audit action tells the user, and how.
type notice struct {
	// kind is the LATCHKEY_NOTIFICATIONS word that turns it on; "" for a
	// notice always on.
	kind string
	// template names the mail (web/templates/mail/LOCALE/NAME.txt).
	template string
	// applies, if set, says whether the event is news: a sign-in is only
	// when the browser is new to the account.
	applies func(audit.Event) bool
}

// notices maps each audit action that users are told of to its notice.
// The events are recorded by pkg/identity (passwords, second factors,
// recovery codes), pkg/signin (sign-ins), pkg/passkey (passkeys added and
// removed, and one refused as a possible copy) and the email change.
var notices = map[string]notice{
	audit.UserPasswordSet: {kind: Password, template: "password-changed", applies: func(e audit.Event) bool {
		// A first password changes nothing the user had.
		first, _ := e.Details["first"].(bool)
		return !first
	}},
	audit.UserEmailChanged:    {kind: Email, template: "email-changed"},
	audit.MFAEnrolled:         {kind: MFA, template: "mfa-enabled"},
	audit.MFADisabled:         {kind: MFA, template: "mfa-disabled"},
	audit.MFAReset:            {kind: MFA, template: "mfa-reset"},
	audit.MFARecoveryRenewed:  {kind: RecoveryCodes, template: "recovery-codes-renewed"},
	audit.MFARecoveryCodeUsed: {kind: RecoveryCodes, template: "recovery-code-used"},
	// A passkey refused as a possible copy (pkg/passkey): the user must
	// hear of it, since only they can tell whether the copy is theirs.
	audit.PasskeyCloneSuspected: {kind: MFA, template: "passkey-clone-suspected"},
	// A passkey is a way to sign in, as an authenticator app is: one
	// added by whoever stole a session would let them back in.
	audit.PasskeyRegistered: {kind: MFA, template: "passkey-added"},
	audit.PasskeyRemoved:    {kind: MFA, template: "passkey-removed"},
	// The risk policy's notify action (pkg/risk): the policy decides
	// when, so the notice has no LATCHKEY_NOTIFICATIONS word of its own.
	audit.RiskDetected: {template: "unusual-activity", applies: func(e audit.Event) bool {
		return slices.Contains(words(e.Details[risk.DetailActions]), string(risk.Notify))
	}},
	audit.LoginSucceeded: {kind: NewBrowser, template: "new-browser", applies: func(e audit.Event) bool {
		// Proving it again (step-up) on a browser already signed in is
		// not a new sign-in. pkg/signin names the detail NewBrowser.
		isNew, _ := e.Details["new_browser"].(bool)
		stepUp, _ := e.Details["step_up"].(bool)
		return isNew && !stepUp
	}},
}

// Templates lists the mails a Notifier may send, by template name.
func Templates() []string {
	var out []string
	for _, nt := range notices {
		out = append(out, nt.template)
	}
	slices.Sort(out)
	return out
}

// Store finds the user an event is about (storage/postgres), in the
// transaction ctx carries.
type Store interface {
	UserByID(ctx context.Context, id string) (*identity.User, error)
}

// Outbox writes mail in the transaction ctx carries (pkg/mail).
type Outbox interface {
	Enqueue(ctx context.Context, m mail.Message) error
}

// Config says which notices to send and where their links lead.
type Config struct {
	// Kinds are the notices to send (config.Notifications words); others
	// are not sent.
	Kinds []string
	// SignInURL is the sign-in page, where "Forgot password?" is;
	// AccountURL the account page, where the user sees and ends their
	// sign-ins and changes their password and second factor.
	SignInURL, AccountURL string
}

// Notifier mails users the notices of the changes to their accounts.
type Notifier struct {
	store  Store
	outbox Outbox
	on     map[string]bool
	cfg    Config
}

var _ audit.Reactor = (*Notifier)(nil)

// New returns a Notifier that finds users in store and writes to outbox.
func New(store Store, outbox Outbox, cfg Config) *Notifier {
	on := map[string]bool{}
	for _, k := range cfg.Kinds {
		on[k] = true
	}
	return &Notifier{store: store, outbox: outbox, on: on, cfg: cfg}
}

// Data is what a notice's templates show.
type Data struct {
	// Name is the user's name, to greet them by; "" if they have none.
	Name string
	// Account is the account's email address (before the change, for an
	// email change).
	Account string
	// When is when it happened, in the user's zoneinfo if they have one
	// this node knows, and in UTC otherwise.
	When time.Time
	// Browser names the browser it was done from, as the account page
	// does ("Firefox on Linux"), and IP its address; both "" when an
	// administrator did it, or when not known.
	Browser, IP string
	// ByAdmin says an administrator did it, through the admin API or the
	// CLI, rather than the user or someone signed in as them.
	ByAdmin bool
	// NewEmail is the address an email change moved the account to, with
	// all but the first character of its local part hidden: the old
	// address learns where the account went, and little more.
	NewEmail string
	// CodesLeft is how many recovery codes the user has left, after one
	// was used.
	CodesLeft int
	// Passkey is the name the user gave a passkey just added.
	Passkey string
	// Signals are the risk signals (pkg/risk) a risk notice is about, by
	// name, for the template to put in words; StepUp says the sign-in
	// was asked for the second factor because of them.
	Signals []string
	StepUp  bool
	// SignInURL and AccountURL are Config's.
	SignInURL, AccountURL string
}

// ReactsTo reports whether action is one whose events may be news to
// the user, with its notice on.
func (n *Notifier) ReactsTo(action string) bool {
	nt, ok := notices[action]
	return ok && (nt.kind == "" || n.on[nt.kind])
}

// React mails the notice of e, if e is one the user is told of and the
// operator has it on, in the transaction that records e. An event about a
// user who no longer exists mails nothing.
func (n *Notifier) React(ctx context.Context, e audit.Event) error {
	if !n.ReactsTo(e.Action) {
		return nil
	}
	nt := notices[e.Action]
	if nt.applies != nil && !nt.applies(e) {
		return nil
	}
	sub, ok := strings.CutPrefix(e.Target, "user:")
	if !ok {
		return nil
	}
	u, err := n.store.UserByID(ctx, sub)
	if errors.Is(err, identity.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("notify: %s: %w", e.Action, err)
	}
	d := Data{
		Name: u.Name, Account: u.Email, When: e.At.In(zone(u)),
		ByAdmin:   byAdmin(e.Actor),
		SignInURL: n.cfg.SignInURL, AccountURL: n.cfg.AccountURL,
	}
	if d.When.IsZero() {
		d.When = time.Now().In(zone(u))
	}
	if !d.ByAdmin {
		d.IP = e.IP
		if agent := server.UserAgent(ctx); agent != "" {
			d.Browser = device.Describe(agent)
		}
	}
	to := u.Email
	switch e.Action {
	case audit.UserEmailChanged:
		// Told to the address the account had: the new one is the
		// change's own, and whoever made it reads that.
		old, _ := e.Details["old_email"].(string)
		if old == "" {
			return nil
		}
		to, d.Account = old, old
		newEmail, _ := e.Details["new_email"].(string)
		d.NewEmail = mask(newEmail)
	case audit.MFARecoveryCodeUsed:
		d.CodesLeft = count(e.Details["codes_left"])
	case audit.PasskeyRegistered:
		d.Passkey, _ = e.Details["name"].(string)
	case audit.RiskDetected:
		d.Signals = words(e.Details[risk.DetailSignals])
		d.StepUp = slices.Contains(words(e.Details[risk.DetailActions]), string(risk.StepUp))
	}
	locale, _ := u.Claims["locale"].(string)
	err = n.outbox.Enqueue(ctx, mail.Message{Template: nt.template, To: to, Locale: locale, Data: d})
	if errors.Is(err, mail.ErrAddress) {
		// An address no mail server takes (one stored before the rules
		// of identity.User.Validate) cannot be told; the change must not
		// fail for it, or such a user could not even sign in.
		return nil
	}
	if err != nil {
		return fmt.Errorf("notify: %s: %w", e.Action, err)
	}
	return nil
}

// words reads a list of words from an event's details, which hold a
// []string as recorded and a []any as read back.
func words(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, w := range l {
			if s, ok := w.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// count reads a number from an event's details, which hold an int as
// recorded and a float64 as read back.
func count(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case float64:
		return int(n)
	}
	return 0
}

// byAdmin reports whether actor is an administrator: an admin API client
// or the CLI (audit.Event.Actor).
func byAdmin(actor string) bool {
	return strings.HasPrefix(actor, "client:") || strings.HasPrefix(actor, "cli:")
}

// zone is the user's time zone, from their zoneinfo claim, if this node
// knows it; UTC otherwise.
func zone(u *identity.User) *time.Location {
	if name, _ := u.Claims["zoneinfo"].(string); name != "" {
		if loc, err := time.LoadLocation(name); err == nil {
			return loc
		}
	}
	return time.UTC
}

// mask hides all of an address's local part but its first character:
// "ada.king@example.com" is "a…@example.com".
func mask(address string) string {
	local, domain, ok := strings.Cut(address, "@")
	if !ok || local == "" {
		return ""
	}
	r, _ := utf8.DecodeRuneInString(local)
	return string(r) + "…@" + domain
}
