// Package keys owns Latchkey's signing keys: it generates them, seals their
// private halves at rest, rotates and retires them, hands the current key to
// whoever signs, and publishes the public halves as a JWKS.
//
// Every node keeps the active keys in memory and reloads them from the
// database every reload interval, so a key rotated on one node (or by the
// CLI) is used and published by all of them within that interval.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/seal"
)

// Algorithms are the signature algorithms Latchkey keeps a key for. RS256 is
// the one OpenID Connect requires every relying party to support; ES256 and
// EdDSA (Ed25519, RFC 8037) are smaller and far cheaper to sign with, for
// those that can verify them. A key is kept for each whether or not a
// client uses it, so that a client can switch at once and every node
// publishes the same set.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// rsaBits is the RSA modulus size: 2048 bits meets NIST SP 800-57 through
// 2030 and keeps RS256 signing cheap on the token path.
const rsaBits = 2048

// ErrNoKey is returned when no active key exists for an algorithm, which
// happens only before Init.
var ErrNoKey = errors.New("keys: no active signing key")

// Key is an active signing key with its private half decrypted.
type Key struct {
	ID        string
	Algorithm jose.SignatureAlgorithm
	Signer    crypto.Signer
	CreatedAt time.Time
}

// Info describes a stored key without its private half, for listings.
type Info struct {
	ID        string                  `json:"kid"`
	Algorithm jose.SignatureAlgorithm `json:"alg"`
	CreatedAt time.Time               `json:"created_at"`
	RetiredAt *time.Time              `json:"retired_at,omitempty"`
	// Current marks the key that signs for its algorithm.
	Current bool `json:"current"`
}

// Stored is a signing key as the Store keeps it: PrivateKey is sealed
// (pkg/seal), with the kid as its additional data, and never leaves this
// form in storage.
type Stored struct {
	KID        string
	Algorithm  string
	PublicJWK  []byte
	PrivateKey []byte
	CreatedAt  time.Time
	RetiredAt  *time.Time
}

// Retired reports whether the key has been taken out of the JWKS.
func (k Stored) Retired() bool { return k.RetiredAt != nil }

// Store keeps the signing keys (storage/postgres). Every change is
// announced to the other nodes, so that they reload.
type Store interface {
	// EnsureSigningKeys gives every algorithm in algs an active key,
	// calling generate for those that have none, and returns the keys it
	// created. Nodes starting together on an empty database create one
	// key per algorithm between them, not one each.
	EnsureSigningKeys(ctx context.Context, algs []string, generate func(alg string) (Stored, error)) ([]Stored, error)
	// SigningKeys lists keys, newest first; retired ones only if
	// includeRetired.
	SigningKeys(ctx context.Context, includeRetired bool) ([]Stored, error)
	// AddSigningKeys stores new keys, all of them or none.
	AddSigningKeys(ctx context.Context, keys []Stored) ([]Stored, error)
	// RetireSigningKey takes a key out of the JWKS: ErrInUse for the
	// newest active key of its algorithm, ErrNotFound for an unknown or
	// already retired kid.
	RetireSigningKey(ctx context.Context, kid string) (Stored, error)
	// ResealSigningKeys replaces each sealed private key, retired ones
	// too, with what reseal returns for it (nil: unchanged), and says how
	// many it changed.
	ResealSigningKeys(ctx context.Context, reseal func(kid string, sealed []byte) ([]byte, error)) (int, error)
}

// Manager is the single owner of signing keys on a node. It is safe for
// concurrent use; the token path reads a snapshot without locking.
type Manager struct {
	store  Store
	box    *seal.Box
	logger *slog.Logger
	audit  Auditor

	snapshot atomic.Pointer[snapshot]
	reload   sync.Mutex // one reload at a time; readers never wait on it
	// changed carries Changed's requests to Run.
	changed chan struct{}
}

// snapshot is an immutable view of the active keys.
type snapshot struct {
	current map[jose.SignatureAlgorithm]Key // newest active key per algorithm
	byID    map[string]Key
	jwks    []byte // the published JSON, computed once per change
	etag    string
}

// Auditor records changes with their audit events (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// Errors of Retire, which a Store returns too.
var (
	// ErrNotFound means no active key has the kid.
	ErrNotFound = errors.New("no active key with this kid")
	// ErrInUse means the key is the one signing for its algorithm: tokens
	// would then be signed by a key missing from the JWKS. Rotate first.
	ErrInUse = errors.New("the key is the current signing key for its algorithm; rotate before retiring it")
)

// NewManager returns a Manager that stores keys in store, sealed by box,
// and records rotations and retirements in the audit log. Call Init before
// use.
func NewManager(store Store, box *seal.Box, logger *slog.Logger, audit Auditor) *Manager {
	return &Manager{store: store, box: box, logger: logger, audit: audit, changed: make(chan struct{}, 1)}
}

// Init creates a key for each algorithm that has none (on first start) and
// loads the active keys. It fails if a key cannot be decrypted with the
// configured secrets, rather than starting with keys it cannot use.
func (m *Manager) Init(ctx context.Context) error {
	created, err := m.store.EnsureSigningKeys(ctx, algorithmNames(), m.generate)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	for _, k := range created {
		m.logger.Info("signing key created", "kid", k.KID, "alg", k.Algorithm)
	}
	return m.Reload(ctx)
}

// Reload reads the active keys from the database and decrypts any it has not
// seen before.
func (m *Manager) Reload(ctx context.Context) error {
	m.reload.Lock()
	defer m.reload.Unlock()

	stored, err := m.store.SigningKeys(ctx, false)
	if err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	old := m.snapshot.Load()
	next := &snapshot{current: map[jose.SignatureAlgorithm]Key{}, byID: map[string]Key{}}
	var published []jose.JSONWebKey
	for _, sk := range stored { // newest first
		k, ok := Key{}, false
		if old != nil {
			k, ok = old.byID[sk.KID]
		}
		if !ok {
			if k, err = m.open(sk); err != nil {
				return err
			}
		}
		next.byID[k.ID] = k
		if _, seen := next.current[k.Algorithm]; !seen {
			next.current[k.Algorithm] = k
		}
		var pub jose.JSONWebKey
		if err := json.Unmarshal(sk.PublicJWK, &pub); err != nil {
			return fmt.Errorf("keys: public key %s: %w", sk.KID, err)
		}
		published = append(published, pub)
	}
	if next.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: published}); err != nil {
		return fmt.Errorf("keys: encode JWKS: %w", err)
	}
	next.etag = etag(next.jwks)
	m.snapshot.Store(next)
	return nil
}

// Changed tells Run that the stored keys changed (another node rotated or
// retired one), so that it reloads now rather than at the next interval.
// It never blocks.
func (m *Manager) Changed() {
	select {
	case m.changed <- struct{}{}:
	default: // a reload is already due
	}
}

// Run reloads the keys whenever Changed says they changed, and every
// interval in case an announcement was lost, until ctx ends. A failed
// reload keeps the previous keys.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.changed:
		}
		if err := m.Reload(ctx); err != nil && ctx.Err() == nil {
			m.logger.Error("reloading signing keys failed; keeping the current ones", "err", err)
		}
	}
}

// Current returns the key that signs for alg.
func (m *Manager) Current(alg jose.SignatureAlgorithm) (Key, error) {
	s := m.snapshot.Load()
	if s == nil {
		return Key{}, ErrNoKey
	}
	k, ok := s.current[alg]
	if !ok {
		return Key{}, fmt.Errorf("%w for %s", ErrNoKey, alg)
	}
	return k, nil
}

// Lookup returns the active key with the given kid, so that tokens signed
// by any published key, not only the current one, verify.
func (m *Manager) Lookup(kid string) (Key, bool) {
	s := m.snapshot.Load()
	if s == nil {
		return Key{}, false
	}
	k, ok := s.byID[kid]
	return k, ok
}

// Rotate adds a new key for every algorithm in one transaction. The new keys
// sign from now on; the old ones stay in the JWKS, so tokens they signed keep
// verifying, until they are retired.
func (m *Manager) Rotate(ctx context.Context) ([]Info, error) {
	var fresh []Stored
	for _, alg := range algorithmNames() {
		k, err := m.generate(alg)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, k)
	}
	var added []Stored
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		added, err = m.store.AddSigningKeys(ctx, fresh)
		kids := make([]string, len(added))
		for i, k := range added {
			kids[i] = k.KID
		}
		return audit.Event{Action: audit.KeyRotated, Details: map[string]any{"new_kids": kids}}, err
	})
	if err != nil {
		return nil, fmt.Errorf("keys: rotate: %w", err)
	}
	if err := m.reloadIfServing(ctx); err != nil {
		return nil, err
	}
	infos := make([]Info, len(added))
	for i, k := range added {
		infos[i] = info(k, true)
	}
	return infos, nil
}

// Retire removes a key from the JWKS; tokens it signed stop verifying. The
// current signing key of an algorithm cannot be retired.
func (m *Manager) Retire(ctx context.Context, kid string) (Info, error) {
	var k Stored
	err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		var err error
		k, err = m.store.RetireSigningKey(ctx, kid)
		return audit.Event{Action: audit.KeyRetired, Target: audit.Key(kid)}, err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Info{}, &notFoundError{kid}
	case errors.Is(err, ErrInUse):
		return Info{}, fmt.Errorf("keys: %s: %w", kid, ErrInUse)
	case err != nil:
		return Info{}, fmt.Errorf("keys: %w", err)
	}
	if err := m.reloadIfServing(ctx); err != nil {
		return Info{}, err
	}
	return info(k, false), nil
}

// notFoundError names the kid that matched no active key.
type notFoundError struct{ kid string }

func (e *notFoundError) Error() string { return fmt.Sprintf("keys: no active key with kid %q", e.kid) }

// Is makes a notFoundError match ErrNotFound.
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

// reloadIfServing makes a change visible at once on a node that serves keys.
// A CLI process, which never called Init, has nothing to refresh.
func (m *Manager) reloadIfServing(ctx context.Context) error {
	if m.snapshot.Load() == nil {
		return nil
	}
	return m.Reload(ctx)
}

// List describes every stored key, retired ones included, newest first.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	stored, err := m.store.SigningKeys(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	infos := make([]Info, len(stored))
	seen := map[string]bool{}
	for i, k := range stored {
		current := !k.Retired() && !seen[k.Algorithm]
		if !k.Retired() {
			seen[k.Algorithm] = true
		}
		infos[i] = info(k, current)
	}
	return infos, nil
}

func info(k Stored, current bool) Info {
	return Info{
		ID:        k.KID,
		Algorithm: jose.SignatureAlgorithm(k.Algorithm),
		CreatedAt: k.CreatedAt,
		RetiredAt: k.RetiredAt,
		Current:   current,
	}
}

// generate makes a key pair for alg and seals its private half. The kid is
// the RFC 7638 thumbprint of the public key, so it is stable and unique.
func (m *Manager) generate(alg string) (Stored, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		// Ed25519 is the one EdDSA curve JOSE relying parties verify
		// (RFC 8037 §3.1); its JWK is kty OKP, crv Ed25519.
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return Stored{}, fmt.Errorf("keys: unsupported algorithm %q", alg)
	}
	if err != nil {
		return Stored{}, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: alg, Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return Stored{}, fmt.Errorf("keys: thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	pubJSON, err := pub.MarshalJSON()
	if err != nil {
		return Stored{}, fmt.Errorf("keys: encode public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return Stored{}, fmt.Errorf("keys: encode private key: %w", err)
	}
	return Stored{
		KID:        pub.KeyID,
		Algorithm:  alg,
		PublicJWK:  pubJSON,
		PrivateKey: m.box.Seal(der, []byte(pub.KeyID)),
	}, nil
}

// Reseal re-encrypts every stored private key, retired ones too, under the
// first of LATCHKEY_SECRETS, so that the secrets after it can be removed.
// It returns how many keys it changed.
func (m *Manager) Reseal(ctx context.Context) (int, error) {
	n, err := m.store.ResealSigningKeys(ctx, func(kid string, sealed []byte) ([]byte, error) {
		return m.box.Reseal(sealed, []byte(kid))
	})
	if err != nil {
		return n, fmt.Errorf("keys: %w", err)
	}
	return n, nil
}

// open decrypts a stored key. The kid is the additional data, so a sealed
// private key moved onto another row fails to open.
func (m *Manager) open(sk Stored) (Key, error) {
	der, err := m.box.Open(sk.PrivateKey, []byte(sk.KID))
	if errors.Is(err, seal.ErrUnknownSecret) {
		return Key{}, fmt.Errorf("keys: cannot decrypt signing key %s: it was %w; "+
			"put the secret it was created with back into LATCHKEY_SECRETS (after the current one)", sk.KID, err)
	}
	if err != nil {
		return Key{}, fmt.Errorf("keys: cannot decrypt signing key %s: %w", sk.KID, err)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return Key{}, fmt.Errorf("keys: parse signing key %s: %w", sk.KID, err)
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok {
		return Key{}, fmt.Errorf("keys: signing key %s is a %T, not a signer", sk.KID, parsed)
	}
	return Key{ID: sk.KID, Algorithm: jose.SignatureAlgorithm(sk.Algorithm), Signer: signer, CreatedAt: sk.CreatedAt}, nil
}

func algorithmNames() []string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return names
}
