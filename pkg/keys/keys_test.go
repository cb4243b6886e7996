package keys_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/seal"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var (
	secretA = []byte("secret-A-secret-A-secret-A-secret-A")
	secretB = []byte("secret-B-secret-B-secret-B-secret-B")
)

// store is what the keys and the audit log keep on one database.
type store interface {
	keys.Store
	audit.Store
}

func newManager(t *testing.T, store store, secrets ...[]byte) *keys.Manager {
	t.Helper()
	box, err := seal.New(secrets)
	if err != nil {
		t.Fatal(err)
	}
	return keys.NewManager(store, box, slog.New(slog.DiscardHandler), audit.New(store, slog.New(slog.DiscardHandler)))
}

func initManager(t *testing.T, store store, secrets ...[]byte) *keys.Manager {
	t.Helper()
	m := newManager(t, store, secrets...)
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

// fetchJWKS gets the JWKS over HTTP the way a relying party would, and
// returns it both parsed by go-jose and as raw members.
func fetchJWKS(t *testing.T, m *keys.Manager) (jose.JSONWebKeySet, []map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.ServeJWKS(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("JWKS status %d", rec.Code)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil {
		t.Fatalf("JWKS does not parse with go-jose: %v", err)
	}
	var raw struct{ Keys []map[string]any }
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	return set, raw.Keys
}

func kids(set jose.JSONWebKeySet) []string {
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	slices.Sort(ids)
	return ids
}

func TestFirstStartCreatesOneKeyPerAlgorithm(t *testing.T) {
	t.Parallel()
	m := initManager(t, pgtest.Store(t), secretA)
	set, _ := fetchJWKS(t, m)
	if len(set.Keys) != len(keys.Algorithms) {
		t.Fatalf("JWKS has %d keys, want one per algorithm (%d)", len(set.Keys), len(keys.Algorithms))
	}
	for _, alg := range keys.Algorithms {
		if _, err := m.Current(alg); err != nil {
			t.Errorf("no current %s key: %v", alg, err)
		}
	}
}

func TestNodesStartingTogetherCreateKeysOnce(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	const nodes = 3
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		m := newManager(t, store, secretA)
		wg.Go(func() { errs[i] = m.Init(t.Context()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	stored, err := store.SigningKeys(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(keys.Algorithms) {
		t.Fatalf("%d keys stored after %d nodes started, want %d", len(stored), nodes, len(keys.Algorithms))
	}
}

func TestKeysSurviveTheEncryptionRoundTrip(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	first := initManager(t, store, secretA)
	// A second node loads the sealed keys from the database and must sign
	// tokens that verify against the first node's JWKS.
	second := initManager(t, store, secretA)
	set, _ := fetchJWKS(t, first)

	for _, alg := range keys.Algorithms {
		k, err := second.Current(alg)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.Signer},
			(&jose.SignerOptions{}).WithHeader("kid", k.ID))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := signer.Sign([]byte("payload"))
		if err != nil {
			t.Fatal(err)
		}
		pub := set.Key(k.ID)
		if len(pub) != 1 {
			t.Fatalf("kid %s appears %d times in the JWKS", k.ID, len(pub))
		}
		if got, err := jws.Verify(pub[0]); err != nil || string(got) != "payload" {
			t.Fatalf("%s signature from decrypted key does not verify with the published key: %v", alg, err)
		}
	}
}

func TestWrongSecretFailsClearly(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	initManager(t, store, secretA)

	err := newManager(t, store, secretB).Init(t.Context())
	if !errors.Is(err, seal.ErrUnknownSecret) {
		t.Fatalf("Init with the wrong secret: err = %v, want ErrUnknownSecret", err)
	}
	if !strings.Contains(err.Error(), "LATCHKEY_SECRETS") {
		t.Errorf("error %q does not tell the operator which setting to fix", err)
	}
	if strings.Contains(err.Error(), string(secretA)) || strings.Contains(err.Error(), string(secretB)) {
		t.Errorf("error %q contains a secret", err)
	}
}

func TestRotatedSecretStillOpensOldKeys(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	before, _ := fetchJWKS(t, initManager(t, store, secretA))
	after, _ := fetchJWKS(t, initManager(t, store, secretB, secretA))
	if !slices.Equal(kids(before), kids(after)) {
		t.Fatalf("keys changed across a secret rotation: %v -> %v", kids(before), kids(after))
	}
}

func TestRotationKeepsOldKeysPublished(t *testing.T) {
	t.Parallel()
	m := initManager(t, pgtest.Store(t), secretA)
	before, _ := fetchJWKS(t, m)
	oldRS, _ := m.Current(jose.RS256)

	added, err := m.Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != len(keys.Algorithms) {
		t.Fatalf("Rotate added %d keys, want %d", len(added), len(keys.Algorithms))
	}
	after, _ := fetchJWKS(t, m)
	if len(after.Keys) != 2*len(before.Keys) {
		t.Fatalf("JWKS after rotation has %d keys, want %d (old and new)", len(after.Keys), 2*len(before.Keys))
	}
	for _, id := range kids(before) {
		if len(after.Key(id)) != 1 {
			t.Errorf("old key %s left the JWKS on rotation", id)
		}
	}
	newRS, _ := m.Current(jose.RS256)
	if newRS.ID == oldRS.ID {
		t.Fatal("the current RS256 key did not change on rotation")
	}
}

func TestJWKSPublishesPublicMembersOnly(t *testing.T) {
	t.Parallel()
	m := initManager(t, pgtest.Store(t), secretA)
	if _, err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	set, raw := fetchJWKS(t, m)
	for i, k := range set.Keys {
		if !k.IsPublic() || !k.Valid() {
			t.Errorf("key %s: public=%v valid=%v", k.KeyID, k.IsPublic(), k.Valid())
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := raw[i][private]; ok {
				t.Errorf("key %s publishes private member %q", k.KeyID, private)
			}
		}
		for _, member := range []string{"kid", "alg", "use"} {
			if raw[i][member] == nil || raw[i][member] == "" {
				t.Errorf("key %s lacks %q", k.KeyID, member)
			}
		}
		if k.Use != "sig" {
			t.Errorf("key %s use = %q, want sig", k.KeyID, k.Use)
		}
	}
}

func TestEdDSAKeyIsPublishedAsAnEd25519OKPKey(t *testing.T) {
	t.Parallel()
	m := initManager(t, pgtest.Store(t), secretA)
	k, err := m.Current(jose.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := k.Signer.(ed25519.PrivateKey); !ok {
		t.Fatalf("the EdDSA key opened from the database is a %T, want an ed25519.PrivateKey", k.Signer)
	}
	set, raw := fetchJWKS(t, m)
	for i, pub := range set.Keys {
		if pub.KeyID != k.ID {
			continue
		}
		// RFC 8037 §2: kty OKP, crv Ed25519, the public key in x; the
		// private d never leaves.
		want := map[string]any{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.ID}
		for member, v := range want {
			if raw[i][member] != v {
				t.Errorf("EdDSA key member %s = %v, want %v", member, raw[i][member], v)
			}
		}
		if x, _ := raw[i]["x"].(string); len(x) != 43 || raw[i]["d"] != nil {
			t.Errorf("EdDSA key x = %q, d = %v; want 32 bytes of public key and no d", x, raw[i]["d"])
		}
		// The kid is the RFC 7638 thumbprint, as for the other keys
		// (RFC 8037 §2 names the members it covers).
		thumb, err := pub.Thumbprint(crypto.SHA256)
		if err != nil || base64.RawURLEncoding.EncodeToString(thumb) != k.ID {
			t.Errorf("kid %s is not the key's RFC 7638 thumbprint (err %v)", k.ID, err)
		}
		return
	}
	t.Fatalf("the current EdDSA key %s is not in the JWKS", k.ID)
}

// A deployment from before EdDSA has only RS256 and ES256 keys: the first
// start after the upgrade adds an EdDSA key and leaves the others signing.
func TestStartAfterUpgradeAddsTheMissingEdDSAKey(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	before := initManager(t, pgtest.Open(t, url), secretA)
	rs, _ := before.Current(jose.RS256)
	es, _ := before.Current(jose.ES256)
	conn := pgtest.Conn(t, url)
	if _, err := conn.Exec(t.Context(), `DELETE FROM signing_keys WHERE algorithm = 'EdDSA'`); err != nil {
		t.Fatal(err)
	}

	store := pgtest.Open(t, url)
	upgraded := initManager(t, store, secretA)
	ed, err := upgraded.Current(jose.EdDSA)
	if err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	for alg, want := range map[jose.SignatureAlgorithm]string{jose.RS256: rs.ID, jose.ES256: es.ID} {
		if got, _ := upgraded.Current(alg); got.ID != want {
			t.Errorf("the upgrade changed the %s key from %s to %s", alg, want, got.ID)
		}
	}
	set, _ := fetchJWKS(t, upgraded)
	if len(set.Keys) != 3 || len(set.Key(ed.ID)) != 1 {
		t.Fatalf("JWKS after the upgrade: %v, want the RS256, ES256 and new EdDSA keys", kids(set))
	}
	// Nodes starting after it find the key and create no other.
	initManager(t, store, secretA)
	if stored, _ := store.SigningKeys(t.Context(), true); len(stored) != 3 {
		t.Fatalf("%d keys stored, want 3", len(stored))
	}
}

func TestJWKSCachingHeaders(t *testing.T) {
	t.Parallel()
	m := initManager(t, pgtest.Store(t), secretA)
	rec := httptest.NewRecorder()
	m.ServeJWKS(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" || !strings.Contains(rec.Header().Get("Cache-Control"), "max-age=") {
		t.Fatalf("missing caching headers: %v", rec.Header())
	}

	req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	m.ServeJWKS(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("revalidation with the current ETag: status %d, want 304", rec.Code)
	}

	if _, err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	m.ServeJWKS(rec, req)
	if rec.Code != http.StatusOK || rec.Header().Get("ETag") == etag {
		t.Fatalf("after rotation: status %d, ETag %s; want 200 with a new ETag", rec.Code, rec.Header().Get("ETag"))
	}
}

func TestRetire(t *testing.T) {
	t.Parallel()
	m := initManager(t, pgtest.Store(t), secretA)
	old, _ := m.Current(jose.ES256)

	if _, err := m.Retire(t.Context(), old.ID); !errors.Is(err, keys.ErrInUse) {
		t.Fatalf("retiring the current signing key: err = %v, want ErrInUse", err)
	}
	if _, err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Retire(t.Context(), old.ID); err != nil {
		t.Fatalf("retiring a rotated-out key: %v", err)
	}
	set, _ := fetchJWKS(t, m)
	if len(set.Key(old.ID)) != 0 {
		t.Fatal("a retired key is still in the JWKS")
	}
	if _, err := m.Retire(t.Context(), old.ID); err == nil {
		t.Fatal("retiring a key twice succeeded")
	}
	if _, err := m.Retire(t.Context(), "no-such-kid"); err == nil {
		t.Fatal("retiring an unknown kid succeeded")
	}

	list, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var retired, current int
	for _, k := range list {
		if k.RetiredAt != nil {
			retired++
		}
		if k.Current {
			current++
		}
	}
	if len(list) != 2*len(keys.Algorithms) || retired != 1 || current != len(keys.Algorithms) {
		t.Fatalf("List = %+v, want two keys per algorithm, 1 retired, one current per algorithm", list)
	}
}

func TestReloadPicksUpRotationOnAnotherNode(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	a := initManager(t, store, secretA)
	b := initManager(t, store, secretA)
	if _, err := a.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	want, _ := a.Current(jose.RS256)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Run(ctx, 10*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := b.Current(jose.RS256)
		if got.ID == want.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B still signs with %s, not the key rotated on node A", got.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	setA, _ := fetchJWKS(t, a)
	setB, _ := fetchJWKS(t, b)
	if !slices.Equal(kids(setA), kids(setB)) {
		t.Fatalf("nodes publish different keys: %v vs %v", kids(setA), kids(setB))
	}
}

func TestAnotherNodeHearsOfARotationAtOnce(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	storeA, storeB := pgtest.Open(t, url), pgtest.Open(t, url)
	a := initManager(t, storeA, secretA)
	b := initManager(t, storeB, secretA)

	// Node B reloads on its own only once an hour: only the announcement
	// can bring it the new key in time.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.Run(ctx, time.Hour)
	listening := make(chan struct{})
	var once sync.Once
	go storeB.ListenForChanges(ctx, slog.New(slog.DiscardHandler), func() {
		once.Do(func() { close(listening) })
		b.Changed()
	}, nil, nil)
	<-listening

	for _, step := range []string{"rotate", "retire"} {
		var want string
		switch step {
		case "rotate":
			added, err := a.Rotate(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want = added[0].ID
		case "retire":
			infos, _ := a.List(t.Context())
			old := infos[len(infos)-1].ID
			if _, err := a.Retire(t.Context(), old); err != nil {
				t.Fatal(err)
			}
			want = "-" + old
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			set, _ := fetchJWKS(t, b)
			has := slices.Contains(kids(set), strings.TrimPrefix(want, "-"))
			if has != strings.HasPrefix(want, "-") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s on node A, node B's JWKS is %v", step, kids(set))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
