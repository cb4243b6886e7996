package main

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/signin"
)

// The tests in this file attack the links Latchkey mails (pkg/account)
// over HTTP, from several addresses, reading the links from the mail a
// real SMTP server received.

// mailNode starts a node that delivers its mail to a new in-process SMTP
// server.
func mailNode(t *testing.T, settings ...string) (*node, *smtptest.Server) {
	t.Helper()
	srv := smtptest.Start(t)
	return startNode(t, append([]string{"LATCHKEY_SMTP_URL", srv.URL()}, settings...)...), srv
}

// tokenOf returns the token of a mailed link.
func tokenOf(t *testing.T, link string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("token") == "" {
		t.Fatalf("%q is not a link with a token", link)
	}
	return u.Query().Get("token")
}

// resetLink asks for a reset of email through the forgot-password form,
// as a browser does, and returns the link mailed, the nth to that address.
func resetLink(t *testing.T, n *node, srv *smtptest.Server, email string, nth int) string {
	t.Helper()
	p := newBrowser(t, n.issuer).submit(signin.ForgotPath, url.Values{"email": {email}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="sent"`) {
		t.Fatalf("the forgot-password form answered %d:\n%s", p.status, p.body)
	}
	return awaitLink(t, srv, email, account.Reset.Path(), nth)
}

// awaitLink waits for the nth mail to email with a link to path and
// returns the link: security notices (pkg/notify) may arrive between the
// mails with links.
func awaitLink(t *testing.T, srv *smtptest.Server, email, path string, nth int) string {
	t.Helper()
	for k := nth; ; k++ {
		var with []smtptest.Message
		for _, m := range srv.AwaitN(t, email, k) {
			if strings.Contains(m.Text, path) {
				with = append(with, m)
			}
		}
		if len(with) >= nth {
			return with[nth-1].Link(t, path)
		}
	}
}

// reset posts the new-password form of a reset link.
func (n *node) reset(t *testing.T, from *http.Client, token, password string) (int, string) {
	t.Helper()
	status, body, err := n.postForm(from, account.Reset.Path(), url.Values{"token": {token}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	return status, body
}

// signsIn reports whether email and password sign in.
func (n *node) signsIn(t *testing.T, email, password string) bool {
	t.Helper()
	_, err := n.users.Authenticate(t.Context(), email, password, nil)
	return err == nil
}

func TestABurstSpendingOneResetLinkChangesThePasswordOnce(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	u := n.user(t, "ada@example.com")
	token := tokenOf(t, resetLink(t, n, srv, "ada@example.com", 1))

	var (
		mu      sync.Mutex
		winners []int
	)
	burst(t, 20, attackers(5), func(i int, ip string) {
		status, body, err := n.postForm(clientFrom(ip), account.Reset.Path(),
			url.Values{"token": {token}, "password": {fmt.Sprintf("new passphrase number %d", i)}})
		switch {
		case err != nil:
			t.Error(err)
		case status == http.StatusOK && strings.Contains(body, "Your password is set"):
			mu.Lock()
			winners = append(winners, i)
			mu.Unlock()
		case status != http.StatusGone || !strings.Contains(body, "used already"):
			t.Errorf("attempt %d: %d, want 200 for one and 410 (used) for the rest:\n%s", i, status, body)
		}
	})
	if len(winners) != 1 {
		t.Fatalf("%d attempts set the password (%v), want exactly 1", len(winners), winners)
	}
	if got := len(n.events(t, audit.UserPasswordSet)); got != 1 {
		t.Errorf("%d user.password_set events, want 1", got)
	}
	for i := range 20 {
		if ok := n.signsIn(t, u.Email, fmt.Sprintf("new passphrase number %d", i)); ok != (i == winners[0]) {
			t.Errorf("password %d signs in: %v", i, ok)
		}
	}
}

func TestLinksThatCannotBeFollowedGetAClearPageAndChangeNothing(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	n.user(t, "ada@example.com")
	n.user(t, "grace@example.com")
	rp := n.app(t)

	// Ada asks, on her account page, to move to a new address; Grace is
	// signed in on another browser.
	ada := newBrowser(t, n.issuer)
	ada.signedIn(rp, "ada@example.com")
	if p := ada.submit(signin.AccountEmailPath, url.Values{"new_email": {"ada@new.example"}, "password": {testPassword}}); p.status != http.StatusOK ||
		!strings.Contains(p.body, "We have sent a link to your new address") {
		t.Fatalf("asking for an address change: %d\n%s", p.status, p.body)
	}
	verify := srv.Await(t, "ada@new.example").Link(t, account.Verify.Path())
	grace := newBrowser(t, n.issuer)
	grace.signedIn(rp, "grace@example.com")

	used := resetLink(t, n, srv, "ada@example.com", 1)
	if status, body := n.reset(t, http.DefaultClient, tokenOf(t, used), "the first new passphrase"); status != http.StatusOK {
		t.Fatalf("following a fresh link: %d\n%s", status, body)
	}
	expired := resetLink(t, n, srv, "ada@example.com", 2)
	conn := pgtest.Conn(t, n.dbURL)
	if _, err := conn.Exec(t.Context(), `UPDATE email_links SET expires_at = now() - interval '1 second' WHERE used_at IS NULL AND purpose = 'reset'`); err != nil {
		t.Fatal(err)
	}
	valid := resetLink(t, n, srv, "ada@example.com", 3)
	tampered := strings.Replace(valid, "token="+tokenOf(t, valid)[:4], "token="+flip(tokenOf(t, valid)[:4]), 1)

	for _, tt := range []struct {
		name   string
		b      *browser
		link   string
		page   string // where the link is taken, if not where it leads
		status int
		says   string
		wayOn  string
	}{
		{"replayed", newBrowser(t, n.issuer), used, "", http.StatusGone, "This link was used already", signin.ForgotPath},
		{"expired", newBrowser(t, n.issuer), expired, "", http.StatusGone, "This link has expired", signin.ForgotPath},
		{"tampered", newBrowser(t, n.issuer), tampered, "", http.StatusNotFound, "This link does not work", signin.ForgotPath},
		{"cut short", newBrowser(t, n.issuer), valid[:len(valid)-10], "", http.StatusNotFound, "This link does not work", signin.ForgotPath},
		{"wrong purpose", newBrowser(t, n.issuer), valid, account.Invite.Path(), http.StatusBadRequest, "This link is for another page", signin.LoginPath},
		{"foreign", grace, verify, "", http.StatusForbidden, "Sign out first", signin.AccountPath},
	} {
		link, _ := url.Parse(tt.link)
		if tt.page != "" {
			link.Path = tt.page
		}
		token := link.Query().Get("token")
		for _, p := range []page{
			tt.b.visit(link.String()),
			tt.b.submit(link.Path, url.Values{"token": {token}, "password": {"a passphrase from a bad link"}}),
		} {
			if p.status != tt.status || !strings.Contains(p.body, tt.says) || !strings.Contains(p.body, `href="`+tt.wayOn+`"`) {
				t.Errorf("%s link, %s: %d, want %d saying %q with a way on to %s:\n%s", tt.name, p.url.Path, p.status, tt.status, tt.says, tt.wayOn, p.body)
			}
			if token != "" && strings.Contains(p.body, token) {
				t.Errorf("%s link: the page repeats the token", tt.name)
			}
		}
	}
	if !n.signsIn(t, "ada@example.com", "the first new passphrase") {
		t.Error("a link that cannot be followed changed Ada's password or address")
	}
	if got, _ := n.users.GetByEmail(t.Context(), "grace@example.com"); got == nil || !n.signsIn(t, "grace@example.com", testPassword) {
		t.Error("Ada's verification link, opened in Grace's browser, changed Grace's account")
	}
	// The valid link still works after all that.
	if status, body := n.reset(t, http.DefaultClient, tokenOf(t, valid), "the second new passphrase"); status != http.StatusOK {
		t.Errorf("the valid link: %d\n%s", status, body)
	}
}

func TestAResetLinkIsRefusedAfterAnotherPasswordChange(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	u := n.user(t, "ada@example.com")
	link := resetLink(t, n, srv, "ada@example.com", 1)
	if err := n.users.SetPassword(t.Context(), u.ID, "an administrator's choice"); err != nil {
		t.Fatal(err)
	}
	if status, body := n.reset(t, http.DefaultClient, tokenOf(t, link), "the attacker's passphrase"); status != http.StatusGone ||
		!strings.Contains(body, "This link has expired") {
		t.Errorf("a reset link after a password change: %d\n%s", status, body)
	}
	if !n.signsIn(t, "ada@example.com", "an administrator's choice") {
		t.Error("the old link undid the password change")
	}
}

func TestADisabledUsersResetLinkDoesNothing(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	u := n.user(t, "ada@example.com")
	link := resetLink(t, n, srv, "ada@example.com", 1)
	if err := n.users.Disable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, n.issuer)
	if p := b.visit(link); p.status != http.StatusForbidden || !strings.Contains(p.body, "This link cannot be used") {
		t.Errorf("opening a disabled user's link: %d\n%s", p.status, p.body)
	}
	if status, body := n.reset(t, http.DefaultClient, tokenOf(t, link), "a passphrase for nobody"); status != http.StatusForbidden {
		t.Errorf("following a disabled user's link: %d\n%s", status, body)
	}
	if err := n.users.Enable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	if !n.signsIn(t, "ada@example.com", testPassword) {
		t.Error("a disabled user's link changed their password")
	}
	// A disabled account is mailed nothing.
	if err := n.users.Disable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}
	newBrowser(t, n.issuer).submit(signin.ForgotPath, url.Values{"email": {"ada@example.com"}})
	if ms, err := n.store.Mail(t.Context(), mail.Query{}); err != nil || len(ms) != 1 {
		t.Errorf("%d mails in the outbox (%v), want only the first", len(ms), err)
	}
}

func TestAFloodOfResetRequestsForOneEmailAcrossTwoNodesSendsAtMostThreeMails(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	dbURL := pgtest.URL(t)
	nodes := []*node{
		startNode(t, "LATCHKEY_DATABASE_URL", dbURL, "LATCHKEY_SMTP_URL", srv.URL()),
		startNode(t, "LATCHKEY_DATABASE_URL", dbURL, "LATCHKEY_SMTP_URL", srv.URL()),
	}
	nodes[0].user(t, "ada@example.com")
	burst(t, 36, attackers(6), func(i int, ip string) {
		status, _, err := nodes[i%2].postForm(clientFrom(ip), signin.ForgotPath, url.Values{"email": {"ADA@example.com"}})
		if err != nil || status != http.StatusOK {
			t.Errorf("request %d: %d, %v", i, status, err)
		}
	})
	srv.AwaitN(t, "ada@example.com", account.MailsPerHour)
	ms, err := nodes[0].store.Mail(t.Context(), mail.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != account.MailsPerHour {
		t.Errorf("%d reset mails written for 36 requests over two nodes, want %d", len(ms), account.MailsPerHour)
	}
	time.Sleep(time.Second)
	if got := len(srv.To("ada@example.com")); got != account.MailsPerHour {
		t.Errorf("%d mails arrived, want %d", got, account.MailsPerHour)
	}
}

// answers are how a form answered, for comparing one address's answers
// with another's.
type answers struct {
	statuses []int
	bodies   []string
	times    []time.Duration
}

// post submits form to path from a browser of its own, and records the
// answer.
func (a *answers) post(t *testing.T, n *node, path string, form url.Values) {
	t.Helper()
	start := time.Now()
	p := newBrowser(t, n.issuer).submit(path, form)
	a.times = append(a.times, time.Since(start))
	a.statuses = append(a.statuses, p.status)
	a.bodies = append(a.bodies, p.body)
}

func (a *answers) median() time.Duration {
	s := slices.Clone(a.times)
	slices.Sort(s)
	return s[len(s)/2]
}

// sameAnswers checks that a form answered known and unknown addresses
// alike: one status, one body, and times in one band, no sooner than the
// floor the pages keep.
func sameAnswers(t *testing.T, known, unknown *answers) {
	t.Helper()
	if slices.ContainsFunc(append(slices.Clone(known.statuses), unknown.statuses...), func(s int) bool { return s != http.StatusOK }) {
		t.Errorf("statuses known %v, unknown %v; want 200 throughout", known.statuses, unknown.statuses)
	}
	for _, b := range append(known.bodies, unknown.bodies...) {
		if b != known.bodies[0] {
			t.Errorf("the answers differ:\n%s\n---\n%s", known.bodies[0], b)
			break
		}
	}
	for _, d := range append(known.times, unknown.times...) {
		if d < signin.AnswerFloor {
			t.Errorf("an answer came after %s, before the floor of %s", d, signin.AnswerFloor)
		}
	}
	if diff := known.median() - unknown.median(); diff > 150*time.Millisecond || diff < -150*time.Millisecond {
		t.Errorf("median answer times: known %s, unknown %s; want them within 150ms", known.median(), unknown.median())
	}
}

// The enumeration tests measure answer times, so they do not run in
// parallel with the package's other tests, whose load would be noise.

func TestForgotPasswordAnswersKnownAndUnknownAddressesAlike(t *testing.T) {
	n, srv := mailNode(t)
	n.user(t, "ada@example.com")
	var known, unknown answers
	for i := range account.MailsPerHour {
		askKnown := func() { known.post(t, n, signin.ForgotPath, url.Values{"email": {"ada@example.com"}}) }
		askUnknown := func() {
			unknown.post(t, n, signin.ForgotPath, url.Values{"email": {fmt.Sprintf("nobody%d@example.com", i)}})
		}
		if i%2 == 0 {
			askKnown()
			askUnknown()
		} else {
			askUnknown()
			askKnown()
		}
	}
	sameAnswers(t, &known, &unknown)
	srv.AwaitN(t, "ada@example.com", account.MailsPerHour)
	ms, err := n.store.Mail(t.Context(), mail.Query{})
	if err != nil || len(ms) != account.MailsPerHour {
		t.Errorf("%d mails in the outbox (%v), want only Ada's %d", len(ms), err, account.MailsPerHour)
	}
}

func TestSignUpAnswersFreeAndTakenAddressesAlike(t *testing.T) {
	n, srv := mailNode(t, "LATCHKEY_SIGNUP", "open")
	n.user(t, "ada@example.com")
	var taken, free answers
	for i := range 3 {
		// In turns, each first in one round and second in the next.
		askTaken := func() {
			taken.post(t, n, signin.SignUpPath, url.Values{"email": {"ada@example.com"}, "name": {"Mallory"}, "password": {"a sign-up passphrase"}})
		}
		askFree := func() {
			free.post(t, n, signin.SignUpPath, url.Values{"email": {fmt.Sprintf("new%d@example.com", i)}, "name": {"New"}, "password": {"a sign-up passphrase"}})
		}
		if i%2 == 0 {
			askTaken()
			askFree()
		} else {
			askFree()
			askTaken()
		}
	}
	sameAnswers(t, &taken, &free)
	for _, b := range taken.bodies {
		if strings.Contains(b, "ada@example.com") {
			t.Errorf("the answer to a taken address names it:\n%s", b)
		}
	}
	// The owner is told, and nobody got an account.
	if m := srv.Await(t, "ada@example.com"); !strings.Contains(m.Subject, "tried to create an account") {
		t.Errorf("the owner of the taken address got %q", m.Subject)
	}
	if us, err := n.users.List(t.Context()); err != nil || len(us) != 1 {
		t.Errorf("%d users after sign-ups nobody confirmed (%v), want 1", len(us), err)
	}
}

func TestSignUpIsNotThereWhenOff(t *testing.T) {
	t.Parallel()
	off := startNode(t)
	b := newBrowser(t, off.issuer)
	for _, p := range []page{
		b.visit(off.issuer + signin.SignUpPath),
		b.visit(off.issuer + account.SignUp.Path() + "?token=x"),
		b.submit(signin.SignUpPath, url.Values{"email": {"ada@example.com"}, "password": {"a sign-up passphrase"}}),
	} {
		if p.status != http.StatusNotFound {
			t.Errorf("%s with sign-up off: %d, want 404", p.url.Path, p.status)
		}
	}
	login := b.visit(off.issuer + signin.LoginPath)
	if strings.Contains(login.body, `id="signup"`) || !strings.Contains(login.body, `id="forgot"`) {
		t.Errorf("with sign-up off, the login page should offer \"Forgot password?\" and not sign-up:\n%s", login.body)
	}
	on := startNode(t, "LATCHKEY_SIGNUP", "open")
	if p := newBrowser(t, on.issuer).visit(on.issuer + signin.LoginPath); !strings.Contains(p.body, `href="`+signin.SignUpPath+`"`) {
		t.Errorf("with sign-up open, the login page does not lead to it:\n%s", p.body)
	}
}

func TestOpeningALinkNeverSpendsItAndLeaksItToNoOtherSite(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	n.user(t, "ada@example.com")
	link := resetLink(t, n, srv, "ada@example.com", 1)
	b := newBrowser(t, n.issuer)
	// A mail scanner, then the user, then the scanner again.
	for range 3 {
		p := b.visit(link)
		if p.status != http.StatusOK || !strings.Contains(p.body, `autocomplete="new-password"`) {
			t.Fatalf("opening the link: %d\n%s", p.status, p.body)
		}
		if got := p.header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("the page the link opens has Referrer-Policy %q, want no-referrer", got)
		}
		if !strings.Contains(p.body, `<meta name="referrer" content="no-referrer">`) {
			t.Error("the page the link opens does not ask for no referrer")
		}
	}
	if status, body := n.reset(t, http.DefaultClient, tokenOf(t, link), "a brand new passphrase"); status != http.StatusOK {
		t.Errorf("following the link after it was opened: %d\n%s", status, body)
	}
}

func TestAdminAPIInvitesResendsAndRevokes(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	admin := n.automation(t, "latchkey:admin")
	created := admin.call(http.MethodPost, "/admin/users", map[string]any{"email": "grace@example.com", "name": "Grace Hopper", "invite": true}).
		must(t, http.StatusCreated)
	sub, _ := created.body["sub"].(string)
	first := srv.Await(t, "grace@example.com").Link(t, account.Invite.Path())

	admin.call(http.MethodPost, "/admin/users/"+sub+"/invitation", nil).must(t, http.StatusOK)
	second := srv.AwaitN(t, "grace@example.com", 2)[1].Link(t, account.Invite.Path())
	b := newBrowser(t, n.issuer)
	if p := b.visit(first); p.status != http.StatusGone {
		t.Errorf("the first invitation after a resend: %d, want 410", p.status)
	}
	admin.call(http.MethodDelete, "/admin/users/"+sub+"/invitation", nil).must(t, http.StatusNoContent)
	admin.call(http.MethodDelete, "/admin/users/"+sub+"/invitation", nil).problem(t, http.StatusNotFound, "")
	if p := b.visit(second); p.status != http.StatusGone {
		t.Errorf("a revoked invitation: %d, want 410", p.status)
	}

	admin.call(http.MethodPost, "/admin/users/"+sub+"/invitation", nil).must(t, http.StatusOK)
	third := srv.AwaitN(t, "grace@example.com", 3)[2].Link(t, account.Invite.Path())
	if status, body, _ := n.postForm(http.DefaultClient, account.Invite.Path(), url.Values{"token": {tokenOf(t, third)}, "password": {testPassword}}); status != http.StatusOK {
		t.Fatalf("accepting the invitation: %d\n%s", status, body)
	}
	got := admin.call(http.MethodGet, "/admin/users/"+sub, nil).must(t, http.StatusOK)
	if got.body["email_verified"] != true || !n.signsIn(t, "grace@example.com", testPassword) {
		t.Errorf("after accepting: %s; want the address verified and the password signing in", got.raw)
	}
	admin.call(http.MethodPost, "/admin/users/"+sub+"/invitation", nil).problem(t, http.StatusConflict, "")
	admin.call(http.MethodPost, "/admin/users", map[string]any{"email": "hedy@example.com", "invite": true, "password": testPassword}).
		problem(t, http.StatusUnprocessableEntity, "password")
}

func TestAdminCreatedOrChangedAddressesAreMailedAVerificationAndTheOldOneIsTold(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	admin := n.automation(t, "latchkey:admin")
	created := admin.call(http.MethodPost, "/admin/users", map[string]any{"email": "hedy@example.com", "password": testPassword}).
		must(t, http.StatusCreated)
	sub, _ := created.body["sub"].(string)
	admin.call(http.MethodPatch, "/admin/users/"+sub, map[string]any{"email": "hedy@new.example"}).must(t, http.StatusOK)
	old := srv.Await(t, "hedy@example.com").Link(t, account.Verify.Path())
	link := srv.Await(t, "hedy@new.example").Link(t, account.Verify.Path())
	// The admin's change is told to the address Hedy still reads, as
	// her own change would be.
	if notice := srv.AwaitN(t, "hedy@example.com", 2)[1]; !strings.Contains(notice.Text, "hedy@example.com to h…@new.example") {
		t.Errorf("the old address was not told of the admin's change: %q\n%s", notice.Subject, notice.Text)
	}
	b := newBrowser(t, n.issuer)
	if p := b.visit(old); p.status != http.StatusGone {
		t.Errorf("the verification of the address the admin replaced: %d, want 410", p.status)
	}
	if p := b.submit(account.Verify.Path(), url.Values{"token": {tokenOf(t, link)}}); p.status != http.StatusOK {
		t.Fatalf("verifying: %d\n%s", p.status, p.body)
	}
	if got := admin.call(http.MethodGet, "/admin/users/"+sub, nil); got.body["email_verified"] != true || got.body["email"] != "hedy@new.example" {
		t.Errorf("after the link: %s", got.raw)
	}
}

func TestTheCLIExplainsWhatAnInvitationLacks(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	code, _, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL}, "users", "create", "--email", "grace@example.com", "--invite")
	if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "LATCHKEY_ISSUER") {
		t.Errorf("users create --invite without an issuer: exit %d, stderr %q; want one line naming LATCHKEY_ISSUER and a failure", code, stderr)
	}
	if _, err := n.users.GetByEmail(t.Context(), "grace@example.com"); err == nil {
		t.Error("the user was created though no invitation could be mailed")
	}
	u, err := n.users.Create(t.Context(), identityUser("ada@example.com", nil), testPassword)
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL, "LATCHKEY_ISSUER": n.issuer, "LATCHKEY_SECRETS": testSecret},
		"users", "invite", u.Email)
	if code == 0 || !strings.Contains(stderr, "has set a password") {
		t.Errorf("users invite for a user with a password: exit %d, stderr %q", code, stderr)
	}
}

func TestChangesMadeFromTheCLIAreToldToTheUserAsTheServersTellThem(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	ada := n.user(t, "ada@example.com")
	n.enrol(t, ada)
	cli := vars{"LATCHKEY_DATABASE_URL": n.dbURL, "LATCHKEY_ISSUER": n.issuer, "LATCHKEY_SECRETS": testSecret}
	if code, _, stderr := runCLIWithStdin(t.Context(), cli, brandNewPassword+"\n", "users", "set-password", "ada@example.com"); code != 0 {
		t.Fatalf("set-password: exit %d, %s", code, stderr)
	}
	if code, _, stderr := runCLI(t.Context(), cli, "users", "reset-mfa", "ada@example.com"); code != 0 {
		t.Fatalf("reset-mfa: exit %d, %s", code, stderr)
	}
	// The node delivers what the CLI wrote to the outbox. (The test's
	// own enrolment, made beside the node, told nobody.)
	got := srv.AwaitN(t, "ada@example.com", 2)
	if !strings.Contains(got[0].Text, "administrator") || !strings.Contains(strings.ToLower(got[0].Subject), "password") {
		t.Errorf("after set-password from the CLI: %q\n%s", got[0].Subject, got[0].Text)
	}
	if !strings.Contains(strings.ToLower(got[1].Subject), "two-step") {
		t.Errorf("after reset-mfa from the CLI: %q\n%s", got[1].Subject, got[1].Text)
	}
	// With the notice turned off, the same change mails nothing.
	cli["LATCHKEY_NOTIFICATIONS"] = "none"
	if code, _, stderr := runCLIWithStdin(t.Context(), cli, testPassword+"\n", "users", "set-password", "ada@example.com"); code != 0 {
		t.Fatalf("set-password: exit %d, %s", code, stderr)
	}
	time.Sleep(time.Second)
	if n := len(srv.To("ada@example.com")); n != 2 {
		t.Errorf("%d mails with notices off, want still 2", n)
	}
}

func TestASignedInUserCanHaveTheirUnverifiedAddressVerifiedAndSeesAPendingChange(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	u := identityUser("ada@example.com", nil)
	u.EmailVerified = false
	if _, err := n.users.Create(t.Context(), u, testPassword); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, n.issuer)
	start := b.signIn(b.visit(n.issuer+signin.LoginPath), "ada@example.com", testPassword)
	if !strings.Contains(start.body, "(not verified)") || !strings.Contains(start.body, `id="resend-verification"`) {
		t.Fatalf("the account page of an unverified address offers no verification:\n%s", start.body)
	}
	// A burst of asks in Ada's session, from several addresses: a bounded
	// number of mails.
	jar := b.http.Jar.(*cookiejar.Jar)
	burst(t, 12, attackers(4), func(i int, ip string) {
		c := clientFrom(ip)
		c.Jar = jar
		if _, _, err := n.postForm(c, signin.AccountVerifyPath, nil); err != nil {
			t.Errorf("ask %d from %s: %v", i, ip, err)
		}
	})
	// (The sign-in itself, from a new browser, was told in a notice.)
	verifications := func() []smtptest.Message {
		var out []smtptest.Message
		for _, m := range srv.To("ada@example.com") {
			if strings.Contains(m.Text, account.Verify.Path()) {
				out = append(out, m)
			}
		}
		return out
	}
	waitFor(t, "the verification mails", func() bool { return len(verifications()) >= account.MailsPerHour })
	time.Sleep(time.Second)
	links := verifications()
	if len(links) != account.MailsPerHour {
		t.Fatalf("12 asks sent %d verification mails, want %d", len(links), account.MailsPerHour)
	}
	// Each link replaced the one before: the newest verifies, the others
	// are expired. (Mail may arrive in another order than it was made.)
	verified := 0
	for _, m := range links {
		switch p := b.submit(account.Verify.Path(), url.Values{"token": {tokenOf(t, m.Link(t, account.Verify.Path()))}}); p.status {
		case http.StatusOK:
			verified++
		case http.StatusGone:
		default:
			t.Fatalf("following a verification link: %d\n%s", p.status, p.body)
		}
	}
	if verified != 1 {
		t.Fatalf("%d of the %d links verified, want only the newest", verified, len(links))
	}
	if page := b.visit(n.issuer + signin.AccountPath); !strings.Contains(page.body, "(verified)") || strings.Contains(page.body, `id="resend-verification"`) {
		t.Fatalf("after the link the account page still offers verification:\n%s", page.body)
	}

	// A change of address asked for and not yet confirmed is shown.
	n.user(t, "grace@example.com")
	g := newBrowser(t, n.issuer)
	g.signIn(g.visit(n.issuer+signin.LoginPath), "grace@example.com", testPassword)
	p := g.submit(signin.AccountEmailPath, url.Values{"new_email": {"grace@new.example"}, "password": {testPassword}})
	if p.status != http.StatusOK || !strings.Contains(p.body, `id="pending-email"`) || !strings.Contains(p.body, "grace@new.example") {
		t.Fatalf("after asking for a new address: %d, no pending address shown:\n%s", p.status, p.body)
	}
}
