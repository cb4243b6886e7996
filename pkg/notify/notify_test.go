package notify_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/notify"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/web"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// scene is the user directory of a node whose audit log mails notices,
// on a database of its own, with the user Ada.
type scene struct {
	dbURL string
	box   *seal.Box
	log   *audit.Log
	users *identity.Manager
	mfa   *identity.MFA
	ada   *identity.User
	// secret and codes are Ada's second factor, once enrolled.
	secret string
	codes  []string
}

const password = "correct horse battery staple"

func newScene(t *testing.T, kinds ...string) *scene {
	t.Helper()
	url := pgtest.URL(t)
	store := pgtest.Open(t, url)
	box, err := seal.New([][]byte{[]byte("test-secret-test-secret-test-secret-0123")})
	if err != nil {
		t.Fatal(err)
	}
	templates, err := mail.LoadTemplates(web.Mail(), "id.example.com")
	if err != nil {
		t.Fatal(err)
	}
	n := notify.New(store, mail.NewOutbox(store, box, templates), notify.Config{
		Kinds: kinds, SignInURL: "https://id.example.com/login", AccountURL: "https://id.example.com/account"})
	log := audit.New(store, slog.New(slog.DiscardHandler), n)
	s := &scene{dbURL: url, box: box, log: log,
		users: identity.NewManager(store, identity.NewHasher(), log, identity.Throttle{}),
		mfa:   identity.NewMFA(store, box, "id.example.com", identity.Throttle{}, log)}
	s.ada, err = s.users.Create(t.Context(), identity.User{Email: "ada@example.com", Name: "Ada Lovelace",
		Claims: map[string]any{"zoneinfo": "Europe/Berlin"}}, password)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sent is a message in the outbox, opened.
type sent struct {
	template, to string
	mail.Rendered
}

// outbox returns what the outbox holds, oldest first.
func (s *scene) outbox(t *testing.T) []sent {
	t.Helper()
	rows, err := pgtest.Conn(t, s.dbURL).Query(t.Context(), `SELECT id, template, recipient, message FROM mail_outbox ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []sent
	for rows.Next() {
		var m mail.Stored
		if err := rows.Scan(&m.ID, &m.Template, &m.Recipient, &m.Sealed); err != nil {
			t.Fatal(err)
		}
		r, err := mail.Open(s.box, &m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sent{template: m.Template, to: m.Recipient, Rendered: r})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// templates lists the templates of what the outbox holds.
func templates(ms []sent) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.template)
	}
	return out
}

// changeEmail moves Ada to a new address, as an admin or her following
// a verification link does: the update records the change.
func (s *scene) changeEmail(ctx context.Context, to string) error {
	_, err := s.users.Update(ctx, s.ada.ID, func(u *identity.User) error {
		u.Email = to
		return nil
	})
	return err
}

// enrol turns on Ada's second factor and returns its secret and recovery
// codes.
func (s *scene) enrol(t *testing.T) (string, []string) {
	t.Helper()
	e, err := s.mfa.Enrol(t.Context(), s.ada)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := totp.GenerateCode(e.Secret, time.Now())
	codes, err := s.mfa.Confirm(t.Context(), s.ada.ID, c)
	if err != nil {
		t.Fatal(err)
	}
	return e.Secret, codes
}

func TestEachChangeMailsItsNoticeOnlyWhileTheOperatorHasItOn(t *testing.T) {
	t.Parallel()
	enrol := func(t *testing.T, s *scene) { s.secret, s.codes = s.enrol(t) }
	tests := []struct {
		kind, template string
		// before makes what the change needs, which may itself be news.
		before func(t *testing.T, s *scene)
		change func(t *testing.T, s *scene) error
	}{
		{notify.Password, "password-changed", nil, func(t *testing.T, s *scene) error {
			return s.users.SetPassword(t.Context(), s.ada.ID, "a brand new passphrase")
		}},
		{notify.Email, "email-changed", nil, func(t *testing.T, s *scene) error {
			return s.changeEmail(t.Context(), "ada.king@example.org")
		}},
		{notify.MFA, "mfa-enabled", nil, func(t *testing.T, s *scene) error {
			enrol(t, s)
			return nil
		}},
		{notify.MFA, "mfa-disabled", enrol, func(t *testing.T, s *scene) error {
			c, _ := totp.GenerateCode(s.secret, time.Now().Add(30*time.Second))
			return s.mfa.Disable(t.Context(), s.ada.ID, c)
		}},
		{notify.MFA, "mfa-reset", enrol, func(t *testing.T, s *scene) error {
			return s.mfa.Reset(t.Context(), s.ada.ID)
		}},
		{notify.RecoveryCodes, "recovery-codes-renewed", enrol, func(t *testing.T, s *scene) error {
			_, err := s.mfa.RegenerateRecoveryCodes(t.Context(), s.ada.ID)
			return err
		}},
		{notify.RecoveryCodes, "recovery-code-used", enrol, func(t *testing.T, s *scene) error {
			return s.mfa.Verify(t.Context(), s.ada.ID, s.codes[0])
		}},
		{notify.MFA, "passkey-added", nil, func(t *testing.T, s *scene) error {
			return s.log.Record(t.Context(), audit.Event{Action: audit.PasskeyRegistered, Target: audit.User(s.ada.ID),
				Details: map[string]any{"name": "Phone"}})
		}},
		{notify.MFA, "passkey-removed", nil, func(t *testing.T, s *scene) error {
			return s.log.Record(t.Context(), audit.Event{Action: audit.PasskeyRemoved, Target: audit.User(s.ada.ID)})
		}},
		{notify.NewBrowser, "new-browser", nil, func(t *testing.T, s *scene) error {
			return s.log.Record(t.Context(), audit.Event{Action: audit.LoginSucceeded, Target: audit.User(s.ada.ID),
				Details: map[string]any{"new_browser": true}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			t.Parallel()
			for _, on := range []bool{true, false} {
				kinds := slices.DeleteFunc(slices.Clone(notify.Kinds), func(k string) bool { return k == tt.kind && !on })
				s := newScene(t, kinds...)
				if tt.before != nil {
					tt.before(t, s)
				}
				before := len(s.outbox(t))
				if err := tt.change(t, s); err != nil {
					t.Fatal(err)
				}
				got := templates(s.outbox(t)[before:])
				if want := []string{tt.template}; on && !slices.Equal(got, want) {
					t.Fatalf("with %s on, the change mailed %v, want %v", tt.kind, got, want)
				}
				if !on && len(got) != 0 {
					t.Fatalf("with %s off, the change mailed %v, want nothing", tt.kind, got)
				}
			}
		})
	}
}

func TestAChangeThatRollsBackMailsNothing(t *testing.T) {
	t.Parallel()
	s := newScene(t, notify.Kinds...)
	boom := errors.New("boom")
	// The password is set, its notice written, and then the transaction
	// fails: the notice must go with it.
	err := s.log.Change(t.Context(), func(ctx context.Context) (audit.Event, error) {
		if err := s.users.SetPassword(ctx, s.ada.ID, "a brand new passphrase"); err != nil {
			return audit.Event{}, err
		}
		return audit.Event{}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got := s.outbox(t); len(got) != 0 {
		t.Fatalf("a change that rolled back mailed %v", templates(got))
	}
	if _, err := s.users.Authenticate(t.Context(), s.ada.Email, password, nil); err != nil {
		t.Fatalf("the old password no longer works, so the change did not roll back: %v", err)
	}
}

func TestAnEmailChangeIsToldToTheOldAddressWithTheNewOneMasked(t *testing.T) {
	t.Parallel()
	s := newScene(t, notify.Kinds...)
	if err := s.changeEmail(t.Context(), "ada.king@example.org"); err != nil {
		t.Fatal(err)
	}
	got := s.outbox(t)
	if len(got) != 1 || got[0].to != "ada@example.com" {
		t.Fatalf("mailed %+v, want one notice to the old address", got)
	}
	if !strings.Contains(got[0].Text, "a…@example.org") || strings.Contains(got[0].Text, "ada.king") {
		t.Fatalf("the notice should name the new address's domain, and hide its local part:\n%s", got[0].Text)
	}
}

func TestANoticeSaysWhenInTheUsersLanguageAndTimeZone(t *testing.T) {
	t.Parallel()
	s := newScene(t, notify.Kinds...)
	if _, err := s.users.Update(t.Context(), s.ada.ID, func(u *identity.User) error {
		u.Claims["locale"] = "de-AT"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.users.SetPassword(t.Context(), s.ada.ID, "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	got := s.outbox(t)
	if len(got) != 1 {
		t.Fatalf("mailed %v", templates(got))
	}
	m := got[0]
	for _, want := range []string{"Ihr Passwort bei id.example.com wurde geändert", "Hallo Ada Lovelace", "https://id.example.com/login"} {
		if !strings.Contains(m.Subject+m.Text, want) {
			t.Errorf("the notice lacks %q:\n%s\n%s", want, m.Subject, m.Text)
		}
	}
	// Europe/Berlin, in winter or in summer.
	if !strings.Contains(m.Text, "Uhr (CET)") && !strings.Contains(m.Text, "Uhr (CEST)") {
		t.Errorf("the notice does not give the time in Ada's zone:\n%s", m.Text)
	}
	if !strings.Contains(m.HTML, `<a href="https://id.example.com/login">`) {
		t.Errorf("the HTML part has no link to sign in:\n%s", m.HTML)
	}
}

func TestTheNoticesAreTheOnesTheConfigurationNames(t *testing.T) {
	if !slices.Equal(notify.Kinds, config.Notifications) {
		t.Fatalf("notify.Kinds %v, config.Notifications %v: LATCHKEY_NOTIFICATIONS must name exactly the notices there are", notify.Kinds, config.Notifications)
	}
}

func TestEveryNoticeRendersInEveryLanguageAndSaysWhenAndWhatToDo(t *testing.T) {
	templates, err := mail.LoadTemplates(web.Mail(), "id.example.com")
	if err != nil {
		t.Fatal(err)
	}
	d := notify.Data{Name: "Ada", Account: "ada@example.com", When: time.Date(2026, 12, 4, 9, 30, 0, 0, time.UTC),
		Browser: "Firefox on Linux", IP: "203.0.113.7", NewEmail: "a…@example.org", CodesLeft: 7, Passkey: "Phone",
		SignInURL: "https://id.example.com/login", AccountURL: "https://id.example.com/account"}
	for _, name := range notify.Templates() {
		for _, locale := range []string{"en", "de"} {
			r, err := templates.Render(mail.Message{Template: name, To: "ada@example.com", Locale: locale, Data: d})
			if err != nil {
				t.Fatalf("%s in %s: %v", name, locale, err)
			}
			if strings.Contains(r.Text, "<no value>") || strings.Contains(r.HTML, "<no value>") || r.Subject == "" {
				t.Errorf("%s in %s has a gap:\n%s", name, locale, r.Text)
			}
			if !strings.Contains(r.Text, "4") || !strings.Contains(r.Text, "09:30") {
				t.Errorf("%s in %s does not say when:\n%s", name, locale, r.Text)
			}
			// An email change is told to an address that can no longer
			// sign in or reset the password: only the administrator can
			// help. Every other notice links to where the user acts.
			linked := strings.Contains(r.Text, "https://id.example.com/") && strings.Contains(r.HTML, `<a href="https://id.example.com/`)
			if name != "email-changed" && !linked {
				t.Errorf("%s in %s offers no way to act on it:\n%s", name, locale, r.Text)
			}
			if !strings.Contains(r.Text, "Administrator") && !strings.Contains(r.Text, "administrator") {
				t.Errorf("%s in %s does not say who can help:\n%s", name, locale, r.Text)
			}
			german := strings.Contains(r.Text, "Hallo Ada")
			if german != (locale == "de") {
				t.Errorf("%s asked for in %s came in another language:\n%s", name, locale, r.Text)
			}
		}
	}
}

func TestAnAddressNoServerTakesDoesNotStopTheChange(t *testing.T) {
	t.Parallel()
	s := newScene(t, notify.Kinds...)
	// An address stored behind the directory's back, as an old import
	// might have: the change goes through, untold.
	if _, err := pgtest.Conn(t, s.dbURL).Exec(t.Context(), `UPDATE users SET email = 'Ada <ada@example.com>' WHERE id = $1`, s.ada.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.users.SetPassword(t.Context(), s.ada.ID, "a brand new passphrase"); err != nil {
		t.Fatalf("a password change failed for want of a mailable address: %v", err)
	}
	if got := s.outbox(t); len(got) != 0 {
		t.Fatalf("mailed %v", templates(got))
	}
}

func TestAFirstPasswordIsNotToldAsAChange(t *testing.T) {
	t.Parallel()
	s := newScene(t, notify.Password)
	// Grace was invited: she has no password until she chooses one.
	grace, err := s.users.Create(t.Context(), identity.User{Email: "grace@example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.users.SetPassword(t.Context(), grace.ID, "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if got := templates(s.outbox(t)); len(got) != 0 {
		t.Fatalf("choosing a first password mailed %v, want nothing", got)
	}
	if err := s.users.SetPassword(t.Context(), grace.ID, "another brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if got := templates(s.outbox(t)); !slices.Equal(got, []string{"password-changed"}) {
		t.Fatalf("changing it then mailed %v, want the notice", got)
	}
}
