package main

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/events"
)

// devWebhooksPath is where latchkey dev shows the events it delivered to
// its own webhook receiver.
const devWebhooksPath = "/dev/webhooks"

// devLogoutPath is where, on the admin listener, latchkey dev receives the
// logout tokens sent to the demo app's backchannel_logout_uri, which
// /dev/webhooks shows beside the events.
const devLogoutPath = devWebhooksPath + "/logout"

// devWebhooksKept is how many of the newest deliveries the receiver keeps.
const devWebhooksKept = 50

// devWebhooks is latchkey dev's own webhook receiver: dev subscribes it
// to every event at startup, so that a developer sees what a receiver of
// theirs would get, signature checked as the docs' snippet checks it,
// without running one. It keeps what it received in memory.
type devWebhooks struct {
	// issuer is whose JWKS logout tokens are verified against.
	issuer string

	mu       sync.Mutex
	secret   string
	received []devWebhook
}

// devWebhook is one delivery as the page shows it.
type devWebhook struct {
	When, ID, Type string
	// Verified says the signature is the secret's over id, timestamp and
	// body.
	Verified bool
	Body     string
}

// subscribe makes the receiver at base (the admin listener's URL) a
// subscription to every event, or, after a restart (the throwaway
// database is kept), gives the one it made before a new secret, which
// only this process then knows.
func (d *devWebhooks) subscribe(ctx context.Context, m *events.Manager, base string) error {
	url := base + devWebhooksPath + "/receive"
	subs, err := m.List(ctx)
	if err != nil {
		return err
	}
	for _, s := range subs {
		if s.URL == url {
			_, secret, err := m.RotateSecret(ctx, s.ID)
			if err == nil && !s.Enabled {
				_, err = m.Enable(ctx, s.ID)
			}
			d.secret = secret
			return err
		}
	}
	description, types := "latchkey dev's own receiver ("+devWebhooksPath+")", []string{"*"}
	_, secret, err := m.Create(ctx, events.Input{URL: &url, Description: &description, EventTypes: &types})
	d.secret = secret
	return err
}

// Register adds the page to the public router and the receiver to the
// admin one: a delivery's body is JSON, which the public listener, taking
// only forms, refuses, and the admin listener is on loopback in dev.
func (d *devWebhooks) Register(public, admin chi.Router) {
	public.Get(devWebhooksPath, d.list)
	admin.Post(devWebhooksPath+"/receive", d.receive)
	admin.Post(devLogoutPath, d.receiveLogout)
}

// receiveLogout is the demo app's back-channel logout endpoint (OpenID
// Connect Back-Channel Logout 1.0 §2.5): it verifies the logout token's
// signature against the issuer's JWKS, as an app must, and keeps its
// claims for the page.
func (d *devWebhooks) receiveLogout(w http.ResponseWriter, r *http.Request) {
	token := r.PostFormValue("logout_token")
	got := devWebhook{When: time.Now().Format("15:04:05"), Type: "back-channel logout to the demo app"}
	keys := oidc.NewRemoteKeySet(r.Context(), d.issuer+discovery.JWKSPath)
	if payload, err := keys.VerifySignature(r.Context(), token); err == nil {
		got.Verified, got.Body = true, string(payload)
		var claims struct {
			ID string `json:"jti"`
		}
		_ = json.Unmarshal(payload, &claims)
		got.ID = claims.ID
	} else {
		got.Body = token
	}
	d.keep(got)
	w.WriteHeader(http.StatusOK)
}

// keep adds a delivery to the newest kept.
func (d *devWebhooks) keep(got devWebhook) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.received = append([]devWebhook{got}, d.received[:min(len(d.received), devWebhooksKept-1)]...)
}

func (d *devWebhooks) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	id := r.Header.Get("webhook-id")
	got := devWebhook{When: time.Now().Format("15:04:05"), ID: id, Body: string(body)}
	var event struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &event)
	got.Type = event.Type
	d.mu.Lock()
	secret := d.secret
	d.mu.Unlock()
	if ts, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64); err == nil {
		want, err := events.Sign(secret, id, time.Unix(ts, 0), body)
		for _, sig := range strings.Fields(r.Header.Get("webhook-signature")) {
			got.Verified = got.Verified || (err == nil && hmac.Equal([]byte(sig), []byte(want)))
		}
	}
	d.keep(got)
	w.WriteHeader(http.StatusNoContent)
}

func (d *devWebhooks) list(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	received := append([]devWebhook(nil), d.received...)
	d.mu.Unlock()
	render(w, devWebhooksPage, received)
}

var devWebhooksPage = template.Must(template.New("webhooks").Parse(`<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Webhooks – latchkey dev</title>` + devMailStyle + `</head><body>
<h1>Webhooks</h1>
<p>Every audit event this development server delivered to its own webhook receiver, newest first, as a receiver of yours would get it (docs/security-events.md). Add your own with <code>latchkey webhooks create</code>. The logout tokens sent to the demo app when a sign-in to it ends (back-channel logout, docs/clients.md) are here too.</p>
{{if .}}<table><thead><tr><th>Time</th><th>Event</th><th>ID</th><th>Signature</th></tr></thead><tbody>
{{range .}}<tr><td>{{.When}}</td><td>{{.Type}}</td><td>{{.ID}}</td><td class="{{if not .Verified}}failed{{end}}">{{if .Verified}}verified{{else}}does not verify{{end}}</td></tr>
<tr><td colspan="4"><pre>{{.Body}}</pre></td></tr>
{{end}}</tbody></table>{{else}}<p id="empty">No events yet. Sign in to the demo app, and its events appear here.</p>{{end}}
</body></html>`))

// devWebhooksLine is what latchkey dev prints about the receiver.
func devWebhooksLine(issuer string) string {
	return fmt.Sprintf("  webhooks:  %s%s (every event, as a receiver gets it)\n", issuer, devWebhooksPath)
}
