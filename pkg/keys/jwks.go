package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"
)

// jwksMaxAge is how long relying parties may cache the JWKS. It is short
// because a rotated key signs at once: a client that does not refetch on an
// unknown kid still sees the new key within five minutes.
const jwksMaxAge = "public, max-age=300"

// ServeJWKS answers GET /.well-known/jwks.json with the public halves of the
// active keys (kid, alg, use and key material only). It sets an ETag, so
// clients revalidating an unchanged set get 304 Not Modified.
func (m *Manager) ServeJWKS(w http.ResponseWriter, r *http.Request) {
	s := m.snapshot.Load()
	if s == nil {
		http.Error(w, "signing keys not loaded", http.StatusServiceUnavailable)
		return
	}
	h := w.Header()
	// application/json rather than RFC 7517's jwk-set+json: some relying
	// parties accept only the former.
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", jwksMaxAge)
	h.Set("ETag", s.etag)
	// ServeContent answers If-None-Match against the ETag and handles HEAD.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(s.jwks))
}

// JWKS returns the published key set as JSON.
func (m *Manager) JWKS() []byte {
	if s := m.snapshot.Load(); s != nil {
		return bytes.Clone(s.jwks)
	}
	return nil
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}
