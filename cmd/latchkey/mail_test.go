package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/smtptest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
)

// The tests in this file are the operator's view of the mail outbox, in
// the admin API and the CLI: what waits, what failed and why, a retry
// once the cause is mended, and a test message that really arrives.

// mailFields are the members of a message as the API and the CLI show
// it: where it is in its delivery, never what it says.
var mailFields = []string{"attempts", "created_at", "id", "last_error", "next_attempt_at", "recipient", "sent_at", "status", "template"}

// noBody fails the test if out shows any of the test message's body or
// subject, which only its recipient may read (the outbox's messages carry
// single-use links).
func noBody(t *testing.T, where, out string) {
	t.Helper()
	for _, phrase := range []string{"Test message from", "You need do nothing", "sent by an", "<html", "<p>"} {
		if strings.Contains(out, phrase) {
			t.Fatalf("%s shows the message's body or subject (%q):\n%s", where, phrase, out)
		}
	}
}

// mailIDOf reads the id of a message the API answered with.
func mailIDOf(t *testing.T, ans answer) int64 {
	t.Helper()
	id, ok := ans.body["id"].(float64)
	if !ok || id < 1 {
		t.Fatalf("no message id in %s", ans.raw)
	}
	return int64(id)
}

// idsOf lists the ids of a page of messages, in order.
func idsOf(items []map[string]any) []int64 {
	var ids []int64
	for _, it := range items {
		id, _ := it["id"].(float64)
		ids = append(ids, int64(id))
	}
	return ids
}

// outboxAs makes the message id look as a sender leaves it: "failed",
// after a mail server refused it for good, or "sent", its body erased.
func outboxAs(t *testing.T, conn *pgx.Conn, id int64, status string) {
	t.Helper()
	var err error
	switch status {
	case "failed":
		_, err = conn.Exec(t.Context(), `UPDATE mail_outbox SET status = 'failed', attempts = 3,
			last_error = '550 5.1.1 no such mailbox' WHERE id = $1`, id)
	case "sent":
		_, err = conn.Exec(t.Context(), `UPDATE mail_outbox SET status = 'sent', attempts = 1, sent_at = now(), message = NULL WHERE id = $1`, id)
	default:
		t.Fatalf("outboxAs %s", status)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// mailStatus is the status of message id as the API shows it.
func (a *automation) mailStatus(id int64) answer {
	a.t.Helper()
	return a.call(http.MethodGet, "/admin/mail/"+strconv.FormatInt(id, 10), nil).must(a.t, http.StatusOK)
}

// awaitMailStatus waits until message id has the status, as the API
// shows it, and returns it.
func (a *automation) awaitMailStatus(id int64, status string) answer {
	a.t.Helper()
	var ans answer
	waitFor(a.t, fmt.Sprintf("message %d to be %s", id, status), func() bool {
		ans = a.mailStatus(id)
		return ans.body["status"] == status
	})
	return ans
}

func TestAdminMailListsTheOutboxByStatusNewestFirstInPages(t *testing.T) {
	t.Parallel()
	n := startNode(t) // no LATCHKEY_SMTP_URL: mail waits in the outbox
	a := n.automation(t, client.AdminScope)
	var ids []int64
	for i := range 5 {
		ans := a.call(http.MethodPost, "/admin/mail/test", map[string]string{"to": fmt.Sprintf("ops%d@example.com", i)}).must(t, http.StatusAccepted)
		noBody(t, "POST /admin/mail/test", ans.raw)
		ids = append(ids, mailIDOf(t, ans))
	}
	conn := mustConnect(t, n.dbURL)
	outboxAs(t, conn, ids[1], "failed")
	outboxAs(t, conn, ids[3], "sent")
	newestFirst := func(is ...int) []int64 {
		var out []int64
		for _, i := range is {
			out = append(out, ids[i])
		}
		return out
	}

	all := a.call(http.MethodGet, "/admin/mail", nil).must(t, http.StatusOK)
	noBody(t, "GET /admin/mail", all.raw)
	if got := idsOf(all.items()); !slices.Equal(got, newestFirst(4, 3, 2, 1, 0)) {
		t.Fatalf("GET /admin/mail lists %v, want every message newest first %v", got, newestFirst(4, 3, 2, 1, 0))
	}
	for _, it := range all.items() {
		var members []string
		for k := range it {
			members = append(members, k)
		}
		slices.Sort(members)
		if !slices.Equal(members, mailFields) {
			t.Fatalf("a listed message has the members %q, want exactly %q", members, mailFields)
		}
	}

	for _, c := range []struct {
		status string
		want   []int64
	}{
		{"pending", newestFirst(4, 2, 0)},
		{"failed", newestFirst(1)},
		{"sent", newestFirst(3)},
	} {
		ans := a.call(http.MethodGet, "/admin/mail?status="+c.status, nil).must(t, http.StatusOK)
		if got := idsOf(ans.items()); !slices.Equal(got, c.want) {
			t.Errorf("GET /admin/mail?status=%s lists %v, want %v", c.status, got, c.want)
		}
	}
	failed := a.mailStatus(ids[1])
	if failed.body["status"] != "failed" || failed.body["last_error"] != "550 5.1.1 no such mailbox" || failed.body["attempts"] != float64(3) {
		t.Fatalf("GET /admin/mail/%d: %s; want it failed, with the server's answer and its attempts", ids[1], failed.raw)
	}
	if sent := a.mailStatus(ids[3]); sent.body["sent_at"] == nil {
		t.Fatalf("a sent message has no sent_at: %s", sent.raw)
	}

	// Pages, with and without a filter, follow on from each other.
	for _, c := range []struct {
		filter string
		want   [][]int64
	}{
		{"", [][]int64{newestFirst(4, 3), newestFirst(2, 1), newestFirst(0)}},
		{"&status=pending", [][]int64{newestFirst(4, 2), newestFirst(0)}},
	} {
		var pages [][]int64
		cursor := ""
		for {
			ans := a.call(http.MethodGet, "/admin/mail?limit=2"+c.filter+cursor, nil).must(t, http.StatusOK)
			pages = append(pages, idsOf(ans.items()))
			next, _ := ans.body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = "&cursor=" + url.QueryEscape(next)
			if len(pages) > 5 {
				t.Fatal("the pages do not end")
			}
		}
		if fmt.Sprint(pages) != fmt.Sprint(c.want) {
			t.Errorf("paging GET /admin/mail?limit=2%s: %v, want %v", c.filter, pages, c.want)
		}
	}
	first := a.call(http.MethodGet, "/admin/mail?limit=1&status=pending", nil).must(t, http.StatusOK)
	cursor, _ := first.body["next_cursor"].(string)
	a.call(http.MethodGet, "/admin/mail?status=failed&cursor="+url.QueryEscape(cursor), nil).problem(t, http.StatusBadRequest, "cursor")

	a.call(http.MethodGet, "/admin/mail?status=bounced", nil).problem(t, http.StatusBadRequest, "status")
	a.call(http.MethodGet, "/admin/mail?state=failed", nil).problem(t, http.StatusBadRequest, "state")
	a.call(http.MethodGet, "/admin/mail/424242", nil).problem(t, http.StatusNotFound, "")
	a.call(http.MethodGet, "/admin/mail/ops0@example.com", nil).problem(t, http.StatusNotFound, "")
}

func TestAdminMailRetryRestartsAFailedMessageAndRefusesAnyOther(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	a := n.automation(t, client.AdminScope)
	send := func(to string) int64 {
		return mailIDOf(t, a.call(http.MethodPost, "/admin/mail/test", map[string]string{"to": to}).must(t, http.StatusAccepted))
	}
	pending, failed, sent := send("wait@example.com"), send("gone@example.com"), send("done@example.com")
	conn := mustConnect(t, n.dbURL)
	outboxAs(t, conn, failed, "failed")
	outboxAs(t, conn, sent, "sent")
	retry := func(id string) answer { return a.call(http.MethodPost, "/admin/mail/"+id+"/retry", nil) }

	for _, c := range []struct {
		name, id string
		status   int
		detail   string
	}{
		{"a pending message", strconv.FormatInt(pending, 10), http.StatusConflict, "retries it by itself"},
		{"a sent message", strconv.FormatInt(sent, 10), http.StatusConflict, "POST /admin/mail/test"},
		{"an unknown message", "424242", http.StatusNotFound, "No message"},
		{"an ID that is not one", "first", http.StatusNotFound, "whole numbers"},
	} {
		ans := retry(c.id)
		ans.problem(t, c.status, "")
		if detail, _ := ans.body["detail"].(string); !strings.Contains(detail, c.detail) {
			t.Errorf("retrying %s: detail %q, want it to say %q", c.name, detail, c.detail)
		}
	}

	again := retry(strconv.FormatInt(failed, 10)).must(t, http.StatusOK)
	noBody(t, "POST /admin/mail/{id}/retry", again.raw)
	if again.body["status"] != "pending" || again.body["attempts"] != float64(0) {
		t.Fatalf("a retried message: %s; want it pending with its attempts counted afresh", again.raw)
	}
	retry(strconv.FormatInt(failed, 10)).problem(t, http.StatusConflict, "")

	events := n.events(t, audit.MailRetried)
	if len(events) != 1 || events[0].Target != audit.Mail(failed) || events[0].Actor != audit.Client(a.clientID) ||
		events[0].Details["recipient"] != "gone@example.com" {
		t.Fatalf("audit events for the retries: %+v; want one mail.retried of message %d by the client", events, failed)
	}

	// Operators who retry one failed message at once retry it once.
	outboxAs(t, conn, failed, "failed")
	statuses := make([]int, 8)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() { statuses[i] = retry(strconv.FormatInt(failed, 10)).status })
	}
	wg.Wait()
	slices.Sort(statuses)
	if want := []int{200, 409, 409, 409, 409, 409, 409, 409}; !slices.Equal(statuses, want) {
		t.Fatalf("eight retries at once answered %v, want one 200 and the rest 409", statuses)
	}
	if got := len(n.events(t, audit.MailRetried)); got != 2 {
		t.Fatalf("%d mail.retried events after the second round, want 2", got)
	}
}

// A token for reading only is enough to watch the outbox and too little
// to send mail or to retry it, whatever the route.
func TestAReadOnlyAdminCanWatchTheOutboxButNotSendOrRetryMail(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	full := n.automation(t, client.AdminScope)
	reader := n.automation(t, client.AdminReadScope)
	id := mailIDOf(t, full.call(http.MethodPost, "/admin/mail/test", map[string]string{"to": "gone@example.com"}).must(t, http.StatusAccepted))
	outboxAs(t, mustConnect(t, n.dbURL), id, "failed")

	reader.call(http.MethodGet, "/admin/mail?status=failed", nil).must(t, http.StatusOK)
	reader.call(http.MethodGet, "/admin/mail/"+strconv.FormatInt(id, 10), nil).must(t, http.StatusOK)
	for _, path := range []string{"/admin/mail/test", "/admin/mail/" + strconv.FormatInt(id, 10) + "/retry"} {
		ans := reader.call(http.MethodPost, path, map[string]string{"to": "ops@example.com"})
		ans.problem(t, http.StatusForbidden, "")
		if !strings.Contains(ans.header.Get("WWW-Authenticate"), `scope="latchkey:admin"`) {
			t.Errorf("POST %s with a read-only token: the 403 does not name the scope it needs", path)
		}
	}
	list := full.call(http.MethodGet, "/admin/mail", nil).must(t, http.StatusOK).items()
	if len(list) != 1 || list[0]["status"] != "failed" {
		t.Fatalf("after a read-only token's tries the outbox is %v; want the one failed message, unchanged", list)
	}
	if got := len(n.events(t, audit.MailRetried)) + len(n.events(t, audit.MailTestSent)); got != 1 {
		t.Fatalf("%d mail events; want only the full admin's test message", got)
	}
}

func TestAdminTestMailArrivesAndAFailedOneGoesOutOnceRetried(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	n := startNode(t, "LATCHKEY_SMTP_URL", srv.URL())
	a := n.automation(t, client.AdminScope)

	ans := a.call(http.MethodPost, "/admin/mail/test", map[string]string{"to": "ops@example.com"}).must(t, http.StatusAccepted)
	id := mailIDOf(t, ans)
	if loc := ans.header.Get("Location"); loc != "/admin/mail/"+strconv.FormatInt(id, 10) || ans.body["status"] != "pending" || ans.body["template"] != "test" {
		t.Fatalf("POST /admin/mail/test: Location %q, %s; want the pending test message and its URL", loc, ans.raw)
	}
	host := strings.TrimPrefix(n.issuer, "http://")
	if m := srv.Await(t, "ops@example.com"); m.Subject != "Test message from "+host || !strings.Contains(m.Text, host) {
		t.Fatalf("the test message arrived as %q:\n%s", m.Subject, m.Text)
	}
	if sent := a.awaitMailStatus(id, "sent"); sent.body["sent_at"] == nil {
		t.Fatalf("a delivered message: %s", sent.raw)
	}
	events := n.events(t, audit.MailTestSent)
	if len(events) != 1 || events[0].Target != audit.Mail(id) || events[0].Actor != audit.Client(a.clientID) || events[0].Details["recipient"] != "ops@example.com" {
		t.Fatalf("audit events: %+v; want one mail.test_sent of message %d by the client", events, id)
	}

	// A mailbox that does not exist yet: the server refuses it for good,
	// and the message fails at once, saying why.
	srv.Refuse("new-hire@example.com")
	id = mailIDOf(t, a.call(http.MethodPost, "/admin/mail/test", map[string]string{"to": "new-hire@example.com"}).must(t, http.StatusAccepted))
	failed := a.awaitMailStatus(id, "failed")
	if lastError, _ := failed.body["last_error"].(string); !strings.Contains(lastError, "550") {
		t.Fatalf("a refused message: %s; want the server's 550 as last_error", failed.raw)
	}
	srv.Accept("new-hire@example.com") // the mailbox is set up
	a.call(http.MethodPost, "/admin/mail/"+strconv.FormatInt(id, 10)+"/retry", nil).must(t, http.StatusOK)
	srv.Await(t, "new-hire@example.com")
	a.awaitMailStatus(id, "sent")

	for _, c := range []struct {
		body   any
		status int
		field  string
	}{
		{map[string]string{"to": "not an address"}, http.StatusUnprocessableEntity, "to"},
		{map[string]string{"to": "Ops <ops@example.com>"}, http.StatusUnprocessableEntity, "to"},
		{map[string]string{"to": "ops@example.com, ceo@example.com"}, http.StatusUnprocessableEntity, "to"},
		{map[string]string{"to": strings.Repeat("a", 250) + "@example.com"}, http.StatusUnprocessableEntity, "to"},
		{map[string]string{}, http.StatusUnprocessableEntity, "to"},
		{map[string]any{"to": 7}, http.StatusBadRequest, "to"},
		{map[string]string{"recipient": "ops@example.com"}, http.StatusBadRequest, "recipient"},
	} {
		a.call(http.MethodPost, "/admin/mail/test", c.body).problem(t, c.status, c.field)
	}
	if all := a.call(http.MethodGet, "/admin/mail", nil).must(t, http.StatusOK).items(); len(all) != 2 {
		t.Fatalf("the outbox holds %d messages; bad requests must write none", len(all))
	}
}

// mailCLI runs latchkey mail with the settings a test message needs,
// against the database of dbURL.
func mailCLI(t *testing.T, dbURL, issuer string) func(args ...string) (int, string, string) {
	env := vars{"LATCHKEY_DATABASE_URL": dbURL, "LATCHKEY_ISSUER": issuer, "LATCHKEY_SECRETS": testSecret}
	return func(args ...string) (int, string, string) {
		code, stdout, stderr := runCLI(t.Context(), env, append([]string{"mail"}, args...)...)
		noBody(t, "latchkey mail "+strings.Join(args, " "), stdout+stderr)
		return code, stdout, stderr
	}
}

// mailJSON reads messages printed with --output json: one, or a list.
func mailJSON(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal([]byte(stdout), &list); err == nil {
		return list
	}
	var one map[string]any
	if err := json.Unmarshal([]byte(stdout), &one); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	return []map[string]any{one}
}

func TestMailCommandsSendATestMessageANodeDeliversAndRetryAFailedOne(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t)
	n := startNode(t, "LATCHKEY_SMTP_URL", srv.URL())
	cli := mailCLI(t, n.dbURL, n.issuer)

	out := mustRun(t, cli, "test", "--to", "ops@example.com")
	if !strings.HasPrefix(out, "test message ") || !strings.Contains(out, "ops@example.com") || !strings.Contains(out, "pending") {
		t.Fatalf("mail test printed:\n%s", out)
	}
	srv.Await(t, "ops@example.com") // written by the CLI, delivered by the node

	srv.Refuse("new-hire@example.com")
	refused := mailJSON(t, mustRun(t, cli, "test", "--to", "new-hire@example.com", "--output", "json"))[0]
	id := strconv.FormatFloat(refused["id"].(float64), 'f', -1, 64)
	waitFor(t, "the refused message to fail", func() bool {
		list := mailJSON(t, mustRun(t, cli, "list", "--status", "failed", "--output", "json"))
		return len(list) == 1 && fmt.Sprint(list[0]["id"]) == id
	})

	table := mustRun(t, cli, "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID ") || !strings.HasPrefix(lines[1], id+" ") ||
		!strings.Contains(lines[1], "failed") || !strings.Contains(lines[1], "550") || !strings.Contains(lines[2], "sent") {
		t.Fatalf("mail list: want a header, then the failed message with the server's answer, then the sent one:\n%s", table)
	}
	for _, m := range mailJSON(t, mustRun(t, cli, "list", "--output", "json")) {
		var members []string
		for k := range m {
			members = append(members, k)
		}
		slices.Sort(members)
		if !slices.Equal(members, mailFields) {
			t.Fatalf("mail list --output json: members %q, want exactly %q", members, mailFields)
		}
	}
	code, newest, stderr := cli("list", "--limit", "1")
	if code != 0 || strings.Count(strings.TrimSpace(newest), "\n") != 1 || !strings.Contains(stderr, "--limit 0") {
		t.Fatalf("mail list --limit 1: exit %d, stdout %q, stderr %q; want one message and a note that there are more", code, newest, stderr)
	}

	srv.Accept("new-hire@example.com")
	if out := mustRun(t, cli, "retry", id); !strings.Contains(out, "is pending again") {
		t.Fatalf("mail retry printed:\n%s", out)
	}
	srv.Await(t, "new-hire@example.com")
	waitFor(t, "the retried message to be sent", func() bool {
		return len(mailJSON(t, mustRun(t, cli, "list", "--status", "sent", "--output", "json"))) == 2
	})
	code, _, stderr = cli("retry", id)
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "latchkey mail: message "+id+" was sent") {
		t.Fatalf("retrying a sent message: exit %d, stderr %q; want exit 1 and one line saying it was sent", code, stderr)
	}

	// The CLI's changes are audited as the operator's, like the API's.
	for action, want := range map[string]int{audit.MailTestSent: 2, audit.MailRetried: 1} {
		events := n.events(t, action)
		if len(events) != want {
			t.Fatalf("%d %s events, want %d", len(events), action, want)
		}
		for _, e := range events {
			if !strings.HasPrefix(e.Actor, "cli:") {
				t.Errorf("%s recorded as done by %q, want the operator (cli:NAME)", action, e.Actor)
			}
		}
	}
}

func TestMailCommandsRefuseBadInputWithOneLine(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	cli := mailCLI(t, dbURL, "http://127.0.0.1:8080")
	pending := mailJSON(t, mustRun(t, cli, "test", "--to", "ops@example.com", "--output", "json"))[0]
	pendingID := fmt.Sprint(pending["id"])

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"retry", "424242"}, 1, "no message in the outbox has ID 424242"},
		{[]string{"retry", pendingID}, 1, "message " + pendingID + " is pending, not failed: a node retries it by itself"},
		{[]string{"retry", "ops@example.com"}, 2, `"ops@example.com" is not a message ID`},
		{[]string{"retry", "0"}, 2, `"0" is not a message ID`},
		{[]string{"retry"}, 2, "missing ID"},
		{[]string{"list", "--status", "bounced"}, 2, `--status must be pending, failed or sent, not "bounced"`},
		{[]string{"list", "--limit", "-1"}, 2, "--limit is -1"},
		{[]string{"test", "--to", "not an address"}, 1, "to: must be one email address"},
		{[]string{"test", "--to", "Ops <ops@example.com>"}, 1, "to: must be one email address"},
		{[]string{"test"}, 2, "--to is required"},
	} {
		code, stdout, stderr := cli(c.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		name := "latchkey mail " + strings.Join(c.args, " ")
		switch {
		case code != c.code || stdout != "":
			t.Errorf("%s: exit %d, stdout %q; want exit %d and nothing on stdout", name, code, stdout, c.code)
		case !strings.HasPrefix(lines[0], "latchkey mail: ") || !strings.Contains(lines[0], c.want):
			t.Errorf("%s: stderr %q; want a line saying %q", name, stderr, c.want)
		case c.code == 1 && len(lines) != 1, c.code == 2 && (len(lines) != 2 || !strings.HasPrefix(lines[1], "Run 'latchkey mail ")):
			// A mistake in the call is one line and the help to read.
			t.Errorf("%s: stderr %q; want one line (and, for a mistake in the call, the help to read)", name, stderr)
		}
	}

	// A test message is sealed with LATCHKEY_SECRETS: without it, nothing
	// is written.
	code, _, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": dbURL, "LATCHKEY_ISSUER": "http://127.0.0.1:8080"},
		"mail", "test", "--to", "ops@example.com")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "LATCHKEY_SECRETS") {
		t.Errorf("mail test without LATCHKEY_SECRETS: exit %d, stderr %q; want exit 1 and one line naming it", code, stderr)
	}
	if list := mailJSON(t, mustRun(t, cli, "list", "--output", "json")); len(list) != 1 || list[0]["status"] != "pending" {
		t.Fatalf("the outbox after bad input: %v; want only the one pending message", list)
	}
}
