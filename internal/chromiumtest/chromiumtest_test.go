package chromiumtest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	chromiumtest.Stop()
	os.Exit(code)
}

// Two tests in one binary share a Chromium but never a cookie: a browser
// context is a profile of its own.
func TestEachTabHasItsOwnCookies(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/set" {
			http.SetCookie(w, &http.Cookie{Name: "seen", Value: "yes", Path: "/"})
		}
		c, err := r.Cookie("seen")
		got := "none"
		if err == nil {
			got = c.Value
		}
		fmt.Fprintf(w, `<!doctype html><p id="cookie">%s</p>`, got)
	}))
	defer site.Close()

	cookieIn := func(t *testing.T, path string) string {
		tab := chromiumtest.Tab(t)
		if err := chromedp.Do(tab, chromedp.Navigate(site.URL+path), chromedp.Navigate(site.URL+"/")); err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("cookie")))
		if err != nil {
			t.Fatal(err)
		}
		return text
	}
	if got := cookieIn(t, "/set"); got != "yes" {
		t.Fatalf("the tab that was given a cookie sends %q, want yes", got)
	}
	if got := cookieIn(t, "/"); got != "none" {
		t.Fatalf("a second tab sends the first tab's cookie (%q)", got)
	}
}
