package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/events"
	"github.com/latchkey/latchkey/storage/postgres"
)

// receiver is a webhook receiver as an operator's would be: a real HTTP
// server that verifies every request's signature with the Standard
// Webhooks library (an implementation independent of Latchkey's) and
// keeps what verified, in the order it arrived.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	secret string
	got    []received
	// bad counts requests whose signature did not verify.
	bad int
	// raw is the last verified request, body and headers, for tampering.
	raw struct {
		body   []byte
		header http.Header
	}

	// down makes it answer 503 without reading what it was sent.
	down atomic.Bool
	// hold, when set, makes it keep the next request waiting until
	// released, then take it as usual; held tells that one is waiting.
	hold    atomic.Pointer[chan struct{}]
	holding chan struct{}
}

// received is one verified delivery.
type received struct {
	id      string // the webhook-id header
	payload events.Payload
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, holding: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.down.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	if release := r.hold.Swap(nil); release != nil {
		r.holding <- struct{}{}
		<-*release
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err != nil || wh.Verify(body, req.Header) != nil {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p events.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		r.bad++
		http.Error(w, "not JSON", http.StatusBadRequest)
		return
	}
	r.got = append(r.got, received{id: req.Header.Get("webhook-id"), payload: p})
	r.raw.body, r.raw.header = body, req.Header.Clone()
	w.WriteHeader(http.StatusNoContent)
}

// setSecret is the secret the subscription was created with.
func (r *receiver) setSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = s
}

// holdNext makes the next request wait; the function returned releases
// it.
func (r *receiver) holdNext() func() {
	release := make(chan struct{})
	r.hold.Store(&release)
	var once sync.Once
	return func() { once.Do(func() { close(release) }) }
}

// awaitHeld waits until a request is being held.
func (r *receiver) awaitHeld(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-r.holding:
	case <-time.After(within):
		t.Fatal("no delivery reached the receiver to be held")
	}
}

// deliveries returns what verified so far.
func (r *receiver) deliveries() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// awaitTypes waits until events of every type in types have arrived.
func (r *receiver) awaitTypes(t *testing.T, types ...string) []received {
	t.Helper()
	var got []received
	waitFor(t, "webhook deliveries of "+strings.Join(types, ", "), func() bool {
		got = r.deliveries()
		for _, ty := range types {
			if !slices.ContainsFunc(got, func(d received) bool { return d.payload.Type == ty }) {
				return false
			}
		}
		return true
	})
	return got
}

// subscribe creates a subscription to r through the admin API and gives
// r its secret.
func (r *receiver) subscribe(t *testing.T, a *automation, types ...string) string {
	t.Helper()
	created := a.call(http.MethodPost, "/admin/webhooks", map[string]any{
		"url": r.srv.URL + "/hooks", "event_types": types, "description": "test receiver",
	}).must(t, http.StatusCreated)
	secret, _ := created.body["secret"].(string)
	id, _ := created.body["id"].(string)
	if !strings.HasPrefix(secret, "whsec_") || id == "" {
		t.Fatalf("create: %s", created.raw)
	}
	r.setSecret(secret)
	return id
}

// checkOrder fails unless, per subject, the events arrived in the order
// of their IDs (commit order here, as the test makes its changes one
// after another), repeats aside, and every event in want arrived.
func checkOrder(t *testing.T, got []received, want []int64) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, d := range got {
		id, err := strconv.ParseInt(strings.TrimPrefix(d.id, "evt_"), 10, 64)
		if err != nil || d.payload.ID != d.id {
			t.Fatalf("webhook-id %q, payload id %q: want evt_ and the audit ID in both", d.id, d.payload.ID)
		}
		if seen[d.id] {
			continue // a repeat, recognisable by its id: allowed
		}
		seen[d.id] = true
		s := d.payload.Data.Subject
		if id < last[s] {
			t.Fatalf("subject %s: event %d arrived after %d", s, id, last[s])
		}
		last[s] = id
	}
	for _, id := range want {
		if !seen[events.EventID(id)] {
			t.Fatalf("event %d never arrived; got %d distinct of %d", id, len(seen), len(want))
		}
	}
}

// outboxEventIDs returns the IDs of the events the outbox holds for a
// subscription, once none of them is pending any more.
func outboxEventIDs(t *testing.T, store *postgres.Store, webhook string) []int64 {
	t.Helper()
	var ids []int64
	waitFor(t, "every delivery of the subscription done", func() bool {
		ds, err := store.Deliveries(t.Context(), events.DeliveryQuery{WebhookID: webhook})
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for _, d := range ds {
			if d.Status != events.Delivered {
				return false
			}
			ids = append(ids, d.EventID)
		}
		return true
	})
	return ids
}

func TestAWebhookReceivesEachChangeSignedAndATamperedBodyFailsVerification(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	rcv := newReceiver(t)
	id := rcv.subscribe(t, a, "user.*", "login.failed")

	created := a.call(http.MethodPost, "/admin/users", map[string]any{"email": "ada@example.com", "password": testPassword}).must(t, http.StatusCreated)
	sub, _ := created.body["sub"].(string)
	got := rcv.awaitTypes(t, audit.UserCreated)
	d := got[slices.IndexFunc(got, func(d received) bool { return d.payload.Type == audit.UserCreated })]
	if d.payload.Data.Subject != audit.User(sub) || d.payload.Data.Actor != audit.Client(a.clientID) || d.payload.At.IsZero() {
		t.Fatalf("user.created as delivered: %+v", d.payload)
	}
	// An event the subscription did not ask for is not sent.
	if slices.ContainsFunc(got, func(d received) bool { return d.payload.Type == audit.WebhookCreated }) {
		t.Fatal("webhook.created was delivered to a subscription to user.* and login.failed")
	}

	// The subscription as listed never shows its secret again.
	for _, ans := range []answer{a.call(http.MethodGet, "/admin/webhooks/"+id, nil), a.call(http.MethodGet, "/admin/webhooks", nil)} {
		if strings.Contains(ans.raw, "whsec_") || strings.Contains(ans.raw, `"secret"`) {
			t.Fatalf("a read shows the secret: %s", ans.raw)
		}
	}

	// A body changed on the way, or signed with another secret, does not
	// verify with the receiver's secret.
	rcv.mu.Lock()
	body, header, secret := rcv.raw.body, rcv.raw.header, rcv.secret
	rcv.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify(body, header); err != nil {
		t.Fatalf("the delivered request does not verify: %v", err)
	}
	if err := wh.Verify(bytes.Replace(body, []byte(sub), []byte("someone-else"), 1), header); err == nil {
		t.Fatal("a tampered body verified")
	}
	other, _ := standardwebhooks.NewWebhook(events.NewSecret())
	if err := other.Verify(body, header); err == nil {
		t.Fatal("the body verified with another subscription's secret")
	}
	if err := verifyAsDocumented(secret, header, body); err != nil {
		t.Fatalf("docs/security-events.md's receiver refuses a genuine delivery: %v", err)
	}
	if err := verifyAsDocumented(secret, header, append(slices.Clone(body), ' ')); err == nil {
		t.Fatal("docs/security-events.md's receiver accepts a tampered body")
	}

	// A rotated secret signs what follows; the old one no longer verifies.
	rotated := a.call(http.MethodPost, "/admin/webhooks/"+id+"/rotate-secret", nil).must(t, http.StatusOK)
	newSecret, _ := rotated.body["secret"].(string)
	if newSecret == "" || newSecret == secret {
		t.Fatalf("rotate-secret: %s", rotated.raw)
	}
	rcv.setSecret(newSecret)
	a.call(http.MethodPost, "/admin/webhooks/"+id+"/test", nil).must(t, http.StatusAccepted)
	rcv.awaitTypes(t, audit.WebhookTested)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.bad != 0 {
		t.Fatalf("%d deliveries did not verify", rcv.bad)
	}
}

func TestWebhookEventsHeldByAReceiverOutageAllArriveInOrderPerSubject(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	rcv := newReceiver(t)
	id := rcv.subscribe(t, a, "user.*")
	rcv.down.Store(true)

	// Three users, each created then changed twice: nine events, three
	// per subject, all while the receiver is down.
	subs := a.createUsers(t, 3)
	for round := range 2 {
		for _, sub := range subs {
			a.call(http.MethodPatch, "/admin/users/"+sub, map[string]any{"name": fmt.Sprintf("Name %d", round)}).must(t, http.StatusOK)
		}
	}
	// The node tries and fails, and keeps trying.
	waitFor(t, "failed attempts during the outage", func() bool {
		ds := a.call(http.MethodGet, "/admin/webhooks/"+id+"/deliveries?status=pending", nil).must(t, http.StatusOK).items()
		failed := 0
		for _, d := range ds {
			if d["attempts"].(float64) > 1 && d["last_status_code"] == float64(http.StatusServiceUnavailable) {
				failed++
			}
		}
		return len(ds) == countEvents(t, n.store, "user.") && failed >= 3
	})
	if got := rcv.deliveries(); len(got) != 0 {
		t.Fatalf("%d deliveries verified while the receiver was down", len(got))
	}
	sub := a.call(http.MethodGet, "/admin/webhooks/"+id, nil).must(t, http.StatusOK)
	if sub.body["consecutive_failures"].(float64) < 1 || sub.body["failing_since"] == nil || sub.body["enabled"] != true {
		t.Fatalf("the subscription during the outage: %s", sub.raw)
	}

	rcv.down.Store(false)
	want := outboxEventIDs(t, n.store, id)
	if all := countEvents(t, n.store, "user."); len(want) != all || all < 9 {
		t.Fatalf("the outbox holds %d events for the subscription, want %d (at least 9)", len(want), all)
	}
	checkOrder(t, rcv.deliveries(), want)
	sub = a.call(http.MethodGet, "/admin/webhooks/"+id, nil).must(t, http.StatusOK)
	if sub.body["consecutive_failures"] != float64(0) || sub.body["failing_since"] != nil || sub.body["last_success_at"] == nil {
		t.Fatalf("the subscription after the outage: %s", sub.raw)
	}
}

func TestTwoNodesDeliverEveryEventOnceAndInOrderPerSubject(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	n1 := startNode(t, "LATCHKEY_DATABASE_URL", dbURL)
	n2 := startNode(t, "LATCHKEY_DATABASE_URL", dbURL)
	a1, a2 := n1.automation(t, client.AdminScope), n2.automation(t, client.AdminScope)
	rcv := newReceiver(t)
	id := rcv.subscribe(t, a1, "user.*")

	subs := a1.createUsers(t, 4)
	for round := range 4 {
		for i, sub := range subs {
			a := []*automation{a1, a2}[(i+round)%2]
			a.call(http.MethodPatch, "/admin/users/"+sub, map[string]any{"name": fmt.Sprintf("Name %d", round)}).must(t, http.StatusOK)
		}
	}
	want := outboxEventIDs(t, n1.store, id)
	if all := countEvents(t, n1.store, "user."); len(want) != all || all < 20 {
		t.Fatalf("the outbox holds %d events, want %d (at least 20)", len(want), all)
	}
	got := rcv.deliveries()
	checkOrder(t, got, want)
	if len(got) != len(want) {
		t.Fatalf("%d deliveries of %d events: with no node killed, none may arrive twice", len(got), len(want))
	}
}

func TestADisabledWebhookSubscriptionIsReportedAndResumesInOrderWhenEnabled(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	rcv := newReceiver(t)
	id := rcv.subscribe(t, a, "user.*")
	rcv.down.Store(true)

	created := a.call(http.MethodPost, "/admin/users", map[string]any{"email": "ada@example.com"}).must(t, http.StatusCreated)
	sub, _ := created.body["sub"].(string)
	waitFor(t, "a failed attempt", func() bool {
		s := a.call(http.MethodGet, "/admin/webhooks/"+id, nil).must(t, http.StatusOK)
		return s.body["failing_since"] != nil
	})
	// A day of failures passes.
	if _, err := pgtest.Conn(t, n.dbURL).Exec(t.Context(), `UPDATE webhooks SET failing_since = now() - interval '2 days'`); err != nil {
		t.Fatal(err)
	}
	var s answer
	waitFor(t, "the subscription disabled", func() bool {
		s = a.call(http.MethodGet, "/admin/webhooks/"+id, nil).must(t, http.StatusOK)
		return s.body["enabled"] == false
	})
	if reason, _ := s.body["disabled_reason"].(string); !strings.Contains(reason, "503") || s.body["disabled_at"] == nil {
		t.Fatalf("the disabled subscription does not say why: %s", s.raw)
	}
	disabled := a.call(http.MethodGet, "/admin/audit-events?action=webhook.disabled", nil).must(t, http.StatusOK).items()
	if len(disabled) != 1 || disabled[0]["actor"] != audit.System || disabled[0]["target"] != audit.Webhook(id) {
		t.Fatalf("webhook.disabled events: %v", disabled)
	}
	if m := scrape(t, n.admin); !strings.Contains(m, "latchkey_webhooks_disabled 1") {
		t.Fatalf("metrics do not report the disabled subscription:\n%s", m)
	}

	// Events recorded while it is disabled wait for it.
	a.call(http.MethodPatch, "/admin/users/"+sub, map[string]any{"name": "Ada"}).must(t, http.StatusOK)
	rcv.down.Store(false)
	time.Sleep(500 * time.Millisecond)
	if got := rcv.deliveries(); len(got) != 0 {
		t.Fatalf("a disabled subscription was delivered to: %v", got)
	}

	// A read-only admin cannot enable it; an admin can.
	ro := n.automation(t, client.AdminReadScope)
	ro.call(http.MethodPost, "/admin/webhooks/"+id+"/enable", nil).problem(t, http.StatusForbidden, "")
	enabled := a.call(http.MethodPost, "/admin/webhooks/"+id+"/enable", nil).must(t, http.StatusOK)
	if enabled.body["enabled"] != true || enabled.body["disabled_reason"] != nil {
		t.Fatalf("enable: %s", enabled.raw)
	}
	want := outboxEventIDs(t, n.store, id)
	checkOrder(t, rcv.deliveries(), want)
	got := rcv.awaitTypes(t, audit.UserCreated, audit.UserUpdated)
	if got[0].payload.Type != audit.UserCreated {
		t.Fatalf("after enabling, %s arrived first", got[0].payload.Type)
	}
}

func TestWebhookAdminInputThatWouldMakeAWeaponIsRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	for _, c := range []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"plain http to a public host", map[string]any{"url": "http://siem.example.com/in", "event_types": []string{"*"}}, http.StatusUnprocessableEntity, "url"},
		{"credentials in the URL", map[string]any{"url": "https://user:pw@siem.example.com/in", "event_types": []string{"*"}}, http.StatusUnprocessableEntity, "url"},
		{"a cloud metadata address", map[string]any{"url": "https://169.254.169.254/latest", "event_types": []string{"*"}}, http.StatusUnprocessableEntity, "url"},
		{"not a URL", map[string]any{"url": "siem", "event_types": []string{"*"}}, http.StatusUnprocessableEntity, "url"},
		{"an unknown event type", map[string]any{"url": "https://siem.example.com/in", "event_types": []string{"user.exploded"}}, http.StatusUnprocessableEntity, "event_types"},
		{"an unknown prefix", map[string]any{"url": "https://siem.example.com/in", "event_types": []string{"nothing.*"}}, http.StatusUnprocessableEntity, "event_types"},
		{"no event types", map[string]any{"url": "https://siem.example.com/in", "event_types": []string{}}, http.StatusUnprocessableEntity, "event_types"},
		{"a secret of one's own choosing", map[string]any{"url": "https://siem.example.com/in", "event_types": []string{"*"}, "secret": "whsec_AAAA"}, http.StatusBadRequest, "secret"},
		{"an oversized body", `{"url": "https://siem.example.com/in", "description": "` + strings.Repeat("x", 2<<20) + `"}`, http.StatusRequestEntityTooLarge, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			a.call(http.MethodPost, "/admin/webhooks", c.body).problem(t, c.status, c.field)
		})
	}
	// Loopback http is allowed: the traffic stays on the machine.
	a.call(http.MethodPost, "/admin/webhooks", map[string]any{"url": "http://127.0.0.1:9/in", "event_types": []string{"login.*"}}).must(t, http.StatusCreated)

	// A read-only token lists, and cannot create.
	ro := n.automation(t, client.AdminReadScope)
	ro.call(http.MethodGet, "/admin/webhooks", nil).must(t, http.StatusOK)
	ro.call(http.MethodPost, "/admin/webhooks", map[string]any{"url": "https://siem.example.com/in", "event_types": []string{"*"}}).problem(t, http.StatusForbidden, "")

	// The number of subscriptions is bounded.
	for i := 1; i < events.MaxSubscriptions; i++ {
		a.call(http.MethodPost, "/admin/webhooks", map[string]any{"url": fmt.Sprintf("https://siem%d.example.com/in", i), "event_types": []string{"*"}}).must(t, http.StatusCreated)
	}
	a.call(http.MethodPost, "/admin/webhooks", map[string]any{"url": "https://one-too-many.example.com/in", "event_types": []string{"*"}}).problem(t, http.StatusConflict, "")
	a.call(http.MethodGet, "/admin/webhooks/not-an-id", nil).problem(t, http.StatusNotFound, "")
}

// countEvents counts the audit events whose action starts with prefix.
func countEvents(t *testing.T, store *postgres.Store, prefix string) int {
	t.Helper()
	es, err := store.AuditEvents(t.Context(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if strings.HasPrefix(e.Action, prefix) {
			n++
		}
	}
	return n
}

// scrape returns the node's metrics.
func scrape(t *testing.T, admin string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.WithoutCancel(t.Context()), http.MethodGet, admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func TestTheWebhooksCLIManagesASubscriptionAndRefusesBadInputInOneLine(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	env := vars{"LATCHKEY_DATABASE_URL": n.dbURL, "LATCHKEY_SECRETS": testSecret}
	rcv := newReceiver(t)

	code, out, errOut := runCLI(t.Context(), env, "webhooks", "create", "--url", rcv.srv.URL, "--events", "webhook.*,user.created")
	if code != 0 || !strings.Contains(out, "secret: whsec_") {
		t.Fatalf("create: %d\n%s%s", code, out, errOut)
	}
	secret := out[strings.Index(out, "whsec_"):]
	secret = secret[:strings.IndexByte(secret, '\n')]
	rcv.setSecret(secret)
	subs, err := n.store.Webhooks(t.Context())
	if err != nil || len(subs) != 1 {
		t.Fatalf("subscriptions: %v %v", subs, err)
	}
	id := subs[0].ID

	// A change made from the CLI is delivered like any other.
	if code, out, errOut := runCLI(t.Context(), env, "webhooks", "test", id); code != 0 || !strings.Contains(out, "evt_") {
		t.Fatalf("test: %d\n%s%s", code, out, errOut)
	}
	rcv.awaitTypes(t, audit.WebhookTested)
	if code, out, _ := runCLI(t.Context(), env, "webhooks", "list"); code != 0 || !strings.Contains(out, id) || strings.Contains(out, "whsec_") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	waitFor(t, "the test delivery recorded", func() bool {
		_, out, _ := runCLI(t.Context(), env, "webhooks", "deliveries", id, "--status", "delivered")
		return strings.Contains(out, "webhook.tested")
	})

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"plain http to a public host", []string{"webhooks", "create", "--url", "http://siem.example.com/in", "--events", "*"}, "url: must be https"},
		{"an unknown event type", []string{"webhooks", "create", "--url", "https://siem.example.com/in", "--events", "user.exploded"}, "event_types"},
		{"no URL", []string{"webhooks", "create", "--events", "*"}, "--url and --events are required"},
		{"an unknown subscription", []string{"webhooks", "enable", "00000000-0000-0000-0000-000000000000"}, "no webhook subscription has this ID"},
		{"a bad status", []string{"webhooks", "deliveries", id, "--status", "lost"}, "--status must be pending, delivered or failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(t.Context(), env, c.args...)
			// A usage error is followed by the house hint to run --help.
			first, rest, _ := strings.Cut(strings.TrimSpace(errOut), "\n")
			if code == 0 || out != "" || !strings.Contains(first, c.want) || (rest != "" && !strings.HasPrefix(rest, "Run 'latchkey")) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want a non-zero exit and one line saying %q", code, out, errOut, c.want)
			}
		})
	}
}

// createUsers creates count users through the admin API, each an event of
// its own subject, and returns their subs.
func (a *automation) createUsers(t *testing.T, count int) []string {
	t.Helper()
	var subs []string
	for i := range count {
		created := a.call(http.MethodPost, "/admin/users", map[string]any{"email": fmt.Sprintf("user%d@example.com", i)}).must(t, http.StatusCreated)
		sub, _ := created.body["sub"].(string)
		subs = append(subs, sub)
	}
	return subs
}
