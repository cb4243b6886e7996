package signin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/discovery"
)

// endSessionURL is an RP-initiated logout request from the app, with
// parameters (name, value, ...).
func (sc *scene) endSessionURL(params ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	return sc.issuer + discovery.EndSessionPath + "?" + q.Encode()
}

// signedIn reports whether b's user is signed in, as an app would find out.
func (sc *scene) signedIn(t *testing.T, b *browser) bool {
	t.Helper()
	return sc.backToApp(t, b.get(sc.authorizeURL("prompt", "none"))).Get("code") != ""
}

func TestSignOutWithTheUsersIDTokenEndsTheSessionAndGoesBackWithTheState(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	b := sc.browser(t)
	idToken := sc.signIn(t, b)
	a := b.get(sc.endSessionURL("id_token_hint", idToken, "post_logout_redirect_uri", sc.app.PostLogoutRedirectURIs[0], "state", "s1"))
	if a.location == nil || a.location.String() != sc.app.PostLogoutRedirectURIs[0]+"?state=s1" {
		t.Fatalf("sign-out: %d to %v, want the registered address with the state", a.status, a.location)
	}
	if sc.signedIn(t, b) {
		t.Fatal("still signed in after signing out")
	}
}

func TestSignOutWithoutAHintAsksTheUserFirst(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	b := sc.browser(t)
	sc.signIn(t, b)
	// A link from anywhere cannot sign the user out by itself.
	ask := b.get(sc.endSessionURL("client_id", sc.app.ID))
	if ask.status != http.StatusOK || !strings.Contains(ask.body, `value="logout"`) || !sc.signedIn(t, b) {
		t.Fatalf("without a hint: %d, want a confirmation page and the user still signed in:\n%s", ask.status, ask.body)
	}
	if stay := b.post(discovery.EndSessionPath, url.Values{"decision": {"stay"}}); !sc.signedIn(t, b) || stay.status != http.StatusOK {
		t.Fatal("Stay signed in signed the user out")
	}
	b.post(discovery.EndSessionPath, url.Values{"decision": {"logout"}})
	if sc.signedIn(t, b) {
		t.Fatal("the confirmed sign-out did not end the session")
	}
}

func TestSignOutNeverRedirectsToAnUnregisteredAddress(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	b := sc.browser(t)
	idToken := sc.signIn(t, b)
	for name, u := range map[string]string{
		"unregistered address":  sc.endSessionURL("id_token_hint", idToken, "post_logout_redirect_uri", "https://evil.example.com/"),
		"address without a app": sc.endSessionURL("post_logout_redirect_uri", sc.app.PostLogoutRedirectURIs[0]),
		"unknown app":           sc.endSessionURL("client_id", "nobody", "post_logout_redirect_uri", sc.app.PostLogoutRedirectURIs[0]),
	} {
		if a := b.get(u); a.location != nil || a.status != http.StatusBadRequest {
			t.Errorf("%s: %d to %v, want a page and no redirect", name, a.status, a.location)
		}
	}
	if !sc.signedIn(t, b) {
		t.Fatal("a refused sign-out request signed the user out")
	}
}

func TestACrossSiteConfirmationDoesNotSignOut(t *testing.T) {
	t.Parallel()
	sc := newScene(t)
	b := sc.browser(t)
	sc.signIn(t, b)
	req, _ := http.NewRequest(http.MethodPost, sc.issuer+discovery.EndSessionPath, strings.NewReader("decision=logout"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if a := b.do(req); a.status != http.StatusForbidden || !sc.signedIn(t, b) {
		t.Fatalf("a cross-site confirmation: %d, want 403 and the user still signed in", a.status)
	}
}
