package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/proctest"
	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/signin"
	"github.com/latchkey/latchkey/storage/postgres"
	"github.com/latchkey/latchkey/web"
)

// enqueueMail writes a test message to to in store's outbox, as a node
// does in the transaction of a change.
func enqueueMail(t *testing.T, store *postgres.Store, to string) {
	t.Helper()
	box, err := seal.New([][]byte{[]byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	templates, err := mail.LoadTemplates(web.Mail(), "id.example.com")
	if err != nil {
		t.Fatal(err)
	}
	outbox := mail.NewOutbox(store, box, templates)
	if err := store.InTx(t.Context(), func(ctx context.Context) error {
		return outbox.Enqueue(ctx, mail.Message{Template: "test", To: to})
	}); err != nil {
		t.Fatal(err)
	}
}

// The guarantee, as docs/email.md states it: at least once, and a node
// that dies before the mail server has the message sends nothing, so its
// message goes out exactly once, from the node's next run or another node,
// once the dead node's claim (twice LATCHKEY_SMTP_TIMEOUT) runs out.
func TestANodeKilledMidSendDeliversTheMessageOnceAfterItsRestart(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	dbURL := pgtest.URL(t)
	store := pgtest.Open(t, dbURL)
	public, admin := proctest.FreeAddr(t), proctest.FreeAddr(t)
	p := newServeProcess("A", buildLatchkey(t, t.TempDir()), []string{
		"PATH=" + os.Getenv("PATH"),
		"LATCHKEY_DATABASE_URL=" + dbURL,
		"LATCHKEY_ISSUER=http://" + public,
		"LATCHKEY_SECRETS=" + testSecret,
		"LATCHKEY_LOG_FORMAT=text",
		"LATCHKEY_SMTP_URL=" + srv.URL(),
		"LATCHKEY_SMTP_TIMEOUT=2s",
	}, public, admin, 15*time.Second)
	p.start(t)
	p.waitReady(t)

	// The mail server keeps the node waiting in the middle of the mail
	// transaction, and the node is killed there.
	srv.Hold()
	enqueueMail(t, store, "ada@example.com")
	srv.AwaitHeld(t, 30*time.Second)
	if _, err := p.run.Stop(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("a node killed with SIGKILL exited cleanly")
	}
	srv.Release()

	p.start(t)
	p.waitReady(t)
	srv.Await(t, "ada@example.com")
	// Longer than a claim (4s): a second copy would be on its way by now.
	time.Sleep(5 * time.Second)
	if got := srv.To("ada@example.com"); len(got) != 1 {
		t.Fatalf("%d copies arrived, want exactly 1", len(got))
	}
	ms, err := store.Mail(t.Context(), mail.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Status != mail.Sent || ms[0].Attempts != 2 {
		t.Fatalf("outbox after the restart: %+v; want one message, sent at the second attempt", ms)
	}
}

func TestAResetAskedForWhileTheMailServerIsDownSucceedsAndItsMailArrivesWhenTheServerIsBack(t *testing.T) {
	t.Parallel()
	n, srv := mailNode(t)
	n.user(t, "ada@example.com")
	srv.Stop()

	status, body, err := n.postForm(http.DefaultClient, signin.ForgotPath, url.Values{"email": {"ada@example.com"}})
	if err != nil || status != http.StatusOK {
		t.Fatalf("forgot password with the mail server down: %d (%v); want 200, as always\n%s", status, err, body)
	}
	// The node tries, fails, and keeps the mail for later.
	var m *mail.Stored
	waitFor(t, "a failed attempt at the reset mail", func() bool {
		ms, err := n.store.Mail(t.Context(), mail.Query{})
		if err != nil || len(ms) != 1 {
			return false
		}
		m = ms[0]
		return m.Attempts > 0 && m.LastError != ""
	})
	if m.Status != mail.Pending || m.Template != "password-reset" {
		t.Fatalf("the reset mail is %s (%s) after a failed attempt; want pending", m.Status, m.Template)
	}

	srv.Restart(t)
	// Its backoff passed: the node sends it at its next look.
	if _, err := pgtest.Conn(t, n.dbURL).Exec(t.Context(), `UPDATE mail_outbox SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	link := srv.Await(t, "ada@example.com").Link(t, account.Reset.Path())
	status, body, err = n.postForm(http.DefaultClient, account.Reset.Path(), url.Values{
		"token": {tokenOf(t, link)}, "password": {brandNewPassword}})
	if err != nil || status != http.StatusOK {
		t.Fatalf("following the late link: %d (%v)\n%s", status, err, body)
	}
	if !n.signsIn(t, "ada@example.com", brandNewPassword) {
		t.Fatal("the password from the late link does not sign in")
	}
}
