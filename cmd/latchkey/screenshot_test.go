package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/pkg/client"
)

// The tests in this file look at the pages people see the way they see
// them, in Chromium, on a laptop and on a small phone: each one measures
// something a person would notice (where the cursor is, whether anything
// sticks out sideways, whether a code is broken over two lines) and keeps
// a screenshot of each width in the test's artifact directory.

// viewport is a screen the pages must work on.
type viewport struct {
	width, height int64
}

// viewports are a laptop's screen and a small phone's: 375 CSS pixels is
// the narrowest iPhone still sold, and many Android phones.
var viewports = []viewport{{1280, 800}, {375, 812}}

// atEveryViewport shows the page the tab is on at each viewport, checks
// that nothing on it sticks out sideways, runs check (if not nil), and
// saves a screenshot as name-WIDTH.png.
func atEveryViewport(t *testing.T, tab context.Context, name string, check func(v viewport)) {
	t.Helper()
	for _, v := range viewports {
		if err := chromedp.Do(tab, chromedp.EmulateViewport(v.width, v.height)); err != nil {
			t.Fatalf("%s at %d px: %v", name, v.width, err)
		}
		if wide := overflowing(t, tab); len(wide) > 0 {
			t.Errorf("%s at %d px: these stick out of the screen sideways: %v", name, v.width, wide)
		}
		if check != nil {
			check(v)
		}
		if err := chromedp.Do(tab, chromiumtest.Screenshot(t, name+"-"+strconv.FormatInt(v.width, 10))); err != nil {
			t.Fatal(err)
		}
	}
}

// overflowing returns the elements wider than the screen or outside it
// sideways, and whether the page itself scrolls sideways.
func overflowing(t *testing.T, tab context.Context) []string {
	t.Helper()
	wide, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`(() => {
		const w = document.documentElement.clientWidth, out = [];
		for (const e of document.querySelectorAll("body *")) {
			const r = e.getBoundingClientRect();
			if (r.width > 0 && (r.right > w + 0.5 || r.left < -0.5)) {
				out.push(e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "") + " " + Math.round(r.left) + "–" + Math.round(r.right));
			}
		}
		if (document.documentElement.scrollWidth > w) out.push("the page scrolls sideways to " + document.documentElement.scrollWidth);
		return out;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	return wide
}

// focused says which element has the keyboard focus, and whether it shows
// the focus ring.
type focused struct {
	ID      string `json:"id"`
	Outline string `json:"outline"`
}

func focusOf(t *testing.T, tab context.Context) focused {
	t.Helper()
	f, err := chromedp.Run(tab, chromedp.Evaluate[focused](`(() => {
		const e = document.activeElement, s = getComputedStyle(e);
		return {id: e.id, outline: s.outlineStyle + " " + s.outlineWidth + " " + s.outlineColor};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// awaitFocus waits, a few seconds at most, until the element with id has
// the focus: a browser moves it to an autofocus field at its next
// rendering step, not as soon as the page is shown. When it never comes,
// the check that follows says so.
func awaitFocus(id string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[chromedp.Void](`document.activeElement && document.activeElement.id === `+strconv.Quote(id),
		chromedp.WithPollingTimeout(5*time.Second))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, _ = poll(ctx, t)
		return chromedp.Void{}, nil
	}
}

// focusRing is what the stylesheet's :focus-visible draws.
const focusRing = "solid 3px rgb(36, 86, 214)"

func TestScreenshotLoginPutsTheCursorInThePasswordFieldAfterAWrongPassword(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)

	if err := chromedp.Do(tab, chromedp.Navigate(app.url+"/start"), chromedp.WaitVisible(chromedp.ID("email")), awaitFocus("email")); err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "login", func(v viewport) {
		if f := focusOf(t, tab); f.ID != "email" || f.Outline != focusRing {
			t.Errorf("login at %d px: focus on %q with outline %q, want the email field with %q", v.width, f.ID, f.Outline, focusRing)
		}
	})
	err := chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "not the password"),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS("p.error")),
		awaitFocus("password"),
	)
	if err != nil {
		t.Fatalf("a wrong password: %v", err)
	}
	atEveryViewport(t, tab, "login-wrong-password", func(v viewport) {
		if f := focusOf(t, tab); f.ID != "password" || f.Outline != focusRing {
			t.Errorf("after a wrong password at %d px: focus on %q with outline %q, want the password field with %q", v.width, f.ID, f.Outline, focusRing)
		}
	})
	// The cursor being there, the user types the password and goes on.
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
	)
	if err != nil {
		t.Fatalf("the right password after the wrong one: %v", err)
	}
}

// problem is what a problem page shows, and what it folds away.
type problem struct {
	Title   string `json:"title"`
	Visible string `json:"visible"`
	Folded  string `json:"folded"`
	Open    bool   `json:"open"`
}

func TestScreenshotProtocolErrorPageSaysWhatHappenedInPlainWords(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	rp := n.app(t)
	tab := chromiumtest.Tab(t)

	// An unregistered redirect URI: the one error Latchkey cannot send
	// back to the app, so a person reads it.
	q := url.Values{"client_id": {rp.client.ID}, "redirect_uri": {"https://attacker.example.com/" + strings.Repeat("very-long-path-segment/", 8)},
		"response_type": {"code"}, "scope": {"openid"}, "state": {"state-123456"}}
	if err := chromedp.Do(tab, chromedp.Navigate(n.issuer+"/oauth2/authorize?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatal(err)
	}
	read := func() problem {
		p, err := chromedp.Run(tab, chromedp.Evaluate[problem](`(() => {
			const d = document.querySelector("details.technical");
			return {title: document.querySelector("h1").innerText, visible: document.querySelector("main").innerText,
				folded: d ? d.textContent : "", open: d ? d.open : false};
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	atEveryViewport(t, tab, "protocol-error", func(v viewport) {
		p := read()
		for _, jargon := range []string{"invalid_request", "redirect_uri", "missing a required parameter", "OAuth"} {
			if strings.Contains(p.Visible, jargon) {
				t.Errorf("at %d px the page shows %q before the technical details are opened:\n%s", v.width, jargon, p.Visible)
			}
		}
		if p.Title != "Cannot sign in to this app" || !strings.Contains(p.Visible, "address it has not registered") || !strings.Contains(p.Visible, "Go back to the app") {
			t.Errorf("at %d px the page does not say what happened and what to do:\n%s", v.width, p.Visible)
		}
		if p.Open || !strings.Contains(p.Folded, "invalid_request") || !strings.Contains(p.Folded, "redirect_uri") || !strings.Contains(p.Folded, "Request ID") {
			t.Errorf("at %d px the technical details are not folded away, or lack the error, its description and the request ID: %+v", v.width, p)
		}
	})
	// The app's developers open the details: the long description must
	// still fit a phone.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("details.technical summary"))); err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "protocol-error-details", func(v viewport) {
		if p := read(); !p.Open || !strings.Contains(p.Visible, "invalid_request") {
			t.Errorf("at %d px the opened details do not show the error code: %+v", v.width, p)
		}
	})
}

// codeLayout is how the recovery codes sit on the page.
type codeLayout struct {
	Count    int      `json:"count"`
	Broken   []string `json:"broken"`
	Overlaps []string `json:"overlaps"`
}

func TestScreenshotRecoveryCodesSitOneALineWithoutOverlapping(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n, func(c *client.Client) { c.RequireMFA = true })
	tab := chromiumtest.Tab(t)

	err := chromedp.Do(tab,
		startSignIn(app, "ada@example.com"),
		chromedp.WaitVisible(chromedp.ID("secret")),
	)
	if err != nil {
		t.Fatalf("password, then enrolment: %v", err)
	}
	secret, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("secret")))
	if err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "enrol", nil)
	err = chromedp.Do(tab,
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, strings.TrimSpace(secret), 0)),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")),
	)
	if err != nil {
		t.Fatalf("confirming the factor: %v", err)
	}
	atEveryViewport(t, tab, "recovery-codes", func(v viewport) {
		l, err := chromedp.Run(tab, chromedp.Evaluate[codeLayout](`(() => {
			const items = [...document.querySelectorAll("#recovery-codes li")];
			const codes = items.map(li => li.querySelector("code"));
			const out = {count: codes.length, broken: [], overlaps: []};
			const lineHeight = parseFloat(getComputedStyle(codes[0]).lineHeight) || 24;
			codes.forEach(c => {
				const rects = c.getClientRects();
				if (rects.length !== 1 || rects[0].height > 1.5 * lineHeight) out.broken.push(c.textContent);
			});
			const boxes = codes.map(c => c.getBoundingClientRect());
			for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
				const a = boxes[i], b = boxes[j];
				if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) out.overlaps.push(codes[i].textContent + " and " + codes[j].textContent);
			}
			return out;
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if l.Count != 10 || len(l.Broken) > 0 || len(l.Overlaps) > 0 {
			t.Errorf("at %d px: %d codes; broken over lines: %v; overlapping: %v", v.width, l.Count, l.Broken, l.Overlaps)
		}
	})
}

// sessionForms are the account page's Sign out buttons' forms, one for
// each browser signed in.
const sessionForms = `form[action$="/account/sessions/revoke"]`

func TestScreenshotAccountPageNamesBrowsersAndSystems(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	// Ada signed in on her phone and at work before.
	for _, agent := range []string{
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
	} {
		b := newBrowser(t, n.issuer)
		login := b.visit(n.issuer + "/login")
		if p := b.submit("/login", url.Values{"request": {login.handle(t)}, "email": {"ada@example.com"}, "password": {testPassword}}, "User-Agent", agent); p.status != http.StatusOK {
			t.Fatalf("signing in as %s: %d", agent, p.status)
		}
	}
	// Now she signs in to Notes in this browser, and opens her account.
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)
	err := chromedp.Do(tab,
		signInTo(app, "ada@example.com"),
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.CSS(sessionForms)),
	)
	if err != nil {
		t.Fatalf("signing in, then the account page: %v", err)
	}
	atEveryViewport(t, tab, "account", func(v viewport) {
		names, err := chromedp.Run(tab, chromedp.Evaluate[[]string](`[...document.querySelectorAll('`+sessionForms+`')].map(f => f.closest("li").querySelector("strong").innerText)`))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(names)
		// Chromium here is headless Chromium on Linux.
		if want := []string{"Chrome on Linux", "Firefox on Windows", "Safari on iOS"}; !slices.Equal(names, want) {
			t.Errorf("at %d px the sessions are named %q, want %q", v.width, names, want)
		}
	})
}

// way is a link on from a page.
type way struct {
	Text string `json:"text"`
	Href string `json:"href"`
}

func waysOn(t *testing.T, tab context.Context) []way {
	t.Helper()
	ways, err := chromedp.Run(tab, chromedp.Evaluate[[]way](`[...document.querySelectorAll(".ways a")].map(a => ({text: a.innerText, href: a.href}))`))
	if err != nil {
		t.Fatal(err)
	}
	return ways
}

func TestScreenshotSignedOutAndStillSignedInPagesOfferAWayOn(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)

	err := chromedp.Do(tab,
		signInTo(app, "ada@example.com"),
	)
	if err != nil {
		t.Fatalf("signing in: %v", err)
	}
	// An app that names itself but no address to come back to: the user
	// confirms, and the page is where the sign-out ends.
	logout := n.issuer + "/oauth2/logout?client_id=" + url.QueryEscape(app.rp.client.ID)
	if err := chromedp.Do(tab, chromedp.Navigate(logout), chromedp.WaitVisible(chromedp.CSS(`button[value="stay"]`))); err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "sign-out", nil)
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`button[value="stay"]`)), chromedp.WaitNotPresent(chromedp.CSS(`button[value="stay"]`))); err != nil {
		t.Fatal(err)
	}
	back := way{"Back to Notes", app.url + "/bye"}
	atEveryViewport(t, tab, "still-signed-in", func(v viewport) {
		if got, want := waysOn(t, tab), []way{back, {"Go to your account", n.issuer + "/account"}}; !slices.Equal(got, want) {
			t.Errorf("still signed in, at %d px: ways on %v, want %v", v.width, got, want)
		}
	})
	err = chromedp.Do(tab,
		chromedp.Navigate(logout),
		chromedp.WaitVisible(chromedp.CSS(`button[value="logout"]`)),
		chromedp.Click(chromedp.CSS(`button[value="logout"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button[value="logout"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "signed-out", func(v viewport) {
		if got, want := waysOn(t, tab), []way{back, {"Sign in again", n.issuer + "/login"}}; !slices.Equal(got, want) {
			t.Errorf("signed out, at %d px: ways on %v, want %v", v.width, got, want)
		}
	})
	if t.Failed() {
		return
	}
	// The last way leads somewhere that works.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(".ways li:last-child a")), chromedp.WaitVisible(chromedp.ID("password"))); err != nil {
		t.Fatalf("Sign in again: %v", err)
	}
}

func TestScreenshotIssuerRootLeadsToSignInThenToTheAccount(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	for path, want := range map[string]string{"/": "text/html", "/favicon.ico": "image/x-icon"} {
		resp, err := http.Get(n.issuer + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), want) {
			t.Fatalf("GET %s: %d %s, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), want)
		}
	}
	tab := chromiumtest.Tab(t)
	if err := chromedp.Do(tab, chromedp.Navigate(n.issuer+"/"), chromedp.WaitVisible(chromedp.CSS(".ways"))); err != nil {
		t.Fatal(err)
	}
	atEveryViewport(t, tab, "root", func(v viewport) {
		if got, want := waysOn(t, tab), []way{{"Sign in", n.issuer + "/login"}}; !slices.Equal(got, want) {
			t.Errorf("/ at %d px: ways on %v, want %v", v.width, got, want)
		}
	})
	err := chromedp.Do(tab,
		chromedp.Click(chromedp.CSS(".ways a")),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(sessionForms)),
		chromedp.Navigate(n.issuer+"/"),
		chromedp.WaitVisible(chromedp.CSS(sessionForms)),
	)
	if err != nil {
		t.Fatalf("signing in from /, then / again: %v", err)
	}
	if location, err := chromedp.Run(tab, chromedp.Location()); err != nil || location != n.issuer+"/account" {
		t.Errorf("/ when signed in ended at %q (%v), want the account page", location, err)
	}
}

func TestIssuerRootAndFaviconAnswerUnderAnIssuerPath(t *testing.T) {
	t.Parallel()
	n := startNodeUnder(t, nil, "/tenant-a")
	issuer, host := n.issuer, n.host

	tests := []struct{ url, contentType, contains string }{
		{issuer + "/", "text/html", `href="/tenant-a/login"`},
		{issuer, "text/html", `href="/tenant-a/login"`},
		{issuer + "/static/favicon.svg", "image/svg+xml", "<svg"},
		// Browsers ask the host, not the issuer, for /favicon.ico.
		{host + "/favicon.ico", "image/x-icon", "\x00\x00\x01\x00"},
	}
	for _, tt := range tests {
		resp, err := http.Get(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.contentType) || !strings.Contains(string(body), tt.contains) {
			t.Errorf("GET %s: %d %s, want 200 %s with %q", tt.url, resp.StatusCode, resp.Header.Get("Content-Type"), tt.contentType, tt.contains)
		}
	}
}
