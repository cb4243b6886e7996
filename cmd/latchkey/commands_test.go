package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/storage/postgres"
)

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	env := vars{"LATCHKEY_DATABASE_URL": pgtest.EmptyURL(t)}
	steps := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"migrate", "status"}, 0, "schema version 0 of "},
		{[]string{"migrate", "status"}, 0, "pending: 001_signing_keys"},
		{[]string{"migrate", "up"}, 0, "up to date"},
		{[]string{"migrate", "up"}, 0, "up to date"}, // again: nothing to do, no error
		{[]string{"migrate", "status"}, 0, "up to date"},
		{[]string{"migrate", "sideways"}, 2, `unknown subcommand "sideways"; latchkey migrate has status, up`},
		{[]string{"migrate"}, 2, "Usage:\n  latchkey migrate [command]"},
	}
	for _, s := range steps {
		code, stdout, stderr := runCLI(t.Context(), env, s.args...)
		if code != s.wantCode || !strings.Contains(stdout+stderr, s.want) {
			t.Fatalf("latchkey %s: exit %d, output %q; want exit %d and %q", strings.Join(s.args, " "), code, stdout+stderr, s.wantCode, s.want)
		}
	}
}

func TestMigrateWithoutDatabaseNamesTheSetting(t *testing.T) {
	code, _, stderr := runCLI(t.Context(), vars{}, "migrate", "up")
	if code != 1 || !strings.Contains(stderr, "LATCHKEY_DATABASE_URL") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestKeysCommands(t *testing.T) {
	t.Parallel()
	env := vars{"LATCHKEY_DATABASE_URL": pgtest.URL(t), "LATCHKEY_SECRETS": testSecret}
	keysCLI := func(args ...string) (int, string, string) {
		return runCLI(t.Context(), env, append([]string{"keys"}, args...)...)
	}
	rows := func(out string) [][]string {
		var r [][]string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			r = append(r, strings.Fields(line))
		}
		return r
	}

	code, out, stderr := keysCLI("rotate")
	if code != 0 || len(rows(out)) != len(keys.Algorithms) {
		t.Fatalf("keys rotate: exit %d, stdout %q, stderr %q; want a new key per algorithm", code, out, stderr)
	}
	first := rows(out)
	if _, out, _ = keysCLI("rotate"); len(rows(out)) != len(keys.Algorithms) {
		t.Fatalf("second rotate: %q", out)
	}
	second := rows(out)

	_, out, _ = keysCLI("list")
	listed := rows(out)
	if len(listed) != 2*len(keys.Algorithms) {
		t.Fatalf("keys list after two rotations shows %d keys, want two per algorithm:\n%s", len(listed), out)
	}
	states := map[string]string{}
	for _, r := range listed {
		states[r[0]] = r[3]
	}
	for _, r := range second {
		if states[r[0]] != "signing" {
			t.Errorf("newest key %s is %q, want signing", r[0], states[r[0]])
		}
	}
	for _, r := range first {
		if states[r[0]] != "published" {
			t.Errorf("rotated-out key %s is %q, want published", r[0], states[r[0]])
		}
	}

	if code, _, stderr := keysCLI("retire", second[0][0]); code != 1 || !strings.Contains(stderr, "rotate before retiring") {
		t.Fatalf("retiring the signing key: exit %d, stderr %q; want a refusal", code, stderr)
	}
	if code, out, stderr := keysCLI("retire", first[0][0]); code != 0 || !strings.Contains(out, "retired") {
		t.Fatalf("retiring an old key: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if code, _, stderr := keysCLI("retire", "no-such-kid"); code != 1 || !strings.Contains(stderr, `no active key with kid "no-such-kid"`) {
		t.Fatalf("retiring an unknown kid: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := keysCLI("retire"); code != 2 {
		t.Fatalf("retire without a kid: exit %d, want 2", code)
	}
}

// Rotating LATCHKEY_SECRETS ends with keys reseal: after it, the old
// secret can go, and the signing keys and users' authenticator apps keep
// working under the new one alone.
func TestKeysResealLetsTheOldSecretGo(t *testing.T) {
	t.Parallel()
	const newSecret = "new-secret-new-secret-new-secret-4567"
	ctx := t.Context()
	url := pgtest.URL(t)
	before := vars{"LATCHKEY_DATABASE_URL": url, "LATCHKEY_SECRETS": testSecret}
	if code, _, stderr := runCLI(ctx, before, "keys", "rotate"); code != 0 {
		t.Fatalf("keys rotate: exit %d, stderr %q", code, stderr)
	}
	store, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	auditLog := audit.New(store, quietLogger())
	u, err := identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{}).
		Create(ctx, identity.User{Email: "ada@example.com"}, "")
	if err != nil {
		t.Fatal(err)
	}
	boxOf := func(secret string) *seal.Box {
		box, err := seal.New([][]byte{[]byte(secret)})
		if err != nil {
			t.Fatal(err)
		}
		return box
	}
	mfaUnder := func(secret string) *identity.MFA {
		return identity.NewMFA(store, boxOf(secret), "id.example.com", identity.Throttle{MaxFailures: 100, Window: time.Hour}, auditLog)
	}
	e, err := mfaUnder(testSecret).Enrol(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mfaUnder(testSecret).Confirm(ctx, u.ID, totpCode(t, e.Secret, 0)); err != nil {
		t.Fatal(err)
	}

	during := vars{"LATCHKEY_DATABASE_URL": url, "LATCHKEY_SECRETS": newSecret + "," + testSecret}
	resealed := fmt.Sprintf("re-encrypted %d signing keys and 1 TOTP secrets", len(keys.Algorithms))
	for _, want := range []string{resealed, "re-encrypted 0 signing keys and 0 TOTP secrets"} {
		if code, out, stderr := runCLI(ctx, during, "keys", "reseal"); code != 0 || !strings.Contains(out, want) {
			t.Fatalf("keys reseal: exit %d, stdout %q, stderr %q; want %q", code, out, stderr, want)
		}
	}

	// Init opens every active key, as a starting node does.
	if err := keys.NewManager(store, boxOf(newSecret), quietLogger(), auditLog).Init(ctx); err != nil {
		t.Fatalf("a node with the new secret alone: %v", err)
	}
	if err := mfaUnder(newSecret).Verify(ctx, u.ID, totpCode(t, e.Secret, 1)); err != nil {
		t.Fatalf("the authenticator app's code after the old secret went: %v", err)
	}
}

func TestBenchMeasuresEveryScenarioAndCleansUp(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	code, stdout, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": url},
		"bench", "--duration", "300ms", "--warmup", "0s", "--concurrency", "2")
	if code != 0 {
		t.Fatalf("bench: exit %d, stderr %q", code, stderr)
	}
	for _, scenario := range []string{"cc-opaque", "cc-jwt", "cc-jwt-es256", "cc-jwt-eddsa", "introspect", "cc-plan"} {
		var row []string
		for line := range strings.Lines(stdout) {
			if f := strings.Fields(line); len(f) == 6 && f[0] == scenario {
				row = f
			}
		}
		if row == nil {
			t.Fatalf("no row for %s in:\n%s", scenario, stdout)
		}
		if row[1] == "0" || row[5] != "0" {
			t.Errorf("%s: %s requests, %s errors; want some requests and no errors", scenario, row[1], row[5])
		}
	}
	store, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if left, err := store.FindClients(t.Context(), client.Query{}); err != nil || len(left) != 0 {
		t.Fatalf("bench left %d clients behind (err %v)", len(left), err)
	}
	if plans, err := store.Plans(t.Context()); err != nil || len(plans) != 0 {
		t.Fatalf("bench left %d usage plans behind (err %v)", len(plans), err)
	}
}

func TestJanitorCommandSweepsOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	conn := mustConnect(t, url)
	if _, err := conn.Exec(t.Context(), `
		INSERT INTO clients (id, metadata) VALUES ('app', '{"grant_types":["client_credentials"]}');
		INSERT INTO oauth_access_tokens (signature, request_id, client_id, requested_at, expires_at, request, session)
		VALUES ('expired', 'f1', 'app', now() - interval '2 hours', now() - interval '1 hour', '{}', '{}'),
		       ('live', 'f2', 'app', now(), now() + interval '1 hour', '{}', '{}');`); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": url}, "janitor")
	if code != 0 || !strings.Contains(stdout, "oauth_access_tokens\t1\n") {
		t.Fatalf("janitor: exit %d, stdout %q, stderr %q; want one access token swept", code, stdout, stderr)
	}
	rows, _ := conn.Query(t.Context(), `SELECT signature FROM oauth_access_tokens`)
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(left) != 1 || left[0] != "live" {
		t.Fatalf("left %v (err %v), want only the live token", left, err)
	}
}

func mustConnect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
