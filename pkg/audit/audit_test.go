package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/roles"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// scene is an audit log on a fresh database, logging to a buffer.
func scene(t *testing.T) (*audit.Log, roles.Store, *bytes.Buffer) {
	t.Helper()
	store := pgtest.Store(t)
	var logs bytes.Buffer
	return audit.New(store, slog.New(slog.NewJSONHandler(&logs, nil))), store, &logs
}

// createRole is a change to record: it stores a role.
func createRole(store roles.Store, name string) func(ctx context.Context) (audit.Event, error) {
	return func(ctx context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.RoleCreated, Target: audit.Role(name)}, store.CreateRole(ctx, &roles.Role{Name: name})
	}
}

func events(t *testing.T, log *audit.Log) []audit.Event {
	t.Helper()
	es, err := log.List(t.Context(), audit.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestAChangeAndItsEventCommitTogether(t *testing.T) {
	t.Parallel()
	log, store, logs := scene(t)
	ctx := audit.WithActor(t.Context(), "cli:ada")
	if err := log.Change(ctx, createRole(store, "support")); err != nil {
		t.Fatal(err)
	}
	es := events(t, log)
	if len(es) != 1 || es[0].Action != audit.RoleCreated || es[0].Actor != "cli:ada" || es[0].Target != "role:support" || es[0].ID == 0 || es[0].At.IsZero() {
		t.Fatalf("events %+v, want the role's creation by cli:ada", es)
	}
	if _, err := store.Role(t.Context(), "support"); err != nil {
		t.Fatalf("the change itself: %v", err)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil || line["msg"] != "audit" || line["action"] != audit.RoleCreated || line["actor"] != "cli:ada" {
		t.Fatalf("the event's log line: %s", logs)
	}
}

func TestAFailedChangeLeavesNoEvent(t *testing.T) {
	t.Parallel()
	log, store, logs := scene(t)
	boom := errors.New("boom")
	err := log.Change(t.Context(), func(ctx context.Context) (audit.Event, error) {
		e, err := createRole(store, "support")(ctx)
		if err != nil {
			return e, err
		}
		return e, boom // the change wrote, then failed
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Change returned %v, want the change's error", err)
	}
	if es := events(t, log); len(es) != 0 {
		t.Fatalf("a rolled-back change left events: %+v", es)
	}
	if _, err := store.Role(t.Context(), "support"); !errors.Is(err, roles.ErrNotFound) {
		t.Fatalf("the change's write survived its failure: %v", err)
	}
	if logs.Len() != 0 {
		t.Fatalf("a rolled-back change was logged: %s", logs)
	}
}

func TestAnEventThatCannotBeRecordedUndoesItsChange(t *testing.T) {
	t.Parallel()
	log, store, _ := scene(t)
	err := log.Change(t.Context(), func(ctx context.Context) (audit.Event, error) {
		e, err := createRole(store, "support")(ctx)
		e.Details = map[string]any{"unencodable": func() {}}
		return e, err
	})
	if err == nil {
		t.Fatal("recording an unencodable event succeeded")
	}
	if _, err := store.Role(t.Context(), "support"); !errors.Is(err, roles.ErrNotFound) {
		t.Fatalf("a change committed without its event: %v", err)
	}
}

func TestAChangeThatFoundNothingToDoRecordsNothing(t *testing.T) {
	t.Parallel()
	log, _, _ := scene(t)
	if err := log.Change(t.Context(), func(context.Context) (audit.Event, error) { return audit.Event{}, nil }); err != nil {
		t.Fatal(err)
	}
	if es := events(t, log); len(es) != 0 {
		t.Fatalf("events %+v, want none", es)
	}
}

func TestEventsAreFilteredAndListedNewestFirst(t *testing.T) {
	t.Parallel()
	log, store, _ := scene(t)
	for _, name := range []string{"a", "b", "c"} {
		if err := log.Change(audit.WithActor(t.Context(), "cli:"+name), createRole(store, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Record(t.Context(), audit.Event{Action: audit.LoginFailed, Details: map[string]any{"email": "x@example.com"}}); err != nil {
		t.Fatal(err)
	}
	all := events(t, log)
	var actions []string
	for _, e := range all {
		actions = append(actions, e.Action+" "+e.Target+" "+e.Actor)
	}
	if got := strings.Join(actions, ", "); got != "login.failed  anonymous, role.created role:c cli:c, role.created role:b cli:b, role.created role:a cli:a" {
		t.Fatalf("events newest first: %s", got)
	}
	for _, tt := range []struct {
		q    audit.Query
		want int
	}{
		{audit.Query{Action: audit.RoleCreated}, 3},
		{audit.Query{Actor: "cli:b"}, 1},
		{audit.Query{Target: "role:c"}, 1},
		{audit.Query{BeforeID: all[1].ID}, 2},
		{audit.Query{Since: all[0].At.Add(time.Microsecond)}, 0},
		{audit.Query{Until: all[3].At}, 0},
		{audit.Query{Action: audit.RoleCreated, Limit: 2}, 2},
	} {
		if tt.q.Limit == 0 {
			tt.q.Limit = 100
		}
		es, err := log.List(t.Context(), tt.q)
		if err != nil || len(es) != tt.want {
			t.Errorf("%+v: %d events (%v), want %d", tt.q, len(es), err, tt.want)
		}
	}
}

func TestChangedNamesWhatAnUpdateChanged(t *testing.T) {
	type doc struct {
		Name    string   `json:"name"`
		Scopes  []string `json:"scopes,omitempty"`
		Note    string   `json:"note,omitempty"`
		Updated int      `json:"updated_at"`
	}
	before := doc{Name: "a", Scopes: []string{"x"}, Updated: 1}
	after := doc{Name: "b", Note: "new", Updated: 2}
	if got := strings.Join(audit.Changed(before, after), ","); got != "name,note,scopes" {
		t.Fatalf("Changed = %s, want name,note,scopes (and never updated_at)", got)
	}
	if got := audit.Changed(before, before); len(got) != 0 {
		t.Fatalf("Changed of an unchanged document = %v", got)
	}
}

func TestDetailsAreCutToTheirBoundsWhenStored(t *testing.T) {
	t.Parallel()
	log, _, _ := scene(t)
	long := strings.Repeat("é", audit.MaxDetailChars+100)
	many := make([]string, audit.MaxDetailItems+10)
	for i := range many {
		many[i] = long
	}
	err := log.Record(t.Context(), audit.Event{Action: audit.LoginFailed, Details: map[string]any{
		"email":  long + "@example.com",
		"scopes": many,
		"nested": map[string]any{"deeper": []any{long, map[string][]string{"x": many}}},
		"reason": "wrong password",
		"count":  3,
	}})
	if err != nil {
		t.Fatal(err)
	}
	d := events(t, log)[0].Details
	if got := d["email"].(string); got != strings.Repeat("é", audit.MaxDetailChars) {
		t.Errorf("email kept %d characters, want the first %d", len([]rune(got)), audit.MaxDetailChars)
	}
	if got := d["scopes"].([]any); len(got) != audit.MaxDetailItems || len([]rune(got[0].(string))) != audit.MaxDetailChars {
		t.Errorf("scopes kept %d items, want %d, each cut", len(got), audit.MaxDetailItems)
	}
	deeper := d["nested"].(map[string]any)["deeper"].([]any)
	if len([]rune(deeper[0].(string))) != audit.MaxDetailChars || len(deeper[1].(map[string]any)["x"].([]any)) != audit.MaxDetailItems {
		t.Errorf("nested values were not cut: %v", deeper)
	}
	if d["reason"] != "wrong password" || d["count"] != float64(3) || d[audit.Truncated] != true {
		t.Errorf("details %v: want short values kept as they are, and the event marked truncated", d)
	}

	if err := log.Record(t.Context(), audit.Event{Action: audit.LoginFailed, Details: map[string]any{"email": "ada@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if d := events(t, log)[0].Details; d["email"] != "ada@example.com" || d[audit.Truncated] != nil {
		t.Errorf("an event within the bounds was changed: %v", d)
	}
}

// reactorFunc is a Reactor made of a function.
type reactorFunc func(ctx context.Context, e audit.Event) error

func (f reactorFunc) React(ctx context.Context, e audit.Event) error { return f(ctx, e) }

// ReactsTo is true: a reactorFunc sees every event.
func (f reactorFunc) ReactsTo(string) bool { return true }

// echoRole is a reactor that writes, for each event, a role named after
// the event's target (role:NAME becomes NAME-seen), so that a test can see
// whether what a reactor wrote committed.
func echoRole(store roles.Store, fail error) reactorFunc {
	return func(ctx context.Context, e audit.Event) error {
		if err := store.CreateRole(ctx, &roles.Role{Name: strings.TrimPrefix(e.Target, "role:") + "-seen"}); err != nil {
			return err
		}
		return fail
	}
}

func TestAReactorsWritesCommitWithTheChangeAndRollBackWithIt(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	var seen []audit.Event
	log := audit.New(store, slog.New(slog.DiscardHandler), echoRole(store, nil), reactorFunc(func(_ context.Context, e audit.Event) error {
		seen = append(seen, e)
		return nil
	}))
	if err := log.Change(t.Context(), createRole(store, "support")); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Role(t.Context(), "support-seen"); err != nil {
		t.Fatalf("the reactor's write did not commit with the change: %v", err)
	}
	if len(seen) != 1 || seen[0].ID == 0 || seen[0].Action != audit.RoleCreated {
		t.Fatalf("the reactors saw %+v, want the stored event, with its ID", seen)
	}

	boom := errors.New("boom")
	err := log.Change(t.Context(), func(ctx context.Context) (audit.Event, error) {
		e, err := createRole(store, "ops")(ctx)
		if err != nil {
			return e, err
		}
		return e, boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := store.Role(t.Context(), "ops-seen"); !errors.Is(err, roles.ErrNotFound) {
		t.Fatalf("a reactor acted on a change that rolled back: %v", err)
	}
	if len(seen) != 1 {
		t.Fatalf("a reactor was told of an event that was never recorded: %+v", seen)
	}
}

func TestAReactorThatFailsUndoesTheChangeAndTheEvent(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	boom := errors.New("boom")
	log := audit.New(store, slog.New(slog.DiscardHandler), echoRole(store, boom))
	if err := log.Change(t.Context(), createRole(store, "support")); !errors.Is(err, boom) {
		t.Fatalf("Change returned %v, want the reactor's error", err)
	}
	for _, name := range []string{"support", "support-seen"} {
		if _, err := store.Role(t.Context(), name); !errors.Is(err, roles.ErrNotFound) {
			t.Errorf("role %s committed though the reactor failed: %v", name, err)
		}
	}
	if es := events(t, log); len(es) != 0 {
		t.Fatalf("events %+v, want none", es)
	}
}

func TestARecordedEventAndItsReactionCommitTogetherOutsideAnyTransaction(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	boom := errors.New("boom")
	log := audit.New(store, slog.New(slog.DiscardHandler), echoRole(store, boom))
	// The reactor writes, then fails: Record alone must not keep the write
	// nor the event, as it would if each ran on its own connection.
	if err := log.Record(t.Context(), audit.Event{Action: audit.LoginFailed, Target: "role:x"}); !errors.Is(err, boom) {
		t.Fatalf("Record returned %v, want the reactor's error", err)
	}
	if _, err := store.Role(t.Context(), "x-seen"); !errors.Is(err, roles.ErrNotFound) {
		t.Fatalf("the reaction outlived its failure: %v", err)
	}
	if es := events(t, log); len(es) != 0 {
		t.Fatalf("events %+v, want none", es)
	}
	ok := audit.New(store, slog.New(slog.DiscardHandler), echoRole(store, nil))
	if err := ok.Record(t.Context(), audit.Event{Action: audit.LoginFailed, Target: "role:y"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Role(t.Context(), "y-seen"); err != nil || len(events(t, ok)) != 1 {
		t.Fatalf("the event and its reaction: %v, %d events", err, len(events(t, ok)))
	}
}

// deaf is a reactor that wants no event, and fails if it is given one.
type deaf struct{}

func (deaf) ReactsTo(string) bool { return false }
func (deaf) React(context.Context, audit.Event) error {
	return errors.New("a reactor was given an event it does not react to")
}

func TestAReactorIsGivenOnlyTheEventsItReactsTo(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	log := audit.New(store, slog.New(slog.DiscardHandler), deaf{})
	if err := log.Record(t.Context(), audit.Event{Action: audit.LoginFailed}); err != nil {
		t.Fatal(err)
	}
	err := log.Change(t.Context(), func(context.Context) (audit.Event, error) {
		return audit.Event{Action: audit.RoleCreated, Target: audit.Role("x")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
