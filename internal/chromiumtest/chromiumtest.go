// Package chromiumtest gives end-to-end tests a real browser: Debian's
// Chromium, driven through the DevTools protocol with chromedp.
//
// A test binary starts at most one Chromium, on first use, because starting
// one takes longer than most tests; Stop closes it. Each test gets a browser
// context of its own (an incognito-like profile), so cookies and storage
// never leak from one test to the next, and tests can run in parallel.
//
// Without Chromium a test is skipped, except under CI=true, where it fails:
// CI must not pass by testing nothing.
//
//	func TestMain(m *testing.M) { pgtest.Main(m, chromiumtest.Stop) }
//
//	func TestSignIn(t *testing.T) {
//		tab := chromiumtest.Tab(t)
//		err := chromedp.Do(tab, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("email")))
//		...
//	}
package chromiumtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TabTimeout bounds everything one test does in its browser context.
const TabTimeout = 90 * time.Second

// ErrNoChromium says how to get the browser the end-to-end tests drive.
var ErrNoChromium = errors.New("chromium is not installed (apt-get install chromium)")

// browser is the Chromium shared by every test in the binary.
var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	err    error
}

// start launches the shared browser.
func start() {
	path, err := exec.LookPath("chromium")
	if err != nil {
		browser.err = ErrNoChromium
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		// Root cannot use Chromium's sandbox; the pages are the tests' own.
		chromedp.NoSandbox,
		// Test machines may have no network beyond loopback: stop Chromium
		// from trying.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	browser.ctx = ctx
	browser.cancel = func() { cancelBrowser(); cancelAlloc() }
	browser.err = chromedp.Do(ctx) // starts the browser
}

// Tab returns a fresh browser context in the shared Chromium, starting
// Chromium on first use. The context ends with the test, or after
// TabTimeout. Without Chromium the test fails under CI=true and is skipped
// elsewhere.
func Tab(t testing.TB) context.Context {
	t.Helper()
	browser.once.Do(start)
	if browser.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("end-to-end tests need a browser: %v", browser.err)
		}
		t.Skipf("skipping the browser test: %v", browser.err)
	}
	tab, cancel := chromedp.NewContext(browser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(tab, TabTimeout)
	t.Cleanup(cancelTimeout)
	return ctx
}

// Stop closes the shared browser, if one was started. Call it from TestMain
// once the tests are done, for example as pgtest.Main(m, chromiumtest.Stop).
func Stop() {
	if browser.cancel != nil {
		browser.cancel()
	}
}

// Screenshot is an action that saves a PNG of the whole page as name.png in
// the test's artifact directory, which go test -artifacts keeps: a picture
// of what the user saw, for reviewing pages and for failures.
func Screenshot(t testing.TB, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, target *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, target)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o600)
	})
}
