package ui

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// boilerplate is the start of fosite's description of invalid_request,
// which the page shown to a person used to lead with.
const boilerplate = "The request is missing a required parameter"

func TestAuthorizationProblemsSayWhatHappenedInPlainWords(t *testing.T) {
	tests := []struct {
		name string
		e    AuthorizationError
		// title and happened are words the page must show.
		title, happened string
	}{
		{"unregistered redirect URI",
			AuthorizationError{Code: "invalid_request", ClientKnown: true,
				Description: boilerplate + ", includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls."},
			"Cannot sign in to this app", "an address it has not registered"},
		{"missing redirect URI",
			AuthorizationError{Code: "invalid_request", ClientKnown: true, Description: boilerplate + ". The 'redirect_uri' parameter is required when using OpenID Connect 1.0."},
			"Cannot sign in to this app", "an address it has not registered"},
		{"unknown app",
			AuthorizationError{Code: "invalid_client", Description: "Client authentication failed. The requested OAuth 2.0 Client does not exist."},
			"Cannot sign in to this app", "not registered with Latchkey"},
		{"unreadable request",
			AuthorizationError{Code: "invalid_request", Description: boilerplate + ". Unable to parse HTTP body."},
			"Cannot sign in to this app", "in a way Latchkey does not accept"},
		{"bad scope before the redirect URI was checked",
			AuthorizationError{Code: "invalid_scope", ClientKnown: true, Description: "The requested scope is invalid, unknown, or malformed."},
			"Cannot sign in to this app", "in a way Latchkey does not accept"},
		{"database down",
			AuthorizationError{Code: "temporarily_unavailable", Description: "The authorization server is currently unable to handle the request. The authorization server cannot reach its database; retry shortly."},
			"Try again in a moment", "cannot reach its database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.e.RequestID = "req-123"
			d := AuthorizationProblem(tt.e)
			if d.Title != tt.title || !strings.Contains(d.Happened, tt.happened) || d.Next == "" {
				t.Errorf("title %q, happened %q, next %q; want %q and %q, and what to do", d.Title, d.Happened, d.Next, tt.title, tt.happened)
			}
			for _, words := range []string{d.Title, d.Happened, d.Next} {
				for _, jargon := range []string{tt.e.Code, "redirect_uri", "OAuth", "parameter", "client"} {
					if strings.Contains(words, jargon) {
						t.Errorf("%q says %q: the person reading it is not the app's developer", words, jargon)
					}
				}
			}
			if d.Detail != (ProblemDetail{Error: tt.e.Code, Description: tt.e.Description, RequestID: "req-123"}) {
				t.Errorf("detail %+v: want the error, its description and the request ID as they are", d.Detail)
			}
		})
	}
}

func TestProblemPageFoldsTheTechnicalDetailAway(t *testing.T) {
	p, err := NewPages("/id")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.Problem(rec, http.StatusBadRequest, AuthorizationProblem(AuthorizationError{Code: "invalid_request", Description: boilerplate + ".", RequestID: "req-123"}))
	body := rec.Body.String()
	open := strings.Index(body, `<details class="technical">`)
	if rec.Code != http.StatusBadRequest || open < 0 {
		t.Fatalf("%d, want 400 with the technical details folded:\n%s", rec.Code, body)
	}
	if before := body[:open]; strings.Contains(before, boilerplate) || strings.Contains(before, "req-123") {
		t.Errorf("the protocol's words or the request ID come before the fold:\n%s", before)
	}
	for _, want := range []string{"<code>invalid_request</code>", boilerplate, "<code>req-123</code>"} {
		if !strings.Contains(body[open:], want) {
			t.Errorf("the folded details lack %s", want)
		}
	}

	// A message with no detail has nothing to fold.
	rec = httptest.NewRecorder()
	p.Message(rec, http.StatusBadRequest, "Start again", MessagePage{Message: "This sign-in request has expired."})
	if strings.Contains(rec.Body.String(), "<details") || !strings.Contains(rec.Body.String(), "This sign-in request has expired.") {
		t.Errorf("a message without a request ID:\n%s", rec.Body.String())
	}
}

func TestSignedOutPagesOfferAWayOn(t *testing.T) {
	p, err := NewPages("/id")
	if err != nil {
		t.Fatal(err)
	}
	page := func(d SignedOutPage) SignedOutPage {
		d.page = p.base("")
		d.SignInURL, d.AccountURL = "/id/login", "/id/account"
		return d
	}
	tests := []struct {
		name string
		d    SignedOutPage
		want []Link
	}{
		{"signed out, app unknown", SignedOutPage{}, []Link{{"Sign in again", "/id/login"}}},
		{"signed out of an app", SignedOutPage{App: "Notes", AppURL: "https://notes.example.com/bye?state=x"},
			[]Link{{"Back to Notes", "https://notes.example.com/bye?state=x"}, {"Sign in again", "/id/login"}}},
		{"stayed", SignedOutPage{Stayed: true, App: "Notes", AppURL: "http://127.0.0.1:8000/"},
			[]Link{{"Back to Notes", "http://127.0.0.1:8000/"}, {"Go to your account", "/id/account"}}},
		// A native app's custom scheme is not a link a page can offer.
		{"native app", SignedOutPage{App: "Notes", AppURL: "com.example.notes:/bye"}, []Link{{"Sign in again", "/id/login"}}},
		{"script", SignedOutPage{App: "Notes", AppURL: "javascript:alert(1)"}, []Link{{"Sign in again", "/id/login"}}},
		{"nameless app", SignedOutPage{AppURL: "https://notes.example.com/"},
			[]Link{{"Back to the app", "https://notes.example.com/"}, {"Sign in again", "/id/login"}}},
	}
	for _, tt := range tests {
		got := page(tt.d).Ways()
		if len(got) != len(tt.want) {
			t.Errorf("%s: ways %v, want %v", tt.name, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: ways %v, want %v", tt.name, got, tt.want)
			}
		}
	}
}

func TestCursorStartsWhereTheUserTypesNext(t *testing.T) {
	p, err := NewPages("")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		render func(w http.ResponseWriter)
		// autofocus is the id of the field that must have it, alone.
		autofocus string
	}{
		{"login", func(w http.ResponseWriter) { p.Login(w, http.StatusOK, "", LoginPage{}) }, "email"},
		{"login after a wrong password", func(w http.ResponseWriter) {
			p.Login(w, http.StatusOK, "", LoginPage{Email: "ada@example.com", Error: "wrong"})
		}, "password"},
		{"login with a hint", func(w http.ResponseWriter) { p.Login(w, http.StatusOK, "", LoginPage{Email: "ada@example.com"}) }, "password"},
		{"code", func(w http.ResponseWriter) { p.SecondFactor(w, http.StatusOK, "", SecondFactorPage{}) }, "code"},
		{"code after a wrong code", func(w http.ResponseWriter) { p.SecondFactor(w, http.StatusOK, "", SecondFactorPage{Error: "wrong"}) }, "code"},
		{"code after a wrong recovery code", func(w http.ResponseWriter) {
			p.SecondFactor(w, http.StatusOK, "", SecondFactorPage{Error: "wrong", Recovery: true})
		}, "recovery"},
		{"reauth", func(w http.ResponseWriter) { p.Reauth(w, http.StatusOK, ReauthPage{Factor: true}) }, "reauth-password"},
		{"reauth after a wrong code", func(w http.ResponseWriter) {
			p.Reauth(w, http.StatusUnauthorized, ReauthPage{Factor: true, UsedCode: true, Error: "wrong"})
		}, "reauth-code"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		tt.render(rec)
		body := rec.Body.String()
		if n := strings.Count(body, " autofocus"); n != 1 {
			t.Errorf("%s: %d fields have autofocus, want 1", tt.name, n)
		}
		field := body[strings.Index(body, `id="`+tt.autofocus+`"`):]
		if tag := field[:strings.Index(field, ">")]; !strings.Contains(tag, " autofocus") {
			t.Errorf("%s: %s does not have autofocus: %s", tt.name, tt.autofocus, tag)
		}
		// A field inside a closed <details> cannot take the focus.
		if tt.autofocus == "recovery" || tt.autofocus == "reauth-code" {
			if !strings.Contains(body, "<details open>") {
				t.Errorf("%s: the details holding %s are closed", tt.name, tt.autofocus)
			}
		}
	}
}

func TestFaviconIsAnIcon(t *testing.T) {
	rec := httptest.NewRecorder()
	Favicon(rec, httptest.NewRequest(http.MethodGet, "/favicon.ico", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "image/x-icon" || !strings.HasPrefix(rec.Body.String(), "\x00\x00\x01\x00") {
		t.Fatalf("%d %s, want 200 and an ICO file", rec.Code, rec.Header().Get("Content-Type"))
	}
}
