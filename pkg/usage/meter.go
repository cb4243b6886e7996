package usage

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchkey/latchkey/pkg/ratelimit"
)

// How a node takes quota budget from the database. A reservation takes a
// quarter of what is left of the quota, at least 1, and at most about a
// second of the node's calls of that quota at their recent pace, but no
// fewer than MinSlice and no more than MaxSlice: a quarter, so that nodes
// racing for the last of a quota each get some and none holds most of it;
// a second's worth, so that a busy node reserves about twice a second
// whatever its pace and the background reservation is never outrun, while
// an idle one parks little. A node asks for the next slice when it has
// used half of the last one, in the background, so a call waits for the
// database only when its node has none left: the first call of a period,
// or one that outruns the refill.
const (
	// MinSlice and MaxSlice bound what one reservation takes, before the
	// quarter of what is left.
	MinSlice = 100
	MaxSlice = 10_000
	// IdleReturn is how long a node keeps budget it does not use before it
	// gives it back for other nodes to use.
	IdleReturn = 5 * time.Second
	// recheckEvery is how often a node asks again for budget of a quota
	// that was used up, in case another node has given some back.
	recheckEvery = time.Second
	// PlansRefresh is how soon every node applies a change to plans and
	// their assignments.
	PlansRefresh = 2 * time.Second
	// FlushEvery is how often a node adds its calls to the daily usage.
	FlushEvery = 5 * time.Second
)

// MeterStore is what the meter keeps in the database: the plans of subjects,
// the quota counters and the daily usage.
type MeterStore interface {
	// AssignedPlans returns every subject that has a plan, with the plan.
	AssignedPlans(ctx context.Context) (map[string]*Plan, error)
	// ReserveQuota takes budget for a quota of limit calls: a quarter of
	// what is left, at least 1 and at most most, or 0 if nothing is left.
	// It returns what it took and everything reserved of the quota since.
	ReserveQuota(ctx context.Context, k QuotaKey, limit, most int64) (granted, reserved int64, err error)
	// ReturnQuota gives back n calls of budget reserved and not used.
	ReturnQuota(ctx context.Context, k QuotaKey, n int64) error
	// AddUsage adds calls to the daily usage.
	AddUsage(ctx context.Context, calls []Daily) error
}

// Observer is told of each call the meter charged, for metrics: its
// endpoint and "served", "rate" or "quota" (refused, over which). Never
// the subject.
type Observer interface {
	Charged(endpoint, result string)
}

// QuotaKey names one quota counter: a subject's calls in one scope (an
// endpoint or AllEndpoints) in one calendar period.
type QuotaKey struct {
	Subject string
	Scope   string
	// Period is "day" or "month"; Start the first day of it, in UTC.
	Period string
	Start  time.Time
}

// Meter charges calls to their subjects' plans. It is safe for concurrent
// use; one per node. See the package documentation for how it counts.
type Meter struct {
	store   MeterStore
	logger  *slog.Logger
	metrics Observer
	// now is the clock; tests move it.
	now func() time.Time

	plans     atomic.Pointer[planSnapshot]
	reloading atomic.Bool

	mu     sync.Mutex
	quotas map[QuotaKey]*slice
	rates  map[rateKey]*ratelimit.Limiter
	calls  map[dailyKey]*[2]int64
}

type planSnapshot struct {
	bySubject map[string]*Plan
	at        time.Time
}

type rateKey struct {
	n      int64
	window time.Duration
}

type dailyKey struct {
	subject, endpoint string
	day               time.Time
}

// NewMeter returns a meter over store. metrics may be nil.
func NewMeter(store MeterStore, logger *slog.Logger, metrics Observer) *Meter {
	if metrics == nil {
		metrics = noObserver{}
	}
	return &Meter{store: store, logger: logger, metrics: metrics, now: time.Now,
		quotas: map[QuotaKey]*slice{}, rates: map[rateKey]*ratelimit.Limiter{}, calls: map[dailyKey]*[2]int64{}}
}

type noObserver struct{}

func (noObserver) Charged(string, string) {}

// Verdict is the meter's answer to a call: whether it is over a limit, and
// the RateLimit-Policy and RateLimit header values to send with the answer
// (empty for a subject without a plan).
type Verdict struct {
	// Over is the limit the call is over, or nil if it may go ahead.
	Over *Exceeded
	// Policy and Limit are the values of the RateLimit-Policy and
	// RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10).
	Policy, Limit string
}

// Exceeded describes the limit a refused call was over.
type Exceeded struct {
	// Kind is "rate" or "quota".
	Kind string
	// Name is the policy's name in the RateLimit fields, such as
	// "token-day" or "all-second".
	Name string
	// Window is "second", "minute", "day" or "month"; Endpoint the
	// endpoint limited, or AllEndpoints.
	Window, Endpoint string
	Limit            int64
	// ResetsAt is when the quota starts afresh, or when the rate allows
	// another call.
	ResetsAt   time.Time
	RetryAfter time.Duration
}

// Description says what was exceeded, for people: "the daily quota of
// 1000 token requests, which resets at 2026-12-06T00:00:00Z".
func (e *Exceeded) Description() string {
	what := e.Endpoint + " requests"
	if e.Endpoint == AllEndpoints {
		what = "requests"
	}
	if e.Kind == "rate" {
		return fmt.Sprintf("the rate of %d %s per %s", e.Limit, what, e.Window)
	}
	adj := map[string]string{"day": "daily", "month": "monthly"}[e.Window]
	return fmt.Sprintf("the %s quota of %d %s, which resets at %s", adj, e.Limit, what, e.ResetsAt.UTC().Format(time.RFC3339))
}

// Charge counts one call by subject at endpoint against subject's plan,
// if it has one, and says whether the call may go ahead. A call refused by
// one limit takes nothing from the others. Charge waits for the database
// only when this node holds no budget of a quota the call needs (see
// the package documentation); it fails only then, with the store's error.
func (m *Meter) Charge(ctx context.Context, subject, endpoint string) (Verdict, error) {
	now := m.now().UTC()
	plan := m.planOf(ctx, subject, now)
	if plan == nil {
		m.count(subject, endpoint, now, false)
		m.metrics.Charged(endpoint, "served")
		return Verdict{}, nil
	}
	v, err := m.charge(ctx, plan, subject, endpoint, now)
	if err != nil {
		return Verdict{}, err
	}
	result := "served"
	if v.Over != nil {
		result = v.Over.Kind
	}
	m.count(subject, endpoint, now, v.Over != nil)
	m.metrics.Charged(endpoint, result)
	return v, nil
}

// policy is one limit as the RateLimit fields show it.
type policy struct {
	name   string
	quota  int64
	window time.Duration
	// left and reset are the RateLimit field's r and t.
	left  int64
	reset time.Duration
}

func (m *Meter) charge(ctx context.Context, plan *Plan, subject, endpoint string, now time.Time) (Verdict, error) {
	var (
		policies []policy
		taken    []ratelimit.Reservation
		slices   []*slice
		over     *Exceeded
	)
	giveBack := func() {
		for _, r := range taken {
			r.Refund()
		}
		for _, s := range slices {
			s.giveBack()
		}
	}
	for _, l := range plan.limitsFor(endpoint) {
		for _, r := range []struct {
			n      int64
			window time.Duration
			name   string
		}{{l.PerSecond, time.Second, "second"}, {l.PerMinute, time.Minute, "minute"}} {
			if r.n == 0 {
				continue
			}
			p := policy{name: policyName(l.Endpoint, r.name), quota: r.n, window: r.window, reset: r.window}
			if over == nil {
				res, ok, wait := m.rate(r.n, r.window).Reserve(subject + "\x00" + l.Endpoint)
				if ok {
					taken = append(taken, res)
					p.left = int64(res.Left())
				} else {
					p.reset = wait
					over = &Exceeded{Kind: "rate", Name: p.name, Window: r.name, Endpoint: l.Endpoint, Limit: r.n,
						ResetsAt: now.Add(wait), RetryAfter: wait}
				}
			}
			policies = append(policies, p)
		}
		for _, q := range []struct {
			n      int64
			period string
		}{{l.PerDay, "day"}, {l.PerMonth, "month"}} {
			if q.n == 0 {
				continue
			}
			start, end := periodOf(q.period, now)
			p := policy{name: policyName(l.Endpoint, q.period), quota: q.n, window: end.Sub(start), reset: end.Sub(now)}
			s := m.slice(QuotaKey{Subject: subject, Scope: l.Endpoint, Period: q.period, Start: start})
			if over != nil {
				p.left = s.left(q.n)
			} else {
				ok, left, err := s.take(ctx, m, q.n, now)
				if err != nil {
					giveBack()
					return Verdict{}, err
				}
				p.left = left
				if ok {
					slices = append(slices, s)
				} else {
					over = &Exceeded{Kind: "quota", Name: p.name, Window: q.period, Endpoint: l.Endpoint, Limit: q.n,
						ResetsAt: end, RetryAfter: end.Sub(now)}
				}
			}
			policies = append(policies, p)
		}
	}
	if over != nil {
		giveBack()
		for i := range policies {
			if policies[i].name == over.Name {
				policies[i].left = 0
			}
		}
	}
	return Verdict{Over: over, Policy: policyField(policies), Limit: limitField(policies)}, nil
}

// policyName names a limit in the RateLimit fields: its scope ("all" for
// every endpoint) and window.
func policyName(endpoint, window string) string {
	if endpoint == AllEndpoints {
		endpoint = "all"
	}
	return endpoint + "-" + window
}

// policyField is the RateLimit-Policy value: each limit's quota q and
// window w in seconds. It is built on every answer, so without fmt.
func policyField(ps []policy) string {
	b := make([]byte, 0, 40*len(ps))
	for i, p := range ps {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(append(append(b, '"'), p.name...), `";q=`...)
		b = strconv.AppendInt(b, p.quota, 10)
		b = strconv.AppendInt(append(b, ";w="...), int64(p.window/time.Second), 10)
	}
	return string(b)
}

// limitField is the RateLimit value: each limit's remaining calls r and
// seconds t until it resets (rounded up).
func limitField(ps []policy) string {
	b := make([]byte, 0, 40*len(ps))
	for i, p := range ps {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(append(append(b, '"'), p.name...), `";r=`...)
		b = strconv.AppendInt(b, max(p.left, 0), 10)
		b = strconv.AppendInt(append(b, ";t="...), int64((p.reset+time.Second-1)/time.Second), 10)
	}
	return string(b)
}

// periodOf returns the UTC calendar period around now: its first instant
// and the first of the next.
func periodOf(period string, now time.Time) (time.Time, time.Time) {
	y, mo, d := now.Date()
	if period == "month" {
		start := time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	start := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 0, 1)
}

// rate returns the node's limiter of n calls per window.
func (m *Meter) rate(n int64, window time.Duration) *ratelimit.Limiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := rateKey{n, window}
	l, ok := m.rates[k]
	if !ok {
		l = ratelimit.New(int(min(n, 1<<31-1)), window)
		m.rates[k] = l
	}
	return l
}

// slice returns the node's budget of quota k.
func (m *Meter) slice(k QuotaKey) *slice {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.quotas[k]
	if !ok {
		s = &slice{key: k}
		m.quotas[k] = s
	}
	return s
}

// count adds a call to the daily usage this node has yet to write.
func (m *Meter) count(subject, endpoint string, now time.Time, refused bool) {
	day, _ := periodOf("day", now)
	m.mu.Lock()
	defer m.mu.Unlock()
	k := dailyKey{subject, endpoint, day}
	c, ok := m.calls[k]
	if !ok {
		c = new([2]int64)
		m.calls[k] = c
	}
	if refused {
		c[1]++
	} else {
		c[0]++
	}
}

// planOf returns subject's plan, or nil. The plans are read whole, at
// start and then at most every PlansRefresh, in the background: a call
// never waits for them but the node's first.
func (m *Meter) planOf(ctx context.Context, subject string, now time.Time) *Plan {
	snap := m.plans.Load()
	if snap == nil {
		if err := m.Reload(ctx); err != nil {
			m.logger.Warn("usage: reading plans failed; calls are not limited until it succeeds", "err", err)
		}
		if snap = m.plans.Load(); snap == nil {
			return nil
		}
	} else if now.Sub(snap.at) > PlansRefresh && m.reloading.CompareAndSwap(false, true) {
		go func() {
			defer m.reloading.Store(false)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := m.Reload(rctx); err != nil {
				m.logger.Warn("usage: reading plans failed; the plans read before stay in force", "err", err)
			}
		}()
	}
	return snap.bySubject[subject]
}

// Reload reads the plans and their assignments now; a change made on this
// node applies here at once, and on the others within PlansRefresh.
func (m *Meter) Reload(ctx context.Context) error {
	plans, err := m.store.AssignedPlans(ctx)
	if err != nil {
		return err
	}
	m.plans.Store(&planSnapshot{bySubject: plans, at: m.now().UTC()})
	return nil
}

// Run reads the plans every PlansRefresh, gives back budget this node has
// not used for IdleReturn and writes the daily usage every FlushEvery,
// until ctx ends; then it gives back all
// its budget and writes what is left, so that a node stopping parks
// nothing.
func (m *Meter) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastFlush := m.now()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			m.returnIdle(sctx, time.Time{})
			m.Flush(sctx)
			return
		case <-tick.C:
		}
		now := m.now()
		if snap := m.plans.Load(); snap == nil || now.Sub(snap.at) >= PlansRefresh {
			if err := m.Reload(ctx); err != nil {
				m.logger.Warn("usage: reading plans failed; the plans read before stay in force", "err", err)
			}
		}
		m.returnIdle(ctx, now.Add(-IdleReturn))
		if now.Sub(lastFlush) >= FlushEvery {
			m.Flush(ctx)
			lastFlush = now
		}
	}
}

// returnIdle gives back the budget of every quota this node has not used
// since before (every quota, for the zero time), and forgets quotas it
// holds nothing of.
func (m *Meter) returnIdle(ctx context.Context, before time.Time) {
	m.mu.Lock()
	var idle []*slice
	for k, s := range m.quotas {
		s.mu.Lock()
		if s.lastUsed.Before(before) || before.IsZero() {
			if s.avail > 0 {
				idle = append(idle, s)
			} else if !s.refilling {
				delete(m.quotas, k)
			}
		}
		s.mu.Unlock()
	}
	m.mu.Unlock()
	for _, s := range idle {
		s.reserving.Lock()
		s.mu.Lock()
		n := s.avail
		s.avail = 0
		s.mu.Unlock()
		if n > 0 {
			if err := m.store.ReturnQuota(ctx, s.key, n); err != nil {
				// Kept, to use or return later: budget given back twice would
				// let the quota be exceeded.
				s.mu.Lock()
				s.avail += n
				s.mu.Unlock()
				m.logger.Warn("usage: returning unused quota failed", "err", err)
			}
		}
		s.reserving.Unlock()
	}
}

// Flush writes the calls counted since the last flush to the daily usage.
func (m *Meter) Flush(ctx context.Context) {
	m.mu.Lock()
	calls := m.calls
	m.calls = map[dailyKey]*[2]int64{}
	m.mu.Unlock()
	if len(calls) == 0 {
		return
	}
	batch := make([]Daily, 0, len(calls))
	for k, c := range calls {
		batch = append(batch, Daily{Subject: k.subject, Endpoint: k.endpoint, Day: k.day, Served: c[0], Refused: c[1]})
	}
	if err := m.store.AddUsage(ctx, batch); err != nil {
		m.logger.Warn("usage: writing daily usage failed; retrying at the next flush", "err", err)
		m.mu.Lock()
		for k, c := range calls {
			if have, ok := m.calls[k]; ok {
				have[0] += c[0]
				have[1] += c[1]
			} else {
				m.calls[k] = c
			}
		}
		m.mu.Unlock()
	}
}

// slice is the budget this node holds of one quota.
type slice struct {
	key QuotaKey
	// reserving serialises the node's reservations and returns of this
	// quota, so that calls arriving together make one round trip.
	reserving sync.Mutex

	mu sync.Mutex
	// avail is budget reserved and not used yet.
	avail int64
	// reserved is the quota's total reservations as of this node's last,
	// for estimating what is left.
	reserved int64
	// refillAt is the avail at which to reserve the next slice, in the
	// background.
	refillAt int64
	// refilling says a background reservation is under way.
	refilling bool
	// emptyAt is when the database last had nothing left to give.
	emptyAt  time.Time
	lastUsed time.Time
	// spent counts calls served since reservedAt, the last reservation,
	// for the pace that sizes the next.
	spent      int64
	reservedAt time.Time
}

// take spends one call of budget, reserving more if the node has none,
// and says whether it could, and an estimate of what is left of the quota.
func (s *slice) take(ctx context.Context, m *Meter, limit int64, now time.Time) (bool, int64, error) {
	if ok, left := s.takeHeld(m, limit, now); ok {
		return true, left, nil
	}
	s.mu.Lock()
	if !s.emptyAt.IsZero() {
		// Used up: refuse without waiting, and look again in the
		// background, at most every recheckEvery, in case another node
		// has given budget back.
		if now.Sub(s.emptyAt) >= recheckEvery && !s.refilling {
			s.refilling = true
			go s.refill(ctx, m, limit)
		}
		s.mu.Unlock()
		return false, 0, nil
	}
	s.mu.Unlock()
	s.reserving.Lock()
	defer s.reserving.Unlock()
	if ok, left := s.takeHeld(m, limit, now); ok {
		return true, left, nil
	}
	if err := s.reserve(ctx, m, limit); err != nil {
		return false, 0, err
	}
	ok, left := s.takeHeld(m, limit, now)
	return ok, left, nil
}

// takeHeld spends one call of the budget the node holds, if any, and
// starts a background reservation when it runs low.
func (s *slice) takeHeld(m *Meter, limit int64, now time.Time) (bool, int64) {
	s.mu.Lock()
	if s.avail == 0 {
		s.mu.Unlock()
		return false, 0
	}
	s.avail--
	s.spent++
	s.lastUsed = now
	left := limit - s.reserved + s.avail
	refill := s.avail <= s.refillAt && !s.refilling && s.emptyAt.IsZero()
	if refill {
		s.refilling = true
	}
	s.mu.Unlock()
	if refill {
		go s.refill(context.Background(), m, limit)
	}
	return true, left
}

// refill reserves more budget in the background.
func (s *slice) refill(ctx context.Context, m *Meter, limit int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	s.reserving.Lock()
	err := s.reserve(ctx, m, limit)
	s.reserving.Unlock()
	if err != nil {
		m.logger.Warn("usage: reserving quota failed", "err", err)
	}
	s.mu.Lock()
	s.refilling = false
	s.mu.Unlock()
}

// reserve takes the next slice of the quota from the database. s.reserving
// is held.
func (s *slice) reserve(ctx context.Context, m *Meter, limit int64) error {
	now := m.now()
	s.mu.Lock()
	most := int64(MinSlice)
	if elapsed := now.Sub(s.reservedAt); !s.reservedAt.IsZero() && elapsed > 0 {
		// A second of calls at the pace since the last reservation.
		most = min(max(int64(float64(s.spent)/elapsed.Seconds()), MinSlice), MaxSlice)
	}
	s.spent, s.reservedAt = 0, now
	s.mu.Unlock()
	granted, reserved, err := m.store.ReserveQuota(ctx, s.key, limit, most)
	if err != nil {
		return fmt.Errorf("usage: reserve quota: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.avail += granted
	s.reserved = reserved
	s.refillAt = granted / 2
	if granted == 0 {
		s.emptyAt = now
	} else {
		s.emptyAt = time.Time{}
	}
	return nil
}

// left estimates what is left of the quota without taking any of it.
func (s *slice) left(limit int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return limit - s.reserved + s.avail
}

// giveBack returns a call taken for a call another limit refused.
func (s *slice) giveBack() {
	s.mu.Lock()
	s.avail++
	s.mu.Unlock()
}

// Daily is one subject's calls at one endpoint on one UTC day.
type Daily struct {
	Subject  string    `json:"-"`
	Day      time.Time `json:"day"`
	Endpoint string    `json:"endpoint"`
	// Served were answered within the plan; Refused got 429 for a rate or
	// quota.
	Served  int64 `json:"served"`
	Refused int64 `json:"refused"`
}
