package oauth

import (
	"maps"
	"slices"

	"github.com/ory/fosite"

	"github.com/latchkey/latchkey/pkg/client"
)

// authorizeParams are the parameters of an authorization request that
// Latchkey acts on (RFC 6749 §4.1.1, RFC 7636 §4.3, OpenID Connect Core
// §3.1.2.1 and §5.5, and fosite's audience), each with the most
// characters it may hold, all of its values together. A request is
// parked in the session of a browser that nobody need have signed in on,
// so these bounds are what an anonymous caller can make the server store:
// about 18 KB a request.
var authorizeParams = map[string]int{
	"response_type": 64,
	"response_mode": 32,
	// Registered redirect URIs have at most 2000 characters (pkg/client),
	// a loopback one a port more.
	"client_id":             client.MaxIDLen,
	"redirect_uri":          2048,
	"scope":                 1024,
	"audience":              1024,
	"state":                 512,
	"nonce":                 512,
	"code_challenge":        128, // 43 to 128 characters (RFC 7636 §4.2)
	"code_challenge_method": 16,
	"prompt":                64,
	"max_age":               16,
	"login_hint":            256,
	"acr_values":            256,
	"ui_locales":            64,
	"claims":                4096,
	// An ID token signed with RS256 by a 4096-bit key, with a full
	// profile and roles, fits in a few kilobytes.
	"id_token_hint": 8192,
}

// boundAuthorizeRequest keeps, of ar's parameters, only those the flow
// uses (authorizeParams), so that nothing else is parked, and refuses a
// parameter longer than its bound with invalid_request, which goes back to
// the client like any other error of the request. An over-long state is
// dropped, not echoed back in the error. A nil ar (fosite could not read
// the request at all) has nothing to bound.
func boundAuthorizeRequest(ar fosite.AuthorizeRequester) error {
	if ar == nil {
		return nil
	}
	form := ar.GetRequestForm()
	maps.DeleteFunc(form, func(name string, _ []string) bool {
		_, used := authorizeParams[name]
		return !used
	})
	for _, name := range slices.Sorted(maps.Keys(form)) {
		n := 0
		for _, v := range form[name] {
			n += len(v)
		}
		if most := authorizeParams[name]; n > most {
			if req, ok := ar.(*fosite.AuthorizeRequest); ok && name == "state" {
				req.State = ""
			}
			return fosite.ErrInvalidRequest.WithHintf("The %s parameter is longer than the %d characters Latchkey accepts.", name, most)
		}
	}
	return nil
}
