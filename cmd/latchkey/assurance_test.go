package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/webauthntest"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// assuranceApp is an app whose access tokens are RFC 9068 JWTs and which
// users need not allow, so that each sign-in goes straight back to it.
func assuranceApp(t *testing.T, n *node, edit ...func(*client.Client)) *relyingParty {
	t.Helper()
	return n.app(t, append([]func(*client.Client){func(c *client.Client) {
		c.AccessTokenFormat, c.SkipConsent = client.FormatJWT, true
	}}, edit...)...)
}

// assuranceOf is how the user signed in, as the app reads it from the ID
// token (go-oidc) and as a resource server reads it from the access
// token, both by introspection (RFC 7662, RFC 9470 §6.2) and from the
// JWT itself, verified with the issuer's keys (RFC 9068). All three must
// say the same.
func assuranceOf(t *testing.T, n *node, rp *relyingParty, tok *oauth2.Token, id *oidc.IDToken) authentication {
	t.Helper()
	fromID := authOf(t, id)

	var fromIntrospection authentication
	raw, _ := json.Marshal(n.introspection(t, tok.AccessToken))
	if err := json.Unmarshal(raw, &fromIntrospection); err != nil {
		t.Fatal(err)
	}

	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := rp.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	payload, err := oidc.NewRemoteKeySet(t.Context(), meta.JWKSURI).VerifySignature(t.Context(), tok.AccessToken)
	if err != nil {
		t.Fatalf("the JWT access token does not verify with the issuer's keys: %v", err)
	}
	var fromJWT authentication
	if err := json.Unmarshal(payload, &fromJWT); err != nil {
		t.Fatal(err)
	}

	for name, got := range map[string]authentication{"introspection": fromIntrospection, "the JWT access token": fromJWT} {
		if got.ACR != fromID.ACR || !slices.Equal(got.AMR, fromID.AMR) || got.AuthTime != fromID.AuthTime {
			t.Errorf("%s says %+v; the ID token says %+v", name, got, fromID)
		}
	}
	if fromID.AuthTime == 0 {
		t.Error("the ID token has no auth_time")
	}
	return fromID
}

// wantAssurance checks a sign-in's acr and that its amr is exactly amr,
// in any order.
func wantAssurance(t *testing.T, got authentication, acr string, amr ...string) {
	t.Helper()
	have := slices.Sorted(slices.Values(got.AMR))
	want := slices.Sorted(slices.Values(amr))
	if got.ACR != acr || !slices.Equal(have, want) {
		t.Errorf("acr %q amr %v; want acr %q amr %v", got.ACR, got.AMR, acr, want)
	}
}

// passkeyPage says p is the page that asks for a passkey.
func (p page) isPasskey() bool { return strings.Contains(p.body, `data-passkey="get"`) }

// usePasskey answers the passkey page p with auth's passkey.
func (b *browser) usePasskey(p page, auth *webauthntest.Authenticator) page {
	b.t.Helper()
	if !p.isPasskey() {
		b.t.Fatalf("%s (%d) is not the passkey page:\n%s", p.url, p.status, p.body)
	}
	answer, err := auth.Assert(passkeyOptions(b.t, p))
	if err != nil {
		b.t.Fatal(err)
	}
	return answerPasskey(b, p, answer)
}

// Each way of signing in gives the app and every resource server the same
// truthful account of it: acr, amr (RFC 8176) and auth_time, in the ID
// token, in introspection and in JWT access tokens.
func TestEachWayOfSigningInIsToldTheSameToAppsAndResourceServers(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	n := sc.n
	app := assuranceApp(t, n)
	n.user(t, "pat@example.com")
	// A code is good once (each time step at most once per user), so
	// each sign-in with a code is by a user of its own.
	secret := n.enrol(t, n.user(t, "otto@example.com"))
	tiaSecret := n.enrol(t, n.user(t, "tia@example.com"))

	t.Run("a password alone", func(t *testing.T) {
		b := newBrowser(t, n.issuer)
		ar := app.start()
		tok, id := app.finish(t, ar, b.signIn(b.visit(ar.url), "pat@example.com", testPassword).callback(t))
		wantAssurance(t, assuranceOf(t, n, app, tok, id), identity.ACRPassword, "pwd")
	})
	t.Run("a password and a code", func(t *testing.T) {
		b := newBrowser(t, n.issuer)
		ar := app.start()
		p := b.secondFactor(b.signIn(b.visit(ar.url), "otto@example.com", testPassword), totpCode(t, secret, 1))
		tok, id := app.finish(t, ar, p.callback(t))
		wantAssurance(t, assuranceOf(t, n, app, tok, id), identity.ACRMFA, "pwd", "otp", "mfa")
	})
	t.Run("a password and a passkey", func(t *testing.T) {
		b := newBrowser(t, n.issuer)
		ar := app.start()
		p := b.usePasskey(b.signIn(b.visit(ar.url), "ada@example.com", testPassword), sc.auth)
		tok, id := app.finish(t, ar, p.callback(t))
		wantAssurance(t, assuranceOf(t, n, app, tok, id), identity.ACRPhishingResistant, "pwd", "hwk", "user", "mfa")
	})
	t.Run("a passkey alone", func(t *testing.T) {
		b := newBrowser(t, n.issuer)
		ar := app.start()
		tok, id := app.finish(t, ar, answerWith(t, b, sc.auth, passwordlessFormOf(t, b.visit(ar.url))).callback(t))
		wantAssurance(t, assuranceOf(t, n, app, tok, id), identity.ACRPhishingResistant, "hwk", "user", "mfa")
	})
	t.Run("a password, then a step-up to the phishing-resistant level", func(t *testing.T) {
		// sc.added signed in with the password alone, before it had a
		// passkey; an app now asks for the phishing-resistant level, as
		// after an RS's insufficient_user_authentication (RFC 9470 §4).
		before := sc.added
		ar := app.start()
		_, first := app.finish(t, ar, before.visit(ar.url).callback(t))
		waitForNextSecond()
		ar = app.start("acr_values", identity.ACRPhishingResistant)
		p := before.visit(ar.url)
		if strings.Contains(p.body, `id="use-code"`) {
			t.Error("the step-up to the phishing-resistant level offers a code instead")
		}
		tok, id := app.finish(t, ar, before.usePasskey(p, sc.auth).callback(t))
		got := assuranceOf(t, n, app, tok, id)
		wantAssurance(t, got, identity.ACRPhishingResistant, "pwd", "hwk", "user", "mfa")
		if got.AuthTime <= authOf(t, first).AuthTime {
			t.Errorf("auth_time %d after the step-up; want later than the password's %d", got.AuthTime, authOf(t, first).AuthTime)
		}
	})
	t.Run("a trusted browser", func(t *testing.T) {
		b := newBrowser(t, n.issuer)
		b.signInTrusting(app, "tia@example.com", tiaSecret)
		b.leave()
		ar := app.start()
		tok, id := app.finish(t, ar, b.signIn(b.visit(ar.url), "tia@example.com", testPassword).callback(t))
		wantAssurance(t, assuranceOf(t, n, app, tok, id), identity.ACRPassword, "pwd")
	})
}

// An app that asks for the phishing-resistant level gets a passkey
// ceremony, never a code prompt: the passkey page offers no code
// instead, and a code given anyway does not reach the level.
func TestThePhishingResistantLevelIsReachedOnlyWithAPasskey(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	n := sc.n
	app := assuranceApp(t, n)
	ada, _ := n.users.GetByEmail(t.Context(), "ada@example.com")
	adaSecret := n.enrol(t, ada)
	otto := n.user(t, "otto@example.com")
	ottoSecret := n.enrol(t, otto)

	t.Run("a user with a passkey and an authenticator app", func(t *testing.T) {
		b := newBrowser(t, n.issuer)
		ar := app.start("acr_values", identity.ACRPhishingResistant)
		p := b.signIn(b.visit(ar.url), "ada@example.com", testPassword)
		if !p.isPasskey() || strings.Contains(p.body, `id="use-code"`) {
			t.Fatalf("after the password: want the passkey page without a code link, got %d:\n%s", p.status, p.body)
		}
		// She finds the code page by its address: the code signs her in,
		// and the passkey is still asked for.
		code := b.visit(n.issuer + "/login/otp?request=" + url.QueryEscape(p.handle(t)))
		again := b.secondFactor(code, totpCode(t, adaSecret, 1))
		if !again.isPasskey() {
			t.Fatalf("after a code: want the passkey page again, got %d:\n%s", again.status, again.body)
		}
		tok, id := app.finish(t, ar, b.usePasskey(again, sc.auth).callback(t))
		wantAssurance(t, assuranceOf(t, n, app, tok, id), identity.ACRPhishingResistant, "pwd", "otp", "hwk", "user", "mfa")
	})
	t.Run("a user with only an authenticator app", func(t *testing.T) {
		// Otto's code is his second factor at every sign-in; it reaches
		// the MFA level, and the app is told so, not more.
		b := newBrowser(t, n.issuer)
		ar := app.start("acr_values", identity.ACRPhishingResistant)
		p := b.secondFactor(b.signIn(b.visit(ar.url), "otto@example.com", testPassword), totpCode(t, ottoSecret, 1))
		tok, id := app.finish(t, ar, p.callback(t))
		wantAssurance(t, assuranceOf(t, n, app, tok, id), identity.ACRMFA, "pwd", "otp", "mfa")
		// Signed in, he is not asked for a code again for the level a
		// code cannot reach.
		ar = app.start("acr_values", identity.ACRPhishingResistant)
		_, id = app.finish(t, ar, b.visit(ar.url).callback(t))
		if got := authOf(t, id); got.ACR != identity.ACRMFA {
			t.Errorf("second request: acr %q, want %q", got.ACR, identity.ACRMFA)
		}
	})
}

// An app registered with require_phishing_resistant walks a user without
// a passkey through adding one (after any second factor they already
// have), then asks for it; the sign-in reaches the level.
func TestAnAppThatRequiresAPasskeyWalksAUserWithoutOneThroughAddingIt(t *testing.T) {
	t.Parallel()
	n := startLocalhostNode(t)
	app := assuranceApp(t, n, func(c *client.Client) { c.RequirePhishingResistant = true })
	n.user(t, "pat@example.com")
	auth, err := webauthntest.New(n.issuer)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, n.issuer)
	ar := app.start()
	enrol := b.signIn(b.visit(ar.url), "pat@example.com", testPassword)
	if !strings.Contains(enrol.body, `data-passkey="create"`) || !strings.Contains(enrol.body, "Notes") {
		t.Fatalf("after the password: want the page that adds a passkey, naming the app, got %d:\n%s", enrol.status, enrol.body)
	}
	// A silent request meanwhile cannot add one.
	if q := b.visit(app.start("prompt", "none").url).callback(t).Query(); q.Get("error") != "interaction_required" {
		t.Errorf("prompt=none before the passkey is added: %v, want interaction_required", q)
	}
	answer, err := auth.Register(passkeyOptions(t, enrol))
	if err != nil {
		t.Fatal(err)
	}
	p := b.submit("/login/passkey/enrol", url.Values{"request": {enrol.handle(t)}, "credential": {string(answer)}, "name": {"Laptop"}})
	tok, id := app.finish(t, ar, b.usePasskey(p, auth).callback(t))
	wantAssurance(t, assuranceOf(t, n, app, tok, id), identity.ACRPhishingResistant, "pwd", "hwk", "user", "mfa")
	if got := n.auditCount(t, "passkey.registered"); got != 1 {
		t.Errorf("%d passkey.registered events, want 1", got)
	}
	// Pat is told, as of any new way to sign in to the account.
	var mailed int
	if err := pgtest.Conn(t, n.dbURL).QueryRow(t.Context(),
		`SELECT count(*) FROM mail_outbox WHERE template = 'passkey-added'`).Scan(&mailed); err != nil || mailed != 1 {
		t.Errorf("%d passkey-added notices (%v), want 1", mailed, err)
	}
}

// A user who has a code must give it before adding the passkey an app
// requires: the page that adds one, reached by its address from a
// sign-in made with the password alone, sends them to the code page
// instead.
func TestAPasskeyIsNotAddedOnTheStrengthOfAPasswordAlone(t *testing.T) {
	t.Parallel()
	n := startLocalhostNode(t)
	plain := n.app(t)
	strict := assuranceApp(t, n, func(c *client.Client) { c.RequirePhishingResistant = true })
	otto := n.user(t, "otto@example.com")
	b := newBrowser(t, n.issuer)
	// Signed in with the password alone, before he had a second factor.
	b.signedIn(plain, "otto@example.com")
	secret := n.enrol(t, otto)

	ar := strict.start()
	p := b.visit(ar.url)
	if !p.isSecondFactor() {
		t.Fatalf("a require_phishing_resistant app: want the code page first, got %d:\n%s", p.status, p.body)
	}
	sneak := b.visit(n.issuer + "/login/passkey/enrol?request=" + url.QueryEscape(p.handle(t)))
	if !sneak.isSecondFactor() || strings.Contains(sneak.body, `data-passkey="create"`) {
		t.Fatalf("the add-a-passkey page before the code: want the code page, got %d:\n%s", sneak.status, sneak.body)
	}
	posted := b.submit("/login/passkey/enrol", url.Values{"request": {p.handle(t)}, "credential": {"{}"}, "name": {"Mine"}})
	if !posted.isSecondFactor() || n.auditCount(t, "passkey.registered") != 0 {
		t.Fatalf("posting a passkey before the code: want the code page and nothing added, got %d:\n%s", posted.status, posted.body)
	}
	after := b.secondFactor(p, totpCode(t, secret, 1))
	if !strings.Contains(after.body, `data-passkey="create"`) {
		t.Fatalf("after the code: want the page that adds a passkey, got %d:\n%s", after.status, after.body)
	}
}

// Where passkeys cannot be had (an issuer named by an IP address), an app
// that requires them is told the level cannot be reached, rather than
// being answered with less.
func TestAnAppThatRequiresAPasskeyIsRefusedWhereNoneCanBeHad(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	app := assuranceApp(t, n, func(c *client.Client) { c.RequirePhishingResistant = true })
	n.user(t, "pat@example.com")
	b := newBrowser(t, n.issuer)
	q := b.signIn(b.visit(app.start().url), "pat@example.com", testPassword).callback(t).Query()
	if q.Get("error") != "access_denied" || !strings.Contains(q.Get("error_description"), identity.ACRPhishingResistant) {
		t.Fatalf("want access_denied naming the level, got %v", q)
	}
}

// Discovery lists the phishing-resistant level among those Latchkey can
// reach (acr_values_supported).
func TestDiscoveryListsThePhishingResistantLevel(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	status, body := httpGet(t, n.issuer+"/.well-known/openid-configuration")
	var doc struct {
		ACRValues []string `json:"acr_values_supported"`
	}
	if err := json.Unmarshal(body, &doc); status != http.StatusOK || err != nil {
		t.Fatalf("discovery: %d %v", status, err)
	}
	if !slices.Equal(doc.ACRValues, []string{identity.ACRPassword, identity.ACRMFA, identity.ACRPhishingResistant}) {
		t.Errorf("acr_values_supported %v", doc.ACRValues)
	}
}

// An app that lists the levels it understands in the claims parameter is
// told the strongest of them the sign-in met, not a level it did not
// list (OpenID Connect Core §5.5.1.1).
func TestAnAppThatListsTheLevelsItKnowsIsToldTheStrongestMet(t *testing.T) {
	t.Parallel()
	sc := newPasskeyScene(t)
	app := assuranceApp(t, sc.n)
	b := newBrowser(t, sc.n.issuer)
	claims := `{"id_token":{"acr":{"values":["` + identity.ACRPassword + `","` + identity.ACRMFA + `"]}}}`
	ar := app.start("claims", claims)
	_, id := app.finish(t, ar, b.usePasskey(b.signIn(b.visit(ar.url), "ada@example.com", testPassword), sc.auth).callback(t))
	if got := authOf(t, id); got.ACR != identity.ACRMFA {
		t.Errorf("acr %q, want %q: the strongest listed level a passkey sign-in meets", got.ACR, identity.ACRMFA)
	}
}
