package registration

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
)

func TestRedirectURIRulesMatchOnlyWhatTheyName(t *testing.T) {
	p := Policy{RedirectURIs: []string{"https://app.example.com/cb/", RuleLoopback}}
	for uri, want := range map[string]bool{
		"https://app.example.com/cb/":                  true,
		"https://app.example.com/cb/done":              true,
		"https://APP.example.com/cb/done":              true,
		"http://127.0.0.1:33418/callback":              true,
		"http://[::1]:8080/cb":                         true,
		"http://localhost/cb":                          true,
		"https://127.0.0.2/cb":                         true,
		"https://app.example.com/cbx":                  false,
		"https://app.example.com/CB/done":              false,
		"https://app.example.com:8443/cb/done":         false,
		"http://app.example.com/cb/done":               false,
		"https://app.example.com.evil.example/cb/":     false,
		"https://evil.example/https://app.example.com": false,
		"https://app.example.com/cb/../admin":          false,
		"https://app.example.com/cb/%2e%2e/admin":      false,
		"https://app.example.com/cb/%2E./admin":        false,
		"https://app.example.com/cb/a%2fb":             false,
		"https://app.example.com/cb/./x":               false,
		"http://localhoſt/cb":                          false,
	} {
		if got := p.allowsRedirect(uri); got != want {
			t.Errorf("%s: allowed %v, want %v", uri, got, want)
		}
	}
	if !(Policy{RedirectURIs: []string{RuleAny}}).allowsRedirect("https://anywhere.example/x") {
		t.Error("any does not allow an https URI")
	}
	if (Policy{RedirectURIs: []string{RuleLoopback}}).allowsRedirect("https://app.example.com/cb") {
		t.Error("loopback allows a public host")
	}
}

func TestARuleMustNameAHostAndAPath(t *testing.T) {
	for rule, ok := range map[string]bool{
		"loopback":                      true,
		"any":                           true,
		"https://app.example.com/":      true,
		"https://example.com/apps/":     true,
		"https://app.example.com":       false,
		"https://app.example.com/cb":    false,
		"http://app.example.com/":       false,
		"https://user@app.example.com/": false,
		"https://app.example.com/?x=1/": false,
		"https://app.example.com/#/":    false,
		"https://app.example.com/../":   false,
		"*":                             false,
		"":                              false,
		"LOOPBACK":                      false,
	} {
		if err := ParseRule(rule); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", rule, err, ok)
		}
	}
}

func TestThePolicyRefusesAdminScopesWhateverItLists(t *testing.T) {
	p := Policy{GrantTypes: []string{client.GrantClientCredentials}, Scopes: []string{client.AdminScope, "api"}}
	c := client.Client{GrantTypes: []string{client.GrantClientCredentials}, Scope: client.AdminScope + " api"}
	c.Normalize()
	err := p.Check(&c)
	if err == nil || !strings.Contains(err.Error(), "admin power") {
		t.Fatalf("Check = %v, want the admin scope refused", err)
	}
}

func TestTokensAreComparedByDigestAndMalformedOnesCostNothing(t *testing.T) {
	token, digest := newToken(AccessPrefix)
	if !wellformed(token, AccessPrefix) || wellformed(token, InitialPrefix) || !matches(digest, token) {
		t.Fatal("a fresh token does not match its own digest")
	}
	// Another last character (the token's own may be any, "A" included).
	last := "A"
	if strings.HasSuffix(token, last) {
		last = "B"
	}
	if matches(digest, token[:len(token)-1]+last) || matches(nil, token) || matches(digest[:31], token) {
		t.Fatal("a wrong token or digest matches")
	}
	if wellformed(token+"x", AccessPrefix) || wellformed("", AccessPrefix) {
		t.Fatal("a token of the wrong length is well-formed")
	}
}
