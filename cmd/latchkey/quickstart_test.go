package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/chromedp/chromedp"

	"github.com/latchkey/latchkey/internal/chromiumtest"
	"github.com/latchkey/latchkey/internal/proctest"
)

// The README promises a newcomer that two commands get them a working
// identity provider, and docs/quickstart.md walks on from there. The test
// in this file does what such a reader does, on a fresh copy of the
// repository: it takes the commands from the documents' own code blocks,
// runs them as a shell would, signs in to the demo app in Chromium, and
// presses Ctrl-C. A document that drifts from what Latchkey does fails
// here.

// repoRoot is the repository, relative to this package.
const repoRoot = "../.."

func TestREADMEQuickstartWorksOnAFreshClone(t *testing.T) {
	t.Parallel()
	readme := readRepoFile(t, "README.md")
	quickstart := readRepoFile(t, "docs/quickstart.md")

	// "Two commands": the first starts the development server.
	blocks := fencedBlocks(markdownSection(t, readme, "## Two commands"))
	if len(blocks) == 0 {
		t.Fatal(`README.md's "Two commands" section has no code block`)
	}
	devLine := commandLines(blocks[0].text)[0]

	// The command binds fixed ports, so it cannot share them: say so
	// rather than fail obscurely.
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:8081"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is already in use (%v): the README's quickstart serves on the fixed ports 8080 and 8081; stop whatever holds them (another latchkey dev?) and run the test again", addr, err)
		}
		_ = ln.Close()
	}

	dir := freshClone(t)
	dev := runInTerminal(t, dir, devLine)

	// The README says what the command prints; check it said the truth.
	for _, label := range []string{"issuer", "try it"} {
		if v := strings.Fields(dev.printed[label]); len(v) == 0 || !strings.Contains(readme, "`"+v[0]+"`") {
			t.Errorf("latchkey dev printed %s %q, which README.md does not mention", label, dev.printed[label])
		}
	}
	if admin := strings.Fields(dev.printed["admin API"]); len(admin) == 0 || !strings.Contains(readme, "`"+strings.TrimSuffix(admin[0], "/admin")+"`") {
		t.Errorf("latchkey dev printed the admin API at %q, which README.md does not mention", dev.printed["admin API"])
	}

	t.Run("the README's demo sign-in", func(t *testing.T) {
		demoURL, password := dev.demo(t)
		tab := chromiumtest.Tab(t)
		err := chromedp.Do(tab,
			chromedp.Navigate(demoURL),
			chromedp.Click(chromedp.ID("start")),
			chromedp.WaitVisible(chromedp.ID("email")),
			chromedp.SendKeys(chromedp.ID("email"), demoEmail),
			chromedp.SendKeys(chromedp.ID("password"), password),
			chromedp.Click(chromedp.CSS("button.primary")),
			chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
			chromedp.Click(chromedp.CSS(`button[value="allow"]`)),
			chromedp.WaitVisible(chromedp.ID("signed-in")),
			chromiumtest.Screenshot(t, "quickstart-demo-signed-in"),
		)
		if err != nil {
			t.Fatalf("signing in to the demo app at %s: %v", demoURL, err)
		}
		who, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("signed-in")))
		if err != nil || !strings.Contains(who, demoEmail) {
			t.Fatalf("the demo app says %q (%v), want it signed in as %s", who, err, demoEmail)
		}
	})

	t.Run("docs quickstart.md", func(t *testing.T) {
		followQuickstart(t, quickstart, devLine, dir, dev)
	})

	dev.pressCtrlC(t)
}

// followQuickstart runs docs/quickstart.md's shell blocks in order against
// the running development server, and checks what the reader would see.
func followQuickstart(t *testing.T, doc, devLine, dir string, dev *terminal) {
	blocks := fencedBlocks(doc)
	checkSampleOutput(t, blocks, dev)

	sh := &docShell{t: t, dir: dir, dev: dev, vars: map[string]string{}}
	for _, b := range blocks {
		if b.lang != "sh" {
			continue
		}
		for _, line := range commandLines(b.text) {
			switch {
			case strings.HasPrefix(line, "git clone "):
				// The fresh copy this test runs in is the clone.
			case line == devLine:
				// Already running: the README's command is the quickstart's.
			case strings.HasPrefix(line, "go run ./cmd/latchkey dev"):
				t.Errorf("docs/quickstart.md runs %q, the README %q; they should agree", line, devLine)
			default:
				sh.run(line)
			}
		}
	}
	if t.Failed() {
		return
	}

	if len(sh.calls) == 0 {
		t.Fatal("docs/quickstart.md made no HTTP request")
	}
	for _, c := range sh.calls {
		if c.status != http.StatusOK {
			t.Errorf("curl %s answered %d: %s", c.url, c.status, c.body)
		}
	}
	var discovery struct{ Issuer string }
	sh.response(t, "/.well-known/openid-configuration", &discovery)
	if discovery.Issuer != dev.printed["issuer"] {
		t.Errorf("discovery names the issuer %q, latchkey dev printed %q", discovery.Issuer, dev.printed["issuer"])
	}
	var introspection struct {
		Active   bool
		Scope    string
		ClientID string `json:"client_id"`
	}
	sh.response(t, "/oauth2/introspect", &introspection)
	if !introspection.Active || introspection.Scope != "demo.read" || introspection.ClientID != sh.vars["CLIENT_ID"] {
		t.Errorf("introspection = %+v, want the backend's active token for demo.read", introspection)
	}
	var users struct{ Items []struct{ Email string } }
	sh.response(t, "/admin/users", &users)
	if !slices.ContainsFunc(users.Items, func(u struct{ Email string }) bool { return u.Email == demoEmail }) {
		t.Errorf("the admin API lists users %+v, want the demo user among them", users.Items)
	}
}

// checkSampleOutput compares the output quickstart.md shows for latchkey
// dev with what it printed, line by line; "..." in the sample stands for
// anything.
func checkSampleOutput(t *testing.T, blocks []fencedBlock, dev *terminal) {
	t.Helper()
	for _, b := range blocks {
		if !strings.HasPrefix(b.text, dev.lines[0]) {
			continue
		}
		sample := strings.Split(strings.TrimRight(b.text, "\n"), "\n")
		if len(sample) != len(dev.lines) {
			t.Errorf("docs/quickstart.md shows %d lines of output, latchkey dev printed %d:\n%s", len(sample), len(dev.lines), strings.Join(dev.lines, "\n"))
			return
		}
		for i, line := range sample {
			if !elided(line).MatchString(dev.lines[i]) {
				t.Errorf("docs/quickstart.md shows the output line\n\t%s\nlatchkey dev printed\n\t%s", line, dev.lines[i])
			}
		}
		return
	}
	t.Errorf("docs/quickstart.md does not show what latchkey dev prints (%q)", dev.lines[0])
}

// elided matches text shown in a document with "..." for the parts that
// differ from run to run.
func elided(shown string) *regexp.Regexp {
	parts := strings.Split(shown, "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".+") + "$")
}

// terminal is a command running as if typed into a terminal: in a process
// group of its own, which is what Ctrl-C signals.
type terminal struct {
	*proctest.Process
	// program is the command's first word: go, for go run.
	program string
	// lines are what latchkey dev printed up to "Press Ctrl-C to stop.".
	lines []string
	// printed holds those lines by label: "issuer", "database", "try it"...
	printed map[string]string
	// log is the command's stderr: the build's output, then the server's.
	log      string
	postgres int // the postmaster's PID
}

// runInTerminal runs line in dir with only PATH, HOME and the Go
// toolchain's settings (toolchainEnv) in the environment, as a newcomer's
// shell would, and waits until latchkey dev says it is ready.
func runInTerminal(t *testing.T, dir, line string) *terminal {
	t.Helper()
	args, err := shellWords(line, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, toolchainEnv()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	term := &terminal{program: args[0], printed: map[string]string{}}
	term.log = filepath.Join(t.ArtifactDir(), "latchkey-dev.log")
	logFile, err := os.Create(term.log)
	if err != nil {
		t.Fatal(err)
	}
	// Closed after the process stops (cleanups run last first), since
	// the log is written until then.
	t.Cleanup(func() { _ = logFile.Close() })
	cmd.Stderr = logFile
	stdout := &proctest.Output{}
	cmd.Stdout = stdout
	// Whatever happens, leave nothing running: the process group is
	// stopped when the test ends.
	term.Process = proctest.Start(t, line, cmd)

	// The first run compiles Latchkey, in a directory the build cache has
	// not seen.
	ready := regexp.MustCompile(`(?m)^Press Ctrl-C`)
	term.Await(t, "latchkey dev to print its URLs", 5*time.Minute, func() bool { return ready.MatchString(stdout.String()) })
	for line := range strings.Lines(stdout.String()) {
		line = strings.TrimRight(line, "\r\n")
		term.lines = append(term.lines, line)
		if label, value, ok := strings.Cut(line, ":"); ok && strings.HasPrefix(line, "  ") {
			term.printed[strings.TrimSpace(label)] = strings.TrimSpace(value)
		}
		if strings.HasPrefix(line, "Press Ctrl-C") {
			break
		}
	}

	term.postgres = devPostgresPID(t, dir)
	return term
}

// demo returns the demo app's URL and the demo user's password, from the
// "try it:" line: "URL (sign in as EMAIL, password PASSWORD)".
func (term *terminal) demo(t *testing.T) (string, string) {
	t.Helper()
	m := regexp.MustCompile(`^(\S+) \(sign in as (\S+), password (\S+)\)$`).FindStringSubmatch(term.printed["try it"])
	if m == nil || m[2] != demoEmail {
		t.Fatalf("latchkey dev printed %q for the demo; want a URL and %s's password", term.printed["try it"], demoEmail)
	}
	return m[1], m[3]
}

// pressCtrlC signals the command's process group as a terminal's Ctrl-C
// does, and checks that it stops cleanly and takes its Postgres with it.
func (term *terminal) pressCtrlC(t *testing.T) {
	t.Helper()
	// go run exits 1 whenever it is interrupted, whatever its program did
	// (cmd/go's builder sets the status when it sees SIGINT). It reports a
	// program that failed ("exit status 2", "signal: killed"), and
	// Latchkey its own errors ("latchkey dev: ..."), on stderr: that is
	// what tells a clean stop.
	_, err := term.Stop(t, syscall.SIGINT, time.Minute)
	var exit *exec.ExitError
	goRunInterrupted := errors.As(err, &exit) && exit.ExitCode() == 1 && term.program == "go"
	if failure := stopFailure.FindString(term.tail()); (err != nil && !goRunInterrupted) || failure != "" {
		t.Fatalf("after Ctrl-C the command exited with %v, %q\n%s", err, failure, term.tail())
	}
	if err := syscall.Kill(term.postgres, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("Postgres (pid %d) still runs after Ctrl-C (kill -0: %v)", term.postgres, err)
	}
}

// stopFailure matches the lines that say a stop was not clean.
var stopFailure = regexp.MustCompile(`(?m)^(exit status \d+|signal: .*|latchkey dev: .*|panic: .*)$`)

// tail is the end of the command's stderr, for failure messages.
func (term *terminal) tail() string {
	b, _ := os.ReadFile(term.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freshClone copies what a clone of the repository would hold (tracked
// files and new ones not ignored, so that uncommitted work is included)
// into a new directory, without .latchkey, build output or anything else
// .gitignore names.
func freshClone(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "-C", repoRoot, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	// As root, latchkey dev runs Postgres as the postgres user, which must
	// reach its directory: t.TempDir is 0700.
	dir, err := os.MkdirTemp("", "latchkey-clone-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(repoRoot, name))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree, so not in a commit of it
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(filepath.Join(repoRoot, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// docShell runs a document's shell lines as a reader pasting them into a
// terminal in the clone would, with just enough of a shell: variables,
// quotes, export, VAR=$(curl ... | jq -r .field), go run, and curl done
// with net/http.
type docShell struct {
	t    *testing.T
	dir  string
	dev  *terminal
	vars map[string]string
	// exported are the variables commands see, besides PATH and HOME.
	exported []string
	calls    []curlCall
}

// curlCall is one curl the document made, and what it answered.
type curlCall struct {
	url    string
	status int
	body   []byte
}

var captured = regexp.MustCompile(`^([A-Z_]+)=\$\((.*) \| jq -r \.([a-z_]+)\)$`)

func (sh *docShell) run(line string) {
	t := sh.t
	t.Helper()
	if m := captured.FindStringSubmatch(line); m != nil {
		var doc map[string]any
		body := sh.runWords(sh.words(m[2]))
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatalf("%s: the output is not JSON: %v\n%s", m[2], err, body)
		}
		v, ok := doc[m[3]].(string)
		if !ok {
			t.Fatalf("%s: the output has no .%s\n%s", m[2], m[3], body)
		}
		sh.vars[m[1]] = v
		return
	}
	if rest, ok := strings.CutPrefix(line, "export "); ok {
		name, value, _ := strings.Cut(strings.Join(sh.words(rest), " "), "=")
		sh.vars[name] = sh.fillIn(name, value)
		sh.exported = append(sh.exported, name)
		return
	}
	sh.runWords(sh.words(line))
}

// fillIn is the reader replacing a placeholder ("...") with what latchkey
// dev printed, after checking the document shows it in the right shape.
func (sh *docShell) fillIn(name, value string) string {
	if !strings.Contains(value, "...") {
		return value
	}
	printed := map[string]string{"LATCHKEY_DATABASE_URL": sh.dev.printed["database"]}[name]
	if printed == "" || !elided(value).MatchString(printed) {
		sh.t.Fatalf("docs/quickstart.md has the reader set %s=%s; latchkey dev printed nothing like it (%q)", name, value, printed)
	}
	return printed
}

func (sh *docShell) words(line string) []string {
	words, err := shellWords(line, func(name string) (string, bool) {
		v, ok := sh.vars[name]
		return v, ok
	})
	if err != nil {
		sh.t.Fatalf("%q: %v", line, err)
	}
	return words
}

// runWords runs one command and returns its standard output.
func (sh *docShell) runWords(args []string) []byte {
	t := sh.t
	t.Helper()
	switch {
	case args[0] == "curl":
		c := sh.curl(args[1:])
		sh.calls = append(sh.calls, c)
		return c.body
	case slices.Equal(args[:min(3, len(args))], []string{"go", "run", "./cmd/latchkey"}):
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = sh.dir
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, toolchainEnv()...)
		for _, name := range sh.exported {
			cmd.Env = append(cmd.Env, name+"="+sh.vars[name])
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, stderrOf(err))
		}
		if slices.Contains(args, "create") && slices.Contains(args, "json") {
			sh.copyCredentials(args, out)
		}
		return out
	}
	t.Fatalf("the document runs %q, which this test cannot follow: teach docShell, or keep the document to go run and curl", strings.Join(args, " "))
	return nil
}

// copyCredentials does what the quickstart asks the reader to do by hand
// after latchkey clients create: copy client_id and client_secret into
// CLIENT_ID and CLIENT_SECRET, or ADMIN_ID and ADMIN_SECRET for the admin
// client.
func (sh *docShell) copyCredentials(args []string, out []byte) {
	var c struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &c); err != nil || c.ID == "" || c.Secret == "" {
		sh.t.Fatalf("latchkey clients create printed no client_id and client_secret (%v):\n%s", err, out)
	}
	prefix := "CLIENT"
	if slices.Contains(args, "--admin") {
		prefix = "ADMIN"
	}
	sh.vars[prefix+"_ID"], sh.vars[prefix+"_SECRET"] = c.ID, c.Secret
}

// curl does with net/http what curl does with the options the quickstart
// uses: -s, -u USER:PASSWORD (HTTP Basic), -d DATA (a form POST, the data
// sent as written) and -H HEADER.
func (sh *docShell) curl(args []string) curlCall {
	t := sh.t
	t.Helper()
	var user, target string
	var data []string
	header := http.Header{}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-s":
		case a == "-u" || a == "-d" || a == "-H":
			if i++; i == len(args) {
				t.Fatalf("curl %s: %s without a value", strings.Join(args, " "), a)
			}
			switch a {
			case "-u":
				user = args[i]
			case "-d":
				data = append(data, args[i])
			case "-H":
				k, v, _ := strings.Cut(args[i], ":")
				header.Add(k, strings.TrimSpace(v))
			}
		case strings.HasPrefix(a, "-"):
			t.Fatalf("curl option %s: this test does not know it", a)
		default:
			target = a
		}
	}
	method, body := http.MethodGet, io.Reader(nil)
	if data != nil {
		method, body = http.MethodPost, strings.NewReader(strings.Join(data, "&"))
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	if err != nil {
		t.Fatalf("curl %s: %v", target, err)
	}
	req.Header = header
	if data != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		id, secret, _ := strings.Cut(user, ":")
		req.SetBasicAuth(id, secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("curl %s: %v", target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return curlCall{url: target, status: resp.StatusCode, body: b}
}

// response decodes the answer of the document's request to the URL ending
// in path.
func (sh *docShell) response(t *testing.T, path string, v any) {
	t.Helper()
	for _, c := range sh.calls {
		if u, err := url.Parse(c.url); err == nil && u.Path == path {
			if err := json.Unmarshal(c.body, v); err != nil {
				t.Fatalf("%s answered %s: %v", c.url, c.body, err)
			}
			return
		}
	}
	t.Fatalf("docs/quickstart.md makes no request to %s", path)
}

func stderrOf(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(exit.Stderr)
	}
	return ""
}

// readRepoFile reads a file of the repository by its path from the root.
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fencedBlock is one fenced code block of a Markdown document.
type fencedBlock struct {
	lang string // the info string: "sh", or "" for output
	text string
}

// fencedBlocks returns md's fenced code blocks, in order.
func fencedBlocks(md string) []fencedBlock {
	var blocks []fencedBlock
	var open *fencedBlock
	for line := range strings.Lines(md) {
		info, fence := strings.CutPrefix(strings.TrimSpace(line), "```")
		switch {
		case fence && open == nil:
			open = &fencedBlock{lang: info}
		case fence:
			blocks = append(blocks, *open)
			open = nil
		case open != nil:
			open.text += line
		}
	}
	return blocks
}

// markdownSection returns what md has under heading, up to the next
// heading of the same level or above.
func markdownSection(t *testing.T, md, heading string) string {
	t.Helper()
	_, rest, ok := strings.Cut(md, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("no section %q", heading)
	}
	level := strings.Repeat("#", strings.Count(strings.Fields(heading)[0], "#"))
	for i := 1; i <= len(level); i++ {
		if end := strings.Index(rest, "\n"+strings.Repeat("#", i)+" "); end >= 0 {
			rest = rest[:end]
		}
	}
	return rest
}

// commandLines splits a shell block into commands: continuation lines
// joined, a quoted string that spans lines kept in its command, whitespace
// squeezed to single spaces, blank lines and comments dropped.
func commandLines(block string) []string {
	var lines []string
	var cmd strings.Builder
	end := func() {
		if line := strings.Join(strings.Fields(cmd.String()), " "); line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
		cmd.Reset()
	}
	quote := rune(0)
	for _, r := range strings.ReplaceAll(block, "\\\n", " ") {
		switch {
		case quote == 0 && r == '\n':
			end()
			continue
		case quote == 0 && (r == '\'' || r == '"'):
			quote = r
		case r == quote:
			quote = 0
		}
		cmd.WriteRune(r)
	}
	end()
	return lines
}

// shellWords splits line into words as a POSIX shell does for the simple
// commands documents show: spaces separate words; single quotes keep text
// as it is; double quotes and bare text expand $NAME and ${NAME}, looked up
// with lookup (an unset variable is an error, so that a document cannot
// lean on one it never set); a backslash escapes the next character.
func shellWords(line string, lookup func(string) (string, bool)) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord, quote := false, rune(0)
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'' && r == '\'':
			quote = 0
		case quote == '\'':
			word.WriteRune(r)
		case r == '\\' && i+1 < len(rs):
			i++
			word.WriteRune(rs[i])
			inWord = true
		case r == '$':
			name, n := variableAt(rs[i+1:])
			if name == "" {
				return nil, fmt.Errorf("unsupported $ at %q", string(rs[i:]))
			}
			v, ok := lookup(name)
			if !ok {
				return nil, fmt.Errorf("$%s is not set", name)
			}
			word.WriteString(v)
			inWord = true
			i += n
		case quote == '"' && r == '"':
			quote = 0
		case quote == '"':
			word.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed %c", quote)
	}
	if inWord {
		words = append(words, word.String())
	}
	if len(words) == 0 {
		return nil, errors.New("no command")
	}
	return words, nil
}

// variableAt reads a variable name after a $, as NAME or {NAME}, and
// returns it with the number of runes it took.
func variableAt(rs []rune) (string, int) {
	isName := func(r rune) bool {
		return r == '_' || 'A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || '0' <= r && r <= '9'
	}
	if len(rs) > 0 && rs[0] == '{' {
		end := slices.Index(rs, '}')
		if end < 2 || !allRunes(rs[1:end], isName) {
			return "", 0
		}
		return string(rs[1:end]), end + 1
	}
	n := 0
	for n < len(rs) && isName(rs[n]) {
		n++
	}
	return string(rs[:n]), n
}

func allRunes(rs []rune, f func(rune) bool) bool {
	for _, r := range rs {
		if !f(r) {
			return false
		}
	}
	return true
}
