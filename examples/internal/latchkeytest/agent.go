package latchkeytest

import (
	"crypto/rand"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"
)

// Agent is a user at a browser without a screen: it follows Latchkey's
// pages over plain HTTP with a cookie jar of its own and fills in their
// forms as the user would. Tests that need a user's tokens, but not what
// the user sees, use it instead of Chromium.
type Agent struct {
	srv  *Server
	user *User
	http *http.Client
}

// Agent returns a fresh user agent for u on this server: no cookies, so
// not signed in.
func (s *Server) Agent(t testing.TB, u *User) *Agent {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{srv: s, user: u}
	a.http = &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			// Within Latchkey, follow; a redirect anywhere else is the
			// answer going back to the app.
			if !strings.HasPrefix(req.URL.String(), s.Issuer+"/") {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	t.Cleanup(a.http.CloseIdleConnections)
	return a
}

// Markers that tell Latchkey's pages apart, and the fields they carry.
var (
	requestField = regexp.MustCompile(`name="request" value="([^"]*)"`)
	formAction   = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	secretField  = regexp.MustCompile(`<code id="secret">([^<]*)</code>`)
	continueLink = regexp.MustCompile(`<a class="button primary" href="([^"]*)"`)
)

// Authorize visits authURL, an authorization request, and works through
// whatever pages Latchkey shows: the login form (the user's email and
// password), the code page (a code from the user's authenticator app), the
// enrolment page (turning a second factor on, and keeping its secret in
// the user's TOTPSecret), the recovery codes, and the consent page, which
// it allows. It returns the URL Latchkey sent the browser back to.
func (a *Agent) Authorize(t testing.TB, authURL string) *url.URL {
	t.Helper()
	resp := a.get(t, authURL)
	for range 10 {
		if resp.location != nil {
			return resp.location
		}
		body := resp.body
		switch {
		case strings.Contains(body, `autocomplete="current-password"`):
			resp = a.post(t, resp, url.Values{"email": {a.user.Email}, "password": {a.user.Password}})
		case strings.Contains(body, `id="secret"`):
			m := secretField.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("latchkeytest: the enrolment page shows no secret:\n%s", body)
			}
			a.user.TOTPSecret = strings.TrimSpace(html.UnescapeString(m[1]))
			resp = a.post(t, resp, url.Values{"code": {TOTP(t, a.user.TOTPSecret)}})
		case strings.Contains(body, `name="recovery"`):
			resp = a.post(t, resp, url.Values{"code": {TOTP(t, a.user.TOTPSecret)}})
		case strings.Contains(body, `id="recovery-codes"`):
			m := continueLink.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("latchkeytest: the recovery codes page has no way on:\n%s", body)
			}
			resp = a.get(t, resolve(t, resp.url, html.UnescapeString(m[1])))
		case strings.Contains(body, `value="allow"`):
			resp = a.post(t, resp, url.Values{"decision": {"allow"}})
		default:
			t.Fatalf("latchkeytest: %s answered %d with a page the agent does not know:\n%s", resp.url, resp.status, body)
		}
	}
	t.Fatalf("latchkeytest: the sign-in did not end after ten pages; the last was %s", resp.url)
	return nil
}

// SignIn runs a whole sign-in for the app whose configuration conf is, as
// the app would: state and PKCE, the pages (Authorize), the checks of
// state and iss (RFC 9207) on the way back, and the code exchange. opts
// add parameters to the authorization request, such as acr_values.
func (a *Agent) SignIn(t testing.TB, conf *oauth2.Config, opts ...oauth2.AuthCodeOption) *oauth2.Token {
	t.Helper()
	state, verifier := rand.Text(), oauth2.GenerateVerifier()
	back := a.Authorize(t, conf.AuthCodeURL(state, append(opts, oauth2.S256ChallengeOption(verifier))...))
	q := back.Query()
	if q.Get("state") != state || q.Get("iss") != a.srv.Issuer || q.Get("code") == "" {
		t.Fatalf("latchkeytest: the sign-in came back as %s, want a code with our state and iss %s", back, a.srv.Issuer)
	}
	tok, err := conf.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("latchkeytest: code exchange: %v", err)
	}
	return tok
}

// page is one answer Latchkey gave the agent.
type page struct {
	url      *url.URL
	status   int
	body     string
	location *url.URL // where a redirect out of Latchkey points
}

func (a *Agent) get(t testing.TB, u string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.do(t, req)
}

// post submits the form on p with the page's request handle and fields,
// with the headers a browser sends with a same-origin form.
func (a *Agent) post(t testing.TB, p page, fields url.Values) page {
	t.Helper()
	m := requestField.FindStringSubmatch(p.body)
	action := formAction.FindStringSubmatch(p.body)
	if m == nil || action == nil {
		t.Fatalf("latchkeytest: %s has no form to fill in:\n%s", p.url, p.body)
	}
	fields.Set("request", html.UnescapeString(m[1]))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		resolve(t, p.url, html.UnescapeString(action[1])), strings.NewReader(fields.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", a.srv.Issuer)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return a.do(t, req)
}

func (a *Agent) do(t testing.TB, req *http.Request) page {
	t.Helper()
	resp, err := a.http.Do(req)
	if err != nil {
		t.Fatalf("latchkeytest: %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := page{url: resp.Request.URL, status: resp.StatusCode, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
		p.location = resolveURL(t, resp.Request.URL, loc)
	}
	return p
}

func resolveURL(t testing.TB, base *url.URL, ref string) *url.URL {
	t.Helper()
	u, err := base.Parse(ref)
	if err != nil {
		t.Fatalf("latchkeytest: bad link %q on %s: %v", ref, base, err)
	}
	return u
}

func resolve(t testing.TB, base *url.URL, ref string) string {
	t.Helper()
	return resolveURL(t, base, ref).String()
}

// usedSteps records, per secret, the last TOTP time step a code was made
// for: Latchkey accepts each code once (docs/mfa.md), so a second code in
// the same 30 seconds must come from the next step, as a user who waited
// for the app to show a new code would enter.
var usedSteps = struct {
	sync.Mutex
	last map[string]int64
}{last: map[string]int64{}}

// TOTP returns the code an authenticator app holding secret shows: the
// current one, or the next one if the current one was used already.
func TOTP(t testing.TB, secret string) string {
	t.Helper()
	usedSteps.Lock()
	step := time.Now().Unix() / 30
	if last, ok := usedSteps.last[secret]; ok && step <= last {
		step = last + 1
	}
	usedSteps.last[secret] = step
	usedSteps.Unlock()
	code, err := totp.GenerateCode(secret, time.Unix(step*30, 0))
	if err != nil {
		t.Fatalf("latchkeytest: TOTP code: %v", err)
	}
	return code
}
