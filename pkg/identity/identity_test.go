package identity_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestPasswordPolicy(t *testing.T) {
	tests := []struct {
		password string
		ok       bool
		why      string
	}{
		{"correct horse battery staple", true, ""},
		{"Tr0ub4dor&3", true, ""},
		{"ünïcødé€✓", true, "any characters count, one each"},
		{strings.Repeat("x", 128), true, "the longest allowed"},
		{"seven77", false, "at least 8"},
		{strings.Repeat("x", 129), false, "at most 128"},
		{"password", false, "common"},
		{"PassWord1", false, "common"},
		{"iloveyou", false, "common"},
		{"qwertyuiop", false, "common"},
		{"ada@example.com", false, "email"},
		{"ADA@EXAMPLE.COM", false, "email"},
	}
	for _, tt := range tests {
		err := identity.CheckPassword(tt.password, "ada@example.com")
		if tt.ok != (err == nil) {
			t.Errorf("%q: err %v, want ok=%v (%s)", tt.password, err, tt.ok, tt.why)
		}
		if err != nil && !errors.Is(err, identity.ErrWeakPassword) {
			t.Errorf("%q: %v is not ErrWeakPassword", tt.password, err)
		}
	}
}

func TestHasherVerifiesAndFlagsOldParameters(t *testing.T) {
	h := identity.NewHasher()
	hash, err := h.Hash(t.Context(), "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=65536,t=2,p=2$") {
		t.Fatalf("hash %q does not use the documented parameters", hash)
	}
	if ok, stale, err := h.Verify(t.Context(), "correct horse battery staple", hash); !ok || stale || err != nil {
		t.Fatalf("right password: ok %v, stale %v, err %v", ok, stale, err)
	}
	if ok, _, _ := h.Verify(t.Context(), "correct horse battery stable", hash); ok {
		t.Fatal("a wrong password verified")
	}
	weak, err := argon2id.CreateHash("correct horse battery staple", &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	if ok, stale, _ := h.Verify(t.Context(), "correct horse battery staple", weak); !ok || !stale {
		t.Fatalf("hash with older parameters: ok %v, stale %v; want it to verify and be flagged for rehashing", ok, stale)
	}
	if ok, _, _ := h.Verify(t.Context(), "", ""); ok {
		t.Fatal("an empty hash matched")
	}
}

func TestClaimsFollowScopes(t *testing.T) {
	u := identity.User{
		ID: "7f1c0e5a-1111-4222-8333-944455556666", Email: "ada@example.com", EmailVerified: true,
		Name: "Ada Lovelace", GivenName: "Ada",
		Claims:    map[string]any{"locale": "en-GB", "phone_number": "+44 20 7946 0000", "address": map[string]any{"country": "UK"}},
		UpdatedAt: time.Unix(1700000000, 0),
	}
	tests := []struct {
		scopes []string
		want   []string
	}{
		{nil, []string{"sub"}},
		{[]string{"openid"}, []string{"sub"}},
		{[]string{"email"}, []string{"email", "email_verified", "sub"}},
		{[]string{"profile"}, []string{"given_name", "locale", "name", "sub", "updated_at"}},
		{[]string{"phone", "address"}, []string{"address", "phone_number", "sub"}},
	}
	for _, tt := range tests {
		got := u.ClaimValues(identity.ClaimsForScopes(tt.scopes))
		var names []string
		for k := range got {
			names = append(names, k)
		}
		slices.Sort(names)
		if !slices.Equal(names, tt.want) {
			t.Errorf("scopes %v give claims %v, want %v (claims the user lacks are left out)", tt.scopes, names, tt.want)
		}
	}
}

func TestValidateUser(t *testing.T) {
	tests := []struct {
		name string
		u    identity.User
		ok   bool
	}{
		{"plain", identity.User{Email: "ada@example.com"}, true},
		{"not an email", identity.User{Email: "ada"}, false},
		{"display name form", identity.User{Email: "Ada <ada@example.com>"}, false},
		{"control character in a name", identity.User{Email: "ada@example.com", Name: "Ada\nLovelace"}, false},
		{"unknown claim", identity.User{Email: "ada@example.com", Claims: map[string]any{"is_admin": true}}, false},
		{"standard claim", identity.User{Email: "ada@example.com", Claims: map[string]any{"zoneinfo": "Europe/London"}}, true},
		{"claim with a newline", identity.User{Email: "ada@example.com", Claims: map[string]any{"locale": "en\nGB"}}, false},
		{"claim that is not a string", identity.User{Email: "ada@example.com", Claims: map[string]any{"locale": 42.0}}, false},
		{"address as an object", identity.User{Email: "ada@example.com", Claims: map[string]any{"address": map[string]any{"country": "UK"}}}, true},
		{"address as a string", identity.User{Email: "ada@example.com", Claims: map[string]any{"address": "1 Main St"}}, false},
		{"address with an unknown member", identity.User{Email: "ada@example.com", Claims: map[string]any{"address": map[string]any{"planet": "Earth"}}}, false},
		{"phone verification as text", identity.User{Email: "ada@example.com", Claims: map[string]any{"phone_number_verified": "yes"}}, false},
	}
	for _, tt := range tests {
		if err := tt.u.Validate(); tt.ok != (err == nil) {
			t.Errorf("%s: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func newManager(t *testing.T) *identity.Manager {
	t.Helper()
	return managerOn(pgtest.Store(t))
}

// store is what a Manager and its audit log keep on one database.
type store interface {
	identity.Store
	audit.Store
}

// managerOn is a Manager over store, recording to its audit log.
func managerOn(store store) *identity.Manager {
	return identity.NewManager(store, identity.NewHasher(), audit.New(store, slog.New(slog.DiscardHandler)), identity.Throttle{})
}

func TestEmailsAreUniqueWithoutCase(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	if _, err := m.Create(t.Context(), identity.User{Email: "Ada@Example.com"}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(t.Context(), identity.User{Email: "ada@example.COM"}, ""); !errors.Is(err, identity.ErrEmailTaken) {
		t.Fatalf("second user with the same email in another case: %v", err)
	}
	u, err := m.GetByEmail(t.Context(), "ADA@EXAMPLE.COM")
	if err != nil || u.Email != "Ada@Example.com" {
		t.Fatalf("lookup without case: %v, %v", u, err)
	}
}

func TestEveryFailedSignInLooksTheSame(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	u, err := m.Create(t.Context(), identity.User{Email: "ada@example.com"}, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(t.Context(), identity.User{Email: "nopass@example.com"}, ""); err != nil {
		t.Fatal(err)
	}
	disabled, err := m.Create(t.Context(), identity.User{Email: "gone@example.com"}, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(t.Context(), disabled.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Authenticate(t.Context(), "ADA@example.com", "correct horse battery staple", nil); err != nil || got.ID != u.ID {
		t.Fatalf("right password: %v, %v", got, err)
	}
	for name, creds := range map[string][2]string{
		"wrong password":        {"ada@example.com", "correct horse battery stable"},
		"unknown email":         {"nobody@example.com", "correct horse battery staple"},
		"user with no password": {"nopass@example.com", ""},
		"disabled user":         {"gone@example.com", "correct horse battery staple"},
	} {
		if _, err := m.Authenticate(t.Context(), creds[0], creds[1], nil); err != identity.ErrInvalidCredentials {
			t.Errorf("%s: %v, want exactly ErrInvalidCredentials", name, err)
		}
	}
}

// TestUnknownEmailCostsAPasswordCheck guards the timing side of user
// enumeration: without the dummy check, an unknown email answers in a
// millisecond and a known one in tens. It compares the two paths, so it
// holds on any machine.
func TestUnknownEmailCostsAPasswordCheck(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	if _, err := m.Create(t.Context(), identity.User{Email: "ada@example.com"}, "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	median := func(email string) time.Duration {
		var d []time.Duration
		for range 5 {
			start := time.Now()
			_, _ = m.Authenticate(t.Context(), email, "not the password", nil)
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		return d[2]
	}
	known, unknown := median("ada@example.com"), median("nobody@example.com")
	if unknown < known/3 {
		t.Fatalf("an unknown email answers in %s, a known one in %s: the difference reveals which accounts exist", unknown, known)
	}
}

func TestOldHashesAreUpgradedAtSignIn(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	m := managerOn(store)
	u, err := m.Create(t.Context(), identity.User{Email: "ada@example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	old, _ := argon2id.CreateHash("correct horse battery staple", &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if _, err := store.UpdateUser(t.Context(), u.ID, func(u *identity.User) error { u.PasswordHash = old; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate(t.Context(), "ada@example.com", "correct horse battery staple", nil); err != nil {
		t.Fatal(err)
	}
	after, err := store.UserByID(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(after.PasswordHash, "$argon2id$v=19$m=65536,t=2,p=2$") {
		t.Fatalf("hash after sign-in %q: want it rehashed with the current parameters", after.PasswordHash)
	}
}

// Apps rely on email_verified to mean that someone checked the address.
// Whoever changes a user's email (the CLI, the admin API), the new address
// is unverified unless the same edit says it is verified; a change of
// case is the same address, and a lookalike that Unicode case folding
// takes for it is not.
func TestANewEmailIsUnverifiedUnlessTheEditSaysSo(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	setEmail := func(email string) func(*identity.User) error {
		return func(u *identity.User) error { u.Email = email; return nil }
	}
	for _, tt := range []struct {
		name         string
		verified     bool // before the edit
		edit         func(*identity.User) error
		wantVerified bool
	}{
		{"a new address", true, setEmail("ada.king@example.com"), false},
		{"a new address, vouched for", true, func(u *identity.User) error {
			u.Email, u.EmailVerified = "ada.king@example.com", true
			return nil
		}, true},
		{"a new unverified address, vouched for", false, func(u *identity.User) error {
			u.Email, u.EmailVerified = "ada.king@example.com", true
			return nil
		}, true},
		{"the same address in capitals", true, setEmail("ADA@Example.COM"), true},
		{"the same address with spaces around", true, setEmail(" ada@example.com "), true},
		{"a lookalike with a long s", true, setEmail("adaſ@example.com"), false},
		{"another field", true, func(u *identity.User) error { u.Name = "Ada King"; return nil }, true},
		{"verification withdrawn", true, func(u *identity.User) error { u.EmailVerified = false; return nil }, false},
		{"verification given", false, func(u *identity.User) error { u.EmailVerified = true; return nil }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := m.Create(t.Context(), identity.User{Email: "ada@example.com", EmailVerified: tt.verified}, "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Delete(context.Background(), u.ID) })
			updated, err := m.Update(t.Context(), u.ID, tt.edit)
			if err != nil {
				t.Fatal(err)
			}
			if updated.EmailVerified != tt.wantVerified {
				t.Errorf("email %q: email_verified %v, want %v", updated.Email, updated.EmailVerified, tt.wantVerified)
			}
			stored, err := m.Get(t.Context(), u.ID)
			if err != nil || stored.EmailVerified != tt.wantVerified {
				t.Errorf("stored: %v, email_verified %v, want %v", err, stored.EmailVerified, tt.wantVerified)
			}
		})
	}
}

// An edit runs on a user of its own: what a first run did to the claims
// does not leak into the second run that a new address takes.
func TestAnEditOfANewAddressStartsFromTheStoredClaims(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	u, err := m.Create(t.Context(), identity.User{Email: "ada@example.com",
		Claims: map[string]any{"address": map[string]any{"country": "UK"}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	updated, err := m.Update(t.Context(), u.ID, func(u *identity.User) error {
		runs++
		u.Email = "ada.king@example.com"
		addr := u.Claims["address"].(map[string]any)
		addr["locality"] = fmt.Sprint(addr["locality"], "+")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := updated.Claims["address"].(map[string]any)["locality"]; runs != 2 || got != "<nil>+" {
		t.Fatalf("after %d runs the locality is %q, want one edit's %q", runs, got, "<nil>+")
	}
}

// A sub is a UUID, and nothing else is: the managers (and pkg/roles) take
// anything else for no user, and pkg/client refuses client IDs that are
// subs.
func TestIsSubIsAUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"7f1c0e5a-1111-4222-8333-944455556666": true,
		"7F1C0E5A-1111-4222-8333-944455556666": true,
		"ada@example.com":                      false,
		"billing":                              false,
		"":                                     false,
	} {
		if got := identity.IsSub(s); got != want {
			t.Errorf("IsSub(%q) = %v, want %v", s, got, want)
		}
	}
}
