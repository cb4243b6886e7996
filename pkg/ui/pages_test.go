package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEveryPageRendersAndEscapesWhatAppsControl(t *testing.T) {
	p, err := NewPages("/id")
	if err != nil {
		t.Fatal(err)
	}
	evil := `<script>alert(1)</script>`
	pages := map[string]func(w http.ResponseWriter){
		"login": func(w http.ResponseWriter) {
			p.Login(w, http.StatusOK, "", LoginPage{ClientName: evil, Email: evil, Action: "/id/login"})
		},
		"consent": func(w http.ResponseWriter) {
			p.Consent(w, "", ConsentPage{ClientName: evil, Scopes: DescribeScopes([]string{"email", evil}), Action: "/id/consent"})
		},
		"logout":  func(w http.ResponseWriter) { p.Logout(w, "", LogoutPage{Fields: map[string]string{"state": evil}}) },
		"message": func(w http.ResponseWriter) { p.Message(w, http.StatusBadRequest, "Oops", MessagePage{Message: evil}) },
		"second factor": func(w http.ResponseWriter) {
			p.SecondFactor(w, http.StatusOK, "", SecondFactorPage{ClientName: evil, Error: evil, Action: "/id/login/otp"})
		},
		"enrol": func(w http.ResponseWriter) {
			p.Enrol(w, "", EnrolPage{Required: true, ClientName: evil, Secret: evil, Action: "/id/login/enrol"})
		},
		"recovery": func(w http.ResponseWriter) {
			p.Recovery(w, RecoveryPage{Codes: []string{evil}, Continue: "/id/account"})
		},
		"account": func(w http.ResponseWriter) {
			p.Account(w, http.StatusOK, AccountPage{Base: "/id", Name: evil, Email: evil, Notice: evil, MFA: true,
				Apps:     []AccountApp{{ID: "app", Name: evil, Scopes: evil}},
				Sessions: []AccountSession{{SID: "s", UserAgent: evil, IP: evil}},
				AccountAPIKeys: AccountAPIKeys{APIKeysShown: true, APIKeyScopes: []string{evil},
					APIKeys: []AccountAPIKey{{ID: "k", Prefix: evil, Name: evil, Scopes: evil, LastUsed: "now", LastUsedFrom: evil}}}})
		},
		"api key": func(w http.ResponseWriter) {
			p.APIKey(w, APIKeyPage{Key: evil, Name: evil, Scopes: evil, Continue: "/id/account"})
		},
		"problem": func(w http.ResponseWriter) {
			p.Problem(w, http.StatusBadRequest, ProblemPage{Title: "Oops", Happened: evil, Next: evil,
				Links: []Link{{Text: evil, Href: "https://app.example.com/"}}, Detail: ProblemDetail{Error: evil, Description: evil, RequestID: evil}})
		},
		"signed out": func(w http.ResponseWriter) {
			p.SignedOut(w, SignedOutPage{App: evil, AppURL: "https://app.example.com/?q=" + evil})
		},
		"home": func(w http.ResponseWriter) { p.Home(w, HomePage{SignIn: "/id/login"}) },
	}
	for name, render := range pages {
		rec := httptest.NewRecorder()
		render(rec)
		body := rec.Body.String()
		if strings.Contains(body, "<script>") {
			t.Errorf("%s: an app-controlled value reached the page unescaped", name)
		}
		if !strings.Contains(body, `href="/id/static/style.css"`) || !strings.Contains(body, `<html lang="en">`) {
			t.Errorf("%s: the layout is missing its stylesheet or language", name)
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: the page may be cached", name)
		}
	}
}

func TestFormActionAllowsOnlyTheAppsOrigin(t *testing.T) {
	tests := []struct{ target, want string }{
		{"", "form-action 'self';"},
		{"https://app.example.com/callback?x=1", "form-action 'self' https://app.example.com;"},
		{"http://127.0.0.1:8000/cb", "form-action 'self' http://127.0.0.1:8000;"},
		{"javascript:alert(1)", "form-action 'self';"},
		{"not a url at all", "form-action 'self';"},
	}
	for _, tt := range tests {
		csp := contentSecurityPolicy(tt.target, false)
		if !strings.Contains(csp, tt.want) || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("target %q: CSP %q, want %q, no framing and no scripts", tt.target, csp, tt.want)
		}
	}
}

func TestScopesAreDescribedInPlainWords(t *testing.T) {
	got := DescribeScopes([]string{"openid", "email", "offline_access", "invoices.read"})
	want := []string{"Know who you are when you sign in", "See your email address",
		"Stay connected to your account when you are not using it", "Use invoices.read"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("scope %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// Only the passkey pages run a script, and only Latchkey's own file: the
// rest run none, and the account page, which lists passkeys, is one of
// them.
func TestOnlyThePasskeyPagesRunAScriptAndOnlyTheirOwn(t *testing.T) {
	p, err := NewPages("/id")
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]func(w http.ResponseWriter){
		"passkey": func(w http.ResponseWriter) { p.Passkey(w, http.StatusOK, "", PasskeyPage{Options: `{"publicKey":{}}`}) },
		"passkeyadd": func(w http.ResponseWriter) {
			p.PasskeyAdd(w, http.StatusOK, "", PasskeyAddPage{Options: `{"publicKey":{}}`})
		},
		"account": func(w http.ResponseWriter) {
			p.Account(w, http.StatusOK, AccountPage{AccountPasskeys: AccountPasskeys{Available: true,
				Passkeys: []AccountPasskey{{ID: "abc", Name: "<script>alert(1)</script>"}}}})
		},
	}
	for name, render := range pages {
		rec := httptest.NewRecorder()
		render(rec)
		csp, body := rec.Header().Get("Content-Security-Policy"), rec.Body.String()
		scripted := strings.HasPrefix(name, "passkey")
		if got := strings.Contains(csp, "script-src 'self'"); got != scripted {
			t.Errorf("%s: CSP %q; script-src 'self' is %v, want %v", name, csp, got, scripted)
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(body, "<script>alert") {
			t.Errorf("%s: inline script allowed or a name not escaped", name)
		}
		if scripted && !strings.Contains(body, `<script src="/id/static/passkey.js"></script>`) {
			t.Errorf("%s: the page does not load passkey.js from the issuer", name)
		}
		if scripted && !strings.Contains(body, `data-options="{&#34;publicKey&#34;:{}}"`) {
			t.Errorf("%s: the options are not in the form's data-options, escaped", name)
		}
	}
}

// The sign-in page runs the passkey script only when it offers a passkey
// (an issuer that can have none offers the password alone, and no
// script), and then the email field takes passkey autofill.
func TestTheLoginPageRunsTheScriptOnlyWhenItOffersAPasskey(t *testing.T) {
	p, err := NewPages("/id")
	if err != nil {
		t.Fatal(err)
	}
	for _, offered := range []bool{false, true} {
		d := LoginPage{Action: "/id/login", Request: "h"}
		if offered {
			d.Passkey = &LoginPasskey{Options: `{"publicKey":{}}`, Ceremony: "sealed", Action: "/id/login/passkey/passwordless"}
		}
		rec := httptest.NewRecorder()
		p.Login(rec, http.StatusOK, "", d)
		csp, body := rec.Header().Get("Content-Security-Policy"), rec.Body.String()
		if got := strings.Contains(csp, "script-src 'self'"); got != offered {
			t.Errorf("passkey offered %v: CSP %q", offered, csp)
		}
		for _, part := range []string{`<script src="/id/static/passkey.js"></script>`, `autocomplete="username webauthn"`,
			`data-passkey="signin"`, `name="ceremony" value="sealed"`, `id="passkey-signin"`} {
			if strings.Contains(body, part) != offered {
				t.Errorf("passkey offered %v: the page has %s: %v", offered, part, !offered)
			}
		}
	}
}
