package main

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/proctest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/events"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/postgres"
)

// eventsOn is what a change made by another node looks like to the
// outbox: an audit log whose events the events outbox reacts to, as every
// node's does, and the subscriptions' manager.
func eventsOn(t *testing.T, store *postgres.Store) (*audit.Log, *events.Manager) {
	t.Helper()
	box, err := seal.New([][]byte{[]byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	log := audit.New(store, quietLogger(), events.NewOutbox(store, true))
	return log, events.NewManager(store, box, log)
}

// failedSignIn records what a wrong password for sub records.
func failedSignIn(t *testing.T, log *audit.Log, sub string) {
	t.Helper()
	if err := log.Record(t.Context(), audit.Event{Action: audit.LoginFailed, Target: audit.User(sub),
		Details: map[string]any{"reason": "password"}}); err != nil {
		t.Fatal(err)
	}
}

// startServe starts `latchkey serve` on dbURL with settings, keeping its
// standard output apart from its log.
func startServe(t *testing.T, name, bin, dbURL string, stdout *proctest.Output, settings ...string) *proctest.Process {
	t.Helper()
	public, admin := proctest.FreeAddr(t), proctest.FreeAddr(t)
	cmd := exec.Command(bin, "serve", "--migrate")
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"LATCHKEY_DATABASE_URL=" + dbURL,
		"LATCHKEY_ISSUER=http://" + public,
		"LATCHKEY_SECRETS=" + testSecret,
		"LATCHKEY_PUBLIC_ADDR=" + public,
		"LATCHKEY_ADMIN_ADDR=" + admin,
	}, settings...)
	cmd.Stdout = stdout
	p := proctest.Start(t, name, cmd)
	p.AwaitHTTP(t, "http://"+admin+"/readyz", time.Minute)
	return p
}

// The guarantee, as docs/security-events.md states it: a node killed
// while a receiver holds its delivery loses nothing; the event is
// delivered again, with the same webhook-id, once the dead node's claim
// (twice LATCHKEY_WEBHOOK_TIMEOUT) runs out, and the subject's next event
// follows it, not before.
func TestANodeKilledMidDeliveryLosesNoEventAndKeepsTheirOrder(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	store := pgtest.Open(t, dbURL)
	log, webhooks := eventsOn(t, store)
	bin := buildLatchkey(t, t.TempDir())
	rcv := newReceiver(t)
	s, secret, err := webhooks.Create(t.Context(), events.Input{URL: ptr(rcv.srv.URL), EventTypes: &[]string{"login.failed"}})
	if err != nil {
		t.Fatal(err)
	}
	rcv.setSecret(secret)

	a := startServe(t, "A", bin, dbURL, &proctest.Output{}, "LATCHKEY_WEBHOOK_TIMEOUT=2s")
	release := rcv.holdNext()
	defer release()
	failedSignIn(t, log, "ada")
	failedSignIn(t, log, "ada")
	failedSignIn(t, log, "bob")
	rcv.awaitHeld(t, 30*time.Second)
	if _, err := a.Stop(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("a node killed with SIGKILL exited cleanly")
	}
	// The receiver takes the held request after all, as one whose answer
	// never reached the dead node would have.
	release()

	startServe(t, "B", bin, dbURL, &proctest.Output{}, "LATCHKEY_WEBHOOK_TIMEOUT=2s")
	want := outboxEventIDs(t, store, s.ID)
	if len(want) != 3 {
		t.Fatalf("the outbox holds %d events, want 3", len(want))
	}
	checkOrder(t, rcv.deliveries(), want)
}

func TestEveryEventIsAJSONLineOnStdoutForASIEM(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	store := pgtest.Open(t, dbURL)
	log, _ := eventsOn(t, store)
	stdout := &proctest.Output{}
	startServe(t, "A", buildLatchkey(t, t.TempDir()), dbURL, stdout, "LATCHKEY_EVENT_LOG=stdout")
	failedSignIn(t, log, "ada")
	failedSignIn(t, log, "ada")

	var lines []events.Payload
	waitFor(t, "two event lines on stdout", func() bool {
		lines = lines[:0]
		sc := bufio.NewScanner(strings.NewReader(stdout.String()))
		for sc.Scan() {
			var p events.Payload
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				t.Fatalf("stdout holds a line that is not an event: %q", sc.Text())
			}
			lines = append(lines, p)
		}
		return len(lines) >= 2
	})
	if len(lines) != 2 || lines[0].Type != audit.LoginFailed || lines[0].Data.Subject != "user:ada" ||
		!regexp.MustCompile(`^evt_\d+$`).MatchString(lines[0].ID) || eventNumber(lines[0].ID) >= eventNumber(lines[1].ID) {
		t.Fatalf("event lines: %+v", lines)
	}
}

func eventNumber(id string) int64 {
	n, _ := strconv.ParseInt(strings.TrimPrefix(id, "evt_"), 10, 64)
	return n
}

func ptr[T any](v T) *T { return &v }

// verifyAsDocumented is the receiver's check as docs/security-events.md
// shows it (TestTheDocumentedWebhookReceiverIsTheOneTested keeps them the same).
func verifyAsDocumented(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sent, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sent, 0)).Abs() > 5*time.Minute {
		return errors.New("webhook: missing or stale timestamp")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("webhook: no valid signature")
}

func TestTheDocumentedWebhookReceiverIsTheOneTested(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("webhooks_process_test.go")
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(src), "func verifyAsDocumented(")
	end := strings.Index(string(src)[start:], "\n}\n")
	fn := strings.Replace(string(src)[start:start+end+2], "verifyAsDocumented", "verify", 1)
	doc, err := os.ReadFile("../../docs/security-events.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), fn) {
		t.Fatalf("docs/security-events.md does not show the receiver the tests check; it should hold:\n%s", fn)
	}
}
