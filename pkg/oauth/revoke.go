package oauth

import (
	"net/http"

	"github.com/latchkey/latchkey/pkg/apikey"
)

// Revoke serves token revocation (RFC 7009). The client authenticates and
// may revoke only its own tokens. Revoking either token of a grant revokes
// the whole grant: its refresh tokens and every access token issued from
// it. Unknown and already revoked tokens answer 200, as §2.2 says.
//
// fosite's own response writer answers 200 when the store fails, which
// would tell a client its leaked token is dead while it still works
// (CVE-2020-15223 was this bug); here a failure answers 503 and the client
// retries. The revocation runs in one transaction, so it happens whole or
// not at all. API keys are revoked by revokeKey, under the same rules.
func (p *Provider) Revoke(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.ParseForm() == nil && apikey.LooksLike(r.PostForm.Get("token")) {
		p.revokeKey(w, r, r.PostForm.Get("token")) // apikeys.go
		return
	}
	ctx, release := p.store.GuardTransactions(r.Context())
	defer release()
	txCtx, err := p.store.BeginTX(ctx)
	if err == nil {
		if err = p.fosite.NewRevocationRequest(txCtx, r); err == nil {
			// The client authenticated: count the request against it, and
			// if it is over its limit undo the revocation (the guard rolls
			// back) so that a retry does the whole of it.
			// NewRevocationRequest authenticated the client: its claim is
			// true.
			if err = p.limit(ctx, w, "revoke", claimedClientID(r, r.PostForm)); err == nil {
				err = p.store.Commit(txCtx)
			}
		}
	}
	if err != nil {
		p.writeError(ctx, w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
