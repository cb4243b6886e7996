package risk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Signal names a kind of risk the assessment notices. The names are those
// of the policy file, the audit events' details and the metrics' labels.
type Signal string

// The signals. The first four are seen at a sign-in with the right
// password, from the user's own history; the next two from failed
// sign-ins; the last three from audit events other parts of Latchkey
// record (see Reactor).
const (
	NewDevice          Signal = "new_device"
	NewNetwork         Signal = "new_network"
	NewCountry         Signal = "new_country"
	ImpossibleTravel   Signal = "impossible_travel"
	CredentialStuffing Signal = "credential_stuffing" // #nosec G101 -- a signal name, not a credential
	AccountTargeted    Signal = "account_targeted"
	TokenReuse         Signal = "token_reuse"
	AccountLocked      Signal = "account_locked"
	PasskeyClone       Signal = "passkey_clone"
)

// Signals lists every signal, in the order the docs list them.
var Signals = []Signal{NewDevice, NewNetwork, NewCountry, ImpossibleTravel,
	CredentialStuffing, AccountTargeted, TokenReuse, AccountLocked, PasskeyClone}

// Action is what the policy does about a signal.
type Action string

// The actions.
const (
	// Allow does nothing but count and record the signal.
	Allow Action = "allow"
	// StepUp asks for the second factor even on a browser the user trusts.
	StepUp Action = "step_up"
	// Notify mails the user.
	Notify Action = "notify"
	// Block refuses sign-ins, from the address's network or to the
	// account, for the rule's BlockFor.
	Block Action = "block"
	// Alert records a risk.alert audit event, for operators.
	Alert Action = "alert"
)

// Actions lists every action.
var Actions = []Action{Allow, StepUp, Notify, Block, Alert}

// allowed are the actions each kind of signal can take: a step-up needs a
// sign-in under way, a block something to block, a notice a user to tell.
// Credential stuffing is about an address, not a user.
var allowed = map[Signal][]Action{
	NewDevice:          {Allow, StepUp, Notify, Block, Alert},
	NewNetwork:         {Allow, StepUp, Notify, Block, Alert},
	NewCountry:         {Allow, StepUp, Notify, Block, Alert},
	ImpossibleTravel:   {Allow, StepUp, Notify, Block, Alert},
	CredentialStuffing: {Allow, Block, Alert},
	AccountTargeted:    {Allow, Notify, Block, Alert},
	TokenReuse:         {Allow, Notify, Alert},
	AccountLocked:      {Allow, Notify, Alert},
	PasskeyClone:       {Allow, Notify, Alert},
}

// maxBlock bounds a block: longer ones belong to a firewall, and a block
// keyed by an account must not lock its owner out for long.
const maxBlock = 24 * time.Hour

// Rule is what the policy does about one signal.
type Rule struct {
	Actions []Action `yaml:"actions"`
	// BlockFor is how long a Block lasts; set exactly when Actions has
	// Block.
	BlockFor time.Duration `yaml:"block_for"`
}

// Has reports whether the rule takes action a.
func (r Rule) Has(a Action) bool { return slices.Contains(r.Actions, a) }

// Limits are the thresholds at which the signals that count fire.
type Limits struct {
	// History is how far back a network or country counts as seen.
	History time.Duration `yaml:"history"`
	// TravelSpeed, in km/h, is the speed between two sign-ins' places
	// above which the second is impossible travel; TravelMinDistance, in
	// km, the distance below which it never is, since GeoIP places a
	// network only roughly.
	TravelSpeed       float64 `yaml:"travel_speed_kmh"`
	TravelMinDistance float64 `yaml:"travel_min_km"`
	// FailureWindow is how long failed sign-ins count for the next two.
	FailureWindow time.Duration `yaml:"failure_window"`
	// StuffingAccounts is how many distinct accounts may fail from one
	// network (/24, /64) within FailureWindow before it is credential
	// stuffing.
	StuffingAccounts int `yaml:"stuffing_accounts"`
	// TargetedNetworks is how many distinct networks may fail at one
	// account within FailureWindow before it is targeted.
	TargetedNetworks int `yaml:"targeted_networks"`
}

// Policy maps each signal to its rule, with the thresholds.
type Policy struct {
	Rules  map[Signal]Rule
	Limits Limits
}

// DefaultPolicy is the policy without a policy file (docs/security-events.md
// has it as a table). Only what a user would want to hear of, or an
// operator to look into, acts by default: a new browser or network is
// everyday, and the new-browser notice (pkg/notify) covers the first.
func DefaultPolicy() Policy {
	return Policy{
		Rules: map[Signal]Rule{
			NewDevice:          {Actions: []Action{Allow}},
			NewNetwork:         {Actions: []Action{Allow}},
			NewCountry:         {Actions: []Action{StepUp, Notify}},
			ImpossibleTravel:   {Actions: []Action{StepUp, Notify, Alert}},
			CredentialStuffing: {Actions: []Action{Block, Alert}, BlockFor: 15 * time.Minute},
			AccountTargeted:    {Actions: []Action{Alert, Notify}},
			TokenReuse:         {Actions: []Action{Alert}},
			AccountLocked:      {Actions: []Action{Alert}},
			// pkg/notify mails the user of it already.
			PasskeyClone: {Actions: []Action{Alert}},
		},
		Limits: Limits{
			History:           90 * 24 * time.Hour,
			TravelSpeed:       1000,
			TravelMinDistance: 500,
			FailureWindow:     10 * time.Minute,
			StuffingAccounts:  20,
			TargetedNetworks:  10,
		},
	}
}

// policyFile is the policy file's shape: any signal or limit it leaves out
// keeps its default.
type policyFile struct {
	Signals map[string]struct {
		Actions  []string `yaml:"actions"`
		BlockFor string   `yaml:"block_for"`
	} `yaml:"signals"`
	Limits struct {
		History           string   `yaml:"history"`
		TravelSpeed       *float64 `yaml:"travel_speed_kmh"`
		TravelMinDistance *float64 `yaml:"travel_min_km"`
		FailureWindow     string   `yaml:"failure_window"`
		StuffingAccounts  *int     `yaml:"stuffing_accounts"`
		TargetedNetworks  *int     `yaml:"targeted_networks"`
	} `yaml:"limits"`
}

// LoadPolicy reads the policy file at path (LATCHKEY_RISK_POLICY) over the
// defaults; "" is the defaults. Its error is one line, naming the file and
// what is wrong, for an operator to fix at startup.
func LoadPolicy(path string) (Policy, error) {
	p := DefaultPolicy()
	if path == "" {
		return p, nil
	}
	data, err := os.ReadFile(path) // #nosec G304 -- the operator's own setting
	if err != nil {
		return Policy{}, fmt.Errorf("risk policy: %w", err)
	}
	if err := p.read(data); err != nil {
		return Policy{}, fmt.Errorf("risk policy %s: %w", path, err)
	}
	return p, nil
}

// read applies the policy file data to p, and checks the result.
func (p *Policy) read(data []byte) error {
	var f policyFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		// yaml's messages span lines ("yaml: unmarshal errors:\n  line 3: ..."):
		// an operator reads one.
		return errors.New(strings.Join(strings.Fields(err.Error()), " "))
	}
	for name, r := range f.Signals {
		s := Signal(name)
		if _, ok := allowed[s]; !ok {
			return fmt.Errorf("signals: %q is not a signal; the signals are %s", name, join(Signals))
		}
		rule := Rule{}
		for _, a := range r.Actions {
			rule.Actions = append(rule.Actions, Action(strings.TrimSpace(a)))
		}
		if r.BlockFor != "" {
			d, err := time.ParseDuration(r.BlockFor)
			if err != nil {
				return fmt.Errorf("signals: %s: block_for %q is not a duration such as 15m", name, r.BlockFor)
			}
			rule.BlockFor = d
		}
		p.Rules[s] = rule
	}
	l := &f.Limits
	for _, d := range []struct {
		name string
		text string
		into *time.Duration
	}{{"history", l.History, &p.Limits.History}, {"failure_window", l.FailureWindow, &p.Limits.FailureWindow}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil {
			return fmt.Errorf("limits: %s %q is not a duration such as 10m", d.name, d.text)
		}
		*d.into = v
	}
	if l.TravelSpeed != nil {
		p.Limits.TravelSpeed = *l.TravelSpeed
	}
	if l.TravelMinDistance != nil {
		p.Limits.TravelMinDistance = *l.TravelMinDistance
	}
	if l.StuffingAccounts != nil {
		p.Limits.StuffingAccounts = *l.StuffingAccounts
	}
	if l.TargetedNetworks != nil {
		p.Limits.TargetedNetworks = *l.TargetedNetworks
	}
	return p.Validate()
}

// Validate reports the first thing wrong with p, in one line.
func (p Policy) Validate() error {
	for _, s := range Signals {
		r, ok := p.Rules[s]
		if !ok || len(r.Actions) == 0 {
			return fmt.Errorf("signals: %s has no actions; give it at least allow", s)
		}
		for _, a := range r.Actions {
			if !slices.Contains(Actions, a) {
				return fmt.Errorf("signals: %s: %q is not an action; the actions are %s", s, a, join(Actions))
			}
			if !slices.Contains(allowed[s], a) {
				return fmt.Errorf("signals: %s cannot %s; it may %s", s, a, join(allowed[s]))
			}
		}
		if r.Has(Allow) && len(r.Actions) > 1 {
			return fmt.Errorf("signals: %s: allow means no action, so it stands alone", s)
		}
		switch {
		case r.Has(Block) && (r.BlockFor <= 0 || r.BlockFor > maxBlock):
			return fmt.Errorf("signals: %s blocks, so it needs a block_for from 1s to %s", s, maxBlock)
		case !r.Has(Block) && r.BlockFor != 0:
			return fmt.Errorf("signals: %s has a block_for but does not block", s)
		}
	}
	l := p.Limits
	switch {
	case l.History < 24*time.Hour:
		return errors.New("limits: history must be at least 24h")
	case l.TravelSpeed <= 0 || l.TravelMinDistance < 0:
		return errors.New("limits: travel_speed_kmh must be above 0 and travel_min_km not below 0")
	case l.FailureWindow < time.Minute || l.FailureWindow > 24*time.Hour:
		return errors.New("limits: failure_window must be from 1m to 24h")
	case l.StuffingAccounts < 2 || l.TargetedNetworks < 2:
		return errors.New("limits: stuffing_accounts and targeted_networks must be at least 2")
	}
	return nil
}

// join lists words for an error message.
func join[T ~string](words []T) string {
	s := make([]string, len(words))
	for i, w := range words {
		s[i] = string(w)
	}
	return strings.Join(s, ", ")
}
