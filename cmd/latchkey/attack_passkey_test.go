package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/webauthntest"
	"github.com/latchkey/latchkey/pkg/identity"
)

// passkeyScene is a node named by a domain (passkeys need one), the app
// Notes, and ada@example.com with a passkey on a software authenticator,
// added on her account page as a browser would; settings are the node's.
type passkeyScene struct {
	// added is the browser the passkey was added in, signed in with the
	// password alone.
	added *browser
	n     *node
	rp    *relyingParty
	ada   *identity.User
	auth  *webauthntest.Authenticator
}

func newPasskeyScene(t *testing.T, settings ...string) *passkeyScene {
	t.Helper()
	n := startLocalhostNode(t, settings...)
	sc := &passkeyScene{n: n, rp: n.app(t), ada: n.user(t, "ada@example.com")}
	var err error
	if sc.auth, err = webauthntest.New(n.issuer); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, n.issuer)
	b.signedIn(sc.rp, "ada@example.com")
	add := b.submit("/account/passkeys/add", url.Values{})
	answer, err := sc.auth.Register(passkeyOptions(t, add))
	if err != nil {
		t.Fatal(err)
	}
	done := b.submit("/account/passkeys/finish", url.Values{"credential": {string(answer)}, "name": {"Phone"}})
	if !strings.Contains(done.body, "Your passkey is added.") {
		t.Fatalf("adding the passkey: %d\n%s", done.status, done.body)
	}
	sc.added = b
	return sc
}

var passkeyOptionsAttr = regexp.MustCompile(`data-options="([^"]*)"`)

// passkeyOptions are the WebAuthn options a passkey page hands its script.
func passkeyOptions(t *testing.T, p page) []byte {
	t.Helper()
	m := passkeyOptionsAttr.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("%s (%d) is not a passkey page:\n%s", p.url, p.status, p.body)
	}
	return []byte(html.UnescapeString(m[1]))
}

// passwordThenPasskeyPage starts a sign-in to Notes in b and gives the
// password: the passkey page, and the request it is for.
func (sc *passkeyScene) passwordThenPasskeyPage(t *testing.T, b *browser) (page, authRequest) {
	t.Helper()
	ar := sc.rp.start()
	p := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
	if !strings.Contains(p.body, `data-passkey="get"`) {
		t.Fatalf("after the password: want the passkey page, got %d:\n%s", p.status, p.body)
	}
	return p, ar
}

// answer posts a passkey answer on the passkey page p.
func answerPasskey(b *browser, p page, answer []byte) page {
	b.t.Helper()
	return b.submit("/login/passkey", url.Values{"request": {p.handle(b.t)}, "credential": {string(answer)}})
}

// signedInSilently reports whether b is signed in, as an app asking with
// prompt=none finds out.
func (sc *passkeyScene) signedInSilently(t *testing.T, b *browser) bool {
	t.Helper()
	q := b.visit(sc.rp.start("prompt", "none").url).callback(t).Query()
	return q.Get("error") == "" && q.Get("code") != ""
}

// refused checks that p is the passkey page again, saying what happened
// in words and nothing of the check that failed.
func refused(t *testing.T, p page, says string) {
	t.Helper()
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, says) {
		t.Fatalf("want the passkey page again (400) saying %q; got %d:\n%s", says, p.status, p.body)
	}
	for _, internal := range []string{"challenge", "origin", "RPID", "rp_id", "passkey:"} {
		if strings.Contains(strings.ToLower(p.body), strings.ToLower("refused ("+internal)) {
			t.Errorf("the page shows internals: %s", internal)
		}
	}
}

func TestPasswordAndPasskeySignInIsMultiFactorAndPhishingResistant(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	b := newBrowser(t, sc.n.issuer)
	p, ar := sc.passwordThenPasskeyPage(t, b)
	answer, err := sc.auth.Assert(passkeyOptions(t, p))
	if err != nil {
		t.Fatal(err)
	}
	// Ada allowed Notes when she added the passkey: back to it at once.
	_, id := sc.rp.finish(t, ar, answerPasskey(b, p, answer).callback(t))
	wantAssurance(t, authOf(t, id), identity.ACRPhishingResistant, "pwd", "hwk", "user", "mfa")
}

// A user signed in with a password whom an app asks for the MFA level
// (acr_values) gives the passkey alone, and the new ID token says so.
func TestStepUpAsksASignedInUserForTheirPasskeyAlone(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	b := sc.added
	ar := sc.rp.start("acr_values", identity.ACRMFA)
	p := b.visit(ar.url)
	if !strings.Contains(p.body, `data-passkey="get"`) {
		t.Fatalf("step-up: want the passkey page, got %d:\n%s", p.status, p.body)
	}
	answer, err := sc.auth.Assert(passkeyOptions(t, p))
	if err != nil {
		t.Fatal(err)
	}
	_, id := sc.rp.finish(t, ar, answerPasskey(b, p, answer).callback(t))
	got := authOf(t, id)
	// A passkey reaches the phishing-resistant level, which meets the one
	// asked for: the app is told the level it asked for (so that it, or
	// a resource server comparing acr with what it asked, accepts it),
	// and amr says a key was used.
	if got.ACR != identity.ACRMFA || !slices.Contains(got.AMR, "hwk") || !slices.Contains(got.AMR, "mfa") {
		t.Errorf("after step-up: acr %q amr %v, want the MFA level asked for, by hwk", got.ACR, got.AMR)
	}
}

// An answer is good for its own challenge, once: replayed into a later
// sign-in, or after the challenge it answered was spent, it is refused.
func TestAReplayedPasskeyAnswerIsRefused(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	first := newBrowser(t, sc.n.issuer)
	p, _ := sc.passwordThenPasskeyPage(t, first)
	answer, err := sc.auth.Assert(passkeyOptions(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if ok := answerPasskey(first, p, answer); ok.location == nil {
		t.Fatalf("the first answer: %d\n%s", ok.status, ok.body)
	}

	later := newBrowser(t, sc.n.issuer)
	p2, _ := sc.passwordThenPasskeyPage(t, later)
	refused(t, answerPasskey(later, p2, answer), "could not be verified")
	// The refused answer spent the page's challenge: the right answer to
	// it comes too late.
	late, err := sc.auth.Assert(passkeyOptions(t, p2))
	if err != nil {
		t.Fatal(err)
	}
	refused(t, answerPasskey(later, p2, late), "could not be verified")
	if sc.signedInSilently(t, later) {
		t.Fatal("a replayed answer signed the browser in")
	}
	if got := sc.n.auditCount(t, "passkey.failed"); got != 2 {
		t.Errorf("%d passkey.failed events, want 2", got)
	}
}

// The ceremony lives in the session of the browser that began it: its
// answer, carried to another browser (a phishing proxy's), is refused
// there.
func TestAPasskeyCeremonyBegunInOneBrowserCannotBeFinishedInAnother(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	victim, attacker := newBrowser(t, sc.n.issuer), newBrowser(t, sc.n.issuer)
	victimPage, _ := sc.passwordThenPasskeyPage(t, victim)
	attackerPage, _ := sc.passwordThenPasskeyPage(t, attacker)
	answer, err := sc.auth.Assert(passkeyOptions(t, victimPage))
	if err != nil {
		t.Fatal(err)
	}
	refused(t, answerPasskey(attacker, attackerPage, answer), "could not be verified")
	if sc.signedInSilently(t, attacker) {
		t.Fatal("another browser's ceremony signed the attacker in")
	}
	// Nor does an answer count in a browser that began no ceremony.
	stranger := newBrowser(t, sc.n.issuer)
	p := stranger.submit("/login/passkey", url.Values{"request": {victimPage.handle(t)}, "credential": {string(answer)}})
	if p.status == http.StatusOK && sc.signedInSilently(t, stranger) {
		t.Fatal("a browser without the ceremony was signed in")
	}
	if got := sc.n.auditCount(t, "passkey.failed"); got < 1 {
		t.Error("the refusal is not in the audit log")
	}
}

func TestAPasskeyThatIsNotTheUsersIsRefused(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	stranger, err := webauthntest.New(sc.n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	stranger.UserHandle = []byte(sc.ada.ID)
	b := newBrowser(t, sc.n.issuer)
	p, _ := sc.passwordThenPasskeyPage(t, b)
	answer, err := stranger.Assert(passkeyOptions(t, p))
	if err != nil {
		t.Fatal(err)
	}
	refused(t, answerPasskey(b, p, answer), "not registered to your account")
	if got := sc.n.auditCount(t, "passkey.failed"); got != 1 {
		t.Errorf("%d passkey.failed events, want 1", got)
	}
}

// A signature counter that goes back means the key may have been copied:
// the sign-in is refused, the user told, and the audit log says so.
func TestASignCountRegressionAtSignInIsRefusedAndAudited(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	b := newBrowser(t, sc.n.issuer)
	p, _ := sc.passwordThenPasskeyPage(t, b)
	sc.auth.Count = 7
	answer, _ := sc.auth.Assert(passkeyOptions(t, p))
	if ok := answerPasskey(b, p, answer); ok.location == nil {
		t.Fatalf("the genuine key: %d\n%s", ok.status, ok.body)
	}
	clone := newBrowser(t, sc.n.issuer)
	p, _ = sc.passwordThenPasskeyPage(t, clone)
	sc.auth.Count = 3 // the copy, behind the original
	answer, _ = sc.auth.Assert(passkeyOptions(t, p))
	refused(t, answerPasskey(clone, p, answer), "may have been copied")
	sc.cloneRefused(t, clone)
}

// cloneRefused checks that a copied key's answer signed nobody in on the
// browser clone, and was audited and told to the user, once.
func (sc *passkeyScene) cloneRefused(t *testing.T, clone *browser) {
	t.Helper()
	if sc.signedInSilently(t, clone) {
		t.Fatal("a cloned key signed in")
	}
	if got := sc.n.auditCount(t, "passkey.clone_suspected"); got != 1 {
		t.Errorf("%d passkey.clone_suspected events, want 1", got)
	}
	var mailed int
	err := pgtest.Conn(t, sc.n.dbURL).QueryRow(t.Context(),
		`SELECT count(*) FROM mail_outbox WHERE template = 'passkey-clone-suspected'`).Scan(&mailed)
	if err != nil || mailed != 1 {
		t.Errorf("%d notices of the suspected clone in the outbox (%v), want 1", mailed, err)
	}
}

func TestADisabledUserCannotSignInWithTheirPasskey(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	b := newBrowser(t, sc.n.issuer)
	p, _ := sc.passwordThenPasskeyPage(t, b)
	if err := sc.n.users.Disable(t.Context(), sc.ada.ID); err != nil {
		t.Fatal(err)
	}
	answer, _ := sc.auth.Assert(passkeyOptions(t, p))
	if got := answerPasskey(b, p, answer); !got.isLogin() {
		t.Errorf("a disabled user's passkey answer: %d, want the login page\n%s", got.status, got.body)
	}
	if sc.signedInSilently(t, b) {
		t.Fatal("a disabled user signed in with a passkey")
	}
}

// Only a token for latchkey:admin removes a passkey; one for reading
// lists them and no more.
func TestAReadOnlyAdminTokenListsPasskeysButCannotRemoveThem(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	reader := sc.n.automation(t, "latchkey:admin:read")
	list := reader.call(http.MethodGet, "/admin/users/"+sc.ada.ID+"/passkeys", nil).must(t, http.StatusOK)
	items, _ := list.body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("passkeys listed: %s", list.raw)
	}
	id, _ := items[0].(map[string]any)["id"].(string)
	reader.call(http.MethodDelete, "/admin/users/"+sc.ada.ID+"/passkeys/"+id, nil).must(t, http.StatusForbidden)
	admin := sc.n.automation(t, "latchkey:admin")
	admin.call(http.MethodDelete, "/admin/users/"+sc.ada.ID+"/passkeys/"+id, nil).must(t, http.StatusNoContent)
	admin.call(http.MethodDelete, "/admin/users/"+sc.ada.ID+"/passkeys/"+id, nil).must(t, http.StatusNotFound)
	// Without a passkey, the password leads to no passkey page.
	b := newBrowser(t, sc.n.issuer)
	if p := b.signIn(b.visit(sc.rp.start().url), "ada@example.com", testPassword); strings.Contains(p.body, `data-passkey="get"`) {
		t.Error("a removed passkey is still asked for")
	}
}

// A reset is for a user who lost their factors: the passkeys go too.
func TestResetMFARemovesPasskeys(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	sc.n.automation(t, "latchkey:admin").call(http.MethodDelete, "/admin/users/"+sc.ada.ID+"/mfa", nil).must(t, http.StatusNoContent)
	b := newBrowser(t, sc.n.issuer)
	if _, id := b.signedIn(sc.rp, "ada@example.com"); slices.Contains(authOf(t, id).AMR, "mfa") {
		t.Error("after the reset the sign-in still has a second factor")
	}
}

var passkeyIDField = regexp.MustCompile(`name="passkey" value="([^"]+)"`)

// A user asked to prove who they are again before a sensitive change may
// use one of their passkeys instead of the password: an answer from a key
// that is not theirs is refused and changes nothing; theirs goes through.
func TestAPasskeyProvesWhoTheUserIsAgainOnTheAccountPage(t *testing.T) {
	t.Parallel()
	window := 3 * time.Second
	sc := newPasskeyScene(t, "LATCHKEY_REAUTH_WINDOW", window.String())
	b := sc.added
	m := passkeyIDField.FindStringSubmatch(b.visit(sc.n.issuer + "/account").body)
	if m == nil {
		t.Fatal("the account page lists no passkey to remove")
	}
	time.Sleep(window + 100*time.Millisecond) // the sign-in is no longer recent

	ask := b.submit("/account/passkeys/remove", url.Values{"passkey": {m[1]}})
	if !strings.Contains(ask.body, `data-field="reauth_passkey"`) || !strings.Contains(ask.body, `name="reauth_password"`) {
		t.Fatalf("removing a passkey: want the page asking for the password or a passkey, got %d:\n%s", ask.status, ask.body)
	}
	// A key made for the site that was never added to her account,
	// claiming to be hers.
	stranger, err := webauthntest.New(sc.n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	stranger.UserHandle = []byte(sc.ada.ID)
	foreign, err := stranger.Assert(passkeyOptions(t, ask))
	if err != nil {
		t.Fatal(err)
	}
	refusedAgain := b.submit("/account/passkeys/remove", url.Values{"passkey": {m[1]}, "reauth_passkey": {string(foreign)}})
	if refusedAgain.status != http.StatusUnauthorized || !strings.Contains(refusedAgain.body, "not registered to your account") {
		t.Fatalf("another key's answer: want the proof page again (401), got %d:\n%s", refusedAgain.status, refusedAgain.body)
	}
	if sc.n.rows(t, "passkeys") != 1 {
		t.Fatal("a refused proof removed the passkey")
	}

	answer, err := sc.auth.Assert(passkeyOptions(t, refusedAgain))
	if err != nil {
		t.Fatal(err)
	}
	done := b.submit("/account/passkeys/remove", url.Values{"passkey": {m[1]}, "reauth_passkey": {string(answer)}})
	if !strings.Contains(done.body, "Your passkey is removed.") || sc.n.rows(t, "passkeys") != 0 {
		t.Fatalf("her own passkey's answer: want the passkey removed, got %d:\n%s", done.status, done.body)
	}
}
