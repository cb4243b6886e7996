package main

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/audit"
)

// Attacks that race: bursts of parallel attempts, from several addresses
// at once, against every counter and single-use thing. A counter read
// before the expensive check and written after it lets the whole burst
// through; these tests send the burst.

func TestABurstOfWrongPasswordsFromManyAddressesGetsNoMoreChecksThanTheLimit(t *testing.T) {
	t.Parallel()
	n := startNode(t) // five wrong passwords per account before the pauses
	n.user(t, "ada@example.com")
	burst(t, 60, attackers(4), func(i int, ip string) {
		status, _, err := n.postForm(clientFrom(ip), "/login", url.Values{
			"email": {"ada@example.com"}, "password": {fmt.Sprintf("guess number %d", i)}})
		if err != nil || status != http.StatusOK {
			t.Errorf("guess %d from %s: %d %v", i, ip, status, err)
		}
	})
	if checked := len(n.events(t, audit.LoginFailed, "reason", "wrong password")); checked != 5 {
		t.Fatalf("60 parallel guesses from 4 addresses had %d passwords checked; want the limit of 5", checked)
	}
	if refused := len(n.events(t, audit.LoginFailed, "reason", "throttled")); refused != 55 {
		t.Fatalf("%d guesses were refused unchecked; want the other 55", refused)
	}
	b := newBrowser(t, n.issuer).from("127.0.0.9")
	if p := b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword); !strings.Contains(p.body, signInFailedWords) {
		t.Fatalf("the right password from a new browser right after the burst got through (%d); want the pause", p.status)
	}
}

// signInFailedWords are words of the one answer to a failed sign-in.
const signInFailedWords = "Email or password is incorrect"

func TestABurstOfWrongCodesFromManyAddressesGetsNoMoreChecksThanTheLimit(t *testing.T) {
	t.Parallel()
	n := startNode(t) // five wrong codes per user before the pauses
	u := n.user(t, "ada@example.com")
	secret := n.enrol(t, u)
	// The attacker has the password, and the browser session that gave
	// it, and now guesses the code from four addresses at once: six-digit
	// codes and recovery codes alike.
	b := newBrowser(t, n.issuer)
	if p := b.signIn(b.visit(n.issuer+"/login"), "ada@example.com", testPassword); !p.isSecondFactor() {
		t.Fatalf("want the code page, got %d", p.status)
	}
	jar := b.http.Jar.(*cookiejar.Jar)
	burst(t, 60, attackers(4), func(i int, ip string) {
		c := clientFrom(ip)
		c.Jar = jar
		field, guess := "code", fmt.Sprintf("%06d", i)
		if i%3 == 0 {
			field, guess = "recovery", fmt.Sprintf("abcd-efgh-ijkl-%04d", i)
		}
		if _, _, err := n.postForm(c, "/login/otp", url.Values{field: {guess}}); err != nil {
			t.Errorf("guess %d: %v", i, err)
		}
	})
	if checked := len(n.events(t, audit.MFAFailed)); checked != 5 {
		t.Fatalf("60 parallel codes from 4 addresses had %d checked; want the limit of 5", checked)
	}
	if p := b.secondFactor(b.visit(n.issuer+"/login/otp"), totpCode(t, secret, 1)); p.status != http.StatusTooManyRequests {
		t.Fatalf("the right code right after the burst: %d; want 429 until the pause is over", p.status)
	}
}
