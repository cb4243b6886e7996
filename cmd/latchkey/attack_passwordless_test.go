package main

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/webauthntest"
	"github.com/latchkey/latchkey/pkg/signin"
)

// This file attacks the passwordless sign-in: a passkey alone, offered on
// the sign-in page (pkg/signin/passwordless.go), over real HTTP, with the
// software authenticator of internal/webauthntest. passkeyScene gives Ada
// a passkey on it.

var ceremonyField = regexp.MustCompile(`name="ceremony" value="([^"]*)"`)

// passwordlessForm is the passkey form of the sign-in page p: the parked
// request, the sealed ceremony, and the options for the authenticator.
type passwordlessForm struct {
	request, ceremony string
	options           []byte
}

// passwordlessFormOf reads the passkey form off the sign-in page p.
func passwordlessFormOf(t *testing.T, p page) passwordlessForm {
	t.Helper()
	if !p.isLogin() || !strings.Contains(p.body, `data-passkey="signin"`) {
		t.Fatalf("%s (%d) is not a sign-in page offering a passkey:\n%s", p.url, p.status, p.body)
	}
	m := ceremonyField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("the sign-in page carries no ceremony:\n%s", p.body)
	}
	f := passwordlessForm{ceremony: m[1], options: passkeyOptions(t, p)}
	if r := requestField.FindStringSubmatch(p.body); r != nil {
		f.request = r[1]
	}
	return f
}

// values is the form as the page's script posts it, with answer.
func (f passwordlessForm) values(answer []byte) url.Values {
	return url.Values{"request": {f.request}, "ceremony": {f.ceremony}, "credential": {string(answer)}}
}

// passwordlessStart starts a sign-in to Notes in b: the sign-in page's
// passkey form, and the request it is for.
func (sc *passkeyScene) passwordlessStart(t *testing.T, b *browser) (passwordlessForm, authRequest) {
	t.Helper()
	ar := sc.rp.start()
	return passwordlessFormOf(t, b.visit(ar.url)), ar
}

// answerWith has a answer the form's ceremony and posts the answer in b.
func answerWith(t *testing.T, b *browser, a *webauthntest.Authenticator, f passwordlessForm) page {
	t.Helper()
	answer, err := a.Assert(f.options)
	if err != nil {
		t.Fatal(err)
	}
	return b.submit(signin.PasswordlessPath, f.values(answer))
}

// refusedAtSignIn checks that p is the sign-in page again, a 400, saying
// what happened in words, and that the audit log recorded the refusal of
// a passwordless answer for reason.
func (sc *passkeyScene) refusedAtSignIn(t *testing.T, p page, says, reason string) {
	t.Helper()
	if p.status != http.StatusBadRequest || !p.isLogin() || !strings.Contains(p.body, says) {
		t.Fatalf("want the sign-in page again (400) saying %q; got %d:\n%s", says, p.status, p.body)
	}
	if got := sc.n.events(t, "passkey.failed", "ceremony", "passwordless", "reason", reason); len(got) == 0 {
		t.Errorf("no passkey.failed event with reason %s", reason)
	}
}

// rows counts the rows of table.
func (n *node) rows(t *testing.T, table string) int {
	t.Helper()
	var count int
	if err := pgtest.Conn(t, n.dbURL).QueryRow(t.Context(), `SELECT count(*) FROM `+table).Scan(&count); err != nil {
		t.Fatal(err)
	}
	return count
}

// A passkey with the user verified is two factors: the app's ID token
// says the passkey signed in (hwk, user) and that it counts as
// multi-factor, and no password was given.
func TestAPasskeyAloneSignsInAndIsMultiFactor(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	b := newBrowser(t, sc.n.issuer)
	f, ar := sc.passwordlessStart(t, b)
	_, id := sc.rp.finish(t, ar, answerWith(t, b, sc.auth, f).callback(t))
	got := authOf(t, id)
	for _, m := range []string{"hwk", "user", "mfa"} {
		if !slices.Contains(got.AMR, m) {
			t.Errorf("amr %v lacks %s", got.AMR, m)
		}
	}
	if slices.Contains(got.AMR, "pwd") {
		t.Errorf("amr %v claims a password", got.AMR)
	}
	if !sc.signedInSilently(t, b) {
		t.Error("the browser is not signed in after the passkey")
	}
}

// One answer, posted many times at once from several addresses with the
// browser's own cookies and form, signs in once: the spent challenge in
// Postgres refuses the rest, as replays, not as clones. (The sign-in page
// with no app's request behind it, so that nothing but the challenge
// stands between the copies and a sign-in: an app's parked request is
// spent by the first sign-in too.)
func TestAPasswordlessAnswerPostedManyTimesAtOnceSignsInOnce(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	b := newBrowser(t, sc.n.issuer)
	f := passwordlessFormOf(t, b.visit(sc.n.issuer+signin.LoginPath))
	answer, err := sc.auth.Assert(f.options)
	if err != nil {
		t.Fatal(err)
	}
	before := len(sc.n.events(t, "login.succeeded"))
	var signedIn, refused atomic.Int32
	burst(t, 8, attackers(4), func(_ int, ip string) {
		c := clientFrom(ip)
		c.Jar = b.http.Jar
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		status, body, err := sc.n.postForm(c, signin.PasswordlessPath, f.values(answer))
		switch {
		case err != nil:
			t.Error(err)
		case status == http.StatusSeeOther:
			signedIn.Add(1)
		case status == http.StatusBadRequest && strings.Contains(body, "already answered"):
			refused.Add(1)
		default:
			t.Errorf("an answer got %d:\n%s", status, body)
		}
	})
	if signedIn.Load() != 1 || refused.Load() != 7 {
		t.Errorf("%d sign-ins and %d refusals, want 1 and 7", signedIn.Load(), refused.Load())
	}
	if got := len(sc.n.events(t, "login.succeeded")) - before; got != 1 {
		t.Errorf("%d sign-ins recorded, want 1", got)
	}
	if got := len(sc.n.events(t, "passkey.failed", "reason", "replay")); got != 7 {
		t.Errorf("%d replays recorded, want 7", got)
	}
	if got := sc.n.auditCount(t, "passkey.clone_suspected"); got != 0 {
		t.Errorf("%d replays taken for clones, which would alarm the user", got)
	}
	if got := sc.n.rows(t, "passkey_challenges"); got != 1 {
		t.Errorf("%d spent challenges stored, want 1", got)
	}
}

// The ceremony is bound to the browser that showed the page: its form
// and answer, carried to another browser (a phishing proxy's), are
// refused there, as is the answer with the other browser's own form; and
// the refusals leave the ceremony good in the browser it belongs to.
func TestAPasswordlessCeremonyBegunInOneBrowserCannotBeFinishedInAnother(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	victim, attacker := newBrowser(t, sc.n.issuer), newBrowser(t, sc.n.issuer)
	mine := passwordlessFormOf(t, victim.visit(sc.n.issuer+signin.LoginPath))
	theirs := passwordlessFormOf(t, attacker.visit(sc.n.issuer+signin.LoginPath))
	answer, err := sc.auth.Assert(mine.options)
	if err != nil {
		t.Fatal(err)
	}
	sc.refusedAtSignIn(t, attacker.submit(signin.PasswordlessPath, mine.values(answer)), "started in another browser window", "session")
	sc.refusedAtSignIn(t, attacker.submit(signin.PasswordlessPath, url.Values{"ceremony": {theirs.ceremony},
		"credential": {string(answer)}}), "could not be verified", "challenge")
	if sc.signedInSilently(t, attacker) {
		t.Fatal("another browser's ceremony signed the attacker in")
	}
	if got := sc.n.rows(t, "passkey_challenges"); got != 0 {
		t.Errorf("refused answers stored %d challenges", got)
	}
	// Bare /login, no app: the victim lands on their account page.
	if p := victim.submit(signin.PasswordlessPath, mine.values(answer)); p.status != http.StatusOK || !strings.Contains(p.url.Path, signin.AccountPath) {
		t.Errorf("the victim's own answer: %d at %s, want their account page", p.status, p.url)
	}
}

func TestAPasskeyRegisteredNowhereSignsNobodyIn(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	stranger, err := webauthntest.New(sc.n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	stranger.UserHandle = []byte(sc.ada.ID) // it claims to be Ada's
	b := newBrowser(t, sc.n.issuer)
	f, _ := sc.passwordlessStart(t, b)
	sc.refusedAtSignIn(t, answerWith(t, b, stranger, f), "not registered", "unknown_credential")
	if sc.signedInSilently(t, b) {
		t.Fatal("a stranger's passkey signed in")
	}
}

// Answers made for another site (a phishing page's origin, another
// relying party) are refused, and the audit log says which.
func TestPasswordlessAnswersForAnotherSiteAreRefused(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	for _, tt := range []struct {
		name   string
		spoil  func(a webauthntest.Authenticator) webauthntest.Authenticator
		reason string
	}{
		{"another origin", func(a webauthntest.Authenticator) webauthntest.Authenticator {
			a.Origin = "http://localhost.evil.example"
			return a
		}, "origin"},
		{"another relying party", func(a webauthntest.Authenticator) webauthntest.Authenticator {
			a.RPID = "evil.example"
			return a
		}, "rp_id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBrowser(t, sc.n.issuer)
			f, _ := sc.passwordlessStart(t, b)
			phished := tt.spoil(*sc.auth)
			sc.refusedAtSignIn(t, answerWith(t, b, &phished, f), "could not be verified", tt.reason)
			if sc.signedInSilently(t, b) {
				t.Fatal("an answer for another site signed in")
			}
		})
	}
}

// A signature counter that goes back means the key may have been copied:
// the sign-in is refused, the user told, and the audit log says so.
func TestASignCountRegressionAtPasswordlessSignInIsRefusedAndAudited(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	b := newBrowser(t, sc.n.issuer)
	sc.auth.Count = 7
	f, _ := sc.passwordlessStart(t, b)
	if ok := answerWith(t, b, sc.auth, f); ok.location == nil {
		t.Fatalf("the genuine key: %d\n%s", ok.status, ok.body)
	}
	clone := newBrowser(t, sc.n.issuer)
	sc.auth.Count = 3 // the copy, behind the original
	f, _ = sc.passwordlessStart(t, clone)
	p := answerWith(t, clone, sc.auth, f)
	if p.status != http.StatusBadRequest || !p.isLogin() || !strings.Contains(p.body, "may have been copied") {
		t.Fatalf("a copied key: %d, want the sign-in page saying so\n%s", p.status, p.body)
	}
	sc.cloneRefused(t, clone)
}

// A disabled user's passkey signs nobody in; nor does a deleted user's,
// whose passkeys went with the account.
func TestADisabledOrDeletedUsersPasskeySignsNobodyIn(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		end    func(sc *passkeyScene) error
		says   string
		reason string
	}{
		{"disabled", func(sc *passkeyScene) error { return sc.n.users.Disable(t.Context(), sc.ada.ID) },
			"cannot sign in to an account here", "disabled"},
		{"deleted", func(sc *passkeyScene) error { return sc.n.users.Delete(t.Context(), sc.ada.ID) },
			"not registered", "unknown_credential"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := newPasskeyScene(t)
			b := newBrowser(t, sc.n.issuer)
			f, _ := sc.passwordlessStart(t, b)
			if err := tt.end(sc); err != nil {
				t.Fatal(err)
			}
			sc.refusedAtSignIn(t, answerWith(t, b, sc.auth, f), tt.says, tt.reason)
			if sc.signedInSilently(t, b) {
				t.Fatalf("a %s user's passkey signed in", tt.name)
			}
		})
	}
}

// A passkey that did not verify the user (a security key without a PIN)
// is one factor: it does not sign in alone.
func TestAPasskeyWithoutUserVerificationDoesNotSignInAlone(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	sc.auth.Unverified = true
	b := newBrowser(t, sc.n.issuer)
	f, _ := sc.passwordlessStart(t, b)
	sc.refusedAtSignIn(t, answerWith(t, b, sc.auth, f), "did not check that it is you", "user_verification")
	if sc.signedInSilently(t, b) {
		t.Fatal("an unverified passkey signed in alone")
	}
}

// Whatever the credential and ceremony fields hold, the answer is a page
// with a 4xx, never a 500.
func TestGarbagePasswordlessAnswersGetAPageNotAnError(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	b := newBrowser(t, sc.n.issuer)
	f, _ := sc.passwordlessStart(t, b)
	for name, form := range map[string]url.Values{
		"garbage":            {"request": {f.request}, "ceremony": {f.ceremony}, "credential": {"garbage"}},
		"empty":              {"request": {f.request}},
		"JSON of nothing":    {"request": {f.request}, "ceremony": {f.ceremony}, "credential": {`{"id":"","response":{}}`}},
		"a forged ceremony":  {"request": {f.request}, "ceremony": {strings.Repeat("A", 400)}, "credential": {"{}"}},
		"a huge ceremony":    {"request": {f.request}, "ceremony": {strings.Repeat("A", 40<<10)}, "credential": {"{}"}},
		"a large credential": {"request": {f.request}, "ceremony": {f.ceremony}, "credential": {strings.Repeat("x", 60<<10)}},
		"an oversized body":  {"request": {f.request}, "ceremony": {f.ceremony}, "credential": {strings.Repeat("x", 200<<10)}},
		"an unknown request": {"request": {"nope"}, "ceremony": {f.ceremony}, "credential": {"garbage"}},
	} {
		p := b.submit(signin.PasswordlessPath, form, "Accept", "text/html")
		if p.status < 400 || p.status >= 500 || !strings.Contains(p.body, "<html") {
			t.Errorf("%s: %d, want a page with a 4xx\n%.400s", name, p.status, p.body)
		}
	}
	if sc.signedInSilently(t, b) {
		t.Fatal("garbage signed in")
	}
}

// Anyone may show the sign-in page, as often as they like, and each
// showing begins a passkey ceremony: none of it is stored. A bare /login
// makes no session, and no ceremony is kept server-side.
func TestShowingTheSignInPageStoresNothing(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	tables := []string{"sessions", "browser_sessions", "passkey_challenges", "audit_events"}
	before := map[string]int{}
	for _, table := range tables {
		before[table] = sc.n.rows(t, table)
	}
	for range 100 {
		b := newBrowser(t, sc.n.issuer)
		p := b.visit(sc.n.issuer + signin.LoginPath)
		passwordlessFormOf(t, p)
		if cookie := p.header.Values("Set-Cookie"); len(cookie) != 1 || !strings.HasPrefix(cookie[0], "latchkey_passkey=") {
			t.Fatalf("the page set cookies %v, want the ceremony's alone", cookie)
		}
	}
	for _, table := range tables {
		if got := sc.n.rows(t, table); got != before[table] {
			t.Errorf("%s: %d rows after 100 showings, %d before", table, got, before[table])
		}
	}
}
