package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/storage/pgcluster"
	"github.com/latchkey/latchkey/storage/postgres"
)

func TestServeNamesEveryMissingSetting(t *testing.T) {
	code, _, stderr := runCLI(t.Context(), vars{}, "serve")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, setting := range []string{"LATCHKEY_DATABASE_URL", "LATCHKEY_ISSUER", "LATCHKEY_SECRETS"} {
		if !strings.Contains(stderr, setting) {
			t.Errorf("stderr does not name %s:\n%s", setting, stderr)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(line, "latchkey serve: ") {
			t.Errorf("line %q is not one readable, prefixed line", line)
		}
	}
}

func TestServeRefusesOutdatedSchemaUnlessAskedToMigrate(t *testing.T) {
	url := pgtest.EmptyURL(t)
	env := vars{
		"LATCHKEY_DATABASE_URL": url,
		"LATCHKEY_ISSUER":       "http://localhost:8080",
		"LATCHKEY_SECRETS":      testSecret,
		"LATCHKEY_PUBLIC_ADDR":  "127.0.0.1:0",
		"LATCHKEY_ADMIN_ADDR":   "127.0.0.1:0",
	}
	code, _, stderr := runCLI(t.Context(), env, "serve")
	if code != 1 || !strings.Contains(stderr, "latchkey migrate up") || !strings.Contains(stderr, "--migrate") {
		t.Fatalf("serve on an empty database: exit %d, stderr %q; want a refusal naming the command to run", code, stderr)
	}

	ctx, cancel := context.WithCancel(t.Context())
	type exit struct {
		code   int
		stderr string
	}
	done := make(chan exit, 1)
	go func() {
		code, _, stderr := runCLI(ctx, env, "serve", "--migrate")
		done <- exit{code, stderr}
	}()
	store, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	waitFor(t, "serve --migrate to migrate and create keys", func() bool {
		st, err := store.SchemaStatus(t.Context())
		if err != nil || !st.UpToDate() {
			return false
		}
		ks, err := store.SigningKeys(t.Context(), false)
		return err == nil && len(ks) > 0
	})
	cancel()
	if e := <-done; e.code != 0 {
		t.Fatalf("serve --migrate exited %d after a graceful stop, want 0; stderr:\n%s", e.code, e.stderr)
	}
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDiscoveryMatchesIssuerAndEveryListedURLIsServed(t *testing.T) {
	t.Parallel()
	for _, issuerPath := range []string{"", "/tenant-a"} {
		t.Run("issuer path "+issuerPath, func(t *testing.T) {
			t.Parallel()
			n := startNodeUnder(t, nil, issuerPath)
			issuer, base := n.issuer, n.host

			for _, docURL := range []string{
				issuer + "/.well-known/openid-configuration",
				base + "/.well-known/oauth-authorization-server" + issuerPath,
			} {
				status, body := httpGet(t, docURL)
				if status != http.StatusOK {
					t.Fatalf("GET %s = %d", docURL, status)
				}
				var doc map[string]any
				if err := json.Unmarshal(body, &doc); err != nil {
					t.Fatal(err)
				}
				if doc["issuer"] != issuer {
					t.Fatalf("%s: issuer = %v, want %q", docURL, doc["issuer"], issuer)
				}
				var urls int
				for name, v := range doc {
					s, ok := v.(string)
					if !ok || name == "issuer" || !strings.HasPrefix(s, "http") {
						continue
					}
					urls++
					if !strings.HasPrefix(s, issuer+"/") {
						t.Errorf("%s = %s is not under the issuer", name, s)
					}
					if status, _ := httpGet(t, s); status == http.StatusNotFound || status >= 500 {
						t.Errorf("%s = %s answers %d", name, s, status)
					}
				}
				if urls == 0 {
					t.Fatalf("%s lists no endpoint URLs: %s", docURL, body)
				}
			}
		})
	}
}

func TestReadyzFollowsTheDatabaseWithoutRestart(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	pub, _ := loopback(t)
	adm, adminURL := loopback(t)
	cfg := testConfig(t, vars{
		"LATCHKEY_DATABASE_URL":     cluster.URL("postgres"),
		"LATCHKEY_ISSUER":           "http://localhost:8080",
		"LATCHKEY_SECRETS":          testSecret,
		"LATCHKEY_DATABASE_TIMEOUT": "1s",
	})
	store, err := openStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- serveNode(ctx, cfg, store, quietLogger(), nil, pub, adm) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serveNode: %v", err)
		}
	}()

	ready := func() int { status, _ := httpGet(t, adminURL+"/readyz"); return status }
	waitFor(t, "the node to become ready", func() bool { return ready() == http.StatusOK })

	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the database stopped = %d, want 503", got)
	}
	if status, _ := httpGet(t, adminURL+"/healthz"); status != http.StatusOK {
		t.Fatalf("/healthz with the database stopped = %d, want 200 (the process is alive)", status)
	}

	restarted, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: cluster.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Stop(context.Background()) })
	waitFor(t, "/readyz to recover once the database is back", func() bool { return ready() == http.StatusOK })
}

func TestHealthcheckCommandReportsReadiness(t *testing.T) {
	t.Parallel()
	pub, _ := loopback(t)
	adm, adminURL := loopback(t)
	cfg := testConfig(t, vars{
		"LATCHKEY_DATABASE_URL": pgtest.URL(t),
		"LATCHKEY_ISSUER":       "http://localhost:8080",
		"LATCHKEY_SECRETS":      testSecret,
	})
	store, err := openStore(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- serveNode(ctx, cfg, store, quietLogger(), nil, pub, adm) }()
	adminAddr := strings.TrimPrefix(adminURL, "http://")
	waitFor(t, "the node to serve", func() bool {
		code, _, _ := runCLI(t.Context(), vars{"LATCHKEY_ADMIN_ADDR": adminAddr}, "healthcheck")
		return code == 0
	})
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t.Context(), vars{"LATCHKEY_ADMIN_ADDR": adminAddr}, "healthcheck"); code != 1 || stderr == "" {
		t.Fatalf("healthcheck against a stopped node: exit %d, stderr %q; want a failure", code, stderr)
	}
}
