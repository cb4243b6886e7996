package discovery_test

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/discovery"
)

func TestMetadataAdvertisesWhatIsServedAndNothingUnsafe(t *testing.T) {
	const issuer = "https://id.example.com/tenant"
	rec := httptest.NewRecorder()
	discovery.New(issuer, discovery.Features{}).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for member, want := range map[string]string{
		"issuer":                 issuer,
		"jwks_uri":               issuer + "/.well-known/jwks.json",
		"token_endpoint":         issuer + "/oauth2/token",
		"introspection_endpoint": issuer + "/oauth2/introspect",
		"revocation_endpoint":    issuer + "/oauth2/revoke",
	} {
		if doc[member] != want {
			t.Errorf("%s = %v, want %s", member, doc[member], want)
		}
	}
	list := func(member string) []string {
		var out []string
		for _, v := range doc[member].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got := list("code_challenge_methods_supported"); !slices.Equal(got, []string{"S256"}) {
		t.Errorf("code_challenge_methods_supported = %v, want S256 only (RFC 9700 §2.1.1)", got)
	}
	for _, forbidden := range []string{"implicit", "password"} {
		if slices.Contains(list("grant_types_supported"), forbidden) {
			t.Errorf("grant_types_supported offers %s", forbidden)
		}
	}
	if !slices.Contains(list("grant_types_supported"), "client_credentials") {
		t.Error("grant_types_supported lacks client_credentials")
	}
	methods := list("token_endpoint_auth_methods_supported")
	for _, m := range []string{"client_secret_basic", "client_secret_post", "private_key_jwt", "none"} {
		if !slices.Contains(methods, m) {
			t.Errorf("token_endpoint_auth_methods_supported lacks %s", m)
		}
	}
	if slices.Contains(list("introspection_endpoint_auth_methods_supported"), "none") {
		t.Error("introspection claims to accept unauthenticated callers")
	}
	if slices.Contains(list("token_endpoint_auth_signing_alg_values_supported"), "none") {
		t.Error("assertions signed with alg none are advertised")
	}
}

// registration_endpoint is named exactly when registration is on, so that
// a client library never registers where it would be refused.
func TestRegistrationEndpointIsListedExactlyWhenOn(t *testing.T) {
	const issuer = "https://id.example.com/tenant"
	for _, on := range []bool{false, true} {
		rec := httptest.NewRecorder()
		discovery.New(issuer, discovery.Features{Registration: on}).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		got, present := doc["registration_endpoint"]
		if present != on || (on && got != issuer+"/oauth2/register") {
			t.Errorf("registration on=%v: registration_endpoint %v (present %v)", on, got, present)
		}
	}
}

func TestPARMetadataAppearsExactlyWhenOn(t *testing.T) {
	const issuer = "https://id.example.com"
	for _, tc := range []struct {
		f                 discovery.Features
		endpoint, require any
	}{
		{discovery.Features{}, nil, nil},
		{discovery.Features{PAR: true}, issuer + "/oauth2/par", nil},
		{discovery.Features{PAR: true, RequirePAR: true}, issuer + "/oauth2/par", true},
	} {
		raw, err := json.Marshal(discovery.New(issuer, tc.f))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if doc["pushed_authorization_request_endpoint"] != tc.endpoint || doc["require_pushed_authorization_requests"] != tc.require {
			t.Errorf("%+v: endpoint %v, require %v; want %v, %v", tc.f, doc["pushed_authorization_request_endpoint"],
				doc["require_pushed_authorization_requests"], tc.endpoint, tc.require)
		}
	}
}

func TestTheDeviceGrantIsAdvertisedOnlyWhenOn(t *testing.T) {
	const issuer = "https://id.example.com"
	off := discovery.New(issuer, discovery.Features{})
	if off.DeviceAuthorizationEndpoint != "" || slices.Contains(off.GrantTypesSupported, "urn:ietf:params:oauth:grant-type:device_code") {
		t.Errorf("off: %q, %v", off.DeviceAuthorizationEndpoint, off.GrantTypesSupported)
	}
	body, _ := json.Marshal(off)
	if strings.Contains(string(body), "device_authorization_endpoint") {
		t.Error("off: the document has a device_authorization_endpoint member")
	}
	on := discovery.New(issuer, discovery.Features{DeviceAuthorization: true})
	if on.DeviceAuthorizationEndpoint != issuer+"/oauth2/device_authorization" || !slices.Contains(on.GrantTypesSupported, "urn:ietf:params:oauth:grant-type:device_code") {
		t.Errorf("on: %q, %v", on.DeviceAuthorizationEndpoint, on.GrantTypesSupported)
	}
}
