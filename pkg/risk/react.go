package risk

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/latchkey/latchkey/pkg/audit"
)

var _ audit.Reactor = (*Assessor)(nil)

// eventSignals are the signals other parts of Latchkey record as audit
// events of their own, which the policy acts on as they are recorded.
var eventSignals = map[string]Signal{
	audit.RefreshReuseDetected:  TokenReuse,
	audit.LoginLocked:           AccountLocked,
	audit.MFALocked:             AccountLocked,
	audit.PasskeyCloneSuspected: PasskeyClone,
}

// ReactsTo reports whether the Assessor acts on events with action: a
// successful sign-in, whose network it remembers, and the events that are
// signals.
func (a *Assessor) ReactsTo(action string) bool {
	_, ok := eventSignals[action]
	return ok || action == audit.LoginSucceeded
}

// React acts on e in the transaction that records it: a successful
// sign-in adds its network to the user's history (one upsert); an event
// that is a signal gets its rule's actions, recorded as risk.detected and
// risk.alert in the same transaction.
func (a *Assessor) React(ctx context.Context, e audit.Event) error {
	userID, isUser := strings.CutPrefix(e.Target, "user:")
	if e.Action == audit.LoginSucceeded {
		addr, err := netip.ParseAddr(e.IP)
		if !isUser || err != nil {
			return nil
		}
		s := Seen{Network: Network(addr)}
		if a.Geo != nil {
			s.Place, _ = a.Geo.Locate(addr)
		}
		if err := a.Store.SeeNetwork(ctx, userID, s, a.Policy.Limits.History); err != nil {
			return fmt.Errorf("risk: remember the network: %w", err)
		}
		return nil
	}
	signal, ok := eventSignals[e.Action]
	if !ok {
		return nil
	}
	d := a.decide([]Signal{signal}, map[Signal]string{signal: "audit event " + e.Action})
	a.count(d)
	if !d.acts() {
		return nil
	}
	target := e.Target
	if !isUser {
		// Only a user can be told; the event's own target (a client, say)
		// is kept in the details.
		target = ""
	}
	return a.record(ctx, target, d, map[string]any{"event": e.Action, "event_id": e.ID, "event_target": e.Target})
}
