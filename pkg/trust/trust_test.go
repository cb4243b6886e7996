package trust_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/trust"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is two users and what trusts their browsers, on a database of
// their own.
type fixture struct {
	store    trustStore
	audit    *audit.Log
	box      *seal.Box
	ada, bob string
}

// trustStore is the store as these tests use it: trust.Store, and the
// janitor's sweep.
type trustStore interface {
	trust.Store
	Sweep(ctx context.Context, now time.Time, batch int, auditRetention time.Duration) (map[string]int64, error)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store := pgtest.Store(t)
	box, err := seal.New([][]byte{[]byte("test-secret-test-secret-test-secret-0123")})
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(store, slog.New(slog.DiscardHandler))
	users := identity.NewManager(store, identity.NewHasher(), log, identity.Throttle{})
	f := &fixture{store: store, audit: log, box: box}
	for email, id := range map[string]*string{"ada@example.com": &f.ada, "bob@example.com": &f.bob} {
		u, err := users.Create(t.Context(), identity.User{Email: email}, "")
		if err != nil {
			t.Fatal(err)
		}
		*id = u.ID
	}
	return f
}

// trusted returns a request from a browser that userID trusted with m.
func trusted(t *testing.T, m *trust.Manager, userID string) *http.Request {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/login/otp", nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0")
	if err := m.Trust(t.Context(), w, r, userID); err != nil {
		t.Fatal(err)
	}
	next := httptest.NewRequest(http.MethodPost, "/login", nil)
	for _, c := range w.Result().Cookies() {
		next.AddCookie(c)
	}
	return next
}

func TestABrowserIsRecognisedOnlyForTheUserWhoTrustedIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := trust.New(f.store, f.audit, f.box, time.Hour, true)
	r := trusted(t, m, f.ada)
	if ok, err := m.Recognised(t.Context(), r, f.ada); err != nil || !ok {
		t.Fatalf("ada's own browser: %v, %v", ok, err)
	}
	if ok, _ := m.Recognised(t.Context(), r, f.bob); ok {
		t.Fatal("ada's trusted browser was recognised for bob")
	}
	ds, err := m.List(t.Context(), f.ada)
	if err != nil || len(ds) != 1 || ds[0].Label != "Firefox on Linux" {
		t.Fatalf("ada's trusted browsers: %+v, %v", ds, err)
	}
}

func TestTrustingTheSameBrowserAgainReplacesItsRecord(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := trust.New(f.store, f.audit, f.box, time.Hour, true)
	r := trusted(t, m, f.ada)
	w := httptest.NewRecorder()
	if err := m.Trust(t.Context(), w, r, f.ada); err != nil {
		t.Fatal(err)
	}
	if ds, _ := m.List(t.Context(), f.ada); len(ds) != 1 {
		t.Fatalf("trusting one browser twice left %d records", len(ds))
	}
	// The old cookie's secret is spent with its record.
	if ok, _ := m.Recognised(t.Context(), r, f.ada); ok {
		t.Fatal("the replaced cookie is still recognised")
	}
}

func TestWithTrustedDevicesOffNoCookieIsHonoured(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	on := trust.New(f.store, f.audit, f.box, time.Hour, true)
	r := trusted(t, on, f.ada)
	off := trust.New(f.store, f.audit, f.box, 0, true)
	if ok, err := off.Recognised(t.Context(), r, f.ada); ok || err != nil {
		t.Fatalf("trusted devices off honoured a cookie made while on: %v, %v", ok, err)
	}
	w := httptest.NewRecorder()
	if err := off.Trust(t.Context(), w, httptest.NewRequest(http.MethodPost, "/", nil), f.bob); err != nil || len(w.Result().Cookies()) != 0 {
		t.Fatalf("trusted devices off trusted a browser: %v, %v", w.Result().Cookies(), err)
	}
}

func TestAnExpiredTrustIsNotRecognisedAndTheJanitorSweepsIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := trust.New(f.store, f.audit, f.box, time.Hour, true)
	r := trusted(t, m, f.ada)
	deleted, err := f.store.Sweep(t.Context(), time.Now().Add(2*time.Hour), 100, 0)
	if err != nil || deleted["trusted_devices"] != 1 {
		t.Fatalf("the janitor, two hours on: %v, %v", deleted, err)
	}
	if ok, _ := m.Recognised(t.Context(), r, f.ada); ok {
		t.Fatal("a swept trusted browser is still recognised")
	}
}

func TestForgettingIsAuditedAndAnotherUsersDeviceCannotBeForgotten(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := trust.New(f.store, f.audit, f.box, time.Hour, true)
	trusted(t, m, f.ada)
	ds, _ := m.List(t.Context(), f.ada)
	if err := m.Forget(t.Context(), f.bob, ds[0].ID); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("bob forgetting ada's browser: %v, want ErrNotFound", err)
	}
	if err := m.Forget(t.Context(), f.ada, "not-a-uuid"); !errors.Is(err, trust.ErrNotFound) {
		t.Fatalf("forgetting a malformed ID: %v, want ErrNotFound", err)
	}
	if err := m.Forget(t.Context(), f.ada, ds[0].ID); err != nil {
		t.Fatal(err)
	}
	events, err := f.audit.List(t.Context(), audit.Query{Action: audit.DeviceForgotten})
	if err != nil || len(events) != 1 || events[0].Details["device"] != ds[0].ID {
		t.Fatalf("device.forgotten events: %+v, %v", events, err)
	}
	if n, err := m.ForgetAll(t.Context(), f.ada); err != nil || n != 0 {
		t.Fatalf("forgetting all, none left: %d, %v", n, err)
	}
}
