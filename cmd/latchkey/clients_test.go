package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/storage/postgres"
)

// clientsCLI runs latchkey clients against its own fresh database and
// returns a function that runs subcommands there, with the database URL.
func clientsCLI(t *testing.T) (func(args ...string) (int, string, string), string) {
	t.Helper()
	url := pgtest.URL(t)
	env := vars{"LATCHKEY_DATABASE_URL": url}
	return func(args ...string) (int, string, string) {
		return runCLI(t.Context(), env, append([]string{"clients"}, args...)...)
	}, url
}

// decodeClient parses a client printed with --output json, as a map so
// that a test sees exactly which members are there.
func decodeClient(t *testing.T, stdout string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, stdout)
	}
	return m
}

// mustRun runs a subcommand that must succeed and returns its stdout.
func mustRun(t *testing.T, cli func(...string) (int, string, string), args ...string) string {
	t.Helper()
	code, stdout, stderr := cli(args...)
	if code != 0 {
		t.Fatalf("latchkey clients %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// strs turns a JSON array decoded into []any back into strings.
func strs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func TestClientsCreatePrintsTheSecretOnceAsJSON(t *testing.T) {
	t.Parallel()
	cli, url := clientsCLI(t)

	code, stdout, stderr := cli("create", "--name", "billing", "--grant-type", "client_credentials", "--scope", "invoices.read", "--output", "json")
	if code != 0 {
		t.Fatalf("create: exit %d, stderr %q", code, stderr)
	}
	created := decodeClient(t, stdout)
	id, _ := created["client_id"].(string)
	secret, _ := created["client_secret"].(string)
	if id == "" || created["client_name"] != "billing" || created["scope"] != "invoices.read" ||
		created["token_endpoint_auth_method"] != client.AuthSecretBasic ||
		!slices.Equal(strs(created["grant_types"]), []string{"client_credentials"}) {
		t.Fatalf("created client is not what was asked for:\n%s", stdout)
	}
	if len(secret) != 43 {
		t.Fatalf("client_secret %q is %d characters, want 43 (256 bits, base64url)", secret, len(secret))
	}
	if !strings.Contains(stderr, "latchkey clients: store the client secret now; it cannot be shown again") {
		t.Fatalf("stderr %q does not tell the operator to store the secret", stderr)
	}

	got := decodeClient(t, mustRun(t, cli, "get", id, "--output", "json"))
	if _, ok := got["client_secret"]; ok || got["client_id"] != id {
		t.Fatalf("get shows %v; want the same client_id and no client_secret", got)
	}

	store, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stored, err := store.ClientByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.SecretHash, client.HashSecret(secret)) {
		t.Fatal("the stored secret hash is not the SHA-256 of the printed secret")
	}
}

func TestClientsCreateRejectsInvalidMetadataInOneLine(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)

	code, stdout, stderr := cli("create", "--grant-type", "password", "--grant-type", "authorization_code",
		"--redirect-uri", "http://example.com/cb")
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "latchkey clients: ") {
		t.Fatalf("exit %d, stderr %q; want exit 1 and one line", code, stderr)
	}
	for _, field := range []string{"grant_types", "password", "redirect_uris", "https"} {
		if !strings.Contains(stderr, field) {
			t.Errorf("stderr %q does not mention %q", stderr, field)
		}
	}
	if stdout != "" {
		t.Errorf("stdout %q; want nothing printed for a rejected client", stdout)
	}
	if list := mustRun(t, cli, "list", "--output", "json"); strings.TrimSpace(list) != "[]" {
		t.Fatalf("a rejected client was stored: %s", list)
	}
}

func TestClientsCreateRefusesATakenID(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	mustRun(t, cli, "create", "--id", "billing", "--grant-type", "client_credentials")
	code, _, stderr := cli("create", "--id", "billing", "--grant-type", "client_credentials")
	if code != 1 || stderr != "latchkey clients: a client with ID \"billing\" already exists\n" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestClientsUpdateChangesOnlyGivenFields(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	created := decodeClient(t, mustRun(t, cli, "create", "--name", "web", "--scope", "openid profile",
		"--redirect-uri", "https://app.example.com/cb", "--output", "json"))
	id := created["client_id"].(string)

	code, stdout, stderr := cli("update", id, "--name", "web app", "--output", "json")
	if code != 0 {
		t.Fatalf("update --name: exit %d, stderr %q", code, stderr)
	}
	updated := decodeClient(t, stdout)
	if updated["client_name"] != "web app" || updated["scope"] != "openid profile" ||
		!slices.Equal(strs(updated["redirect_uris"]), []string{"https://app.example.com/cb"}) {
		t.Fatalf("update --name changed more than the name:\n%s", stdout)
	}
	if _, ok := updated["client_secret"]; ok || strings.Contains(stderr, "store the client secret") {
		t.Fatalf("an update that kept the auth method printed a secret:\n%s\n%s", stdout, stderr)
	}

	// The ID may also follow the flags.
	stdout = mustRun(t, cli, "update", "--redirect-uri", "https://a.example.com/cb", "--redirect-uri", "https://b.example.com/cb", "--output", "json", id)
	updated = decodeClient(t, stdout)
	if got := strs(updated["redirect_uris"]); !slices.Equal(got, []string{"https://a.example.com/cb", "https://b.example.com/cb"}) {
		t.Fatalf("redirect_uris after update are %q; want the two given, replacing the old one", got)
	}
	if updated["client_name"] != "web app" {
		t.Fatalf("update --redirect-uri changed the name:\n%s", stdout)
	}

	if code, _, stderr := cli("update", id, "--grant-type", "client_credentials"); code != 1 || !strings.Contains(stderr, "redirect_uris") {
		t.Fatalf("an update that leaves the client invalid: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := cli("update", "nobody", "--name", "x"); code != 1 || !strings.Contains(stderr, `no client with ID "nobody"`) {
		t.Fatalf("updating an unknown client: exit %d, stderr %q", code, stderr)
	}
}

func TestClientsUpdatePrintsASecretWhenTheClientStartsUsingOne(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	mustRun(t, cli, "create", "--id", "spa", "--auth-method", "none", "--redirect-uri", "http://127.0.0.1/cb")
	code, stdout, stderr := cli("update", "spa", "--auth-method", "client_secret_post", "--output", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if secret, _ := decodeClient(t, stdout)["client_secret"].(string); len(secret) != 43 || !strings.Contains(stderr, "store the client secret now") {
		t.Fatalf("switching to client_secret_post: stdout %s, stderr %q; want a new secret", stdout, stderr)
	}
}

func TestClientsUpdateAwayFromPrivateKeyJWTDropsTheKeys(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	mustRun(t, cli, "create", "--id", "reports", "--grant-type", "client_credentials",
		"--auth-method", "private_key_jwt", "--jwks-uri", "https://reports.example.com/jwks.json")
	code, stdout, stderr := cli("update", "reports", "--auth-method", "client_secret_basic", "--output", "json")
	if code != 0 {
		t.Fatalf("switching to client_secret_basic: exit %d, stderr %q", code, stderr)
	}
	got := decodeClient(t, stdout)
	if _, ok := got["jwks_uri"]; ok || got["token_endpoint_auth_signing_alg"] != nil {
		t.Fatalf("the private_key_jwt keys survived the switch: %s", stdout)
	}
	if secret, _ := got["client_secret"].(string); len(secret) != 43 {
		t.Fatalf("no secret for the client that now needs one: %s", stdout)
	}
}

func TestClientsListAndDelete(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	mustRun(t, cli, "create", "--id", "alpha", "--name", "Alpha service", "--grant-type", "client_credentials")
	mustRun(t, cli, "create", "--id", "beta", "--grant-type", "client_credentials")

	var listed []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, cli, "list", "--output", "json")), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("list --output json: %v, %d clients; want 2", err, len(listed))
	}
	table := strings.Split(strings.TrimSpace(mustRun(t, cli, "list")), "\n")
	if len(table) != 3 || !strings.HasPrefix(table[0], "ID") || !strings.HasPrefix(table[1], "alpha") || !strings.HasPrefix(table[2], "beta") {
		t.Fatalf("list table:\n%s", strings.Join(table, "\n"))
	}
	if !strings.Contains(table[1], "Alpha service") || !strings.Contains(table[1], "client_credentials") {
		t.Fatalf("list row %q lacks the name or grant types", table[1])
	}

	if out := mustRun(t, cli, "delete", "alpha"); out != "deleted client alpha\n" {
		t.Fatalf("delete printed %q", out)
	}
	if code, _, stderr := cli("get", "alpha"); code != 1 || stderr != "latchkey clients: no client with ID \"alpha\"\n" {
		t.Fatalf("get after delete: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := cli("delete", "alpha"); code != 1 || !strings.Contains(stderr, `no client with ID "alpha"`) {
		t.Fatalf("deleting twice: exit %d, stderr %q", code, stderr)
	}
	if table := strings.Split(strings.TrimSpace(mustRun(t, cli, "list")), "\n"); len(table) != 2 {
		t.Fatalf("list after delete:\n%s", strings.Join(table, "\n"))
	}
}

func TestClientsGetPrintsATable(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	code, stdout, stderr := cli("create", "--id", "web", "--name", "Web", "--grant-type", "authorization_code", "--grant-type", "refresh_token",
		"--redirect-uri", "https://app.example.com/cb", "--redirect-uri", "https://app.example.com/cb2", "--access-token-lifespan", "10m")
	if code != 0 || !strings.Contains(stdout, "client_secret ") || !strings.Contains(stderr, "store the client secret now") {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	stdout = mustRun(t, cli, "get", "web")
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			rows[f[0]] = f[1]
		}
	}
	want := map[string]string{
		"client_id": "web", "client_name": "Web", "grant_types": "authorization_code",
		"redirect_uris": "https://app.example.com/cb", "token_endpoint_auth_method": "client_secret_basic",
		"access_token_format": "opaque", "skip_consent": "false", "access_token_lifespan": "10m0s",
	}
	for field, value := range want {
		if rows[field] != value {
			t.Errorf("%s is %q, want %q", field, rows[field], value)
		}
	}
	for _, s := range []string{"refresh_token", "https://app.example.com/cb2", "created_at", "updated_at"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("table lacks %q", s)
		}
	}
	if _, ok := rows["client_secret"]; ok || strings.Contains(stdout, "refresh_token_lifespan") {
		t.Errorf("table shows a secret or an unset lifespan:\n%s", stdout)
	}
}

func TestClientsRotateSecret(t *testing.T) {
	t.Parallel()
	cli, url := clientsCLI(t)
	first, _ := decodeClient(t, mustRun(t, cli, "create", "--id", "backend", "--grant-type", "client_credentials", "--output", "json"))["client_secret"].(string)

	code, stdout, stderr := cli("rotate-secret", "backend", "--output", "json")
	if code != 0 {
		t.Fatalf("rotate-secret: exit %d, stderr %q", code, stderr)
	}
	rotated := decodeClient(t, stdout)
	second, _ := rotated["client_secret"].(string)
	if len(second) != 43 || second == first || rotated["client_id"] != "backend" || !strings.Contains(stderr, "store the client secret now") {
		t.Fatalf("rotate-secret: stdout %s, stderr %q; want a new secret", stdout, stderr)
	}

	store, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	stored, err := store.ClientByID(t.Context(), "backend")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.SecretHash, client.HashSecret(second)) || !bytes.Equal(stored.PreviousSecretHash, client.HashSecret(first)) {
		t.Fatal("after a rotation with the default grace, the store does not hold the new secret and the old one")
	}

	third, _ := decodeClient(t, mustRun(t, cli, "rotate-secret", "--grace", "0", "--output", "json", "backend"))["client_secret"].(string)
	if stored, err = store.ClientByID(t.Context(), "backend"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored.SecretHash, client.HashSecret(third)) || len(stored.PreviousSecretHash) != 0 {
		t.Fatal("after --grace 0, the old secret is still accepted")
	}

	// Over 30 days is the Manager's to refuse, as for the admin API.
	if code, _, stderr := cli("rotate-secret", "--grace", "721h", "backend"); code != 1 || !strings.Contains(stderr, "grace: is 721h0m0s") {
		t.Fatalf("rotate-secret --grace 721h: exit %d, stderr %q; want the grace refused", code, stderr)
	}

	mustRun(t, cli, "create", "--id", "spa", "--auth-method", "none", "--grant-type", "authorization_code", "--redirect-uri", "http://127.0.0.1/cb")
	code, _, stderr = cli("rotate-secret", "spa")
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, `client "spa" has no secret to rotate`) {
		t.Fatalf("rotating a public client's secret: exit %d, stderr %q", code, stderr)
	}
}

func TestClientsMetadataFile(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	dir := t.TempDir()
	doc := filepath.Join(dir, "client.json")
	writeFile(t, doc, `{
		"client_name": "from the file",
		"grant_types": ["authorization_code", "refresh_token"],
		"redirect_uris": ["https://app.example.com/cb"],
		"scope": "openid email",
		"access_token_format": "jwt",
		"refresh_token_lifespan": "48h"
	}`)

	c := decodeClient(t, mustRun(t, cli, "create", "--metadata", doc, "--name", "override", "--output", "json"))
	if c["client_name"] != "override" || c["scope"] != "openid email" || c["access_token_format"] != "jwt" ||
		c["refresh_token_lifespan"] != "48h0m0s" ||
		!slices.Equal(strs(c["grant_types"]), []string{"authorization_code", "refresh_token"}) {
		t.Fatalf("client from --metadata with --name:\n%v", c)
	}

	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `{"client_name": "x", "grant_type": ["client_credentials"]}`)
	code, _, stderr := cli("create", "--metadata", bad)
	if code != 1 || !strings.Contains(stderr, `unknown field "grant_type"`) || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("unknown field: exit %d, stderr %q", code, stderr)
	}

	// A client's JSON from get, edited, goes back in through update.
	id := c["client_id"].(string)
	c = decodeClient(t, mustRun(t, cli, "get", id, "--output", "json"))
	edited := filepath.Join(dir, "edited.json")
	c["scope"] = "openid"
	b, _ := json.Marshal(c)
	writeFile(t, edited, string(b))
	if got := decodeClient(t, mustRun(t, cli, "update", id, "--metadata", edited, "--output", "json")); got["scope"] != "openid" || got["client_name"] != "override" {
		t.Fatalf("update --metadata with the edited JSON of get:\n%v", got)
	}
	if code, _, stderr := cli("update", "someone-else", "--metadata", edited); code != 1 || !strings.Contains(stderr, "describes client") {
		t.Fatalf("update with another client's document: exit %d, stderr %q", code, stderr)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A mistake in how a subcommand is called is one line, then a pointer to
// the subcommand's help, and exit code 2.
func TestClientsUsageErrors(t *testing.T) {
	t.Parallel()
	env := vars{"LATCHKEY_DATABASE_URL": pgtest.URL(t)}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"clients", "frobnicate"}, `unknown subcommand "frobnicate"; latchkey clients has create, delete, get, list, rotate-secret, update`},
		{[]string{"clients", "get"}, "missing ID; usage: latchkey clients get ID [flags]"},
		{[]string{"clients", "get", "a", "b"}, `unexpected argument "b"; usage: latchkey clients get ID [flags]`},
		{[]string{"clients", "get", "--output", "json", "a", "b"}, `unexpected argument "b"`},
		{[]string{"clients", "list", "extra"}, `unexpected argument "extra"; usage: latchkey clients list [flags]`},
		{[]string{"clients", "list", "--output", "yaml"}, `invalid argument "yaml" for "--output" flag: must be json or table`},
		{[]string{"clients", "delete"}, "missing ID"},
		{[]string{"clients", "update", "a"}, "nothing to change"},
		{[]string{"clients", "create", "--scope", "a", "--scope", "b"}, "given twice"},
		{[]string{"clients", "get", "a", "--grace", "1h"}, "unknown flag: --grace"},
		{[]string{"clients", "rotate-secret", "a", "--grace", "-1s"}, "--grace is -1s"},
		{[]string{"clients", "rotate-secret", "a", "--grcae", "1h"}, "unknown flag: --grcae; did you mean --grace?"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t.Context(), env, c.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		sub := c.args[1]
		if sub == "frobnicate" {
			sub = ""
		}
		hint := "Run '" + strings.TrimSpace("latchkey clients "+sub) + " --help'."
		if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "latchkey clients: ") || !strings.Contains(lines[0], c.want) || lines[1] != hint {
			t.Errorf("latchkey %s: exit %d, stderr %q; want exit 2, a line with %q and %q", strings.Join(c.args, " "), code, stderr, c.want, hint)
		}
	}
}

func TestClientsReadsServerSettingsFromFlags(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	code, _, stderr := runCLI(t.Context(), vars{}, "clients", "create", "--database-url", url, "--id", "svc", "--grant-type", "client_credentials",
		"--access-token-lifespan", "5m")
	if code != 0 {
		t.Fatalf("create with --database-url: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": url}, "clients", "get", "svc", "--output", "json")
	if code != 0 || decodeClient(t, stdout)["access_token_lifespan"] != "5m0s" {
		t.Fatalf("get: exit %d, stdout %s, stderr %q; want the client's own 5m lifespan", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t.Context(), vars{}, "clients", "list"); code != 1 || !strings.Contains(stderr, "LATCHKEY_DATABASE_URL") {
		t.Fatalf("without a database: exit %d, stderr %q", code, stderr)
	}
}

func TestClientsIntrospectAnyTokenIsGivenAndTakenAwayByFlag(t *testing.T) {
	t.Parallel()
	cli, _ := clientsCLI(t)
	created := decodeClient(t, mustRun(t, cli, "create", "--name", "gateway", "--grant-type", "client_credentials",
		"--introspect-any-token", "--output", "json"))
	if created["introspect_any_token"] != true {
		t.Fatalf("create --introspect-any-token: %v", created)
	}
	id := created["client_id"].(string)
	if table := mustRun(t, cli, "get", id); !strings.Contains(table, "introspect_any_token") {
		t.Fatalf("the table of a client that may introspect any token does not say so:\n%s", table)
	}
	if got := decodeClient(t, mustRun(t, cli, "update", id, "--name", "gateway 2", "--output", "json")); got["introspect_any_token"] != true {
		t.Fatalf("an update without the flag changed it: %v", got)
	}
	if got := decodeClient(t, mustRun(t, cli, "update", id, "--introspect-any-token=false", "--output", "json")); got["introspect_any_token"] != false {
		t.Fatalf("update --introspect-any-token=false: %v", got)
	}
}
