package main

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/internal/proctest"
	"github.com/latchkey/latchkey/pkg/client"
)

// oauth2ProxyVersion is the oauth2-proxy the interop test runs; .ci/run
// installs it with go install.
const oauth2ProxyVersion = "v7.15.6"

// oauth2Proxy returns the path of an oauth2-proxy binary: $LATCHKEY_OAUTH2_PROXY,
// else oauth2-proxy on PATH or in $GOPATH/bin, where `go install
// github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6` puts it. Without one,
// it runs that go install (once, a minute or two), so that the README's
// test command is all a fresh machine needs; .ci/run installs it up front.
// If it cannot, the test is skipped, except under CI=true, where it fails.
func oauth2Proxy(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LATCHKEY_OAUTH2_PROXY"); p != "" {
		return p
	}
	if p, err := exec.LookPath("oauth2-proxy"); err == nil {
		return p
	}
	const module = "github.com/oauth2-proxy/oauth2-proxy/v7@" + oauth2ProxyVersion
	out, err := exec.Command("go", "env", "GOPATH").Output()
	gopath := strings.TrimSpace(string(out))
	if err == nil && gopath != "" {
		p := filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin", "oauth2-proxy")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		// #nosec G204 -- a fixed module path and version.
		install := exec.CommandContext(t.Context(), "go", "install", module)
		install.Env = append(os.Environ(), "GOBIN="+filepath.Dir(p))
		out, err := install.CombinedOutput()
		if err == nil {
			return p
		}
		t.Logf("go install %s: %v\n%s", module, err, out)
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("oauth2-proxy is not installed (go install " + module + ")")
	}
	t.Skip("oauth2-proxy is not installed (go install " + module + ")")
	return ""
}

// oauth2-proxy's --backend-logout-url makes its /oauth2/sign_out call
// Latchkey's end-session endpoint from the server, with the user's ID
// token and no browser cookie. That must end the Latchkey sign-in, so
// that the next visit to the proxied site asks for the password again
// rather than signing the user straight back in.
func TestOAuth2ProxyBackendLogoutEndsTheLatchkeySignIn(t *testing.T) {
	t.Parallel()
	bin := oauth2Proxy(t)
	n := startNode(t)
	ada := n.user(t, "ada@example.com")
	addr := proctest.FreeAddr(t)
	proxy := "http://" + addr
	app := n.app(t, func(c *client.Client) {
		c.Name = "Wiki (oauth2-proxy)"
		c.RedirectURIs = []string{proxy + "/oauth2/callback"}
		c.PostLogoutRedirectURIs = nil
		c.Scope = "openid email profile"
		c.GrantTypes = []string{client.GrantAuthorizationCode}
	})
	cmd := exec.Command(bin,
		"--provider=oidc",
		"--oidc-issuer-url="+n.issuer,
		"--client-id="+app.client.ID,
		"--client-secret="+app.oauth.ClientSecret,
		"--redirect-url="+proxy+"/oauth2/callback",
		"--http-address="+addr,
		"--upstream=static://200",
		"--cookie-secret="+(rand.Text() + rand.Text())[:32],
		"--cookie-secure=false",
		"--email-domain=*",
		"--scope=openid email profile",
		"--code-challenge-method=S256",
		"--skip-provider-button",
		"--backend-logout-url="+n.issuer+"/oauth2/logout?id_token_hint={id_token}",
	)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	p := proctest.Start(t, "oauth2-proxy", cmd)
	p.AwaitHTTP(t, proxy+"/ping", time.Minute)

	tab := chromiumtest.Tab(t)
	err := chromedp.Do(tab,
		chromedp.Navigate(proxy+"/"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS("button.primary")),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
		chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
	if err != nil {
		t.Fatalf("signing in through oauth2-proxy: %v\n%s", err, p.Output().Tail(20))
	}
	waitFor(t, "the proxied site after sign-in", func() bool {
		at, err := chromedp.Run(tab, chromedp.Location())
		return err == nil && strings.HasPrefix(at, proxy+"/") && !strings.Contains(at, "/oauth2/")
	})
	sessions, err := n.users.Sessions(t.Context(), ada.ID)
	if err != nil || len(sessions) != 1 {
		t.Fatalf("after signing in, Latchkey has %d sign-ins (%v), want 1", len(sessions), err)
	}

	// Signing out at the proxy: oauth2-proxy calls the backend logout URL
	// itself, then sends the browser to / — which must now ask for the
	// password: the Latchkey sign-in is over, though the browser never
	// visited Latchkey to end it.
	err = chromedp.Do(tab,
		chromedp.Navigate(proxy+"/oauth2/sign_out"),
		chromedp.WaitVisible(chromedp.ID("password")),
	)
	if err != nil {
		t.Fatalf("after oauth2-proxy's sign-out the site does not ask for the password: %v\n%s", err, p.Output().Tail(20))
	}
	if sessions, err := n.users.Sessions(t.Context(), ada.ID); err != nil || len(sessions) != 0 {
		t.Fatalf("after oauth2-proxy's backend logout Latchkey still has %d sign-ins (%v)", len(sessions), err)
	}
	if out := p.Output().String(); strings.Contains(out, "error while calling backend logout") {
		t.Fatalf("oauth2-proxy reports its backend logout failed:\n%s", p.Output().Tail(20))
	}
}
