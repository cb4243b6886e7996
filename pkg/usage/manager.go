package usage

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
)

// PlanStore keeps plans, their assignments and the daily usage.
type PlanStore interface {
	CreatePlan(ctx context.Context, p *Plan) error
	Plan(ctx context.Context, name string) (*Plan, error)
	Plans(ctx context.Context) ([]Plan, error)
	// UpdatePlan replaces a plan's description and limits.
	UpdatePlan(ctx context.Context, p *Plan) error
	DeletePlan(ctx context.Context, name string) error
	// AssignPlan gives subject the plan, in place of any other; it reports
	// the plan subject had before ("" for none).
	AssignPlan(ctx context.Context, subject, name string) (string, error)
	// UnassignPlan takes the plan from subject and reports whether it had it.
	UnassignPlan(ctx context.Context, subject, name string) (bool, error)
	// PlanSubjects lists the subjects a plan is assigned to, sorted.
	PlanSubjects(ctx context.Context, name string) ([]string, error)
	// Usage returns subject's daily usage from from to to, both days
	// included, by day and endpoint.
	Usage(ctx context.Context, subject string, from, to time.Time) ([]Daily, error)
}

// Auditor records changes with their audit events.
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Reloader is told when this node changed plans, so that they apply here
// at once (the Meter).
type Reloader interface {
	Reload(ctx context.Context) error
}

// Manager defines plans, assigns them and reports usage, recording each
// change in the audit log. The admin API and the CLI go through it.
type Manager struct {
	store PlanStore
	audit Auditor
	// meter, if not nil, applies changes on this node at once.
	meter Reloader
}

// NewManager returns a Manager over store. meter may be nil.
func NewManager(store PlanStore, audit Auditor, meter Reloader) *Manager {
	return &Manager{store: store, audit: audit, meter: meter}
}

// MaxReportDays bounds a usage report.
const MaxReportDays = 366

// Create defines a plan.
func (m *Manager) Create(ctx context.Context, p Plan) (*Plan, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	err := m.change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.PlanCreated, Target: audit.Plan(p.Name)}, m.store.CreatePlan(ctx, &p)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// Get returns a plan, or ErrNotFound.
func (m *Manager) Get(ctx context.Context, name string) (*Plan, error) {
	if !validName.MatchString(name) {
		return nil, ErrNotFound
	}
	return m.store.Plan(ctx, name)
}

// List returns every plan, by name.
func (m *Manager) List(ctx context.Context) ([]Plan, error) {
	return m.store.Plans(ctx)
}

// Update replaces a plan's description and limits; its name never
// changes. Quotas already used this period count against the new limits.
func (m *Manager) Update(ctx context.Context, p Plan) (*Plan, error) {
	if !validName.MatchString(p.Name) {
		return nil, ErrNotFound
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	err := m.change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.PlanUpdated, Target: audit.Plan(p.Name)}, m.store.UpdatePlan(ctx, &p)
	})
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// Delete removes a plan, and takes it from every subject that had it.
func (m *Manager) Delete(ctx context.Context, name string) error {
	if !validName.MatchString(name) {
		return ErrNotFound
	}
	return m.change(ctx, func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.PlanDeleted, Target: audit.Plan(name)}, m.store.DeletePlan(ctx, name)
	})
}

// Assign gives subject the plan, replacing the one it had; assigning the
// plan it has is not an error.
func (m *Manager) Assign(ctx context.Context, name, subject string) error {
	if !validName.MatchString(name) {
		return ErrNotFound
	}
	if !ValidSubject(subject) {
		return ErrBadSubject
	}
	return m.change(ctx, func(ctx context.Context) (audit.Event, error) {
		before, err := m.store.AssignPlan(ctx, subject, name)
		if err != nil || before == name {
			return audit.Event{}, err
		}
		details := map[string]any{"plan": name}
		if before != "" {
			details["previous_plan"] = before
		}
		return audit.Event{Action: audit.PlanAssigned, Target: subject, Details: details}, nil
	})
}

// Unassign takes the plan from subject; not having it is not an error.
func (m *Manager) Unassign(ctx context.Context, name, subject string) error {
	if !validName.MatchString(name) {
		return ErrNotFound
	}
	if !ValidSubject(subject) {
		return ErrBadSubject
	}
	return m.change(ctx, func(ctx context.Context) (audit.Event, error) {
		if removed, err := m.store.UnassignPlan(ctx, subject, name); !removed {
			return audit.Event{}, err
		}
		return audit.Event{Action: audit.PlanUnassigned, Target: subject, Details: map[string]any{"plan": name}}, nil
	})
}

// Subjects lists the subjects a plan is assigned to.
func (m *Manager) Subjects(ctx context.Context, name string) ([]string, error) {
	if !validName.MatchString(name) {
		return nil, ErrNotFound
	}
	return m.store.PlanSubjects(ctx, name)
}

// Usage reports subject's calls by day and endpoint, from from to to (UTC
// days, both included). Nodes write their counts every FlushEvery, so the
// last seconds may be missing.
func (m *Manager) Usage(ctx context.Context, subject string, from, to time.Time) ([]Daily, error) {
	if !ValidSubject(subject) {
		return nil, ErrBadSubject
	}
	from, _ = periodOf("day", from.UTC())
	to, _ = periodOf("day", to.UTC())
	if to.Before(from) || to.Sub(from) > MaxReportDays*24*time.Hour {
		return nil, ErrBadRange
	}
	return m.store.Usage(ctx, subject, from, to)
}

// change makes an audited change and applies it to this node's meter.
func (m *Manager) change(ctx context.Context, f func(ctx context.Context) (audit.Event, error)) error {
	if err := m.audit.Change(ctx, f); err != nil {
		return err
	}
	if m.meter != nil {
		// The change is made; the meter catches up within PlansRefresh
		// if this fails.
		_ = m.meter.Reload(ctx)
	}
	return nil
}
