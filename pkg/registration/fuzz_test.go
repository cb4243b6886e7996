package registration

import (
	"errors"
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/validation"
)

// FuzzAnyBodyIsRefusedOrBuildsAClientWithinThePolicy: whatever a caller
// sends, the request is refused with a validation error, which becomes
// an RFC 7591 error, or it builds a client that every client's rules and
// the policy accept, with none of Latchkey's privileged fields.
func FuzzAnyBodyIsRefusedOrBuildsAClientWithinThePolicy(f *testing.F) {
	for _, seed := range []string{
		`{"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}`,
		`{"redirect_uris":["http://127.0.0.1/cb"],"grant_types":["client_credentials"],"scope":"latchkey:admin"}`,
		`{"redirect_uris":["https://app.example.com/cb/x"],"skip_consent":true,"audience":["x"]}`,
		`{"grant_types":["authorization_code","refresh_token"],"redirect_uris":["http://localhost/cb"],"scope":"openid phone"}`,
		`{"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://169.254.169.254/"}`,
		`[]`, `null`, `{"redirect_uris":"x"}`, `{"client_name":"a\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	p := Policy{GrantTypes: OpenGrantTypes, Scopes: []string{"openid", "email"}, RedirectURIs: []string{RuleLoopback, "https://app.example.com/cb/"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseRequest(body)
		var invalid *validation.Error
		if err != nil {
			if !errors.As(err, &invalid) {
				t.Fatalf("ParseRequest: %v is not a validation error", err)
			}
			return
		}
		c, err := build(client.Client{}, req.Metadata, p)
		if err != nil {
			if !errors.As(err, &invalid) {
				t.Fatalf("build: %v is not a validation error", err)
			}
			if code, desc := describe(invalid); code == "" || desc == "" {
				t.Fatal("a refusal without an error code")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("built an invalid client: %v", err)
		}
		if err := p.Check(c); err != nil {
			t.Fatalf("built a client beyond the policy: %v", err)
		}
		if c.SkipConsent || c.IntrospectAnyToken || len(c.Audience) > 0 || c.IsAdmin() || c.JWKSURI != "" || c.AccessTokenLifespan != 0 {
			t.Fatalf("built a privileged client: %+v", c)
		}
	})
}
