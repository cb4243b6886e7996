package oauth

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/storage/pgcluster"
)

func TestRotatedSecretWorksDuringItsGracePeriodOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, old := f.backend(t, "")
	const grace = 1500 * time.Millisecond
	_, fresh, err := f.clients.RotateSecret(t.Context(), c.ID, grace)
	if err != nil {
		t.Fatal(err)
	}
	rotated := time.Now()
	if fresh == old || len(fresh) < 43 {
		t.Fatalf("new secret %q: want a fresh 256-bit secret", fresh)
	}
	works := func(secret string) bool {
		_, err := f.cc(c.ID, secret, oauth2.AuthStyleInHeader).Token(t.Context())
		return err == nil
	}
	if !works(old) || !works(fresh) {
		t.Fatalf("during the grace period: old works %v, new works %v; want both", works(old), works(fresh))
	}
	time.Sleep(time.Until(rotated.Add(grace + 100*time.Millisecond)))
	if works(old) || !works(fresh) {
		t.Fatalf("after the grace period: old works %v, new works %v; want only the new one", works(old), works(fresh))
	}

	// Rotating with no grace ends the old secret at once.
	_, newest, err := f.clients.RotateSecret(t.Context(), c.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if works(fresh) || !works(newest) {
		t.Fatal("a rotation without grace left the previous secret working")
	}
}

func TestDatabaseOutageAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	store := pgtest.Open(t, cluster.URL("postgres"))
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	f := newFixtureOn(t, cluster.URL("postgres"))
	c, secret := f.backend(t, "")
	token := f.token(t, c.ID, secret).AccessToken

	if err := cluster.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{discovery.TokenPath, discovery.IntrospectionPath, discovery.RevocationPath} {
		start := time.Now()
		status, h, body := f.post(t, path, c.ID, secret, url.Values{"grant_type": {"client_credentials"}, "token": {token}})
		rfc6749Error(t, status, h, body, http.StatusServiceUnavailable, "temporarily_unavailable")
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s took %s to answer during the outage", path, took)
		}
	}

	restarted, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: cluster.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restarted.Stop(context.Background()) })
	if got := f.introspect(t, c.ID, secret, token); got["active"] != true {
		t.Fatalf("after the database returned: %v", got)
	}
	if status := f.revoke(t, c.ID, secret, token, ""); status != http.StatusOK {
		t.Fatalf("revocation after the database returned: %d", status)
	}
}

func TestOpaqueTokensSurviveARotationOfLatchkeySecrets(t *testing.T) {
	t.Parallel()
	older := []byte("older-secret-older-secret-older-secret-0")
	newer := []byte("newer-secret-newer-secret-newer-secret-0")
	before := newFixture(t, func(c *Config) { c.Secrets = [][]byte{older} })
	c, secret := before.backend(t, "")
	issued := before.token(t, c.ID, secret).AccessToken

	// The operator puts a new secret first and keeps the old one after it.
	after := newFixtureOn(t, before.dbURL, func(c *Config) { c.Secrets = [][]byte{newer, older} })
	if got := after.introspect(t, c.ID, secret, issued); got["active"] != true {
		t.Fatalf("a token issued before the rotation: %v, want active", got)
	}
	fresh := after.token(t, c.ID, secret).AccessToken
	// Once the old secret is dropped, what it signed stops verifying; what
	// the new one signed keeps working.
	dropped := newFixtureOn(t, before.dbURL, func(c *Config) { c.Secrets = [][]byte{newer} })
	if got := dropped.introspect(t, c.ID, secret, issued); got["active"] != false {
		t.Fatalf("a token whose secret was dropped: %v, want inactive", got)
	}
	if got := dropped.introspect(t, c.ID, secret, fresh); got["active"] != true {
		t.Fatalf("a token issued under the new secret: %v, want active", got)
	}
}
