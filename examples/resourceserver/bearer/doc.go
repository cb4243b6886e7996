// Package bearer protects net/http handlers with OAuth 2.0 bearer tokens
// (RFC 6750), which it checks by token introspection (RFC 7662): the
// resource server side of Latchkey, or of any authorization server with an
// introspection endpoint.
//
// # Flow
//
// For each request, a Guard's middleware
//
//  1. takes the token from the Authorization header (Bearer scheme only;
//     tokens in the URL are refused, since URLs end up in logs);
//  2. asks the introspection endpoint what the token means, authenticating
//     as a confidential client of its own, unless a recent answer for the
//     same token is cached;
//  3. refuses a token that is not active, not an access token, or issued
//     for another API (aud);
//  4. checks the route's Rule: scopes, then how and when the user signed in
//     (acr, auth_time);
//  5. passes the request on with the token's Claims in its context.
//
// # Answers
//
// Refusals follow RFC 6750 §3 and RFC 9470, with a WWW-Authenticate
// challenge a client library can act on:
//
//	401  Bearer realm="notes"                                  no token at all
//	400  Bearer error="invalid_request", error_description=... malformed request
//	401  Bearer error="invalid_token", error_description=...   inactive, expired, revoked, another API's
//	403  Bearer error="insufficient_scope", scope="notes.read" a scope is missing
//	401  Bearer error="insufficient_user_authentication",      the sign-in is too weak or too old:
//	          acr_values="urn:latchkey:acr:mfa", max_age="600"  sign in again with these
//
// When the introspection endpoint cannot be reached, the answer is 503:
// the token is neither accepted nor called invalid.
//
// # Caching and revocation
//
// Asking the authorization server on every request costs a round trip, so
// answers are cached, keyed by the SHA-256 of the token (the cache never
// holds a usable token). An answer is reused for at most Config.MaxCacheAge
// and never past the token's own exp. The bound is the price of the cache:
// a token revoked at the authorization server (a user signing out, an
// operator disabling someone) is still accepted here until its entry ends,
// that is for at most MaxCacheAge. Choose it as the longest you can accept
// a revoked token being honoured; DefaultMaxCacheAge is a minute. Answers
// for inactive tokens are cached too, so that a client retrying a dead
// token does not hammer the authorization server; an inactive token never
// becomes active again. The cache holds at most Config.MaxCacheEntries
// answers, so that a flood of made-up tokens cannot exhaust memory.
package bearer
