package risk

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
)

// Seen is a network a user signed in from: where GeoIP put it, and when
// they first and last did.
type Seen struct {
	Network             netip.Prefix
	Place               Place
	FirstSeen, LastSeen time.Time
}

// Store keeps what the assessment remembers (storage/postgres): the
// networks each user signed in from, failed sign-ins by network and
// account for a short window, and latches, each a key held until a time,
// which blocks and once-per-window signals are made of. Every node shares
// them.
type Store interface {
	// Networks lists userID's networks last seen after since, latest
	// first, at most limit.
	Networks(ctx context.Context, userID string, since time.Time, limit int) ([]Seen, error)
	// SeeNetwork records that userID signed in from s.Network, at
	// s.Place, now; it is forgotten after keep unless seen again.
	SeeNetwork(ctx context.Context, userID string, s Seen, keep time.Duration) error
	// RecordFailure records a failed sign-in from network at account (an
	// identity.AccountKey), kept for window.
	RecordFailure(ctx context.Context, network string, account []byte, window time.Duration) error
	// FailureSpread counts, within window, the distinct accounts that
	// failed from network and the distinct networks that failed at
	// account.
	FailureSpread(ctx context.Context, network string, account []byte, window time.Duration) (accounts, networks int, err error)
	// Latch holds key until d from now, with reason, unless it is held
	// already: placed says this call took it. Of parallel calls on every
	// node, one takes it.
	Latch(ctx context.Context, key, reason string, d time.Duration) (placed bool, err error)
	// Latched returns the latest time any of keys is held until, if one
	// is held now.
	Latched(ctx context.Context, keys []string) (until time.Time, held bool, err error)
}

// Auditor records the risk events (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
	Record(ctx context.Context, e audit.Event) error
}

// Accounts finds the user an email names, to tell them that their account
// is being guessed at (pkg/identity).
type Accounts interface {
	GetByEmail(ctx context.Context, email string) (*identity.User, error)
}

// Observer counts signals and actions, for metrics: each argument is a
// Signal or Action name, never who.
type Observer interface {
	RiskSignal(signal string)
	RiskAction(action string)
}

// Details of the risk events.
const (
	// DetailSignals lists the signals seen, DetailActions the actions the
	// policy took, DetailReasons says why each signal fired, by signal.
	DetailSignals = "signals"
	DetailActions = "actions"
	DetailReasons = "reasons"
	// DetailBlockedUntil is when a block placed ends (RFC 3339).
	DetailBlockedUntil = "blocked_until"
)

// historyRows bounds the networks one assessment reads: a user seen on
// more in the history period is compared with the latest of them.
const historyRows = 100

// Assessor is the risk assessment: it finds the signals at each sign-in
// and in failed ones, and has the policy act on them. It is also an
// audit.Reactor (react.go). Geo, Accounts and Metrics may be nil.
type Assessor struct {
	Policy   Policy
	Geo      Geo
	Store    Store
	Audit    Auditor
	Accounts Accounts
	Metrics  Observer
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// Attempt is a sign-in whose password was right, to be assessed.
type Attempt struct {
	UserID, Email string
	Addr          netip.Addr
	// NewDevice says the browser has no device cookie for the account
	// (pkg/device).
	NewDevice bool
	// CanStepUp says the user has a second factor to be asked for.
	CanStepUp bool
}

// Decision is what the policy made of an attempt.
type Decision struct {
	Signals []Signal
	Actions []Action
	Reasons map[Signal]string
	// StepUp asks for the second factor even on a trusted browser.
	StepUp bool
	// BlockedUntil, if not zero, refuses the sign-in until then.
	BlockedUntil time.Time
}

// Signalled reports whether anything was seen.
func (d Decision) Signalled() bool { return len(d.Signals) > 0 }

// Names are the decision's signals and actions as words, for the
// sign-in's audit event.
func (d Decision) Names() (signals, actions []string) {
	for _, s := range d.Signals {
		signals = append(signals, string(s))
	}
	for _, a := range d.Actions {
		actions = append(actions, string(a))
	}
	return signals, actions
}

func (a *Assessor) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// GeoOn reports whether the geographic signals (new_country,
// impossible_travel) can fire.
func (a *Assessor) GeoOn() bool { return a.Geo != nil }

// Assess weighs at against the user's history and applies the policy:
// one read of the history, and, when the policy acts beyond allow, a
// risk.detected event (and risk.alert for an alert) in one transaction,
// whose reactors mail the user for notify. The history itself is written
// when the sign-in succeeds (React on login.succeeded), so that a
// password whose second factor never comes teaches it nothing.
func (a *Assessor) Assess(ctx context.Context, at Attempt) (Decision, error) {
	now := a.now()
	history, err := a.Store.Networks(ctx, at.UserID, now.Add(-a.Policy.Limits.History), historyRows)
	if err != nil {
		return Decision{}, fmt.Errorf("risk: assess: %w", err)
	}
	signals, reasons := a.Policy.weigh(a.Geo, at, history, now)
	d := a.decide(signals, reasons)
	if d.StepUp && !at.CanStepUp {
		// A user with no second factor cannot be asked for one: the
		// sign-in goes on, truthfully the password's, and the user is
		// told instead.
		d.StepUp = false
		d.Actions = slices.DeleteFunc(d.Actions, func(x Action) bool { return x == StepUp })
		if !slices.Contains(d.Actions, Notify) {
			d.Actions = append(d.Actions, Notify)
		}
		d.Reasons["step_up"] = "the user has no second factor to ask for; told instead"
	}
	if rule := a.strictestBlock(d.Signals); rule > 0 {
		key := blockKey(accountScope(at.Email))
		if _, err := a.Store.Latch(ctx, key, string(d.Signals[0]), rule); err != nil {
			return Decision{}, fmt.Errorf("risk: block: %w", err)
		}
		if d.BlockedUntil, _, err = a.Store.Latched(ctx, []string{key}); err != nil {
			return Decision{}, fmt.Errorf("risk: block: %w", err)
		}
	}
	a.count(d)
	if !d.acts() {
		return d, nil
	}
	if err := a.record(ctx, audit.User(at.UserID), d, nil); err != nil {
		return Decision{}, err
	}
	return d, nil
}

// decide is the policy's answer to signals: every action of their rules,
// once each, with allow only when nothing else is done.
func (a *Assessor) decide(signals []Signal, reasons map[Signal]string) Decision {
	d := Decision{Signals: signals, Reasons: reasons}
	if d.Reasons == nil {
		d.Reasons = map[Signal]string{}
	}
	for _, s := range signals {
		for _, act := range a.Policy.Rules[s].Actions {
			if act != Allow && !slices.Contains(d.Actions, act) {
				d.Actions = append(d.Actions, act)
			}
		}
	}
	if len(signals) > 0 && len(d.Actions) == 0 {
		d.Actions = []Action{Allow}
	}
	d.StepUp = slices.Contains(d.Actions, StepUp)
	return d
}

// acts reports whether the decision does more than allow.
func (d Decision) acts() bool {
	return slices.ContainsFunc(d.Actions, func(x Action) bool { return x != Allow })
}

// strictestBlock is the longest block the rules of signals ask for, or 0.
func (a *Assessor) strictestBlock(signals []Signal) time.Duration {
	var longest time.Duration
	for _, s := range signals {
		if r := a.Policy.Rules[s]; r.Has(Block) {
			longest = max(longest, r.BlockFor)
		}
	}
	return longest
}

// count tells the metrics of d.
func (a *Assessor) count(d Decision) {
	if a.Metrics == nil {
		return
	}
	for _, s := range d.Signals {
		a.Metrics.RiskSignal(string(s))
	}
	for _, act := range d.Actions {
		a.Metrics.RiskAction(string(act))
	}
}

// record writes d as a risk.detected event about target ("" for none),
// with extra details, and a risk.alert event beside it if d alerts, in
// the transaction ctx carries or a new one.
func (a *Assessor) record(ctx context.Context, target string, d Decision, extra map[string]any) error {
	signals, actions := d.Names()
	reasons := map[string]any{}
	for s, r := range d.Reasons {
		reasons[string(s)] = r
	}
	details := map[string]any{DetailSignals: signals, DetailActions: actions, DetailReasons: reasons}
	if !d.BlockedUntil.IsZero() {
		details[DetailBlockedUntil] = d.BlockedUntil.UTC().Format(time.RFC3339)
	}
	for k, v := range extra {
		details[k] = v
	}
	err := a.Audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if slices.Contains(d.Actions, Alert) {
			if err := a.Audit.Record(ctx, audit.Event{Action: audit.RiskAlert, Target: target, Details: details}); err != nil {
				return audit.Event{}, err
			}
		}
		return audit.Event{Action: audit.RiskDetected, Target: target, Details: details}, nil
	})
	if err != nil {
		return fmt.Errorf("risk: record: %w", err)
	}
	return nil
}

// weigh finds the signals of at, against the user's history (latest
// first). A user with no history has nothing to compare with: their first
// sign-in (or the first since the history began) sets it, and only
// new_device can fire.
func (p Policy) weigh(geo Geo, at Attempt, history []Seen, now time.Time) ([]Signal, map[Signal]string) {
	var signals []Signal
	reasons := map[Signal]string{}
	if at.NewDevice {
		signals = append(signals, NewDevice)
		reasons[NewDevice] = "the browser has not signed in to the account before"
	}
	if len(history) == 0 || !at.Addr.IsValid() {
		return signals, reasons
	}
	network := Network(at.Addr)
	if !slices.ContainsFunc(history, func(s Seen) bool { return s.Network == network }) {
		signals = append(signals, NewNetwork)
		reasons[NewNetwork] = fmt.Sprintf("network %s not seen for the user in %s", network, days(p.Limits.History))
	}
	if geo == nil {
		return signals, reasons
	}
	place, ok := geo.Locate(at.Addr)
	if !ok {
		return signals, reasons
	}
	if place.Country != "" {
		known, anyCountry := false, false
		for _, s := range history {
			anyCountry = anyCountry || s.Place.Country != ""
			known = known || s.Place.Country == place.Country
		}
		if anyCountry && !known {
			signals = append(signals, NewCountry)
			reasons[NewCountry] = fmt.Sprintf("country %s not seen for the user in %s", place.Country, days(p.Limits.History))
		}
	}
	if last := history[0]; place.HasCoordinates && last.Place.HasCoordinates {
		km := Distance(last.Place, place)
		hours := max(now.Sub(last.LastSeen).Hours(), 1.0/3600)
		if km >= p.Limits.TravelMinDistance && km/hours > p.Limits.TravelSpeed {
			signals = append(signals, ImpossibleTravel)
			reasons[ImpossibleTravel] = fmt.Sprintf("%.0f km from the last sign-in %s ago, over %.0f km/h",
				km, now.Sub(last.LastSeen).Round(time.Second), p.Limits.TravelSpeed)
		}
	}
	return signals, reasons
}

// days writes a history period in days.
func days(d time.Duration) string { return strconv.Itoa(int(d.Hours()/24)) + " days" }

// Failed counts a failed sign-in from addr at the account email names
// (existing or not), and acts once per failure window on each of the two
// spreads it watches: many accounts failing from one network (credential
// stuffing) and many networks failing at one account (account targeted).
// It costs a failure two statements; the rare crossing of a threshold
// costs more.
func (a *Assessor) Failed(ctx context.Context, addr netip.Addr, email string) error {
	if !addr.IsValid() {
		return nil
	}
	network, account := Network(addr).String(), identity.AccountKey(email)
	window := a.Policy.Limits.FailureWindow
	if err := a.Store.RecordFailure(ctx, network, account, window); err != nil {
		return fmt.Errorf("risk: record failure: %w", err)
	}
	// Counted after the failure is written, in a statement of its own, so
	// that of a burst of parallel failures the last to count sees them
	// all: a threshold is crossed whatever the interleaving.
	accounts, networks, err := a.Store.FailureSpread(ctx, network, account, window)
	if err != nil {
		return fmt.Errorf("risk: count failures: %w", err)
	}
	if accounts >= a.Policy.Limits.StuffingAccounts {
		reason := fmt.Sprintf("%d accounts failed from network %s within %s", accounts, network, window)
		if err := a.fire(ctx, CredentialStuffing, "net:"+network, reason, "", map[string]any{"network": network, "accounts": accounts}); err != nil {
			return err
		}
	}
	if networks >= a.Policy.Limits.TargetedNetworks {
		reason := fmt.Sprintf("%d networks failed at the account within %s", networks, window)
		if err := a.fire(ctx, AccountTargeted, accountScope(email), reason, email, map[string]any{"email": email, "networks": networks}); err != nil {
			return err
		}
	}
	return nil
}

// fire acts on signal about scope ("net:PREFIX" or "acct:DIGEST") by its
// rule, once per failure window however many nodes see it cross the
// threshold: whoever takes the signal's latch acts. email, if not "",
// names the account, whose user (if there is one) a notice goes to.
func (a *Assessor) fire(ctx context.Context, signal Signal, scope, reason, email string, extra map[string]any) error {
	rule := a.Policy.Rules[signal]
	took, err := a.Store.Latch(ctx, "signal:"+string(signal)+":"+scope, reason, max(a.Policy.Limits.FailureWindow, rule.BlockFor))
	if err != nil || !took {
		return err
	}
	d := a.decide([]Signal{signal}, map[Signal]string{signal: reason})
	if rule.Has(Block) {
		key := blockKey(scope)
		if _, err := a.Store.Latch(ctx, key, string(signal), rule.BlockFor); err != nil {
			return fmt.Errorf("risk: block: %w", err)
		}
		if d.BlockedUntil, _, err = a.Store.Latched(ctx, []string{key}); err != nil {
			return fmt.Errorf("risk: block: %w", err)
		}
	}
	a.count(d)
	if !d.acts() {
		return nil
	}
	target := ""
	if email != "" && a.Accounts != nil {
		u, err := a.Accounts.GetByEmail(ctx, email)
		switch {
		case err == nil:
			target = audit.User(u.ID)
		case !errors.Is(err, identity.ErrNotFound):
			return fmt.Errorf("risk: find the account: %w", err)
		}
	}
	return a.record(ctx, target, d, extra)
}

// Blocked reports whether sign-ins from addr, or to the account email
// names, are blocked, and until when. It is one indexed read, asked before
// a password is checked: a block answers alike for accounts that exist
// and those that do not.
func (a *Assessor) Blocked(ctx context.Context, addr netip.Addr, email string) (time.Time, bool, error) {
	keys := []string{blockKey(accountScope(email))}
	if addr.IsValid() {
		keys = append(keys, blockKey("net:"+Network(addr).String()))
	}
	until, held, err := a.Store.Latched(ctx, keys)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("risk: blocked: %w", err)
	}
	return until, held, nil
}

// blockKey is the latch that blocks scope.
func blockKey(scope string) string { return "block:" + scope }

// BlockPrefix is how the latch keys of blocked networks begin, for
// counting them (metrics).
const BlockPrefix = "block:net:"

// accountScope names the account email names, as anyone could type it,
// without the email itself.
func accountScope(email string) string {
	return "acct:" + strings.ToLower(hex.EncodeToString(identity.AccountKey(email)))
}
