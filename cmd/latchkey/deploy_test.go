package main

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/internal/proctest"
	"github.com/latchkey/latchkey/pkg/config"
)

// Latchkey ships as a container image (Dockerfile) and a compose file that
// runs it on a Postgres of its own (docker-compose.yml). The test suite has
// no container engine, so the tests in this file check both files as far
// as Go can: the compose file's order of start-up, its settings and its
// healthchecks; and the Dockerfile's build command, run as written, whose
// binary then does what each compose service asks of it.

// composeFile is the part of docker-compose.yml these tests read.
type composeFile struct {
	Services map[string]composeService
}

// composeService is one service. Environment is read in the map form,
// the one docker-compose.yml uses.
type composeService struct {
	Image       string
	Build       string
	Command     []string
	Environment map[string]string
	Ports       []string
	DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
	Healthcheck *struct{ Test []string }
	Restart     string
}

// readCompose parses docker-compose.yml; YAML anchors and merge keys are
// resolved, so each service has its whole environment.
func readCompose(t *testing.T) composeFile {
	t.Helper()
	var f composeFile
	if err := yaml.Unmarshal([]byte(readRepoFile(t, "docker-compose.yml")), &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"postgres", "migrate", "latchkey"} {
		if _, ok := f.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %s service", name)
		}
	}
	return f
}

// latchkeyServices are the services that run the image the Dockerfile
// builds.
func (f composeFile) latchkeyServices() []string {
	var names []string
	for name, s := range f.Services {
		if s.Build == "." {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// interpolation is compose's ${NAME}, ${NAME:-default} and
// ${NAME:?message}.
var interpolation = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([-?])([^}]*))?\}`)

// interpolate fills in env as compose does from the operator's shell,
// whose variables are host.
func interpolate(t *testing.T, env map[string]string, host map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range env {
		out[k] = interpolation.ReplaceAllStringFunc(v, func(ref string) string {
			m := interpolation.FindStringSubmatch(ref)
			if value := host[m[1]]; value != "" {
				return value
			}
			if m[2] == "?" {
				t.Fatalf("compose would refuse to start: %s is not set (%s)", m[1], m[3])
			}
			return m[3]
		})
	}
	return out
}

func TestComposeStartsPostgresThenMigratesThenServes(t *testing.T) {
	t.Parallel()
	f := readCompose(t)
	if got := f.Services["migrate"].DependsOn["postgres"].Condition; got != "service_healthy" {
		t.Errorf("migrate waits for postgres to be %q, want service_healthy", got)
	}
	if got := f.Services["latchkey"].DependsOn["migrate"].Condition; got != "service_completed_successfully" {
		t.Errorf("latchkey waits for migrate to be %q, want service_completed_successfully", got)
	}
	if m := f.Services["migrate"]; !slices.Equal(m.Command, []string{"migrate", "up"}) || m.Restart != "no" {
		t.Errorf("migrate runs %q with restart %q; want latchkey migrate up, once", m.Command, m.Restart)
	}
	if l := f.Services["latchkey"]; !slices.Equal(l.Command, []string{"serve"}) {
		t.Errorf("latchkey runs %q; want serve, which refuses a schema migrate has not brought up to date", l.Command)
	}

	// A service others wait on to finish is a one-off job; every other
	// one runs for good and must say when it is healthy.
	oneOff := map[string]bool{}
	for _, s := range f.Services {
		for name, dep := range s.DependsOn {
			if dep.Condition == "service_completed_successfully" {
				oneOff[name] = true
			}
		}
	}
	for name, s := range f.Services {
		if !oneOff[name] && (s.Healthcheck == nil || len(s.Healthcheck.Test) == 0) {
			t.Errorf("the long-running service %s has no healthcheck", name)
		}
	}
}

func TestComposeServesTheIssuerOnLocalhost8080AndKeepsTheAdminListenerPrivate(t *testing.T) {
	t.Parallel()
	l := readCompose(t).Services["latchkey"]
	env := interpolate(t, l.Environment, map[string]string{"LATCHKEY_SECRETS": testSecret})
	if env["LATCHKEY_ISSUER"] != "http://localhost:8080" {
		t.Errorf("LATCHKEY_ISSUER is %q, want http://localhost:8080", env["LATCHKEY_ISSUER"])
	}
	cfg := testConfig(t, vars(env)) // and the whole configuration validates
	_, publicPort, _ := net.SplitHostPort(cfg.PublicAddr)
	adminHost, adminPort, _ := net.SplitHostPort(cfg.AdminAddr)
	if !slices.Contains(l.Ports, "8080:"+publicPort) {
		t.Errorf("latchkey publishes %q; want 8080:%s, the public listener (%s)", l.Ports, publicPort, cfg.PublicAddr)
	}
	if ip := net.ParseIP(adminHost); ip == nil || !ip.IsLoopback() {
		t.Errorf("the admin listener is on %s; inside the container it must stay on loopback", cfg.AdminAddr)
	}
	for _, p := range l.Ports {
		if strings.HasSuffix(p, ":"+adminPort) {
			t.Errorf("latchkey publishes %s, the admin listener's port", p)
		}
	}
}

func TestComposeConnectsLatchkeyToItsOwnPostgresAndRequiresTheSecret(t *testing.T) {
	t.Parallel()
	f := readCompose(t)
	pg := f.Services["postgres"].Environment
	for _, name := range f.latchkeyServices() {
		env := f.Services[name].Environment
		u, err := url.Parse(env["LATCHKEY_DATABASE_URL"])
		if err != nil {
			t.Fatalf("%s: LATCHKEY_DATABASE_URL: %v", name, err)
		}
		password, _ := u.User.Password()
		if u.Hostname() != "postgres" || u.User.Username() != pg["POSTGRES_USER"] || password != pg["POSTGRES_PASSWORD"] ||
			strings.TrimPrefix(u.Path, "/") != pg["POSTGRES_DB"] || !slices.Contains([]string{"", "5432"}, u.Port()) {
			t.Errorf("%s connects to %s@%s/%s; want user %s of database %s on the postgres service", name,
				u.User.Username(), u.Host, strings.TrimPrefix(u.Path, "/"), pg["POSTGRES_USER"], pg["POSTGRES_DB"])
		}
		// The secret comes from the operator's environment or a secret
		// store, never from the file, and compose refuses to start without
		// it rather than run with keys sealed under nothing.
		if !regexp.MustCompile(`^\$\{LATCHKEY_SECRETS:\?[^}]+\}$`).MatchString(env["LATCHKEY_SECRETS"]) {
			t.Errorf("%s sets LATCHKEY_SECRETS to %q; want ${LATCHKEY_SECRETS:?how to set it}", name, env["LATCHKEY_SECRETS"])
		}
	}
	ready := f.Services["postgres"].Healthcheck.Test
	if i := slices.Index(ready, "-U"); i < 0 || i+1 == len(ready) || ready[i+1] != pg["POSTGRES_USER"] {
		t.Errorf("postgres's healthcheck %q does not check as %s", ready, pg["POSTGRES_USER"])
	}
}

func TestComposeNamesOnlyRealSettingsAndCommands(t *testing.T) {
	t.Parallel()
	f := readCompose(t)
	known := map[string]bool{}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	// Each command must be one latchkey has: "-h" right after its name
	// succeeds only for those.
	isCommand := func(name string) bool {
		code, _, _ := runCLI(t.Context(), vars{}, name, "-h")
		return code == 0
	}
	for _, name := range f.latchkeyServices() {
		s := f.Services[name]
		for k := range s.Environment {
			if strings.HasPrefix(k, "LATCHKEY_") && !known[k] {
				t.Errorf("%s sets %s, which is not a setting", name, k)
			}
		}
		if len(s.Command) == 0 || !isCommand(s.Command[0]) {
			t.Errorf("%s runs %q, which is not a latchkey command", name, s.Command)
		}
	}
	// The image has no shell: the healthcheck runs the binary itself.
	test := f.Services["latchkey"].Healthcheck.Test
	if len(test) != 3 || test[0] != "CMD" || test[1] != imageBinary(t) || !isCommand(test[2]) {
		t.Errorf("latchkey's healthcheck is %q; want [CMD %s healthcheck]", test, imageBinary(t))
	}
}

// dockerfile is the Dockerfile as instructions: each is its keyword and
// the rest of its line, continuation lines joined.
func dockerfile(t *testing.T) [][2]string {
	t.Helper()
	text := strings.ReplaceAll(readRepoFile(t, "Dockerfile"), "\\\n", " ")
	var out [][2]string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		keyword, rest, _ := strings.Cut(line, " ")
		out = append(out, [2]string{strings.ToUpper(keyword), strings.TrimSpace(rest)})
	}
	return out
}

// dockerInstruction returns the rest of the first instruction with
// keyword whose text contains substr.
func dockerInstruction(t *testing.T, keyword, substr string) string {
	t.Helper()
	for _, in := range dockerfile(t) {
		if in[0] == keyword && strings.Contains(in[1], substr) {
			return in[1]
		}
	}
	t.Fatalf("the Dockerfile has no %s instruction with %q", keyword, substr)
	return ""
}

// imageBinary is where the image keeps latchkey: its ENTRYPOINT.
func imageBinary(t *testing.T) string {
	t.Helper()
	var entrypoint []string
	if err := json.Unmarshal([]byte(dockerInstruction(t, "ENTRYPOINT", "")), &entrypoint); err != nil || len(entrypoint) != 1 {
		t.Fatalf("the Dockerfile's ENTRYPOINT is not [\"/path/to/latchkey\"]: %v", err)
	}
	return entrypoint[0]
}

func TestDockerfileBuildsWithTheGoVersionOfGoMod(t *testing.T) {
	t.Parallel()
	from := dockerInstruction(t, "FROM", "golang:")
	image := regexp.MustCompile(`golang:(\d+\.\d+)`).FindStringSubmatch(from)
	mod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readRepoFile(t, "go.mod"))
	if image == nil || mod == nil || image[1] != mod[1] {
		t.Fatalf("the Dockerfile builds with %q, go.mod asks for %v", from, mod)
	}
}

// The one slow test here: it builds the binary exactly as the Dockerfile
// does, then plays the compose file's services with it, on a real
// Postgres.
func TestDockerfileBuildsAStaticBinaryThatRunsTheComposeServices(t *testing.T) {
	t.Parallel()
	bin := buildAsDockerfile(t, "v0.0.0-compose-test")

	// distroless/static has no C library or loader: the binary must need
	// neither.
	exe, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	for _, p := range exe.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is dynamically linked", p.Type)
		}
	}
	if libs, _ := exe.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || string(out) != "latchkey v0.0.0-compose-test\n" {
		t.Errorf("latchkey version printed %q (%v), want the VERSION build argument", out, err)
	}

	f := readCompose(t)
	db := pgtest.EmptyURL(t) // compose's postgres, on its first start
	host := map[string]string{"LATCHKEY_SECRETS": testSecret}
	public, admin := proctest.FreeAddr(t), proctest.FreeAddr(t)
	serviceEnv := func(name string) []string {
		env := interpolate(t, f.Services[name].Environment, host)
		env["LATCHKEY_DATABASE_URL"] = db
		if name == "latchkey" {
			// Port 8080 may be taken by the quickstart test.
			env["LATCHKEY_PUBLIC_ADDR"], env["LATCHKEY_ADMIN_ADDR"] = public, admin
		}
		var out []string
		for k, v := range env {
			out = append(out, k+"="+v)
		}
		return out
	}
	runService := func(name string, args []string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = serviceEnv(name)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	healthcheck := f.Services["latchkey"].Healthcheck.Test[2:]

	if out, err := runService("migrate", f.Services["migrate"].Command); err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("the migrate service: %v\n%s", err, out)
	}
	if out, err := runService("latchkey", healthcheck); err == nil {
		t.Fatalf("the healthcheck passed with no node running:\n%s", out)
	}

	serve := exec.Command(bin, f.Services["latchkey"].Command...)
	serve.Env = serviceEnv("latchkey")
	node := proctest.Start(t, "serve", serve)

	// Compose runs the healthcheck until it passes.
	node.Await(t, "a passing healthcheck", 30*time.Second, func() bool {
		out, err := runService("latchkey", healthcheck)
		return err == nil && out == "ready\n"
	})
	status, body := httpGet(t, "http://"+public+"/.well-known/openid-configuration")
	var discovery struct{ Issuer string }
	if err := json.Unmarshal(body, &discovery); status != http.StatusOK || err != nil || discovery.Issuer != "http://localhost:8080" {
		t.Errorf("discovery: %d, issuer %q (%v); want http://localhost:8080", status, discovery.Issuer, err)
	}

	// docker compose stop sends SIGTERM.
	if _, err := node.Stop(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM\n%s", err, node.Output())
	}
}

// buildAsDockerfile runs the Dockerfile's go build command as it is
// written, with version as the VERSION build argument, in the repository
// (the build stage's COPY . .), and returns the binary it built.
func buildAsDockerfile(t *testing.T, version string) string {
	t.Helper()
	line := dockerInstruction(t, "RUN", "go build")
	words, err := shellWords(line, func(name string) (string, bool) {
		return map[string]string{"VERSION": version}[name], name == "VERSION"
	})
	if err != nil {
		t.Fatalf("RUN %s: %v", line, err)
	}
	// Leading NAME=value words set the command's environment.
	env := os.Environ()
	for len(words) > 0 && regexp.MustCompile(`^[A-Z_]+=`).MatchString(words[0]) {
		env = append(env, words[0])
		words = words[1:]
	}
	if !slices.Contains(env, "CGO_ENABLED=0") {
		t.Errorf("the Dockerfile builds without CGO_ENABLED=0: %s", line)
	}
	out := slices.Index(words, "-o")
	if len(words) < 2 || words[0] != "go" || words[1] != "build" || out < 0 || out+1 == len(words) {
		t.Fatalf("the Dockerfile's build is not a go build -o: %s", line)
	}
	// The binary the build stage writes is the one the image runs.
	copied := fmt.Sprintf("--from=build %s %s", words[out+1], imageBinary(t))
	if dockerInstruction(t, "COPY", "--from=build") != copied {
		t.Errorf("the image does not COPY %s", copied)
	}

	bin := filepath.Join(t.TempDir(), "latchkey")
	words[out+1] = bin
	cmd := exec.Command(words[0], words[1:]...)
	cmd.Dir, cmd.Env = repoRoot, env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(words, " "), err, b)
	}
	return bin
}
