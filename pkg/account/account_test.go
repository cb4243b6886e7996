package account_test

import (
	"encoding/base64"
	"errors"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp/totp"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/web"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	issuer   = "https://id.example.com"
	password = "correct horse battery staple"
	// newPassword is what the tests change passwords to.
	newPassword = "a brand new passphrase"
)

// scene is the account service on a database of its own, wired as
// cmd/latchkey wires it, with a way to read the outbox.
type scene struct {
	t     *testing.T
	svc   *account.Service
	users *identity.Manager
	mfa   *identity.MFA
	log   *audit.Log
	box   *seal.Box
	conn  *pgx.Conn
}

func newScene(t *testing.T) *scene {
	t.Helper()
	dbURL := pgtest.URL(t)
	store := pgtest.Open(t, dbURL)
	box, err := seal.New([][]byte{[]byte("test-secret-test-secret-test-secret-0123")})
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	auditLog := audit.New(store, logger)
	templates, err := mail.LoadTemplates(web.Mail(), "id.example.com")
	if err != nil {
		t.Fatal(err)
	}
	users := identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{})
	mfa := identity.NewMFA(store, box, "test", identity.Throttle{MaxFailures: 5, Window: time.Minute}, auditLog)
	return &scene{
		t: t,
		svc: &account.Service{Store: store, Users: users, MFA: mfa, Audit: auditLog, Mail: mail.NewOutbox(store, box, templates),
			Box: box, Issuer: issuer, SignIn: issuer + "/login", Forgot: issuer + "/login/forgot"},
		users: users, mfa: mfa, log: auditLog, box: box, conn: pgtest.Conn(t, dbURL),
	}
}

func (s *scene) user(email string, claims map[string]any) *identity.User {
	s.t.Helper()
	u, err := s.users.Create(s.t.Context(), identity.User{Email: email, EmailVerified: true, Name: "Ada", Claims: claims}, password)
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

// sent is a message in the outbox, opened.
type sent struct {
	template, to string
	mail.Rendered
}

// outbox returns every message written to the outbox, oldest first.
func (s *scene) outbox() []sent {
	s.t.Helper()
	rows, err := s.conn.Query(s.t.Context(), `SELECT id, template, recipient, message FROM mail_outbox ORDER BY id`)
	if err != nil {
		s.t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mail.Stored, error) {
		var m mail.Stored
		return m, r.Scan(&m.ID, &m.Template, &m.Recipient, &m.Sealed)
	})
	if err != nil {
		s.t.Fatal(err)
	}
	var out []sent
	for _, m := range stored {
		r, err := mail.Open(s.box, &m)
		if err != nil {
			s.t.Fatal(err)
		}
		out = append(out, sent{template: m.Template, to: m.Recipient, Rendered: r})
	}
	return out
}

// last returns the newest message in the outbox, which must be template's
// to to.
func (s *scene) last(template, to string) sent {
	s.t.Helper()
	all := s.outbox()
	if len(all) == 0 {
		s.t.Fatalf("the outbox is empty, want a %s mail to %s", template, to)
	}
	m := all[len(all)-1]
	if m.template != template || m.to != to {
		s.t.Fatalf("the newest mail is %s to %s, want %s to %s", m.template, m.to, template, to)
	}
	return m
}

var linkInText = regexp.MustCompile(`https://id\.example\.com(/[a-z/]+)\?token=([A-Za-z0-9_-]+)`)

// token returns the path and token of the one link in m's text.
func (m sent) token(t *testing.T) (path, token string) {
	t.Helper()
	found := linkInText.FindAllStringSubmatch(m.Text, -1)
	if len(found) != 1 {
		t.Fatalf("mail %q has %d links with a token, want 1:\n%s", m.Subject, len(found), m.Text)
	}
	if !strings.Contains(m.HTML, url.QueryEscape(found[0][2])) && !strings.Contains(m.HTML, found[0][2]) {
		t.Errorf("the HTML part of %q lacks the text part's link", m.Subject)
	}
	return found[0][1], found[0][2]
}

func (s *scene) count(sql string, args ...any) int {
	s.t.Helper()
	var n int
	if err := s.conn.QueryRow(s.t.Context(), sql, args...).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

func TestAResetLinkSetsTheNewPasswordOnceAndOnlyStoresItsDigest(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	u := s.user("ada@example.com", nil)
	if err := s.svc.RequestReset(ctx, "ADA@example.com ", ""); err != nil {
		t.Fatal(err)
	}
	m := s.last("password-reset", "ada@example.com")
	path, token := m.token(t)
	if path != account.Reset.Path() || !strings.Contains(m.Text, "30 minutes") {
		t.Errorf("the reset mail links to %s and says:\n%s\nwant %s, valid 30 minutes", path, m.Text, account.Reset.Path())
	}
	if n := s.count(`SELECT count(*) FROM email_links WHERE token_hash = sha256(convert_to($1, 'UTF8')) AND payload IS NULL`, token); n != 1 {
		t.Error("the link is not stored as the SHA-256 of its token alone")
	}
	if n := s.count(`SELECT count(*) FROM email_links WHERE user_id = $1 AND purpose = 'reset'
		AND expires_at BETWEEN now() + interval '29 minutes' AND now() + interval '31 minutes'`, u.ID); n != 1 {
		t.Errorf("%d reset links of 30 minutes stored, want 1", n)
	}

	if _, err := s.svc.ResetPassword(ctx, token, newPassword, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.users.Authenticate(ctx, "ada@example.com", newPassword, nil); err != nil {
		t.Errorf("the new password does not sign in: %v", err)
	}
	if _, err := s.svc.ResetPassword(ctx, token, "yet another passphrase", ""); !errors.Is(err, account.ErrLinkUsed) {
		t.Errorf("a second use: %v, want ErrLinkUsed", err)
	}
	if _, err := s.users.Authenticate(ctx, "ada@example.com", newPassword, nil); err != nil {
		t.Errorf("the second use changed the password: %v", err)
	}
	if events, _ := s.log.List(ctx, audit.Query{Action: audit.UserPasswordSet, Target: audit.User(u.ID)}); len(events) != 1 ||
		events[0].Actor != audit.User(u.ID) {
		t.Errorf("password-set events %+v, want one, by the user", events)
	}
}

func TestAResetForAnUnknownOrDisabledAddressStoresAndMailsNothing(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	u := s.user("grace@example.com", nil)
	if err := s.users.Disable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"nobody@example.com", "grace@example.com", "not an address"} {
		if err := s.svc.RequestReset(t.Context(), email, ""); err != nil {
			t.Errorf("%s: %v", email, err)
		}
	}
	if n := s.count(`SELECT (SELECT count(*) FROM email_links) + (SELECT count(*) FROM mail_outbox) + (SELECT count(*) FROM mail_quota)`); n != 0 {
		t.Errorf("%d rows stored for unknown and disabled accounts, want none", n)
	}
}

func TestAFloodOfResetRequestsForOneAccountMailsAtMostThreeAnHour(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	s.user("ada@example.com", nil)
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			if err := s.svc.RequestReset(t.Context(), "ada@example.com", ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := len(s.outbox()); got != account.MailsPerHour {
		t.Errorf("%d reset mails for 12 requests, want %d", got, account.MailsPerHour)
	}
}

func TestALaterPasswordChangeVoidsOutstandingResetLinks(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	u := s.user("ada@example.com", nil)
	if err := s.svc.RequestReset(ctx, "ada@example.com", ""); err != nil {
		t.Fatal(err)
	}
	_, token := s.last("password-reset", "ada@example.com").token(t)
	if err := s.users.SetPassword(ctx, u.ID, "an admin's choice of password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.ResetPassword(ctx, token, newPassword, ""); !errors.Is(err, account.ErrLinkExpired) {
		t.Errorf("a reset link after a password change: %v, want ErrLinkExpired", err)
	}
	if _, err := s.users.Authenticate(ctx, "ada@example.com", "an admin's choice of password", nil); err != nil {
		t.Errorf("the old link undid the change: %v", err)
	}
}

func TestALinkThatCannotBeFollowedSaysWhyAndChangesNothing(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	s.user("ada@example.com", nil)
	link := func() string {
		t.Helper()
		if err := s.svc.RequestReset(ctx, "ada@example.com", ""); err != nil {
			t.Fatal(err)
		}
		_, token := s.last("password-reset", "ada@example.com").token(t)
		return token
	}
	used := link()
	if _, err := s.svc.ResetPassword(ctx, used, password+"!", ""); err != nil {
		t.Fatal(err)
	}
	expired := link()
	if _, err := s.conn.Exec(ctx, `UPDATE email_links SET expires_at = now() - interval '1 minute' WHERE used_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	valid := link()
	tampered := []byte(valid)
	tampered[5] ^= 1
	grace := s.user("grace@example.com", nil)
	if err := s.users.Disable(ctx, grace.ID); err != nil {
		t.Fatal(err)
	}
	// A link mailed before the account was disabled.
	graces := base64.RawURLEncoding.EncodeToString([]byte("a link mailed to grace, 32 bytes"))
	if _, err := s.conn.Exec(ctx, `INSERT INTO email_links (token_hash, purpose, user_id, email, expires_at)
		VALUES (sha256(convert_to($2, 'UTF8')), 'reset', $1, 'grace@example.com', now() + interval '1 hour')`, grace.ID, graces); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		token string
		as    account.Purpose
		want  error
	}{
		{"used", used, account.Reset, account.ErrLinkUsed},
		{"expired", expired, account.Reset, account.ErrLinkExpired},
		{"tampered", string(tampered), account.Reset, account.ErrLinkUnknown},
		{"cut short", valid[:20], account.Reset, account.ErrLinkUnknown},
		{"empty", "", account.Reset, account.ErrLinkUnknown},
		{"wrong purpose", valid, account.Invite, account.ErrLinkPurpose},
		{"disabled user", graces, account.Reset, account.ErrAccountUnavailable},
	} {
		if _, err := s.svc.Inspect(ctx, tt.as, tt.token, ""); !errors.Is(err, tt.want) {
			t.Errorf("%s: Inspect says %v, want %v", tt.name, err, tt.want)
		}
		var err error
		if tt.as == account.Invite {
			_, err = s.svc.AcceptInvitation(ctx, tt.token, newPassword)
		} else {
			_, err = s.svc.ResetPassword(ctx, tt.token, newPassword, "")
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: following it says %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := s.users.Authenticate(ctx, "ada@example.com", newPassword, nil); err == nil {
		t.Error("a link that cannot be followed changed the password")
	}
	if n := s.count(`SELECT count(*) FROM email_links WHERE used_at IS NOT NULL`); n != 1 {
		t.Errorf("%d links spent, want only the one used", n)
	}
	if _, err := s.svc.ResetPassword(ctx, valid, newPassword, ""); err != nil {
		t.Errorf("the valid link, after the others: %v", err)
	}
}

func TestAResetOfAUserWithASecondFactorNeedsACodeFromIt(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	u := s.user("ada@example.com", nil)
	e, err := s.mfa.Enrol(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	code := func(steps int) string {
		c, err := totp.GenerateCode(e.Secret, time.Now().Add(time.Duration(steps)*30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	recovery, err := s.mfa.Confirm(ctx, u.ID, code(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.svc.RequestReset(ctx, "ada@example.com", ""); err != nil {
		t.Fatal(err)
	}
	_, token := s.last("password-reset", "ada@example.com").token(t)
	if o, err := s.svc.Inspect(ctx, account.Reset, token, ""); err != nil || !o.NeedsCode {
		t.Fatalf("Inspect = %+v, %v; want a link that needs a code", o, err)
	}
	if _, err := s.svc.ResetPassword(ctx, token, newPassword, ""); !errors.Is(err, account.ErrCodeRequired) {
		t.Errorf("no code: %v, want ErrCodeRequired", err)
	}
	if _, err := s.svc.ResetPassword(ctx, token, newPassword, "000000"); !errors.Is(err, identity.ErrInvalidCode) {
		t.Errorf("a wrong code: %v, want ErrInvalidCode", err)
	}
	if _, err := s.users.Authenticate(ctx, "ada@example.com", newPassword, nil); err == nil {
		t.Fatal("the password changed without the right code")
	}
	if _, err := s.svc.ResetPassword(ctx, token, newPassword, recovery[0]); err != nil {
		t.Errorf("with a recovery code: %v", err)
	}
}

func TestAnEmailChangeTakesEffectOnlyWhenTheNewAddressFollowsItsLink(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	u := s.user("ada@example.com", nil)
	if err := s.svc.RequestEmailChange(ctx, u.ID, "ada@new.example", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.users.Get(ctx, u.ID); got.Email != "ada@example.com" || !got.EmailVerified {
		t.Fatalf("after asking, the user is %s (verified %v), want the old, verified address still", got.Email, got.EmailVerified)
	}
	m := s.last("verify-email", "ada@new.example")
	_, token := m.token(t)

	other := s.user("grace@example.com", nil)
	if _, err := s.svc.Verify(ctx, token, other.ID); !errors.Is(err, account.ErrLinkForeign) {
		t.Errorf("followed while another user is signed in: %v, want ErrLinkForeign", err)
	}
	updated, err := s.svc.Verify(ctx, token, "")
	if err != nil {
		t.Fatal(err)
	}
	if updated.Email != "ada@new.example" || !updated.EmailVerified {
		t.Errorf("after the link the user is %s (verified %v), want the new address, verified", updated.Email, updated.EmailVerified)
	}
	events, err := s.log.List(ctx, audit.Query{Action: audit.UserEmailChanged})
	if err != nil || len(events) != 1 {
		t.Fatalf("email-changed events: %v, %v; want one", events, err)
	}
	if d := events[0].Details; d["old_email"] != "ada@example.com" || d["new_email"] != "ada@new.example" {
		t.Errorf("the event's details are %v, want old_email and new_email", d)
	}
}

func TestAnEmailChangeToATakenAddressMailsItsOwnerAndChangesNothing(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	u := s.user("ada@example.com", nil)
	if err := s.svc.RequestEmailChange(ctx, u.ID, "grace@example.com", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.svc.RequestEmailChange(ctx, u.ID, "Ada@Example.com", ""); !errors.Is(err, account.ErrSameAddress) {
		t.Errorf("a change to the user's own address: %v, want ErrSameAddress", err)
	}
	// Now the address is taken, after the link went out.
	if err := s.svc.RequestEmailChange(ctx, u.ID, "hopper@example.com", ""); err != nil {
		t.Fatal(err)
	}
	_, token := s.last("verify-email", "hopper@example.com").token(t)
	s.user("grace@example.com", nil)
	s.user("hopper@example.com", nil)
	if _, err := s.svc.Verify(ctx, token, u.ID); !errors.Is(err, account.ErrAddressTaken) {
		t.Errorf("following a link to an address taken since: %v, want ErrAddressTaken", err)
	}
	if got, _ := s.users.Get(ctx, u.ID); got.Email != "ada@example.com" {
		t.Errorf("the user's address is %s, want it unchanged", got.Email)
	}
	var templates []string
	for _, m := range s.outbox() {
		templates = append(templates, m.template+" to "+m.to)
	}
	// grace@ had no account when asked for, so she got the link.
	if strings.Join(templates, ", ") != "verify-email to grace@example.com, verify-email to hopper@example.com" {
		t.Errorf("mails: %v", templates)
	}
	if err := s.svc.RequestEmailChange(ctx, u.ID, "grace@example.com", ""); err != nil {
		t.Fatal(err)
	}
	s.last("email-taken", "grace@example.com")
}

func TestAnAdminChangeOfAddressAppliesAtOnceAndMailsAVerificationThere(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	created, err := s.svc.Create(ctx, identity.User{Email: "ada@example.com"}, password)
	if err != nil {
		t.Fatal(err)
	}
	_, first := s.last("verify-email", "ada@example.com").token(t)
	updated, err := s.svc.Update(ctx, created.ID, func(u *identity.User) error {
		u.Email = "ada@new.example"
		return nil
	})
	if err != nil || updated.Email != "ada@new.example" || updated.EmailVerified {
		t.Fatalf("after the admin's change: %+v, %v; want the new address, unverified", updated, err)
	}
	_, second := s.last("verify-email", "ada@new.example").token(t)
	if _, err := s.svc.Verify(ctx, first, ""); !errors.Is(err, account.ErrLinkExpired) {
		t.Errorf("the link to the old address: %v, want ErrLinkExpired", err)
	}
	verified, err := s.svc.Verify(ctx, second, "")
	if err != nil || verified.Email != "ada@new.example" || !verified.EmailVerified {
		t.Errorf("after the link: %+v, %v; want the new address verified", verified, err)
	}
	// The admin's change is the one change of address, recorded once with
	// both addresses (the old one is told of it); verifying the address
	// the user then has changes nothing more.
	events, _ := s.log.List(ctx, audit.Query{Action: audit.UserEmailChanged})
	if len(events) != 1 || events[0].Details["old_email"] != "ada@example.com" || events[0].Details["new_email"] != "ada@new.example" {
		t.Errorf("email changes recorded: %v; want the admin's, once", events)
	}
}

func TestSignUpCreatesNobodyUntilTheLinkIsFollowed(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	if err := s.svc.SignUp(ctx, "ada@example.com", "Ada Lovelace", password, "de-CH, en;q=0.5"); err != nil {
		t.Fatal(err)
	}
	if n := s.count(`SELECT count(*) FROM users`); n != 0 {
		t.Fatalf("%d users after signing up, want none until the link is followed", n)
	}
	m := s.last("signup", "ada@example.com")
	if !strings.HasPrefix(m.Subject, "Schließen Sie") {
		t.Errorf("a sign-up from a German-speaking browser got the subject %q", m.Subject)
	}
	_, token := m.token(t)
	var payload []byte
	if err := s.conn.QueryRow(ctx, `SELECT payload FROM email_links`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(payload), "Ada") || strings.Contains(string(payload), "argon2") {
		t.Error("the sign-up's name or hash is stored in the clear")
	}
	u, err := s.svc.CompleteSignUp(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "ada@example.com" || !u.EmailVerified || u.Name != "Ada Lovelace" {
		t.Errorf("signed up %+v, want ada@example.com, verified, named", u)
	}
	if _, err := s.users.Authenticate(ctx, "ada@example.com", password, nil); err != nil {
		t.Errorf("the chosen password does not sign in: %v", err)
	}
	if events, _ := s.log.List(ctx, audit.Query{Action: audit.UserSignedUp}); len(events) != 1 {
		t.Errorf("%d user.signed_up events, want 1", len(events))
	}
	if _, err := s.svc.CompleteSignUp(ctx, token); !errors.Is(err, account.ErrLinkUsed) {
		t.Errorf("the link again: %v, want ErrLinkUsed", err)
	}

	// The address is taken now: its owner is told, and no link is made.
	if err := s.svc.SignUp(ctx, "ADA@example.com", "Mallory", "another long password", ""); err != nil {
		t.Fatal(err)
	}
	notice := s.last("signup-exists", "ada@example.com")
	if len(linkInText.FindAllString(notice.Text, -1)) != 0 || !strings.Contains(notice.Text, issuer+"/login/forgot") {
		t.Errorf("the notice to the owner:\n%s\nwant no link with a token, and the way to reset", notice.Text)
	}
	if n := s.count(`SELECT count(*) FROM email_links`); n != 1 {
		t.Errorf("%d links after a sign-up with a taken address, want only the first", n)
	}
}

func TestSignUpKeepsToItsDomainsAndThePasswordPolicy(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	s.svc.SignUpDomains = []string{"example.com"}
	var domain *account.DomainError
	if err := s.svc.SignUp(t.Context(), "ada@elsewhere.org", "", password, ""); !errors.As(err, &domain) {
		t.Errorf("an address outside the domains: %v, want a DomainError", err)
	}
	if err := s.svc.SignUp(t.Context(), "ada@Example.COM", "", "password", ""); !errors.Is(err, identity.ErrWeakPassword) {
		t.Errorf("a common password: %v, want ErrWeakPassword", err)
	}
	if n := len(s.outbox()); n != 0 {
		t.Errorf("%d mails for refused sign-ups", n)
	}
}

func TestAnInvitationSetsThePasswordAndVerifiesTheAddress(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	u, err := s.svc.Invite(ctx, identity.User{Email: "ada@example.com", Name: "Ada", Claims: map[string]any{"locale": "de-AT"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	first := s.last("invitation", "ada@example.com")
	if !strings.Contains(first.Text, "7 Tagen") {
		t.Errorf("the invitation of a German-speaking user says:\n%s\nwant German, valid 7 days", first.Text)
	}
	_, firstToken := first.token(t)
	if _, err := s.svc.ResendInvitation(ctx, u.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, token := s.last("invitation", "ada@example.com").token(t)
	if _, err := s.svc.AcceptInvitation(ctx, firstToken, newPassword); !errors.Is(err, account.ErrLinkExpired) {
		t.Errorf("the first invitation after a resend: %v, want ErrLinkExpired", err)
	}
	accepted, err := s.svc.AcceptInvitation(ctx, token, newPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !accepted.EmailVerified {
		t.Error("accepting the invitation left the address unverified")
	}
	if _, err := s.users.Authenticate(ctx, "ada@example.com", newPassword, nil); err != nil {
		t.Errorf("the chosen password does not sign in: %v", err)
	}
	if _, err := s.svc.ResendInvitation(ctx, u.ID, ""); !errors.Is(err, account.ErrHasPassword) {
		t.Errorf("resending to a user with a password: %v, want ErrHasPassword", err)
	}
}

func TestARevokedInvitationCannotBeAccepted(t *testing.T) {
	t.Parallel()
	s := newScene(t)
	ctx := t.Context()
	u, err := s.svc.Invite(ctx, identity.User{Email: "ada@example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	_, token := s.last("invitation", "ada@example.com").token(t)
	if err := s.svc.RevokeInvitation(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.svc.RevokeInvitation(ctx, u.ID); !errors.Is(err, account.ErrNoInvitation) {
		t.Errorf("revoking again: %v, want ErrNoInvitation", err)
	}
	if _, err := s.svc.AcceptInvitation(ctx, token, newPassword); !errors.Is(err, account.ErrLinkExpired) {
		t.Errorf("a revoked invitation: %v, want ErrLinkExpired", err)
	}
}
