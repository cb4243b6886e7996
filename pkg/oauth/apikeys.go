// This file is how introspection and revocation answer for API keys
// (pkg/apikey), which are not fosite's tokens: a token with the key prefix
// is looked up here, through APIKeys, and never reaches fosite.

package oauth

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/usage"
)

// AddressParameter is the introspection parameter by which a resource
// server tells the address its caller, the key's user, connects from
// (RFC 7662 §2.1 lets a resource server send such context). A key with
// allowed addresses is active only when it is given and inside them; it
// is also what a key's last use and new-address events record.
const AddressParameter = "client_address"

// APIKeys checks and revokes API keys (pkg/apikey.Manager).
type APIKeys interface {
	// Check returns the key if it may be used now from the address
	// (invalid when not given), with its scopes now; apikey.ErrInactive
	// if not.
	Check(ctx context.Context, secret string, from netip.Addr) (*apikey.Key, error)
	// RevokeSecret revokes a key for the client that owns it:
	// apikey.ErrNotOwner for another's; nil for an unknown key.
	RevokeSecret(ctx context.Context, clientID, secret string) error
}

// introspectKey answers the introspection of an API key for caller, an
// authenticated confidential client, as introspect does a token, and says
// how it ended. Only the key's owner, a client its audience names, or one
// allowed introspect_any_token learns that it is active (as mayIntrospect
// for tokens); to any other caller it is inactive like an unknown one.
func (p *Provider) introspectKey(w http.ResponseWriter, r *http.Request, caller fosite.Client, secret string) string {
	ctx := audit.WithActor(r.Context(), audit.Client(caller.GetID()))
	var from netip.Addr
	if s := r.PostForm.Get(AddressParameter); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil {
			p.writeError(ctx, w, fosite.ErrInvalidRequest.WithHint("The "+AddressParameter+" parameter must be an IP address."))
			return "rejected"
		}
		from = a
	}
	k, err := p.apiKeys.Check(ctx, secret, from)
	switch {
	case errors.Is(err, apikey.ErrInactive):
		writeIntrospection(w, map[string]any{"active": false})
		return "inactive"
	case err != nil:
		if p.writeError(ctx, w, err) >= http.StatusInternalServerError {
			return "error"
		}
		return "rejected"
	case !mayIntrospectKey(caller, k):
		writeIntrospection(w, map[string]any{"active": false})
		return "inactive"
	}
	// The key's own usage plan, if it has one, counts its introspections
	// (issue 18), beside the introspecting client's.
	if err := p.Charge(ctx, w, usage.KeySubject(k.ID), "introspect"); err != nil {
		if p.writeError(ctx, w, err) >= http.StatusInternalServerError {
			return "error"
		}
		return "rejected"
	}
	writeIntrospection(w, p.describeKey(k))
	return "active"
}

// mayIntrospectKey is mayIntrospect's rule for a key: its owning client,
// a client its audience names, or a client allowed introspect_any_token.
// A personal key has no owning client.
func mayIntrospectKey(caller fosite.Client, k *apikey.Key) bool {
	if (k.ClientID != "" && k.ClientID == caller.GetID()) || slices.Contains(k.Audience, caller.GetID()) {
		return true
	}
	c, ok := caller.(*client.Client)
	return ok && c.IntrospectAnyToken
}

// describeKey is the RFC 7662 §2.2 answer for an active key: the same
// members as for an access token, so that a resource server needs no
// change. token_type is Bearer: §2.2 defines it as the type of RFC 6749
// §7.1, which says how a token is presented, and a key is presented as a
// bearer token (Authorization: Bearer lk_ak_…); resource servers that
// follow docs/guide-resource-server.md refuse any other type. key_id
// tells a key from a token, for the resource server's logs.
func (p *Provider) describeKey(k *apikey.Key) map[string]any {
	resp := map[string]any{
		"active":     true,
		"iss":        p.issuer,
		"client_id":  k.IssuedTo(),
		"sub":        k.Subject(),
		"scope":      k.Scope,
		"iat":        k.CreatedAt.Unix(),
		"token_type": "Bearer",
		"key_id":     k.ID,
	}
	if len(k.Audience) > 0 {
		resp["aud"] = k.Audience
	}
	if k.ExpiresAt != nil {
		resp["exp"] = k.ExpiresAt.Unix()
	}
	return resp
}

// revokeKey serves RFC 7009 revocation of an API key: the client
// authenticates, and may revoke only its own keys, as with tokens (a key
// of another owner is unauthorized_client, as fosite answers for another
// client's token); an unknown key answers 200 (§2.2).
func (p *Provider) revokeKey(w http.ResponseWriter, r *http.Request, secret string) {
	ctx := r.Context()
	caller, err := p.fosite.AuthenticateClient(ctx, r, r.PostForm)
	if err == nil {
		err = p.limit(ctx, w, "revoke", caller.GetID())
	}
	if err == nil {
		err = p.apiKeys.RevokeSecret(audit.WithActor(ctx, audit.Client(caller.GetID())), caller.GetID(), secret)
		if errors.Is(err, apikey.ErrNotOwner) {
			err = fosite.ErrUnauthorizedClient.WithHint("The API key belongs to another client.")
		}
	}
	if err != nil {
		p.writeError(ctx, w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// noAPIKeys is the APIKeys of a provider wired without them: every key is
// inactive, and revoking one does nothing.
type noAPIKeys struct{}

func (noAPIKeys) Check(context.Context, string, netip.Addr) (*apikey.Key, error) {
	return nil, apikey.ErrInactive
}
func (noAPIKeys) RevokeSecret(context.Context, string, string) error { return nil }
