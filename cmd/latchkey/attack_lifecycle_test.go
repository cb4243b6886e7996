package main

import (
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
)

// Lifecycle attacks: what must end when a user's access, an app's consent,
// a sign-in or a token ends, tried from outside after it ended.

// prompt=login and max_age=0 ask for a sign-in after the request; one in
// the same second, before it, is not one.
func TestPromptLoginAndMaxAgeZeroAreNotSatisfiedByASignInTheSameSecond(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	n.user(t, "ada@example.com")
	rp := n.app(t, func(c *client.Client) { c.SkipConsent = true })
	b := newBrowser(t, n.issuer)
	ar := rp.start()
	login := b.visit(ar.url)
	// Right after a second starts, so that the sign-in and the requests
	// that follow it fall in the same second.
	waitForNextSecond()
	rp.finish(t, ar, b.signIn(login, "ada@example.com", testPassword).callback(t))
	for _, extra := range [][]string{{"prompt", "login"}, {"max_age", "0"}} {
		ar := rp.start(extra...)
		p := b.visit(ar.url)
		if !p.isLogin() {
			t.Fatalf("%s=%s right after a sign-in: want the login page, got %d to %v", extra[0], extra[1], p.status, p.location)
		}
		// A sign-in after the request satisfies it.
		rp.finish(t, ar, b.signIn(p, "ada@example.com", testPassword).callback(t))
	}
}
