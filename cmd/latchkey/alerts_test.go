package main

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// promtool returns the path of Prometheus's promtool. Without it the test
// is skipped, except under CI=true, where it fails: CI installs Debian's
// prometheus package for it.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (Debian's prometheus package has it)")
		}
		t.Skip("promtool is not installed")
	}
	return path
}

// The alerting rules operators are given load in Prometheus, and each
// fires on the series that should fire it and not on quiet ones (the
// rule tests in testdata/alerts_test.yaml).
func TestTheAlertRulesLoadInPrometheusAndFireWhenTheyShould(t *testing.T) {
	t.Parallel()
	tool := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "../../docs/alerts.yaml"},
		{"test", "rules", "testdata/alerts_test.yaml"},
	} {
		out, err := exec.CommandContext(t.Context(), tool, args...).CombinedOutput() // #nosec G204 -- promtool, with fixed arguments
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// The alerting rules name only metrics Latchkey exports: each is in the
// table of docs/observability.md, which pkg/metrics's tests keep true
// against /metrics.
func TestTheAlertRulesNameOnlyMetricsLatchkeyExports(t *testing.T) {
	t.Parallel()
	rules, err := os.ReadFile("../../docs/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile(`latchkey_[a-z_]+`).FindAllString(string(rules), -1)
	if len(named) == 0 {
		t.Fatal("the alert rules name no metric")
	}
	for _, m := range slices.Compact(slices.Sorted(slices.Values(named))) {
		if !strings.Contains(string(docs), "| `"+m+"` |") {
			t.Errorf("docs/alerts.yaml names %s, which Latchkey does not export", m)
		}
	}
}
