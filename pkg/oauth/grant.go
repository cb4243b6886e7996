package oauth

import (
	"context"
	"errors"
	"slices"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
)

// errNoUserDirectory is a provider built without Deps.Users meeting a grant
// that has a user behind it: it cannot tell whether the user may still use it.
var errNoUserDirectory = errors.New("oauth: no user directory to check a user's grant against")

// userStillAllows is the rule a user's grant must pass each time it is used
// at the token endpoint, for an authorization code and for every refresh:
// the user still exists, is not disabled, and, unless the app skips consent,
// still allows the app every scope of the grant.
//
// Disabling or deleting a user, a new password, signing out everywhere and
// withdrawing consent revoke the grant's tokens and unused codes in the
// same transaction (storage/postgres). This check is what holds for a code
// issued in the moment before, and whatever else the revocation missed: a
// grant must not outlive the act that ended it. A refusal is invalid_grant,
// the code RFC 6749 §5.2 gives a grant that was revoked.
func (p *Provider) userStillAllows(ctx context.Context, ar fosite.AccessRequester) error {
	sub, ok := userOf(ar)
	if !ok {
		return fosite.ErrInvalidGrant.WithHint("The grant has no user behind it.")
	}
	if p.users == nil {
		return errNoUserDirectory
	}
	user, err := p.users.Get(ctx, sub)
	switch {
	case errors.Is(err, identity.ErrNotFound) || (err == nil && user.Disabled):
		return fosite.ErrInvalidGrant.WithHint("The user no longer exists or is disabled.")
	case err != nil:
		return err
	}
	c, ok := ar.GetClient().(*client.Client)
	if !ok {
		return fosite.ErrInvalidClient.WithHint("The client is not one Latchkey registered.")
	}
	// The authorization endpoint granted every scope requested (signInSession),
	// and a refresh grants the original scopes again: both are what the user
	// allowed.
	scopes := append(slices.Clone(ar.GetRequestedScopes()), ar.GetGrantedScopes()...)
	allowed, err := p.users.Allows(ctx, sub, c, scopes)
	if err != nil {
		return err
	}
	if !allowed {
		return fosite.ErrInvalidGrant.WithHint("The user no longer allows this app these scopes.")
	}
	return nil
}
