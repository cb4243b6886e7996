package events

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestPatternsSelectActionsByNameOrPrefix(t *testing.T) {
	for _, c := range []struct {
		pattern, action string
		want            bool
	}{
		{"*", "user.created", true},
		{"user.*", "user.created", true},
		{"user.*", "users.created", false},
		{"user.created", "user.created", true},
		{"user.created", "user.updated", false},
		{"login.*", "user.created", false},
	} {
		if got := matches(c.pattern, c.action); got != c.want {
			t.Errorf("matches(%q, %q) = %t, want %t", c.pattern, c.action, got, c.want)
		}
	}
	for p, ok := range map[string]bool{"*": true, "user.*": true, "webhook.disabled": true, "user.exploded": false, "nothing.*": false, "user": false, "": false} {
		if got := checkPattern(p) == ""; got != ok {
			t.Errorf("checkPattern(%q) accepts = %t, want %t", p, got, ok)
		}
	}
}

func TestWebhookURLsAreHTTPSOrLoopbackHTTP(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://siem.example.com/in":      true,
		"http://127.0.0.1:8080/in":         true,
		"http://localhost/in":              true,
		"http://[::1]/in":                  true,
		"http://siem.example.com/in":       false,
		"http://localhoſt/in":              false,
		"ftp://siem.example.com/in":        false,
		"https://u:p@siem.example.com/in":  false,
		"https://siem.example.com/in#frag": false,
		"https://169.254.169.254/":         false,
		"https://[fe80::1]/":               false,
		"/relative":                        false,
	} {
		if got := checkURL(u) == ""; got != ok {
			t.Errorf("checkURL(%q) accepts = %t, want %t (%s)", u, got, ok, checkURL(u))
		}
	}
}

func TestSignaturesVerifyWithTheStandardWebhooksLibrary(t *testing.T) {
	secret := NewSecret()
	body := []byte(`{"id":"evt_1","type":"user.created"}`)
	at := time.Now()
	sig, err := Sign(secret, "evt_1", at, body)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(HeaderID, "evt_1")
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, sig)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, h); err != nil {
		t.Fatalf("the library refuses Latchkey's signature: %v", err)
	}
	h.Set(HeaderID, "evt_2")
	if err := wh.Verify(body, h); err == nil {
		t.Fatal("a signature verified for another webhook-id")
	}
}

func TestBackoffDoublesToItsCapWithJitter(t *testing.T) {
	d := &Deliverer{}
	for attempts, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 5: 160 * time.Second, 20: time.Hour, 1000: time.Hour} {
		got := d.backoff(attempts)
		if got < want-want/10 || got > want+want/10 {
			t.Errorf("backoff(%d) = %s, want %s ± 10%%", attempts, got, want)
		}
	}
}
