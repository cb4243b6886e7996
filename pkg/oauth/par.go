// This file is pushed authorization requests (RFC 9126): a client posts
// its authorization request to the PAR endpoint, authenticated as at the
// token endpoint, and sends the browser to the authorization endpoint with
// only the request_uri it got back.

package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
)

// PAR settings a Provider is built with (Config).
const (
	// DefaultPARLifespan is how long a request_uri may wait to be
	// redeemed when Config sets none: long enough for a browser to be
	// sent on its way, short enough that a leaked one is soon worthless
	// (RFC 9126 §2.2 shows 60 seconds).
	DefaultPARLifespan = 60 * time.Second
	// maxLivePushes is how many unredeemed, unexpired pushed requests a
	// client may hold. A public client can push without a secret, so in
	// its name anybody can; this, with the per-client rate limit, bounds
	// what that can make the server store (each push is at most about
	// 18 KB, authorizeParams).
	maxLivePushes = 1000
	// parPrefix begins every request_uri Latchkey issues (RFC 9126 §2.2);
	// fosite's default.
	parPrefix = "urn:ietf:params:oauth:request_uri:"
)

// PushedRequests is where pushed authorization requests wait
// (storage/postgres), under the SHA-256 of their request_uri.
type PushedRequests interface {
	// StorePushedRequest keeps params for clientID until expiresAt, unless
	// the client holds most live ones already: then it returns false.
	StorePushedRequest(ctx context.Context, signature, clientID string, params url.Values, expiresAt time.Time, most int) (bool, error)
	// RedeemPushedRequest takes and deletes, at once, the live request
	// clientID pushed under signature; fosite.ErrNotFound if there is none.
	RedeemPushedRequest(ctx context.Context, signature, clientID string) (url.Values, error)
}

// requestURISignature is what a request_uri is stored under: its SHA-256,
// so that the database holds nothing that would redeem it.
func requestURISignature(requestURI string) string {
	sum := sha256.Sum256([]byte(requestURI))
	return hex.EncodeToString(sum[:])
}

// PushAuthorize serves the pushed authorization request endpoint (RFC 9126
// §2). fosite authenticates the client as at the token endpoint (a
// private_key_jwt assertion may name this endpoint as its audience) and
// checks the request as an authorization request; Latchkey adds what
// ParseAuthorize adds (bounds, PKCE, prompt, the claims parameter), keeps
// only the parameters the flow uses, never the client's credentials, and
// charges the push to the client as a token request. Anonymous callers
// store nothing: a public client's pushes are bounded by the rate limit
// and by maxLivePushes.
func (p *Provider) PushAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx, release := p.store.GuardTransactions(r.Context())
	defer release()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
	}
	// Request objects are not offered here either; set them aside so that
	// fosite does not act on them, and refuse them once the client is known.
	var objects []string
	if err := r.ParseForm(); err == nil {
		if r.Form.Has("request") {
			objects = append(objects, "request")
			r.Form.Del("request")
		}
	}
	ar, err := p.fosite.NewPushedAuthorizeRequest(ctx, r)
	if err == nil {
		// Only now is the client known to be who it says.
		err = p.limit(ctx, w, "token", ar.GetClient().GetID())
	}
	if err == nil {
		err = boundAuthorizeRequest(ar)
	}
	if err == nil {
		err = checkAuthorizeRequest(ar, objects, p.enforcePKCE)
	}
	if err == nil {
		err = p.requestResources(ctx, ar)
	}
	if err == nil {
		_, err = parseClaimsParameter(ar.GetRequestForm().Get("claims"))
	}
	if err == nil {
		if hint := ar.GetRequestForm().Get("id_token_hint"); hint != "" {
			_, err = p.IDTokenHint(ctx, hint)
		}
	}
	if err != nil {
		p.writeError(ctx, w, err)
		return
	}
	resp, err := p.fosite.NewPushedAuthorizeResponse(ctx, ar, NewSession())
	if err != nil {
		p.writeError(ctx, w, err)
		return
	}
	p.fosite.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}

// errTooManyPushes is a client holding maxLivePushes requests already.
var errTooManyPushes = &rateLimited{DefaultPARLifespan, "This client holds too many pushed requests that were never used"}

// CreatePARSession is fosite's store of a pushed request (fosite.PARStorage):
// its parameters, which PushAuthorize has bounded, under the digest of
// requestURI, until the session's PAR expiry.
func (s *fositeStore) CreatePARSession(ctx context.Context, requestURI string, ar fosite.AuthorizeRequester) error {
	expires := time.Now().Add(s.parLifespan)
	if sess := ar.GetSession(); sess != nil {
		if at := sess.GetExpiresAt(fosite.PushedAuthorizeRequestContext); !at.IsZero() {
			expires = at
		}
	}
	stored, err := s.Store.StorePushedRequest(ctx, requestURISignature(requestURI), ar.GetClient().GetID(), ar.GetRequestForm(), expires, maxLivePushes)
	if err == nil && !stored {
		return errTooManyPushes
	}
	return err
}

// errRedeemedByParseAuthorize says that fosite's own redemption was
// reached, which ParseAuthorize never lets happen.
var errRedeemedByParseAuthorize = errors.New("oauth: request_uri values are redeemed by ParseAuthorize, not fosite")

// GetPARSession is never used: ParseAuthorize takes request_uri out of the
// request before fosite reads it and redeems it itself, checking the
// client and deleting it in one statement (redeemPushed), where fosite
// would read, then delete, then compare the client.
func (s *fositeStore) GetPARSession(context.Context, string) (fosite.AuthorizeRequester, error) {
	return nil, errRedeemedByParseAuthorize
}

// DeletePARSession is never used; see GetPARSession.
func (s *fositeStore) DeletePARSession(context.Context, string) error {
	return errRedeemedByParseAuthorize
}

// redeemPushed takes the pushed request requestURI refers to, which must
// have been pushed by clientID (RFC 9126 §4), and returns its parameters:
// once, however many requests present it at the same moment. An unknown,
// spent, expired or another client's request_uri is invalid_request_uri.
func (p *Provider) redeemPushed(ctx context.Context, requestURI, clientID string) (url.Values, error) {
	params, err := p.pushed.RedeemPushedRequest(ctx, requestURISignature(requestURI), clientID)
	if errors.Is(err, fosite.ErrNotFound) {
		return nil, fosite.ErrInvalidRequestURI.WithHint("The request_uri is unknown, was already used, has expired, or was pushed by another client; push the request again.")
	}
	return params, err
}

// isPushedRequestURI reports whether v is a request_uri of this server's
// PAR endpoint, rather than a request object's URL (which is refused).
func isPushedRequestURI(v string) bool { return strings.HasPrefix(v, parPrefix) }

// parkedKey marks, in a context, an authorization request parsed again
// from where pkg/signin parked it.
type parkedKey struct{}

// ParkedRequest marks ctx as parsing again a request that ParseAuthorize
// accepted before and pkg/signin parked on the server: its parameters are
// the pushed ones if it was pushed, so a client that must push is not
// refused for its request_uri being gone. Only parameters read back from
// the server's own storage may be parsed under it.
func ParkedRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, parkedKey{}, true)
}

// mustPush reports whether c's authorization requests must come through
// the PAR endpoint: every client's when the server requires it, or the
// client's when it registered require_pushed_authorization_requests.
func (p *Provider) mustPush(ar fosite.AuthorizeRequester) bool {
	if p.requirePAR {
		return true
	}
	c, ok := ar.GetClient().(*client.Client)
	return ok && c.RequirePushedAuthorizationRequests
}
