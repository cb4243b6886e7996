package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/latchkey/latchkey/pkg/config"
)

// samples are values of every kind a setting takes: text, a duration, a
// number, a boolean, a log level, a CIDR range. For each setting, the first
// sample it reads that moves a field away from its default is the one used.
var samples = []string{"7", "7s", "false", "true", "debug", "10.0.0.0/8"}

// fields flattens c into its fields by path: "Issuer", or "Metrics.Addr"
// for a struct of this package nested in Config, so that a nested group of
// settings is checked field by field too.
func fields(c config.Config) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := range v.NumField() {
			f, path := v.Field(i), prefix+v.Type().Field(i).Name
			if f.Kind() == reflect.Struct && f.Type().PkgPath() == v.Type().PkgPath() {
				walk(path+".", f)
				continue
			}
			out[path] = f.Interface()
		}
	}
	walk("", reflect.ValueOf(c))
	return out
}

// filledBy sets one setting's environment variable to a sample and returns
// the fields of Config that moved.
func filledBy(t *testing.T, s config.Setting, defaults map[string]any) []string {
	t.Helper()
	for _, sample := range samples {
		c, err := parse(t, environ{s.Env: sample})
		if err != nil {
			continue // not this kind of value
		}
		var moved []string
		for path, v := range fields(c) {
			if !reflect.DeepEqual(v, defaults[path]) {
				moved = append(moved, path)
			}
		}
		if len(moved) > 0 {
			return moved
		}
	}
	return nil
}

// docs/configuration.md is tested against Settings(); this test ties
// Settings() to Config itself, so that a field added without a setting, and
// so without a row in the docs, fails here instead of going unnoticed.
func TestEveryConfigFieldIsFilledByExactlyOneSetting(t *testing.T) {
	c, err := parse(t, environ{})
	if err != nil {
		t.Fatal(err)
	}
	defaults := fields(c)
	filled := map[string][]string{} // field path: the settings that fill it
	for _, s := range config.Settings() {
		moved := filledBy(t, s, defaults)
		if len(moved) == 0 {
			t.Errorf("%s fills no field of config.Config with any of %q", s.Env, samples)
		}
		for _, path := range moved {
			filled[path] = append(filled[path], s.Env)
		}
	}
	for path := range defaults {
		switch envs := filled[path]; len(envs) {
		case 0:
			t.Errorf("config.Config.%s is filled by no setting: add one to the table in config.go and a row to docs/configuration.md", path)
		case 1:
		default:
			t.Errorf("config.Config.%s is filled by %d settings, %v; want one", path, len(envs), envs)
		}
	}
}

// notSettings are LATCHKEY_ names the docs may use that are not settings
// of a node.
var notSettings = map[string]bool{
	"LATCHKEY_TEST_DATABASE_URL": true, // the tests' own server, read by internal/pgtest
	"LATCHKEY_OAUTH2_PROXY":      true, // the tests' oauth2-proxy binary, read by cmd/latchkey's interop test
}

// Every page an operator reads names only settings that exist, not just the
// configuration reference: a setting renamed in the code but not in a guide
// would have a reader set a variable Latchkey never reads.
func TestEveryPageNamesOnlyRealSettings(t *testing.T) {
	known := map[string]bool{}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	name := regexp.MustCompile(`LATCHKEY_[A-Z0-9_]*[A-Z0-9]`)
	for _, page := range operatorPages(t) {
		for _, n := range name.FindAllString(readPage(t, page), -1) {
			if !known[n] && !notSettings[n] {
				t.Errorf("%s names %s, which is not a setting", page, n)
			}
		}
	}
}

// operatorPages are the files, relative to this package, that tell people
// how to configure Latchkey.
func operatorPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"../../README.md", "../../Dockerfile", "../../docker-compose.yml"}
	for _, pattern := range []string{"../../docs/*.md", "../../examples/*.md", "../../examples/*/*.md"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, m...)
	}
	return pages
}

func readPage(t *testing.T, page string) string {
	t.Helper()
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A page that gives a setting's default in passing, as "`LATCHKEY_X`
// (`15s`)" or "(`15s` by default)", gives the real one.
func TestEveryPageGivesTheRealDefaults(t *testing.T) {
	defaults := map[string]string{}
	for _, s := range config.Settings() {
		defaults[s.Env] = s.Default
	}
	given := regexp.MustCompile("`(LATCHKEY_[A-Z0-9_]+)`\\s+\\(`([^`]+)`(?: by default)?\\)")
	for _, page := range operatorPages(t) {
		for _, m := range given.FindAllStringSubmatch(readPage(t, page), -1) {
			if defaults[m[1]] != m[2] {
				t.Errorf("%s gives %s's default as %s; it is %q", page, m[1], m[2], defaults[m[1]])
			}
		}
	}
}
