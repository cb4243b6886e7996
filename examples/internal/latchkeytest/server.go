package latchkeytest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/proctest"
)

// latchkeyPackage is the command Start builds and runs.
const latchkeyPackage = "github.com/latchkey/latchkey/cmd/latchkey"

// Server is a live Latchkey node: the real binary, running `latchkey serve
// --migrate` on a throwaway database of its own.
type Server struct {
	// Issuer is the public base URL and the issuer: discovery, the
	// protocol endpoints and the login pages live under it. It names the
	// host localhost, while the apps of the tests listen on 127.0.0.1, so
	// that to a browser Latchkey and the app are different sites, as they
	// are in production.
	Issuer string
	// Admin is the admin listener's base URL; the admin API is under
	// Admin + "/admin".
	Admin string

	bin string
	env []string
}

// Start runs a Latchkey node for the test and waits until it is ready. The
// node is stopped, and its database dropped, when the test ends. settings
// are extra environment variables, as name, value pairs:
//
//	srv := latchkeytest.Start(t, "LATCHKEY_ACCESS_TOKEN_LIFESPAN", "1m")
func Start(t testing.TB, settings ...string) *Server {
	t.Helper()
	if len(settings)%2 != 0 {
		t.Fatalf("latchkeytest: settings come in name, value pairs: %q", settings)
	}
	bin := latchkeyBinary(t)
	public, admin := proctest.FreeAddr(t), proctest.FreeAddr(t)
	_, port, _ := net.SplitHostPort(public)
	s := &Server{
		Issuer: "http://localhost:" + port,
		Admin:  "http://" + admin,
		bin:    bin,
	}
	s.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"LATCHKEY_DATABASE_URL=" + pgtest.URL(t),
		"LATCHKEY_ISSUER=" + s.Issuer,
		"LATCHKEY_SECRETS=" + newSecret(),
		"LATCHKEY_PUBLIC_ADDR=" + public,
		"LATCHKEY_ADMIN_ADDR=" + admin,
		"LATCHKEY_LOG_FORMAT=text",
	}
	for i := 0; i < len(settings); i += 2 {
		s.env = append(s.env, settings[i]+"="+settings[i+1])
	}
	cmd := exec.Command(bin, "serve", "--migrate") // #nosec G204 -- the binary latchkeyBinary built
	cmd.Env = s.env
	proctest.Start(t, "latchkey serve", cmd).AwaitHTTP(t, s.Admin+"/readyz", time.Minute)
	return s
}

// newSecret is a LATCHKEY_SECRETS value, as openssl rand -base64 32 makes.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// CLI runs the latchkey command with args against the node's database, as
// an operator runs it, with stdin as its standard input, and returns what it
// printed on stdout. A command that fails fails the test.
func (s *Server) CLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, args...) // #nosec G204 -- the binary latchkeyBinary built, with the test's arguments
	cmd.Env = s.env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("latchkeytest: latchkey %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// Client is a registered client and its secret.
type Client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// CreateClient registers a client with `latchkey clients create`, given the
// command's flags (docs/clients.md), and returns its ID and secret.
//
//	api := srv.CreateClient(t, "--id", "notes-api", "--name", "Notes API", "--grant-type", "client_credentials")
func (s *Server) CreateClient(t testing.TB, flags ...string) Client {
	t.Helper()
	out := s.CLI(t, "", append(append([]string{"clients", "create"}, flags...), "--output", "json")...)
	var c Client
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ID == "" {
		t.Fatalf("latchkeytest: clients create printed %q: %v", out, err)
	}
	return c
}

// User is someone who can sign in: their email and password, and, once
// they have turned on two-step verification, the secret their
// authenticator app holds.
type User struct {
	Email    string
	Password string
	// TOTPSecret is set by Agent when the user enrols a second factor.
	TOTPSecret string
	// Sub is the user's ID, as tokens name them.
	Sub string
}

// CreateUser adds a user with `latchkey users create`, piping the password
// in as a script does (docs/users.md); flags are further profile flags such
// as --name.
func (s *Server) CreateUser(t testing.TB, email, password string, flags ...string) *User {
	t.Helper()
	args := append([]string{"users", "create", "--email", email, "--output", "json"}, flags...)
	out := s.CLI(t, password+"\n", args...)
	var created struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Sub == "" {
		t.Fatalf("latchkeytest: users create printed %q: %v", out, err)
	}
	return &User{Email: email, Password: password, Sub: created.Sub}
}

// Endpoint returns the node's authorization and token endpoints, read from
// its discovery document as an app reads them.
func (s *Server) Endpoint(t testing.TB) oauth2.Endpoint {
	t.Helper()
	provider, err := oidc.NewProvider(t.Context(), s.Issuer)
	if err != nil {
		t.Fatalf("latchkeytest: discovery: %v", err)
	}
	return provider.Endpoint()
}
