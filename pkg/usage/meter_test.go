package usage_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/usage"
)

// db is the one database of the nodes in a test: each node opens a pool
// of its own on it.
type db struct {
	url string
	usage.PlanStore
}

func TestMain(m *testing.M) { pgtest.Main(m) }

// planned returns a store with plan p assigned to subjects, and a manager.
func planned(t *testing.T, p usage.Plan, subjects ...string) (db, *usage.Manager) {
	t.Helper()
	url := pgtest.URL(t)
	store := pgtest.Open(t, url)
	m := usage.NewManager(store, audit.New(store, slog.New(slog.DiscardHandler)), nil)
	if _, err := m.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	for _, s := range subjects {
		if err := m.Assign(t.Context(), p.Name, s); err != nil {
			t.Fatal(err)
		}
	}
	return db{url, store}, m
}

// node is a meter running as a node's does, until stop, which gives back
// its budget as a stopping node does.
func node(t *testing.T, d db) (*usage.Meter, func()) {
	t.Helper()
	m := usage.NewMeter(pgtest.Open(t, d.url), slog.New(slog.DiscardHandler), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return m, stop
}

// reserved is what the database says nodes hold or have used of a
// subject's daily quota today.
func reserved(t *testing.T, d db, subject, scope string) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), d.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(t.Context(), `SELECT coalesce(sum(reserved), 0) FROM usage_quotas
		WHERE subject = $1 AND scope = $2 AND period = 'day'`, subject, scope).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A quota is strict across nodes: a call is served only from budget its
// node reserved in the database, so two nodes together never serve more
// than the quota (overshoot 0). An API key's introspections are charged
// to its own subject, key:ID, as a client's calls are to client:ID.
func TestTwoNodesNeverServeMoreThanADailyQuota(t *testing.T) {
	t.Parallel()
	const quota, calls = 1000, 1200
	key := usage.KeySubject("k_123")
	store, _ := planned(t, usage.Plan{Name: "small", Limits: []usage.Limit{{Endpoint: "introspect", PerDay: quota}}}, key)
	a, stopA := node(t, store)
	b, stopB := node(t, store)

	var served, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		m := a
		if w%2 == 1 {
			m = b
		}
		wg.Go(func() {
			for range calls / 8 {
				v, err := m.Charge(context.Background(), key, "introspect")
				switch {
				case err != nil:
					t.Error(err)
					return
				case v.Over == nil:
					served.Add(1)
				case v.Over.Kind != "quota" || v.Over.Name != "introspect-day" || v.Over.Limit != quota:
					t.Errorf("refused for %+v, want the daily introspect quota", v.Over)
				default:
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if served.Load() > quota {
		t.Fatalf("%d calls served of a quota of %d: the stated overshoot is 0", served.Load(), quota)
	}
	// Parked: budget a node reserved and did not use when the calls ended.
	// Each node parks at most its last slice: a quarter of what was left.
	if parked := 2 * min(quota/4, usage.MaxSlice); served.Load() < int64(quota-parked) {
		t.Fatalf("only %d calls served of a quota of %d; at most %d may be parked at two nodes", served.Load(), quota, parked)
	}
	stopA()
	stopB()
	if got := reserved(t, store, key, "introspect"); got != served.Load() {
		t.Fatalf("after both nodes stopped the database counts %d reserved, want the %d served: stopping nodes return what they did not use", got, served.Load())
	}
	t.Logf("served %d, refused %d", served.Load(), refused.Load())
}

// Budget a node reserved and stopped using is parked there (the
// undershoot) until the node has been idle for IdleReturn; then it goes
// back to the database and other nodes use it.
func TestQuotaBudgetParkedAtAnIdleNodeGoesBackForOthers(t *testing.T) {
	t.Parallel()
	const quota = 400
	client := usage.ClientSubject("backend")
	store, _ := planned(t, usage.Plan{Name: "daily", Limits: []usage.Limit{{Endpoint: "*", PerDay: quota}}}, client)
	a, _ := node(t, store)
	b, _ := node(t, store)
	if v, err := a.Charge(t.Context(), client, "token"); err != nil || v.Over != nil {
		t.Fatalf("first call on A: %+v %v", v, err)
	}
	parked := reserved(t, store, client, "*") - 1
	served := 1
	for range quota {
		if v, err := b.Charge(t.Context(), client, "revoke"); err != nil {
			t.Fatal(err)
		} else if v.Over == nil {
			served++
		}
	}
	if want := quota - int(parked); served != want {
		t.Fatalf("B served %d with %d parked at A, want %d", served-1, parked, want-1)
	}
	deadline := time.Now().Add(usage.IdleReturn + 5*time.Second)
	for served < quota && time.Now().Before(deadline) {
		if v, _ := b.Charge(t.Context(), client, "revoke"); v.Over == nil {
			served++
		}
		time.Sleep(20 * time.Millisecond)
	}
	if served != quota {
		t.Fatalf("%d served in all after A went idle, want the whole quota of %d", served, quota)
	}
}

func TestAPlanRatePerSecondRefusesTheCallOverIt(t *testing.T) {
	t.Parallel()
	client := usage.ClientSubject("burst")
	store, _ := planned(t, usage.Plan{Name: "rate", Limits: []usage.Limit{
		{Endpoint: "token", PerSecond: 3, PerDay: 100}}}, client)
	m, _ := node(t, store)
	for i := range 3 {
		v, err := m.Charge(t.Context(), client, "token")
		if err != nil || v.Over != nil {
			t.Fatalf("call %d within the rate: %+v %v", i+1, v.Over, err)
		}
	}
	v, _ := m.Charge(t.Context(), client, "token")
	if v.Over == nil || v.Over.Kind != "rate" || v.Over.RetryAfter <= 0 || v.Over.RetryAfter > time.Second {
		t.Fatalf("the 4th call in a second: %+v, want refused for the rate with a wait under a second", v.Over)
	}
	// A call refused for the rate takes nothing from the quota.
	if v.Policy != `"token-second";q=3;w=1, "token-day";q=100;w=86400` {
		t.Errorf("RateLimit-Policy %q", v.Policy)
	}
	if !strings.HasPrefix(v.Limit, `"token-second";r=0;t=1, "token-day";r=97;t=`) {
		t.Errorf("RateLimit %q, want the rate at 0 and 97 of the day's quota left", v.Limit)
	}
	// Other endpoints are not limited by the token endpoint's limits.
	if v, _ := m.Charge(t.Context(), client, "introspect"); v.Over != nil || v.Policy != "" {
		t.Fatalf("introspection under a plan limiting only token: %+v %q", v.Over, v.Policy)
	}
}

func TestUsageIsReportedByDayAndEndpoint(t *testing.T) {
	t.Parallel()
	key := usage.KeySubject("k_report")
	store, mgr := planned(t, usage.Plan{Name: "tiny", Limits: []usage.Limit{{Endpoint: "introspect", PerDay: 2}}}, key)
	m, stop := node(t, store)
	for range 3 {
		_, _ = m.Charge(t.Context(), key, "introspect")
	}
	_, _ = m.Charge(t.Context(), key, "revoke")
	_, _ = m.Charge(t.Context(), usage.ClientSubject("no-plan"), "token")
	stop()
	today := time.Now().UTC()
	got, err := mgr.Usage(t.Context(), key, today.AddDate(0, 0, -1), today)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Endpoint != "introspect" || got[0].Served != 2 || got[0].Refused != 1 ||
		got[1].Endpoint != "revoke" || got[1].Served != 1 || got[0].Day.Format(time.DateOnly) != today.Format(time.DateOnly) {
		t.Fatalf("usage %+v, want introspect 2 served 1 refused and revoke 1 served, today", got)
	}
	if got, _ := mgr.Usage(t.Context(), usage.ClientSubject("no-plan"), today, today); len(got) != 1 || got[0].Served != 1 {
		t.Fatalf("a client without a plan: %+v, want its call counted too", got)
	}
	if _, err := mgr.Usage(t.Context(), key, today, today.AddDate(0, 0, -1)); err != usage.ErrBadRange {
		t.Fatalf("from after to: %v", err)
	}
}

func TestPlansAreValidatedFieldByField(t *testing.T) {
	for _, tt := range []struct {
		name  string
		plan  usage.Plan
		field string
	}{
		{"unknown endpoint", usage.Plan{Name: "p", Limits: []usage.Limit{{Endpoint: "userinfo", PerDay: 1}}}, "limits[0].endpoint"},
		{"negative limit", usage.Plan{Name: "p", Limits: []usage.Limit{{Endpoint: "token", PerSecond: -1}}}, "limits[0].per_second"},
		{"oversized name", usage.Plan{Name: strings.Repeat("p", 65), Limits: []usage.Limit{{Endpoint: "*", PerDay: 1}}}, "name"},
		{"no limits", usage.Plan{Name: "p"}, "limits"},
		{"an endpoint twice", usage.Plan{Name: "p", Limits: []usage.Limit{{Endpoint: "*", PerDay: 1}, {Endpoint: "*", PerMonth: 5}}}, "limits[1].endpoint"},
		{"a limit of nothing", usage.Plan{Name: "p", Limits: []usage.Limit{{Endpoint: "revoke"}}}, "limits[0]"},
	} {
		err := tt.plan.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.field+":") {
			t.Errorf("%s: %v, want a problem with %s", tt.name, err, tt.field)
		}
	}
	for _, s := range []string{"client:abc", "key:k_1"} {
		if !usage.ValidSubject(s) {
			t.Errorf("%s refused", s)
		}
	}
	for _, s := range []string{"user:abc", "client:", "key:a/b", "client:" + strings.Repeat("x", 129)} {
		if usage.ValidSubject(s) {
			t.Errorf("%s accepted", s)
		}
	}
}
