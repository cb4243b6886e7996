package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/internal/geoiptest"
	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/signin"
)

// Risk signals and the policy's actions (pkg/risk), seen as users and
// attackers see them: through sign-ins over HTTP from loopback source
// addresses, each of 127.0.0.0/8 a network of its own per /24, and a
// GeoIP database built for the test that puts some of them on other
// continents.

// riskPolicy writes a policy file (LATCHKEY_RISK_POLICY) and returns its
// path.
func riskPolicy(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "risk.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// mailed counts the mails of template in the outbox.
func (n *node) mailed(t *testing.T, template string) int {
	t.Helper()
	var count int
	err := pgtest.Conn(t, n.dbURL).QueryRow(t.Context(), `SELECT count(*) FROM mail_outbox WHERE template = $1`, template).Scan(&count)
	if err != nil {
		t.Fatal(err)
	}
	return count
}

// words reads a list of words from an event's details.
func words(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, w := range l {
		s, _ := w.(string)
		out = append(out, s)
	}
	return out
}

// lastSignInRisk is the risk detail (signals, actions) of the latest
// login.succeeded event.
func (n *node) lastSignInRisk(t *testing.T) (signals, actions []string) {
	t.Helper()
	events := n.events(t, audit.LoginSucceeded)
	if len(events) == 0 {
		t.Fatal("no login.succeeded event")
	}
	r, _ := events[0].Details[signin.RiskDetail].(map[string]any)
	return words(r["signals"]), words(r["actions"])
}

// signInAccount signs email in on b at the login page, straight to the
// account page.
func (b *browser) signInAccount(n *node, email string) page {
	b.t.Helper()
	p := b.signIn(b.visit(n.issuer+"/login"), email, testPassword)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Your account") {
		b.t.Fatalf("sign-in as %s: %d\n%s", email, p.status, p.body)
	}
	return p
}

func TestRiskSignalsNewNetworkAndNewBrowserAreAuditedWithTheConfiguredAction(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_RISK_POLICY", riskPolicy(t, "signals:\n  new_network: {actions: [notify]}\n"))
	n.user(t, "ada@example.com")

	// The first sign-in sets the history: only the browser is new, and
	// the default for that is to allow it, noted in the sign-in's event.
	b := newBrowser(t, n.issuer).from("127.0.1.2")
	b.signInAccount(n, "ada@example.com")
	if signals, actions := n.lastSignInRisk(t); !slices.Equal(signals, []string{"new_device"}) || !slices.Equal(actions, []string{"allow"}) {
		t.Fatalf("first sign-in: signals %v actions %v, want new_device, allow", signals, actions)
	}
	if got := n.events(t, audit.RiskDetected); len(got) != 0 {
		t.Fatalf("allow recorded risk.detected: %v", got[0].Details)
	}

	// The same browser from another /24: a new network, which this
	// policy tells the user of.
	b.leave()
	b.from("127.0.2.3").signInAccount(n, "ada@example.com")
	detected := n.events(t, audit.RiskDetected)
	if len(detected) != 1 || !slices.Equal(words(detected[0].Details["signals"]), []string{"new_network"}) ||
		!slices.Equal(words(detected[0].Details["actions"]), []string{"notify"}) || detected[0].IP != "127.0.2.3" {
		t.Fatalf("risk.detected after a new network: %+v", detected)
	}
	if signals, actions := n.lastSignInRisk(t); !slices.Equal(signals, []string{"new_network"}) || !slices.Equal(actions, []string{"notify"}) {
		t.Fatalf("the sign-in's event says signals %v actions %v", signals, actions)
	}
	if got := n.mailed(t, "unusual-activity"); got != 1 {
		t.Fatalf("unusual-activity mails: %d, want 1", got)
	}

	// A new browser on a network now known: new_device alone, allowed.
	newBrowser(t, n.issuer).from("127.0.2.4").signInAccount(n, "ada@example.com")
	if signals, actions := n.lastSignInRisk(t); !slices.Equal(signals, []string{"new_device"}) || !slices.Equal(actions, []string{"allow"}) {
		t.Fatalf("a new browser: signals %v actions %v", signals, actions)
	}
	if got := n.mailed(t, "unusual-activity"); got != 1 {
		t.Fatalf("unusual-activity mails after an allowed signal: %d, want still 1", got)
	}
	if got := n.scrape(t).value(t, "latchkey_risk_signals_total", "signal", "new_network"); got != 1 {
		t.Fatalf("latchkey_risk_signals_total{signal=new_network} = %v", got)
	}
}

// enrolWithCodes is enrol, also returning the recovery codes: a second
// sign-in with a factor within one TOTP step needs one of them.
func (n *node) enrolWithCodes(t *testing.T, u *identity.User) (string, []string) {
	t.Helper()
	e, err := n.mfa.Enrol(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := n.mfa.Confirm(t.Context(), u.ID, totpCode(t, e.Secret, 0))
	if err != nil {
		t.Fatal(err)
	}
	return e.Secret, codes
}

// Chromium connects from 127.0.0.1, so the test's GeoIP database puts
// 127.0.0.1 in Berlin and 127.0.1.2, which a Go client connects from, in
// New York: the user trusts Chromium in Berlin, signs in from New York,
// and back in Berlin minutes later is asked for the code on the browser
// they trust.
func TestRiskImpossibleTravelStepsUpATrustedBrowserInChromiumAndTellsTheUser(t *testing.T) {
	t.Parallel()
	geo := geoiptest.City(t, map[string]geoiptest.Place{"127.0.0.1": geoiptest.Berlin, "127.0.1.2": geoiptest.NewYork})
	n := startNode(t, "LATCHKEY_GEOIP_DB", geo)
	secret, recovery := n.enrolWithCodes(t, n.user(t, "ada@example.com"))
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)

	err := chromedp.Do(tab,
		startSignIn(app, "ada@example.com"),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, 1)),
		chromedp.Click(chromedp.ID("trust")),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitVisible(chromedp.ID("verified")),
		signOutOf(app),
	)
	if err != nil {
		t.Fatalf("trusting Chromium in Berlin: %v", err)
	}

	// New York, seconds later: the second factor, as for any new browser,
	// and the signals of a new country and impossible travel.
	traveller := newBrowser(t, n.issuer).from("127.0.1.2")
	p := traveller.signIn(traveller.visit(n.issuer+"/login"), "ada@example.com", testPassword)
	if p = traveller.secondFactor(p, recovery[0]); !strings.Contains(p.body, "Your account") {
		t.Fatalf("the sign-in from New York with a recovery code: %d\n%s", p.status, p.body)
	}
	detected := n.events(t, audit.RiskDetected)
	if len(detected) != 1 {
		t.Fatalf("risk.detected events after New York: %d", len(detected))
	}
	signals := words(detected[0].Details["signals"])
	for _, want := range []string{"new_country", "impossible_travel"} {
		if !slices.Contains(signals, want) {
			t.Fatalf("New York after Berlin: signals %v, want %s", signals, want)
		}
	}
	reasons, _ := detected[0].Details["reasons"].(map[string]any)
	if r, _ := reasons["impossible_travel"].(string); !strings.Contains(r, "km") {
		t.Fatalf("impossible_travel's reason: %q", r)
	}

	// Back in Berlin on the trusted browser: the code is asked for.
	err = chromedp.Do(tab,
		startSignIn(app, "ada@example.com"),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromiumtest.Screenshot(t, "risk-step-up-on-a-trusted-browser"),
	)
	if err != nil {
		t.Fatalf("a trusted browser after impossible travel: want the code page: %v", err)
	}
	detected = n.events(t, audit.RiskDetected)
	if len(detected) != 2 || !slices.Contains(words(detected[0].Details["signals"]), "impossible_travel") ||
		!slices.Contains(words(detected[0].Details["actions"]), "step_up") {
		t.Fatalf("risk.detected for the way back: %+v", detected)
	}
	if got := len(n.events(t, audit.RiskAlert)); got != 2 {
		t.Fatalf("risk.alert events: %d, want one per impossible travel", got)
	}
	if got := n.mailed(t, "unusual-activity"); got != 2 {
		t.Fatalf("unusual-activity mails: %d, want 2", got)
	}
}

func TestRiskCredentialStuffingRaisesTheAlertMetricAndBlocksTheNetworkOnEveryNode(t *testing.T) {
	t.Parallel()
	// A low threshold keeps the simulation small: 30 accounts, one wrong
	// password each, in parallel, from one loopback address.
	policy := riskPolicy(t, "limits:\n  stuffing_accounts: 20\n")
	a := startNode(t, "LATCHKEY_RISK_POLICY", policy, "LATCHKEY_SIGNIN_RATE_LIMIT", "100")
	b := startNode(t, "LATCHKEY_RISK_POLICY", policy, "LATCHKEY_DATABASE_URL", a.dbURL)
	a.user(t, "ada@example.com")

	const accounts = 30
	var wg sync.WaitGroup
	for i := range accounts {
		wg.Go(func() {
			br := newBrowser(t, a.issuer).from("127.0.3.5")
			br.signIn(br.visit(a.issuer+"/login"), fmt.Sprintf("victim%d@example.com", i), "a guess")
		})
	}
	wg.Wait()

	scrape := a.scrape(t)
	if got := scrape.value(t, "latchkey_risk_signals_total", "signal", "credential_stuffing"); got != 1 {
		t.Fatalf("latchkey_risk_signals_total{signal=credential_stuffing} = %v, want 1 (once per window, however many cross)", got)
	}
	if got := scrape.value(t, "latchkey_risk_actions_total", "action", "alert"); got != 1 {
		t.Fatalf("latchkey_risk_actions_total{action=alert} = %v, want 1", got)
	}
	if got := b.scrape(t).value(t, "latchkey_risk_blocked_networks"); got != 1 {
		t.Fatalf("the other node counts %v blocked networks, want 1", got)
	}
	if got := len(a.events(t, audit.RiskAlert)); got != 1 {
		t.Fatalf("risk.alert events: %d, want 1", got)
	}

	// The other node refuses the network, with the right password of a
	// real account as with an unknown one, alike, and says until when.
	var answers []string
	for _, email := range []string{"ada@example.com", "nobody@example.com"} {
		br := newBrowser(t, b.issuer).from("127.0.3.77")
		p := br.signIn(br.visit(b.issuer+"/login"), email, testPassword)
		if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "paused") ||
			!strings.Contains(p.body, "UTC") {
			t.Fatalf("%s from the blocked network on the other node: %d\n%s", email, p.status, p.body)
		}
		answers = append(answers, strings.ReplaceAll(p.body, email, ""))
	}
	// Another network signs in as usual.
	newBrowser(t, b.issuer).from("127.0.4.5").signInAccount(b, "ada@example.com")
	if strings.Contains(answers[0], "ada") || !strings.Contains(answers[0], "Sign-in paused") {
		t.Fatalf("the block page says too much or too little:\n%s", answers[0])
	}
}

func TestRiskPolicyThatIsInvalidStopsStartupWithOneClearLine(t *testing.T) {
	t.Parallel()
	path := riskPolicy(t, "signals:\n  token_reuse: {actions: [block], block_for: 15m}\n")
	code, _, stderr := runCLI(t.Context(), vars{
		"LATCHKEY_DATABASE_URL": pgtest.URL(t),
		"LATCHKEY_ISSUER":       "http://127.0.0.1:1",
		"LATCHKEY_SECRETS":      testSecret,
		"LATCHKEY_PUBLIC_ADDR":  "127.0.0.1:0",
		"LATCHKEY_ADMIN_ADDR":   "127.0.0.1:0",
		"LATCHKEY_RISK_POLICY":  path,
	}, "serve", "--migrate")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if code == 0 || !strings.Contains(last, "token_reuse cannot block") || !strings.Contains(last, path) {
		t.Fatalf("serve with an invalid policy: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestRiskSignalAccountTargetedFromManyNetworksAndItsLockoutAreAlertedAndToldToTheUser(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_RISK_POLICY", riskPolicy(t, "limits:\n  targeted_networks: 3\n"),
		"LATCHKEY_LOGIN_MAX_FAILURES", "100", "LATCHKEY_LOCKOUT_FAILURES", "3")
	u := n.user(t, "ada@example.com")
	for _, ip := range []string{"127.0.5.1", "127.0.6.1", "127.0.7.1"} {
		b := newBrowser(t, n.issuer).from(ip)
		b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", "a guess")
	}
	bySignal := map[string]audit.Event{}
	for _, e := range n.events(t, audit.RiskDetected) {
		for _, s := range words(e.Details["signals"]) {
			bySignal[s] = e
		}
	}
	targeted, locked := bySignal["account_targeted"], bySignal["account_locked"]
	if targeted.Target != audit.User(u.ID) || !slices.Equal(words(targeted.Details["actions"]), []string{"alert", "notify"}) {
		t.Fatalf("account_targeted: %+v", targeted)
	}
	if locked.Target != audit.User(u.ID) || locked.Details["event"] != audit.LoginLocked {
		t.Fatalf("account_locked, from the lockout's own event: %+v", locked)
	}
	if got := len(n.events(t, audit.RiskAlert)); got != 2 {
		t.Fatalf("risk.alert events: %d, want one for each signal", got)
	}
	if got := n.mailed(t, "unusual-activity"); got != 1 {
		t.Fatalf("unusual-activity mails: %d, want 1 (account_targeted notifies; account_locked only alerts)", got)
	}
}

// Signals that other parts of Latchkey detect go through the same policy:
// a spent refresh token presented again (token_reuse) and a passkey whose
// counter went back (passkey_clone) are each alerted, by default, with
// the event that raised them named.
func TestRiskSignalsFromTokenReuseAndAPasskeyCloneAreAlerted(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	n, rp := sc.n, sc.rp
	b := newBrowser(t, n.issuer)
	p, ar := sc.passwordThenPasskeyPage(t, b)
	answer, err := sc.auth.Assert(passkeyOptions(t, p))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := rp.finish(t, ar, answerPasskey(b, p, answer).callback(t))
	for range 2 { // the second presents the spent token again
		n.formCall(t, "/oauth2/token", rp.client.ID, rp.oauth.ClientSecret,
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	}
	clone := newBrowser(t, n.issuer)
	p, _ = sc.passwordThenPasskeyPage(t, clone)
	sc.auth.Count = 0 // the copy, behind the original
	answer, _ = sc.auth.Assert(passkeyOptions(t, p))
	answerPasskey(clone, p, answer)

	bySignal := map[string]audit.Event{}
	for _, e := range n.events(t, audit.RiskDetected) {
		for _, s := range words(e.Details["signals"]) {
			bySignal[s] = e
		}
	}
	if reuse := bySignal["token_reuse"]; reuse.Details["event"] != "token.refresh_reuse_detected" || !slices.Contains(words(reuse.Details["actions"]), "alert") {
		t.Errorf("token_reuse: %+v", reuse)
	}
	if clone := bySignal["passkey_clone"]; clone.Target != audit.User(sc.ada.ID) || !slices.Contains(words(clone.Details["actions"]), "alert") {
		t.Errorf("passkey_clone: %+v", clone)
	}
	if got := n.scrape(t).value(t, "latchkey_risk_signals_total", "signal", "token_reuse"); got != 1 {
		t.Errorf("latchkey_risk_signals_total{signal=token_reuse} = %v, want 1", got)
	}
	if got := len(n.events(t, audit.RiskAlert)); got < 2 {
		t.Errorf("risk.alert events: %d, want one for each signal", got)
	}
}
