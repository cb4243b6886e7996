// Package audit is Latchkey's record of who changed what: every admin
// change and every security event (sign-ins, second-factor failures,
// consents, secret and key rotations, revocations, refresh-token reuse).
//
// An event is written in the transaction of the change it records, so that
// a change that rolls back leaves no event and no committed change lacks
// one. Once committed, each event is also logged as a structured line, for
// log pipelines that watch for them.
//
// Who acted, from where, and under which request are read from the
// context: the admin API and the sign-in pages put them there (WithActor,
// and pkg/server's request ID and client IP), and the CLI names the
// operating-system user.
//
// A Log may be given Reactors, which act on each event inside the
// transaction that writes it: what they write (pkg/notify's mail to the
// user) then commits with the change, or rolls back with it.
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/pkg/server"
)

// Event is one entry of the audit log.
type Event struct {
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// Actor is who acted: "client:ID" for an admin API caller, "user:SUB"
	// for a user on the sign-in pages, "cli:NAME" for the CLI, "anonymous"
	// for someone not yet known (a failed sign-in).
	Actor string `json:"actor"`
	// Action says what happened, as noun.verb: "user.disabled",
	// "login.failed", "client.secret_rotated". Actions lists them all.
	Action string `json:"action"`
	// Target is what it happened to, named like Actor ("client:ID",
	// "user:SUB", "role:NAME", "key:KID", "mail:ID"); empty if nothing in
	// particular.
	Target    string `json:"target"`
	IP        string `json:"ip"`
	RequestID string `json:"request_id"`
	// Details holds what else matters, never a secret. Strings are kept
	// to MaxDetailChars characters and lists and objects to
	// MaxDetailItems members; an event cut to fit says so (Truncated).
	Details map[string]any `json:"details"`
}

// The actions Latchkey records.
const (
	ClientCreated       = "client.created"
	ClientUpdated       = "client.updated"
	ClientDeleted       = "client.deleted"
	ClientSecretRotated = "client.secret_rotated"
	ClientTokensRevoked = "client.tokens_revoked" // #nosec G101 -- an audit action name, not a credential
	// ClientRegistered is a client that registered itself (RFC 7591,
	// pkg/registration): its actor is "anonymous" for open registration,
	// or the initial access token it used ("registration_token:ID").
	// Its later changes through RFC 7592 are client.updated and
	// client.deleted with the client itself as actor.
	ClientRegistered = "client.registered"
	// RegistrationTokenCreated and RegistrationTokenRevoked are initial
	// access tokens for dynamic client registration, made and revoked by
	// an admin; their target is "registration_token:ID".
	RegistrationTokenCreated = "registration_token.created" // #nosec G101 -- an audit action name, not a credential
	RegistrationTokenRevoked = "registration_token.revoked" // #nosec G101 -- an audit action name, not a credential

	UserCreated         = "user.created"
	UserUpdated         = "user.updated"
	UserDeleted         = "user.deleted"
	UserDisabled        = "user.disabled"
	UserEnabled         = "user.enabled"
	UserPasswordSet     = "user.password_set"
	UserSignedOut       = "user.signed_out_everywhere"
	UserSessionRevoked  = "user.session_revoked"
	UserRoleAssigned    = "user.role_assigned"
	UserRoleUnassigned  = "user.role_unassigned"
	MFAEnrolled         = "mfa.enrolled"
	MFADisabled         = "mfa.disabled"
	MFAReset            = "mfa.reset"
	MFARecoveryRenewed  = "mfa.recovery_codes_renewed"
	MFARecoveryCodeUsed = "mfa.recovery_code_used"
	MFAFailed           = "mfa.failed"
	MFAThrottled        = "mfa.throttled"
	MFALocked           = "mfa.locked"
	// DeviceTrusted is a browser trusted to skip the second factor
	// (pkg/trust); DeviceForgotten one, or with "all" every one, of a
	// user's trusted browsers forgotten by the user or an admin.
	DeviceTrusted        = "device.trusted"
	DeviceForgotten      = "device.forgotten"
	LoginSucceeded       = "login.succeeded"
	LoginFailed          = "login.failed"
	LoginThrottled       = "login.throttled"
	LoginLocked          = "login.locked"
	UserUnlocked         = "user.unlocked"
	ConsentGranted       = "consent.granted"
	ConsentRevoked       = "consent.revoked"
	RoleCreated          = "role.created"
	RoleUpdated          = "role.updated"
	RoleDeleted          = "role.deleted"
	KeyRotated           = "key.rotated"
	KeyRetired           = "key.retired"
	RefreshReuseDetected = "token.refresh_reuse_detected"
	MailRetried          = "mail.retried"
	MailTestSent         = "mail.test_sent"

	// What the links Latchkey mails lead to (pkg/account).
	UserPasswordResetRequested = "user.password_reset_requested"
	UserInvited                = "user.invited"
	UserInvitationRevoked      = "user.invitation_revoked"
	UserVerificationSent       = "user.email_verification_sent"
	UserEmailVerified          = "user.email_verified"
	// UserEmailChanged's details are old_email and new_email: the
	// security notification to the old address is read from them.
	UserEmailChanged = "user.email_changed"
	UserSignedUp     = "user.signed_up"

	// Passkeys (pkg/passkey). PasskeyCloneSuspected is an answer whose
	// signature counter did not rise, refused as from a possible copy of
	// the key; PasskeyFailed any other refused answer, its details saying
	// why (reason: origin, rp_id, challenge, unknown_credential, ...).
	PasskeyRegistered     = "passkey.registered"
	PasskeyRenamed        = "passkey.renamed"
	PasskeyRemoved        = "passkey.removed"
	PasskeyCloneSuspected = "passkey.clone_suspected" // #nosec G101 -- an audit action name, not a credential
	PasskeyFailed         = "passkey.failed"

	// Risk (pkg/risk). RiskDetected is a signal the policy acted on:
	// details signals, actions, reasons, and blocked_until for a block;
	// RiskAlert accompanies it when an action is alert, for operators'
	// alerting to follow.
	RiskDetected = "risk.detected"
	RiskAlert    = "risk.alert"
	// Webhook subscriptions (pkg/events). WebhookDisabled is also
	// recorded by a node, as actor "latchkey", when a subscription's
	// deliveries have kept failing; WebhookTested sends a ping event to
	// the subscription named.
	WebhookCreated       = "webhook.created"
	WebhookUpdated       = "webhook.updated"
	WebhookDeleted       = "webhook.deleted"
	WebhookEnabled       = "webhook.enabled"
	WebhookDisabled      = "webhook.disabled"
	WebhookSecretRotated = "webhook.secret_rotated" // #nosec G101 -- an audit action name, not a credential
	WebhookTested        = "webhook.tested"

	// API keys (pkg/apikey), targeted at their owner ("client:ID" or
	// "user:SUB") with the key's ID in details. APIKeyUsedFromNewAddress
	// is the first use of a key from an address a resource server reported
	// at introspection, recorded once per key and address; its actor is
	// the introspecting client. APIKeyAddressesCapped is recorded once per
	// key, when a use from yet another address finds the key's record of
	// addresses full: from then on new addresses are neither recorded nor
	// audited one by one.
	APIKeyAddressesCapped    = "api_key.addresses_capped"      // #nosec G101 -- an audit action name, not a credential
	APIKeyCreated            = "api_key.created"               // #nosec G101 -- an audit action name, not a credential
	APIKeyRevoked            = "api_key.revoked"               // #nosec G101 -- an audit action name, not a credential
	APIKeyUsedFromNewAddress = "api_key.used_from_new_address" // #nosec G101 -- an audit action name, not a credential
	// Usage plans (pkg/usage). PlanAssigned and PlanUnassigned target the
	// subject ("client:ID" or "key:ID"), with the plan in their details.
	PlanCreated    = "plan.created"
	PlanUpdated    = "plan.updated"
	PlanDeleted    = "plan.deleted"
	PlanAssigned   = "plan.assigned"
	PlanUnassigned = "plan.unassigned"
	// RFC 8707 resources (pkg/resource).
	ResourceCreated = "resource.created"
	ResourceUpdated = "resource.updated"
	ResourceDeleted = "resource.deleted"
	// DeviceApproved and DeviceDenied: a user approved or denied a device
	// authorization request (RFC 8628) on /device; the target is the
	// client.
	DeviceApproved = "device.approved"
	DeviceDenied   = "device.denied"
)

// Actions lists every action, for documentation and for validating filters.
var Actions = []string{
	ClientCreated, ClientUpdated, ClientDeleted, ClientSecretRotated, ClientTokensRevoked,
	ClientRegistered, RegistrationTokenCreated, RegistrationTokenRevoked,
	UserCreated, UserUpdated, UserDeleted, UserDisabled, UserEnabled, UserPasswordSet,
	UserSignedOut, UserSessionRevoked, UserRoleAssigned, UserRoleUnassigned,
	MFAEnrolled, MFADisabled, MFAReset, MFARecoveryRenewed, MFARecoveryCodeUsed, MFAFailed, MFAThrottled, MFALocked,
	DeviceTrusted, DeviceForgotten,
	LoginSucceeded, LoginFailed, LoginThrottled, LoginLocked, UserUnlocked, ConsentGranted, ConsentRevoked,
	RoleCreated, RoleUpdated, RoleDeleted, KeyRotated, KeyRetired, RefreshReuseDetected,
	MailRetried, MailTestSent,
	UserPasswordResetRequested, UserInvited, UserInvitationRevoked, UserVerificationSent,
	UserEmailVerified, UserEmailChanged, UserSignedUp,
	PasskeyRegistered, PasskeyRenamed, PasskeyRemoved, PasskeyCloneSuspected, PasskeyFailed,
	RiskDetected, RiskAlert,
	WebhookCreated, WebhookUpdated, WebhookDeleted, WebhookEnabled, WebhookDisabled, WebhookSecretRotated, WebhookTested,
	APIKeyCreated, APIKeyRevoked, APIKeyUsedFromNewAddress, APIKeyAddressesCapped,
	PlanCreated, PlanUpdated, PlanDeleted, PlanAssigned, PlanUnassigned,
	ResourceCreated, ResourceUpdated, ResourceDeleted,
	DeviceApproved, DeviceDenied,
}

// Changed names the top-level JSON fields that differ between two versions
// of a document, sorted, for an event's details: what an update changed,
// without the values, which may be personal.
func Changed(before, after any) []string {
	var b, a map[string]json.RawMessage
	bj, _ := json.Marshal(before)
	aj, _ := json.Marshal(after)
	_ = json.Unmarshal(bj, &b)
	_ = json.Unmarshal(aj, &a)
	changed := []string{}
	for k, v := range a {
		if k != "updated_at" && !bytes.Equal(v, b[k]) {
			changed = append(changed, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	return changed
}

// Client, User, Role, Key and Mail name targets and actors.
func Client(id string) string { return "client:" + id }

// User names a user by sub.
func User(sub string) string { return "user:" + sub }

// Role names a role.
func Role(name string) string { return "role:" + name }

// Resource names an RFC 8707 resource by its URI.
func Resource(uri string) string { return "resource:" + uri }

// Plan names a usage plan as a target.
func Plan(name string) string { return "plan:" + name }

// Key names a signing key by kid.
func Key(kid string) string { return "key:" + kid }

// Mail names a message in the mail outbox by its ID.
func Mail(id int64) string { return "mail:" + strconv.FormatInt(id, 10) }

// Webhook names a webhook subscription by its ID.
func Webhook(id string) string { return "webhook:" + id }

// System is the actor of what a node does by itself, such as disabling a
// webhook subscription whose deliveries keep failing.
const System = "latchkey"

// Anonymous is the actor of an event before anyone is known, such as a
// failed sign-in.
const Anonymous = "anonymous"

type actorKey struct{}

// WithActor returns a context whose events are recorded as done by actor.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorOf returns the actor ctx carries, or Anonymous.
func ActorOf(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return Anonymous
}

// Store keeps events. InTx runs f in a transaction carried by the context
// it is given, which every store call made with that context joins, so
// that InsertAuditEvent and the change land together; inside a
// transaction already, it joins that one.
type Store interface {
	InTx(ctx context.Context, f func(ctx context.Context) error) error
	InsertAuditEvent(ctx context.Context, e *Event) error
	AuditEvents(ctx context.Context, q Query) ([]Event, error)
}

// Query selects events, newest first. Zero fields do not filter.
type Query struct {
	Actor, Action, Target string
	Since, Until          time.Time
	// BeforeID continues a listing after the event with this ID.
	BeforeID int64
	// Limit caps the events returned; 0 returns all.
	Limit int
}

// Reactor acts on an event as it is recorded, in the transaction that
// records it: ctx carries that transaction, and store calls made with it
// join it. An error rolls back the event and the change it records, so a
// reactor's writes happen if and only if the change commits. React is
// called only for the actions ReactsTo names.
type Reactor interface {
	React(ctx context.Context, e Event) error
	// ReactsTo reports whether React may act on events with action, so
	// that an event no reactor wants (a failed sign-in, which anyone can
	// cause) is recorded without a transaction of its own.
	ReactsTo(action string) bool
}

// Log records events.
type Log struct {
	store    Store
	logger   *slog.Logger
	reactors []Reactor
}

// New returns a Log over store that also writes each committed event to
// logger, and has reactors act on each event in its transaction.
func New(store Store, logger *slog.Logger, reactors ...Reactor) *Log {
	return &Log{store: store, logger: logger, reactors: reactors}
}

// Change runs change in a transaction and records the event it returns in
// that same transaction: both commit, or neither does. change receives the
// transaction's context and must make its writes with it. An event without
// an Action records nothing, for a change that found nothing to do.
func (l *Log) Change(ctx context.Context, change func(ctx context.Context) (Event, error)) error {
	var e Event
	err := l.store.InTx(ctx, func(ctx context.Context) error {
		var err error
		if e, err = change(ctx); err != nil || e.Action == "" {
			return err
		}
		return l.insert(ctx, &e)
	})
	if err != nil || e.Action == "" {
		return err
	}
	l.log(ctx, e)
	return nil
}

// Record records an event that changes nothing else, such as a failed
// sign-in. Inside a transaction, it joins it; outside one, it begins one
// if a reactor reacts to the event, so that what the reactor writes
// commits with the event.
func (l *Log) Record(ctx context.Context, e Event) error {
	insert := func(ctx context.Context) error { return l.insert(ctx, &e) }
	var err error
	if slices.ContainsFunc(l.reactors, func(r Reactor) bool { return r.ReactsTo(e.Action) }) {
		err = l.store.InTx(ctx, insert)
	} else {
		err = insert(ctx)
	}
	if err != nil {
		return err
	}
	l.log(ctx, e)
	return nil
}

// List returns the events q selects, newest first.
func (l *Log) List(ctx context.Context, q Query) ([]Event, error) {
	return l.store.AuditEvents(ctx, q)
}

// insert fills in who, where and which request from ctx, unless the event
// names its actor itself, bounds its details, stores it, and has the
// reactors act on it, all with ctx, whose transaction they join.
func (l *Log) insert(ctx context.Context, e *Event) error {
	if e.Actor == "" {
		e.Actor = ActorOf(ctx)
	}
	e.IP = server.ClientIP(ctx)
	e.RequestID = server.RequestID(ctx)
	e.Details = boundDetails(e.Details)
	if err := l.store.InsertAuditEvent(ctx, e); err != nil {
		return err
	}
	for _, r := range l.reactors {
		if !r.ReactsTo(e.Action) {
			continue
		}
		if err := r.React(ctx, *e); err != nil {
			return fmt.Errorf("audit: react to %s: %w", e.Action, err)
		}
	}
	return nil
}

// Bounds on an event's details. Details hold what callers sent, such as
// the email typed at sign-in by someone nobody knows yet, and events are
// kept for LATCHKEY_AUDIT_RETENTION: each must stay small whatever was
// sent. Every value Latchkey records fits (an email has at most 254
// characters, a client name 200).
const (
	// MaxDetailChars is the most characters a string in the details keeps.
	MaxDetailChars = 256
	// MaxDetailItems is the most members a list or object keeps.
	MaxDetailItems = 64
)

// Truncated is the detail set, to true, on an event whose details were
// cut to the bounds.
const Truncated = "truncated"

// boundDetails returns a copy of details with every string cut to
// MaxDetailChars characters and every list and object to MaxDetailItems
// members, at any depth, and Truncated set if anything was cut.
func boundDetails(details map[string]any) map[string]any {
	cut := false
	out, _ := bound(reflect.ValueOf(details), &cut).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	if cut {
		out[Truncated] = true
	}
	return out
}

// bound is boundDetails for one value, which it returns as JSON would see
// it: strings, []any, map[string]any, or the value itself.
func bound(v reflect.Value, cut *bool) any {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		if utf8.RuneCountInString(s) <= MaxDetailChars {
			return s
		}
		*cut = true
		i, n := 0, 0
		for i = range s {
			if n == MaxDetailChars {
				break
			}
			n++
		}
		return s[:i]
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Interface() // []byte: JSON writes it as base64; none is recorded
		}
		n := v.Len()
		if n > MaxDetailItems {
			n, *cut = MaxDetailItems, true
		}
		out := make([]any, n)
		for i := range n {
			out[i] = bound(v.Index(i), cut)
		}
		return out
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return v.Interface()
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		if len(keys) > MaxDetailItems {
			keys, *cut = keys[:MaxDetailItems], true
		}
		out := make(map[string]any, len(keys))
		for _, k := range keys {
			out[bound(k, cut).(string)] = bound(v.MapIndex(k), cut)
		}
		return out
	case reflect.Invalid:
		return nil
	}
	return v.Interface()
}

func (l *Log) log(ctx context.Context, e Event) {
	l.logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.Int64("id", e.ID),
		slog.String("action", e.Action),
		slog.String("actor", e.Actor),
		slog.String("target", e.Target),
		slog.String("ip", e.IP),
		slog.String("request_id", e.RequestID),
		slog.Any("details", e.Details),
	)
}
