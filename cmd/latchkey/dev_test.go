package main

import (
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/proctest"
)

// buildLatchkey builds the binary into dir as the Dockerfile does, static
// and with -trimpath. Every test that builds the binary builds it alike
// (buildEnv), so that the go command compiles its packages once.
func buildLatchkey(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "latchkey")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), buildEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// buildEnv is the environment, beyond the toolchain's own settings, in
// which the tests build Latchkey: the Dockerfile's CGO_ENABLED=0 and
// -trimpath. .ci/run runs vet and the analysers with it too, so that one
// compilation of the packages serves all of them.
var buildEnv = []string{"CGO_ENABLED=0", "GOFLAGS=-trimpath"}

// toolchainEnv is the Go toolchain's own settings from the test's
// environment, for a command that otherwise gets a newcomer's bare
// environment: where the module and build caches are is a property of
// the machine, not of the instructions being followed.
func toolchainEnv() []string {
	var env []string
	for _, name := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOTOOLCHAIN"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return append(env, buildEnv...)
}

// devProcess is a running `latchkey dev`.
type devProcess struct {
	*proctest.Process
	issuer string
	// password is the demo user's, as latchkey dev prints it.
	password string
	// stdout is what it prints for the person at the terminal.
	stdout   *proctest.Output
	postgres int // the postmaster's PID
}

// startDev starts `latchkey dev` in dir on free ports and waits until it
// prints its URLs. Only PATH and HOME reach it: no LATCHKEY_* setting.
func startDev(t *testing.T, bin, dir string) *devProcess {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	stdout := &proctest.Output{}
	cmd.Stdout = stdout
	p := &devProcess{Process: proctest.Start(t, "latchkey dev", cmd), stdout: stdout}
	p.Await(t, "its URLs", 90*time.Second, func() bool { return strings.Contains(stdout.String(), "Press Ctrl-C") })
	for line := range strings.Lines(stdout.String()) {
		line = strings.TrimSpace(line)
		if _, pw, ok := strings.Cut(line, ", password "); ok {
			p.password = strings.TrimSuffix(pw, ")")
		}
		if v, ok := strings.CutPrefix(line, "issuer:"); ok {
			p.issuer = strings.TrimSpace(v)
		}
	}
	p.postgres = devPostgresPID(t, dir)
	return p
}

// devPostgresPID is the PID of the postmaster that latchkey dev, run in
// dir, started under .latchkey.
func devPostgresPID(t *testing.T, dir string) int {
	t.Helper()
	pidFile, err := os.ReadFile(filepath.Join(dir, ".latchkey", "postgres", "data", "postmaster.pid"))
	if err != nil {
		t.Fatalf("latchkey dev keeps no Postgres under .latchkey: %v", err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// interrupt stops the process as Ctrl-C would and checks that it exits
// cleanly and takes its Postgres with it.
func (p *devProcess) interrupt(t *testing.T) {
	t.Helper()
	if _, err := p.Stop(t, syscall.SIGINT, time.Minute); err != nil {
		t.Fatalf("latchkey dev exited with %v after Ctrl-C\n%s", err, p.Output())
	}
	if err := syscall.Kill(p.postgres, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("Postgres (pid %d) still runs after latchkey dev stopped (kill -0: %v)", p.postgres, err)
	}
}

func (p *devProcess) jwksKIDs(t *testing.T) []string {
	t.Helper()
	status, body := httpGet(t, p.issuer+"/.well-known/jwks.json")
	if status != http.StatusOK {
		t.Fatalf("JWKS: %d", status)
	}
	var set struct{ Keys []struct{ Kid string } }
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

func TestDevServesDiscoveryAndKeepsKeysAcrossRestarts(t *testing.T) {
	t.Parallel()
	// The throwaway cluster runs as the postgres user when we are root, so
	// the directory must be reachable by it (t.TempDir is 0700).
	dir, err := os.MkdirTemp("", "latchkey-dev-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildLatchkey(t, dir)

	first := startDev(t, bin, dir)
	if !strings.HasPrefix(first.issuer, "http://localhost:") {
		t.Fatalf("dev issuer = %q, want http://localhost:PORT", first.issuer)
	}
	status, body := httpGet(t, first.issuer+"/.well-known/openid-configuration")
	var doc struct{ Issuer string }
	if err := json.Unmarshal(body, &doc); status != http.StatusOK || err != nil || doc.Issuer != first.issuer {
		t.Fatalf("discovery: status %d, issuer %q (want %q), err %v", status, doc.Issuer, first.issuer, err)
	}
	kids := first.jwksKIDs(t)
	if len(kids) == 0 {
		t.Fatal("dev serves an empty JWKS")
	}
	// The newcomer's first sign-in: the demo app, the demo user, the
	// password dev printed.
	b := newBrowser(t, first.issuer)
	login := b.visit(first.issuer + "/dev/demo/start")
	done := b.decide(b.signIn(login, "demo@example.com", first.password), "allow")
	if done.status != http.StatusOK || !strings.Contains(done.body, `id="signed-in"`) || !strings.Contains(done.body, "demo@example.com") {
		t.Fatalf("signing in to the demo app with the printed password: %d\n%s", done.status, done.body)
	}
	first.followsAMailWithoutAMailServer(t)
	first.seesItsEventsAtItsOwnWebhookReceiver(t)
	first.signsInTheDemoDevice(t)
	first.seesTheDemoAppsLogoutToken(t, b)
	if fi, err := os.Stat(filepath.Join(dir, ".latchkey", "secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("development secret: %v, mode %v; want a 0600 file", err, fi.Mode())
	}
	first.interrupt(t)

	second := startDev(t, bin, dir)
	if again := second.jwksKIDs(t); !slices.Equal(again, kids) {
		t.Fatalf("keys changed across a restart: %v -> %v", kids, again)
	}
	if second.password != first.password {
		t.Fatal("the demo password changed across a restart")
	}
	// The receiver subscribed before is given a new secret, which only
	// the new process knows: its deliveries verify again.
	second.seesItsEventsAtItsOwnWebhookReceiver(t)
	second.interrupt(t)
}

// followsAMailWithoutAMailServer asks for a password reset for the demo
// user, as a newcomer trying the feature would, and finds the mail where
// latchkey dev promises it: its link on the console, and the whole mail
// at /dev/mail.
func (p *devProcess) followsAMailWithoutAMailServer(t *testing.T) {
	t.Helper()
	resp, err := http.PostForm(p.issuer+"/login/forgot", url.Values{"email": {"demo@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("forgot password: %d", resp.StatusCode)
	}
	var link string
	p.Await(t, "the reset link on the console", 30*time.Second, func() bool {
		for line := range strings.Lines(p.stdout.String()) {
			if l, ok := strings.CutPrefix(strings.TrimSpace(line), p.issuer+"/login/reset?"); ok {
				link = p.issuer + "/login/reset?" + l
			}
		}
		return link != ""
	})
	if !strings.Contains(p.stdout.String(), "mail to demo@example.com: ") {
		t.Fatalf("the console names no recipient and subject:\n%s", p.stdout)
	}
	status, list := httpGet(t, p.issuer+"/dev/mail")
	id := regexp.MustCompile(`href="/dev/mail/(\d+)"`).FindSubmatch(list)
	if status != http.StatusOK || id == nil {
		t.Fatalf("/dev/mail: %d, lists no mail:\n%s", status, list)
	}
	status, shown := httpGet(t, p.issuer+"/dev/mail/"+string(id[1]))
	if status != http.StatusOK || !strings.Contains(string(shown), html.EscapeString(link)) || !strings.Contains(string(shown), "<iframe") {
		t.Fatalf("/dev/mail/%s: %d, without the link %s or the HTML part:\n%s", id[1], status, link, shown)
	}
	if status, page := httpGet(t, link); status != http.StatusOK || !strings.Contains(string(page), "password") {
		t.Fatalf("the printed link: %d\n%s", status, page)
	}
}

// seesItsEventsAtItsOwnWebhookReceiver signs in to the demo app, as a
// newcomer trying webhooks would, and finds the sign-in's event at
// /dev/webhooks, delivered to dev's own receiver with a signature that
// verifies.
func (p *devProcess) seesItsEventsAtItsOwnWebhookReceiver(t *testing.T) {
	t.Helper()
	b := newBrowser(t, p.issuer)
	if page := b.signIn(b.visit(p.issuer+"/dev/demo/start"), "demo@example.com", p.password); page.status >= 400 {
		t.Fatalf("signing in to the demo app: %d", page.status)
	}
	var page string
	p.Await(t, "the sign-in's event at /dev/webhooks", 30*time.Second, func() bool {
		_, body := httpGet(t, p.issuer+"/dev/webhooks")
		page = string(body)
		return strings.Contains(page, "login.succeeded")
	})
	if !strings.Contains(page, "<td class=\"\">verified</td>") || strings.Contains(page, "does not verify") {
		t.Fatalf("/dev/webhooks shows deliveries whose signatures do not verify:\n%s", page)
	}
}

// signsInTheDemoDevice switches on the demo device at /dev/demo/device, as
// a newcomer trying the device grant would, approves its code at /device as
// the demo user, and finds the device signed in when it checks.
func (p *devProcess) signsInTheDemoDevice(t *testing.T) {
	t.Helper()
	b := newBrowser(t, p.issuer)
	device := b.submit("/dev/demo/device/start", nil)
	code := regexp.MustCompile(`id="user-code"[^>]*><strong>([A-Z-]+)</strong>`).FindStringSubmatch(device.body)
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(device.body)
	if device.status != http.StatusOK || code == nil || id == nil {
		t.Fatalf("the demo device shows no user code: %d\n%s", device.status, device.body)
	}
	if pending := b.submit("/dev/demo/device/check", url.Values{"id": {id[1]}}); !strings.Contains(pending.body, "authorization_pending") {
		t.Fatalf("the device checking before approval: %d\n%s", pending.status, pending.body)
	}
	user := newBrowser(t, p.issuer)
	consent := user.signIn(user.submit("/device", url.Values{"user_code": {code[1]}}), "demo@example.com", p.password)
	if done := user.decide(consent, "allow"); done.status != http.StatusOK {
		t.Fatalf("approving the demo device: %d\n%s", done.status, done.body)
	}
	if signedIn := b.submit("/dev/demo/device/check", url.Values{"id": {id[1]}}); !strings.Contains(signedIn.body, `id="signed-in"`) || !strings.Contains(signedIn.body, "demo@example.com") {
		t.Fatalf("the device checking after approval: %d\n%s", signedIn.status, signedIn.body)
	}
}

// seesTheDemoAppsLogoutToken signs out of the demo app b is signed in to,
// and finds the logout token Latchkey sent the app (back-channel logout)
// at /dev/webhooks, its signature verified against the JWKS.
func (p *devProcess) seesTheDemoAppsLogoutToken(t *testing.T, b *browser) {
	t.Helper()
	home := b.visit(p.issuer + "/dev/demo/start")
	link := regexp.MustCompile(`href="([^"]*/oauth2/logout[^"]*)"`).FindStringSubmatch(home.body)
	if link == nil {
		t.Fatalf("the demo app offers no sign-out: %d\n%s", home.status, home.body)
	}
	if out := b.visit(html.UnescapeString(link[1])); out.status >= 400 {
		t.Fatalf("signing out of the demo app: %d\n%s", out.status, out.body)
	}
	var page string
	p.Await(t, "the demo app's logout token at /dev/webhooks", 30*time.Second, func() bool {
		_, body := httpGet(t, p.issuer+"/dev/webhooks")
		page = string(body)
		return strings.Contains(page, "back-channel logout to the demo app")
	})
	if !strings.Contains(page, "http://schemas.openid.net/event/backchannel-logout") || strings.Contains(page, "does not verify") {
		t.Fatalf("/dev/webhooks shows no verified logout token:\n%s", page)
	}
}
