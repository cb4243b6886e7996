package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/storage/postgres"
)

// usersCLI runs latchkey users against its own fresh database.
type usersCLI struct {
	t   *testing.T
	url string
}

// newUsersCLI gives a test its own database for latchkey users.
func newUsersCLI(t *testing.T) usersCLI {
	t.Helper()
	return usersCLI{t: t, url: pgtest.URL(t)}
}

// run runs a subcommand with nothing on stdin.
func (c usersCLI) run(args ...string) (int, string, string) {
	return c.runWithStdin("", args...)
}

// runWithStdin runs a subcommand with stdin piped in.
func (c usersCLI) runWithStdin(stdin string, args ...string) (int, string, string) {
	return runCLIWithStdin(c.t.Context(), vars{"LATCHKEY_DATABASE_URL": c.url}, stdin, append([]string{"users"}, args...)...)
}

// must runs a subcommand that must succeed and returns its stdout.
func (c usersCLI) must(args ...string) string {
	c.t.Helper()
	return c.mustWithStdin("", args...)
}

// mustWithStdin runs, with stdin piped in, a subcommand that must succeed
// and returns its stdout.
func (c usersCLI) mustWithStdin(stdin string, args ...string) string {
	c.t.Helper()
	code, stdout, stderr := c.runWithStdin(stdin, args...)
	if code != 0 {
		c.t.Fatalf("latchkey users %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// manager opens the test's database the way a node does, to check what
// the command stored: above all, whether a password signs in.
func (c usersCLI) manager() *identity.Manager {
	c.t.Helper()
	store, err := postgres.Open(c.url, postgres.Options{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(store.Close)
	return identity.NewManager(store, identity.NewHasher(), audit.New(store, slog.New(slog.DiscardHandler)), identity.Throttle{})
}

// decodeUser parses a user printed with --output json, as a map so that a
// test sees exactly which members are there.
func decodeUser(t *testing.T, stdout string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatalf("output is not a JSON object: %v\n%s", err, stdout)
	}
	return m
}

// tableRows reads a field/value table into a map; values may hold spaces.
func tableRows(stdout string) map[string]string {
	rows := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			rows[f[0]] = strings.Join(f[1:], " ")
		}
	}
	return rows
}

// oneErrorLine fails the test unless the command failed with exit 1 and
// exactly one line on stderr, from latchkey users, containing want.
func oneErrorLine(t *testing.T, code int, stderr, want string) {
	t.Helper()
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "latchkey users: ") || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want exit 1 and one line containing %q", code, stderr, want)
	}
}

// assertNoUsers fails the test if any user is stored.
func assertNoUsers(t *testing.T, cli usersCLI) {
	t.Helper()
	if list := cli.must("list", "--output", "json"); strings.TrimSpace(list) != "[]" {
		t.Fatalf("users were stored: %s", list)
	}
}

func TestUsersCreateReadsThePasswordFromStdin(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	const password = "correct horse battery staple"

	code, stdout, stderr := cli.runWithStdin(password+"\n", "create", "--email", "ada@example.com", "--name", "Ada Lovelace", "--output", "json")
	if code != 0 {
		t.Fatalf("create: exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, "Password:") {
		t.Errorf("stderr %q: prompted although stdin is not a terminal", stderr)
	}
	created := decodeUser(t, stdout)
	sub, _ := created["sub"].(string)
	if _, err := uuid.Parse(sub); err != nil {
		t.Fatalf("sub %q is not a UUID: %v", sub, err)
	}
	if created["email"] != "ada@example.com" || created["name"] != "Ada Lovelace" || created["disabled"] != false {
		t.Fatalf("created user is not what was asked for:\n%s", stdout)
	}
	if strings.Contains(strings.ToLower(stdout), "password") || strings.Contains(stdout, "argon2") {
		t.Fatalf("the output shows the password or its hash:\n%s", stdout)
	}

	u, err := cli.manager().Authenticate(t.Context(), "ada@example.com", password, nil)
	if err != nil {
		t.Fatalf("signing in with the password from stdin: %v", err)
	}
	if u.ID != sub {
		t.Fatalf("signed in as %s, want the created user %s", u.ID, sub)
	}
}

func TestUsersCreateRefusesAWeakPassword(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	cases := []struct{ stdin, want string }{
		{"password123\n", "one of the most common passwords"},
		{"short\n", "at least 8 characters"},
		{"ADA@example.com\n", "must not be your email address"},
		{"", "no password on stdin"},
		{"\r\nnext line is not read\n", "no password on stdin"},
	}
	for _, c := range cases {
		code, stdout, stderr := cli.runWithStdin(c.stdin, "create", "--email", "ada@example.com")
		oneErrorLine(t, code, stderr, c.want)
		if stdout != "" {
			t.Errorf("stdin %q: stdout %q; want nothing printed for a refused user", c.stdin, stdout)
		}
	}
	assertNoUsers(t, cli)
}

func TestUsersPasswordNeverComesFromArguments(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	code, _, stderr := cli.run("create", "--email", "a@b.c", "--password", "x")
	if code != 2 || !strings.Contains(stderr, "unknown flag: --password") {
		t.Fatalf("create --password: exit %d, stderr %q; want exit 2", code, stderr)
	}
	sub := decodeUser(t, cli.must("create", "--email", "a@b.c", "--no-password", "--output", "json"))["sub"].(string)
	for _, args := range [][]string{
		{"set-password", sub, "correct horse battery staple"},
		{"set-password", sub, "--password", "correct horse battery staple"},
	} {
		if code, _, stderr := cli.run(args...); code != 2 {
			t.Errorf("latchkey users %s: exit %d, stderr %q; want exit 2", strings.Join(args, " "), code, stderr)
		}
	}
}

func TestUsersEmailsAreUniqueWithoutCase(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	cli.must("create", "--email", "ada@example.com", "--no-password")
	const want = "latchkey users: another user already has the email ADA@EXAMPLE.COM\n"

	// With a password the email is checked before it is asked for, and
	// without one the database refuses it: both say the same.
	if code, _, stderr := cli.runWithStdin("correct horse battery staple\n", "create", "--email", "ADA@EXAMPLE.COM"); code != 1 || stderr != want {
		t.Fatalf("create with a password: exit %d, stderr %q; want %q", code, stderr, want)
	}
	if code, _, stderr := cli.run("create", "--email", "ADA@EXAMPLE.COM", "--no-password"); code != 1 || stderr != want {
		t.Fatalf("create without a password: exit %d, stderr %q; want %q", code, stderr, want)
	}

	cli.must("create", "--email", "bea@example.com", "--no-password")
	if code, _, stderr := cli.run("update", "bea@example.com", "--email", "ADA@EXAMPLE.COM"); code != 1 || stderr != want {
		t.Fatalf("update to a taken email: exit %d, stderr %q; want %q", code, stderr, want)
	}
	if got := decodeUser(t, cli.must("get", "bea@example.com", "--output", "json")); got["email"] != "bea@example.com" {
		t.Fatalf("a refused update changed the email: %v", got)
	}
}

func TestUsersUpdateChangesOnlyGivenFields(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	created := decodeUser(t, cli.must("create", "--email", "ada@example.com", "--no-password", "--name", "Ada Lovelace",
		"--given-name", "Ada", "--family-name", "Lovelace", "--email-verified",
		"--claim", "locale=en-GB", "--claim", "phone_number=+441632960000", "--claim", "phone_number_verified=true",
		"--output", "json"))
	sub := created["sub"].(string)
	claims, _ := created["claims"].(map[string]any)
	if created["email_verified"] != true || claims["locale"] != "en-GB" || claims["phone_number"] != "+441632960000" ||
		claims["phone_number_verified"] != true {
		t.Fatalf("created user is not what was asked for: %v", created)
	}

	updated := decodeUser(t, cli.must("update", "ada@example.com", "--name", "Ada King",
		"--claim", "locale=", "--claim", "zoneinfo=Europe/London", "--output", "json"))
	claims, _ = updated["claims"].(map[string]any)
	if updated["name"] != "Ada King" || updated["given_name"] != "Ada" || updated["family_name"] != "Lovelace" ||
		updated["email"] != "ada@example.com" || updated["email_verified"] != true || updated["sub"] != sub {
		t.Fatalf("update --name changed more than the name: %v", updated)
	}
	if _, ok := claims["locale"]; ok || claims["zoneinfo"] != "Europe/London" ||
		claims["phone_number"] != "+441632960000" || claims["phone_number_verified"] != true {
		t.Fatalf("claims after removing locale and adding zoneinfo: %v", claims)
	}

	// USER may also follow the flags, and be the sub.
	updated = decodeUser(t, cli.must("update", "--family-name", "King", "--output", "json", sub))
	if updated["family_name"] != "King" || updated["name"] != "Ada King" {
		t.Fatalf("update --family-name by sub: %v", updated)
	}

	// Nobody has checked a new address, so it is no longer verified.
	updated = decodeUser(t, cli.must("update", sub, "--email", "ada.king@example.com", "--output", "json"))
	if updated["email"] != "ada.king@example.com" || updated["email_verified"] != false {
		t.Fatalf("update --email: %v; want the new email, not verified", updated)
	}
	updated = decodeUser(t, cli.must("update", sub, "--email", "ada@example.com", "--email-verified", "--output", "json"))
	if updated["email"] != "ada@example.com" || updated["email_verified"] != true {
		t.Fatalf("update --email --email-verified: %v", updated)
	}

	code, _, stderr := cli.run("update", sub, "--claim", "shoe_size=9")
	oneErrorLine(t, code, stderr, `claims.shoe_size: is not a standard claim`)
	code, _, stderr = cli.run("update", "nobody@example.com", "--name", "x")
	oneErrorLine(t, code, stderr, `no user "nobody@example.com"`)
	if got := decodeUser(t, cli.must("get", sub, "--output", "json")); got["claims"].(map[string]any)["shoe_size"] != nil {
		t.Fatalf("a refused update was stored: %v", got)
	}
}

func TestUsersGetByEmailOrSub(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	sub := decodeUser(t, cli.must("create", "--email", "ada@example.com", "--no-password", "--name", "Ada Lovelace",
		"--claim", "locale=en-GB", "--claim", "address=12 Acacia Avenue, London", "--output", "json"))["sub"].(string)

	rows := tableRows(cli.must("get", "ADA@Example.com"))
	want := map[string]string{
		"sub": sub, "email": "ada@example.com", "email_verified": "false", "name": "Ada Lovelace",
		"given_name": "-", "family_name": "-", "locale": "en-GB", "disabled": "false",
		"address": `{"formatted":"12 Acacia Avenue, London"}`,
	}
	for field, value := range want {
		if rows[field] != value {
			t.Errorf("get by email: %s is %q, want %q", field, rows[field], value)
		}
	}
	for _, field := range []string{"created_at", "updated_at"} {
		if rows[field] == "" {
			t.Errorf("get by email: no %s row", field)
		}
	}

	got := decodeUser(t, cli.must("get", sub, "--output", "json"))
	if got["sub"] != sub || got["email"] != "ada@example.com" {
		t.Fatalf("get by sub: %v", got)
	}

	for _, user := range []string{uuid.NewString(), "not-a-uuid", "bea@example.com"} {
		code, _, stderr := cli.run("get", user)
		if code != 1 || stderr != "latchkey users: no user \""+user+"\"\n" {
			t.Errorf("get %s: exit %d, stderr %q", user, code, stderr)
		}
	}
}

func TestUsersListTableAndJSON(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	if table := strings.TrimSpace(cli.must("list")); table != "SUB  EMAIL  NAME  DISABLED  CREATED" {
		t.Fatalf("list with no users: %q; want only the header", table)
	}
	assertNoUsers(t, cli)

	bea := decodeUser(t, cli.must("create", "--email", "bea@example.com", "--no-password", "--output", "json"))["sub"].(string)
	ada := decodeUser(t, cli.must("create", "--email", "ada@example.com", "--no-password", "--name", "Ada Lovelace", "--output", "json"))["sub"].(string)
	cli.must("disable", "bea@example.com")

	table := strings.Split(strings.TrimSpace(cli.must("list")), "\n")
	if len(table) != 3 || strings.Join(strings.Fields(table[0]), " ") != "SUB EMAIL NAME DISABLED CREATED" {
		t.Fatalf("list table:\n%s", strings.Join(table, "\n"))
	}
	for i, want := range [][]string{{ada, "ada@example.com", "Ada", "Lovelace", "false"}, {bea, "bea@example.com", "-", "true"}} {
		got := strings.Fields(table[i+1])
		if len(got) != len(want)+1 || strings.Join(got[:len(want)], " ") != strings.Join(want, " ") {
			t.Errorf("list row %d is %q; want it to start %q, then the creation time", i+1, table[i+1], want)
		}
	}

	var listed []map[string]any
	if err := json.Unmarshal([]byte(cli.must("list", "--output", "json")), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("list --output json: %v, %d users; want 2", err, len(listed))
	}
	if listed[0]["sub"] != ada || listed[1]["sub"] != bea || listed[1]["disabled"] != true {
		t.Fatalf("list --output json, by email: %v", listed)
	}
}

func TestUsersDisableEnableDelete(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	const password = "correct horse battery staple"
	sub := decodeUser(t, cli.mustWithStdin(password+"\n", "create", "--email", "ada@example.com", "--output", "json"))["sub"].(string)
	users := cli.manager()
	signIn := func() error {
		_, err := users.Authenticate(t.Context(), "ada@example.com", password, nil)
		return err
	}

	if code, stdout, _ := cli.run("disable", "-h"); code != 0 || !strings.Contains(stdout, "ends their browser sessions and revokes their access and refresh tokens") {
		t.Fatalf("disable -h: exit %d, stdout %q; want it to say that sessions and tokens end", code, stdout)
	}

	if out := cli.must("disable", "ada@example.com"); out != "disabled user ada@example.com ("+sub+")\n" {
		t.Fatalf("disable printed %q", out)
	}
	if err := signIn(); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("signing in while disabled: %v; want ErrInvalidCredentials", err)
	}
	if got := decodeUser(t, cli.must("get", sub, "--output", "json")); got["disabled"] != true {
		t.Fatalf("get after disable: %v", got)
	}

	if out := cli.must("enable", sub); out != "enabled user ada@example.com ("+sub+")\n" {
		t.Fatalf("enable printed %q", out)
	}
	if err := signIn(); err != nil {
		t.Fatalf("signing in after enable: %v", err)
	}

	if out := cli.must("delete", sub); out != "deleted user ada@example.com ("+sub+")\n" {
		t.Fatalf("delete printed %q", out)
	}
	code, _, stderr := cli.run("get", "ada@example.com")
	oneErrorLine(t, code, stderr, `no user "ada@example.com"`)
	code, _, stderr = cli.run("delete", sub)
	oneErrorLine(t, code, stderr, `no user "`+sub+`"`)
	code, _, stderr = cli.run("disable", "ada@example.com")
	oneErrorLine(t, code, stderr, `no user "ada@example.com"`)
}

func TestUsersSetPassword(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	const old, replacement = "correct horse battery staple", "  tr0ub4dor & three  "
	sub := decodeUser(t, cli.mustWithStdin(old+"\n", "create", "--email", "ada@example.com", "--output", "json"))["sub"].(string)

	// Only the line ending is trimmed, a Windows one too; spaces count.
	if out := cli.mustWithStdin(replacement+"\r\n", "set-password", "ada@example.com"); out != "password set for ada@example.com ("+sub+")\n" {
		t.Fatalf("set-password printed %q", out)
	}
	users := cli.manager()
	if _, err := users.Authenticate(t.Context(), "ada@example.com", old, nil); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("signing in with the old password: %v; want ErrInvalidCredentials", err)
	}
	if _, err := users.Authenticate(t.Context(), "ada@example.com", replacement, nil); err != nil {
		t.Fatalf("signing in with the new password: %v", err)
	}

	code, _, stderr := cli.runWithStdin("password123\n", "set-password", sub)
	oneErrorLine(t, code, stderr, "one of the most common passwords")
	code, _, stderr = cli.runWithStdin(replacement+"\n", "set-password", "bea@example.com")
	oneErrorLine(t, code, stderr, `no user "bea@example.com"`)
}

func TestUsersCreateWithoutPassword(t *testing.T) {
	t.Parallel()
	cli := newUsersCLI(t)
	const password = "correct horse battery staple"
	// Whatever is on stdin, --no-password means no password.
	cli.mustWithStdin(password+"\n", "create", "--email", "ada@example.com", "--no-password")
	users := cli.manager()
	if _, err := users.Authenticate(t.Context(), "ada@example.com", password, nil); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Fatalf("signing in as a user created without a password: %v; want ErrInvalidCredentials", err)
	}
	cli.mustWithStdin(password+"\n", "set-password", "ada@example.com")
	if _, err := users.Authenticate(t.Context(), "ada@example.com", password, nil); err != nil {
		t.Fatalf("signing in once set-password gave a password: %v", err)
	}
}

func TestUsersReadsServerSettingsFromFlags(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	code, _, stderr := runCLI(t.Context(), vars{}, "users", "create", "--database-url", url, "--email", "ada@example.com", "--no-password")
	if code != 0 {
		t.Fatalf("create with --database-url: exit %d, stderr %q", code, stderr)
	}
	code, stdout, stderr := runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": url}, "users", "get", "ada@example.com", "--output", "json")
	if code != 0 || decodeUser(t, stdout)["email"] != "ada@example.com" {
		t.Fatalf("get: exit %d, stdout %s, stderr %q", code, stdout, stderr)
	}
	if code, _, stderr := runCLI(t.Context(), vars{}, "users", "list"); code != 1 || !strings.Contains(stderr, "LATCHKEY_DATABASE_URL") {
		t.Fatalf("without a database: exit %d, stderr %q", code, stderr)
	}
}

// A mistake in how a subcommand is called is one line, then a pointer to
// the subcommand's help, and exit code 2.
func TestUsersUsageErrors(t *testing.T) {
	t.Parallel()
	env := vars{"LATCHKEY_DATABASE_URL": pgtest.URL(t)}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"users", "frobnicate"}, `unknown subcommand "frobnicate"; latchkey users has create, delete, disable, enable, forget-devices, get, invite, list, passkeys, remove-passkey, reset-mfa, revoke-invite, set-password, trusted-devices, unlock, update`},
		{[]string{"users", "get"}, "missing USER; usage: latchkey users get USER [flags]"},
		{[]string{"users", "get", "a", "b"}, `unexpected argument "b"; usage: latchkey users get USER [flags]`},
		{[]string{"users", "get", "--output", "json", "a", "b"}, `unexpected argument "b"`},
		{[]string{"users", "list", "extra"}, `unexpected argument "extra"; usage: latchkey users list [flags]`},
		{[]string{"users", "list", "--output", "yaml"}, `invalid argument "yaml" for "--output" flag: must be json or table`},
		{[]string{"users", "create"}, "--email is required"},
		{[]string{"users", "create", "--email", "a@b.c", "extra"}, `unexpected argument "extra"; usage: latchkey users create [flags]`},
		{[]string{"users", "update", "a@b.c"}, "nothing to change"},
		{[]string{"users", "update", "--name", "x"}, "missing USER; usage: latchkey users update USER"},
		{[]string{"users", "disable"}, "missing USER; usage: latchkey users disable USER"},
		{[]string{"users", "enable", "a", "b"}, `unexpected argument "b"; usage: latchkey users enable USER`},
		{[]string{"users", "delete"}, "missing USER"},
		{[]string{"users", "set-password"}, "missing USER"},
		{[]string{"users", "delete", "a@b.c", "--no-password"}, "unknown flag: --no-password"},
		{[]string{"users", "create", "--email", "a@b.c", "--claim", "locale"}, "want NAME=VALUE"},
		{[]string{"users", "update", "a@b.c", "--claim", "phone_number_verified=maybe"}, "phone_number_verified must be true or false"},
		{[]string{"users", "update", "a@b.c", "--claim", "name=Ada"}, "name has a flag of its own: --name"},
		{[]string{"users", "update", "a@b.c", "--claim", "address={"}, "address must be plain text or a JSON object"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t.Context(), env, c.args...)
		lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
		sub := c.args[1]
		if sub == "frobnicate" {
			sub = ""
		}
		hint := "Run '" + strings.TrimSpace("latchkey users "+sub) + " --help'."
		if code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "latchkey users: ") || !strings.Contains(lines[0], c.want) || lines[1] != hint {
			t.Errorf("latchkey %s: exit %d, stderr %q; want exit 2, a line with %q and %q", strings.Join(c.args, " "), code, stderr, c.want, hint)
		}
	}
}
