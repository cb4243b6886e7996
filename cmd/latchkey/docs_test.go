package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/go-chi/chi/v5"

	adminapi "github.com/latchkey/latchkey/pkg/admin"
)

// The tests in this file keep the operator's documents in step with the
// commands and routes they describe: a command the README lists must
// exist, and docs/admin-api.md must show every route of the admin API and
// only routes that exist. (pkg/admin/spec_test.go keeps the reference,
// docs/admin-api.yaml, in step with the same router.)

func TestREADMEListsOnlyRealCommands(t *testing.T) {
	t.Parallel()
	row := regexp.MustCompile("(?m)^\\| `latchkey ([a-z-]+) ?([a-z|\\\\-]*)[^`]*` \\|")
	rows := row.FindAllStringSubmatch(markdownSection(t, readRepoFile(t, "README.md"), "## Commands"), -1)
	if len(rows) == 0 {
		t.Fatal("README.md's Commands table lists no command")
	}
	for _, r := range rows {
		name, subs := r[1], strings.ReplaceAll(r[2], `\|`, "|") // a table cell escapes its pipes
		if !strings.Contains(subs, "|") {
			// "-h" right after a command's name succeeds only for a
			// command latchkey has.
			if code, _, stderr := runCLI(t.Context(), vars{}, name, "-h"); code != 0 {
				t.Errorf("README.md lists latchkey %s, which answers -h with exit %d: %s", name, code, stderr)
			}
			continue
		}
		// A command with subcommands names them all in its usage error.
		_, _, usage := runCLI(t.Context(), vars{}, name)
		for sub := range strings.SplitSeq(subs, "|") {
			if !regexp.MustCompile(`[ |]` + regexp.QuoteMeta(sub) + `([ |\n]|$)`).MatchString(usage) {
				t.Errorf("README.md lists latchkey %s %s, which is not in its usage: %s", name, sub, usage)
			}
		}
	}
}

// adminRoute is one route of the admin API: a method and a path template,
// such as GET /admin/users/{id}.
type adminRoute struct{ method, path string }

func (r adminRoute) String() string { return r.method + " " + r.path }

// matches reports whether a concrete path, such as /admin/users/{SUB} or
// /admin/clients/billing, is an instance of the route's template.
func (r adminRoute) matches(method, path string) bool {
	pattern := regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(r.path), `[^/]+`)
	return method == r.method && regexp.MustCompile("^"+pattern+"$").MatchString(path)
}

// adminRouteTemplates lists every route the admin API's router serves,
// with its parameters as names.
func adminRouteTemplates(t *testing.T) []adminRoute {
	t.Helper()
	var routes []adminRoute
	err := chi.Walk((&adminapi.API{}).Routes().(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, adminRoute{method, adminapi.Path + route})
		return nil
	})
	if err != nil || len(routes) == 0 {
		t.Fatalf("walking the admin routes: %v (%d routes)", err, len(routes))
	}
	return routes
}

// adminRequestsShown returns the requests docs/admin-api.md shows, as
// "METHOD /admin/path": those its curl examples make, read as curl reads
// them, and those its text names (`DELETE /admin/clients/billing`).
// Variables stand for themselves ({SUB}).
func adminRequestsShown(t *testing.T, doc string) (curls, named []string) {
	t.Helper()
	lookup := func(name string) (string, bool) {
		if name == "ADMIN" {
			return "http://127.0.0.1:8081/admin", true
		}
		return "{" + name + "}", true
	}
	for _, b := range fencedBlocks(doc) {
		if b.lang != "sh" {
			continue
		}
		for _, line := range commandLines(b.text) {
			_, cmd, ok := strings.Cut(line, "curl ")
			if !ok || !regexp.MustCompile(`\$ADMIN\b`).MatchString(cmd) {
				continue
			}
			// Within $(curl ... | jq ...), the curl alone.
			cmd, _, _ = strings.Cut(cmd, " | ")
			args, err := shellWords(strings.TrimSuffix(cmd, ")"), lookup)
			if err != nil {
				t.Fatalf("docs/admin-api.md: %q: %v", line, err)
			}
			method, target, data, get := "", "", false, false
			for i := 0; i < len(args); i++ {
				switch args[i] {
				case "-X":
					i++
					method = args[i]
				case "-G":
					get = true
				case "-d", "--data-urlencode":
					i++
					data = true
				case "-H", "-u":
					i++
				default:
					if strings.HasPrefix(args[i], "http") {
						target = args[i]
					}
				}
			}
			if method == "" {
				method = map[bool]string{true: http.MethodPost, false: http.MethodGet}[data && !get]
			}
			u, err := url.Parse(target)
			if err != nil || target == "" {
				t.Fatalf("docs/admin-api.md: %q has no URL: %v", line, err)
			}
			curls = append(curls, method+" "+u.Path)
		}
	}
	for _, m := range regexp.MustCompile("`(GET|POST|PUT|PATCH|DELETE) (/admin/[^`?]*)").FindAllStringSubmatch(doc, -1) {
		named = append(named, m[1]+" "+regexp.MustCompile(`\$([A-Z_]+)`).ReplaceAllString(m[2], "{$1}"))
	}
	return curls, named
}

func TestAdminAPIDocShowsEveryRouteAndOnlyRealOnes(t *testing.T) {
	t.Parallel()
	routes := adminRouteTemplates(t)
	curls, named := adminRequestsShown(t, readRepoFile(t, "docs/admin-api.md"))
	route := func(request string) (adminRoute, bool) {
		method, path, _ := strings.Cut(request, " ")
		for _, r := range routes {
			if r.matches(method, path) {
				return r, true
			}
		}
		return adminRoute{}, false
	}
	shown := map[adminRoute]bool{}
	for _, request := range append(curls, named...) {
		r, ok := route(request)
		if !ok {
			t.Errorf("docs/admin-api.md shows %s, which the admin API has no route for", request)
		}
		shown[r] = true
	}
	for _, r := range routes {
		if !shown[r] {
			t.Errorf("docs/admin-api.md shows no example of %s", r)
		}
	}
	if !strings.Contains(readRepoFile(t, "docs/admin-api.md"), "(admin-api.yaml)") {
		t.Error("docs/admin-api.md does not link admin-api.yaml, its reference")
	}
	t.Logf("docs/admin-api.md: %d curl examples and %d requests named in the text, for %d routes", len(curls), len(named), len(routes))
}

func TestDocsIndexListsEveryPage(t *testing.T) {
	t.Parallel()
	index := readRepoFile(t, "docs/README.md")
	pages, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range pages {
		name := filepath.Base(page)
		if name != "README.md" && !strings.Contains(index, "]("+name+")") {
			t.Errorf("docs/README.md does not list %s", name)
		}
	}
	if !strings.Contains(index, "](../examples/)") {
		t.Error("docs/README.md does not list the examples")
	}
	if !strings.Contains(readRepoFile(t, "README.md"), "](docs/README.md)") {
		t.Error("README.md does not link the docs index")
	}
}

// markdownLink is a link to a file of the repository, with an optional
// #fragment: [text](../examples/) or [text](security.md#database).
var markdownLink = regexp.MustCompile(`\]\(([^)#:\s]*)(?:#([^)\s]+))?\)`)

// The pages an operator starts from link only to files that exist, and
// to headings those files have.
func TestREADMEAndOperatorDocsLinkOnlyToWhatExists(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"README.md", "docs/README.md", "docs/production.md", "docs/quickstart.md", "docs/admin-api.md"} {
		for _, m := range markdownLink.FindAllStringSubmatch(readRepoFile(t, doc), -1) {
			target, fragment := m[1], m[2]
			if target == "" {
				target = filepath.Base(doc) // a heading of the page itself
			}
			path := filepath.Join(filepath.Dir(doc), target)
			if _, err := os.Stat(filepath.Join(repoRoot, path)); err != nil {
				t.Errorf("%s links to %s, which does not exist", doc, target)
				continue
			}
			if fragment != "" && !slices.Contains(headingAnchors(readRepoFile(t, path)), fragment) {
				t.Errorf("%s links to %s#%s, which has no such heading", doc, target, fragment)
			}
		}
	}
}

// headingAnchors are the fragments GitHub gives md's headings: lower
// case, spaces as hyphens, punctuation other than hyphens dropped.
func headingAnchors(md string) []string {
	var anchors []string
	inCode := false
	for line := range strings.Lines(md) {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if inCode || !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		anchors = append(anchors, strings.Map(func(r rune) rune {
			switch {
			case r == ' ':
				return '-'
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				return unicode.ToLower(r)
			}
			return -1
		}, strings.TrimSpace(title)))
	}
	return anchors
}

// flagDefaults reads a command's -h output: every flag it takes, by name,
// with its default ("" for none).
func flagDefaults(t *testing.T, command string) map[string]string {
	t.Helper()
	_, help, _ := runCLI(t.Context(), vars{}, command, "-h")
	flags := map[string]string{}
	for line := range strings.Lines(help) {
		m := regexp.MustCompile(`^\s+(?:-[a-z], )?--([a-z-]+)`).FindStringSubmatch(line)
		if m == nil {
			continue
		}
		flags[m[1]] = ""
		if d := regexp.MustCompile(`\(default (.*)\)\n?$`).FindStringSubmatch(line); d != nil {
			flags[m[1]] = strings.Trim(d[1], `"`)
		}
	}
	if len(flags) == 0 {
		t.Fatalf("latchkey %s -h lists no flags:\n%s", command, help)
	}
	return flags
}

func TestProductionDocGivesBenchsRealFlags(t *testing.T) {
	t.Parallel()
	flags := flagDefaults(t, "bench")
	section := markdownSection(t, readRepoFile(t, "docs/production.md"), "## Sizing")
	rows := regexp.MustCompile("(?m)^\\| `--([a-z-]+)[^`]*` \\| (?:`([^`]*)`|none) \\|").FindAllStringSubmatch(section, -1)
	if len(rows) == 0 {
		t.Fatal("docs/production.md's Sizing section has no table of latchkey bench's flags")
	}
	for _, r := range rows {
		def, ok := flags[r[1]]
		switch {
		case !ok:
			t.Errorf("docs/production.md gives latchkey bench --%s, which it does not take", r[1])
		case def != r[2]:
			t.Errorf("docs/production.md gives --%s the default %q; latchkey bench says %q", r[1], r[2], def)
		}
	}
}
