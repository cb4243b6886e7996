package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/pkg/apikey"
)

// A user makes a personal API key on the account page in Chromium, copies
// it from the page that shows it once, uses it, and revokes it.
func TestBrowserMakesAPersonalKeyCopiesItAndRevokesIt(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_PERSONAL_API_KEY_SCOPES", personalScopes)
	n.user(t, "ada@example.com")
	rs := n.service(t, introspectAnyToken)
	app := newWebApp(t, n)
	tab := chromiumtest.Tab(t)
	err := chromedp.Do(tab,
		signInTo(app, "ada@example.com"),
		chromedp.Navigate(n.issuer+"/account"),
		chromedp.WaitVisible(chromedp.ID("api-key-name")),
		chromedp.SendKeys(chromedp.ID("api-key-name"), "backup script"),
		chromedp.Click(chromedp.CSS(`#new-api-key input[value="reports.read"]`)),
		chromedp.SetValue(chromedp.ID("api-key-expires"), "30"),
		chromiumtest.Screenshot(t, "api-key-form"),
		chromedp.Click(chromedp.CSS("#new-api-key button")),
		chromedp.WaitVisible(chromedp.ID("api-key")),
		chromiumtest.Screenshot(t, "api-key-shown"),
	)
	if err != nil {
		t.Fatalf("making a key on the account page: %v", err)
	}
	key, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("api-key").value`))
	if err != nil || !apikey.Wellformed(key) {
		t.Fatalf("the page shows %q (%v), want a well-formed key", key, err)
	}
	if got := rs.introspect(t, n.issuer, key); got["active"] != true || got["scope"] != "reports.read" {
		t.Fatalf("the key read from the page: %v, want active with reports.read", got)
	}

	err = chromedp.Do(tab,
		chromedp.Click(chromedp.CSS("a.button.primary")),
		chromedp.WaitVisible(chromedp.ID("api-key-list")),
		chromiumtest.Screenshot(t, "api-key-listed"),
	)
	if err != nil {
		t.Fatalf("back to the account page: %v", err)
	}
	listed, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("api-key-list")))
	if err != nil || !strings.Contains(listed, "backup script") || !strings.Contains(listed, key[:10]) {
		t.Fatalf("the key list says %q (%v), want the key's name and prefix", listed, err)
	}
	html, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil || strings.Contains(html, key) {
		t.Fatalf("the account page shows the key again (%v)", err)
	}

	err = chromedp.Do(tab,
		chromedp.Click(chromedp.CSS("#api-key-list button")),
		// The account page after the revocation lists no key.
		chromedp.WaitNotPresent(chromedp.ID("api-key-list")),
		chromiumtest.Screenshot(t, "api-key-revoked"),
	)
	if err != nil {
		t.Fatalf("revoking the key: %v", err)
	}
	if notice, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("p.notice"))); err != nil || !strings.Contains(notice, "revoked") {
		t.Fatalf("the account page says %q (%v)", notice, err)
	}
	if got := rs.introspect(t, n.issuer, key); got["active"] != false {
		t.Fatalf("the revoked key: %v, want inactive", got)
	}
}
