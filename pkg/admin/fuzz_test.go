package admin

// The fuzz targets here feed the admin API's JSON reading (decode.go) what
// the fuzzer makes up. They are in package admin, not admin_test, because
// decodeStrict and mergePatch are unexported. Their seeds (the f.Add calls
// and testdata/fuzz) run as ordinary tests in every `go test`.

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/latchkey/latchkey/pkg/client"
)

// checkProblem fails the test unless err is what every error of the API's
// JSON reading must be: a *problemError for a 4xx answer that says what is
// wrong. Anything else would be answered with a 500.
func checkProblem(t *testing.T, err error, input []byte) {
	t.Helper()
	var pe *problemError
	switch {
	case !errors.As(err, &pe):
		t.Fatalf("%q: error %T %v, want a *problemError", input, err, err)
	case pe.status < 400 || pe.status > 499:
		t.Fatalf("%q: status %d, want 4xx: %v", input, pe.status, err)
	case pe.detail == "" || http.StatusText(pe.status) == "":
		t.Fatalf("%q: a %d problem without a detail: %+v", input, pe.status, pe)
	}
}

// clientBodies are client documents as an admin might send them, for
// seeds.
var clientBodies = []string{
	`{"client_id":"dashboard","client_name":"Dashboard","redirect_uris":["https://app.example.com/callback"],` +
		`"grant_types":["authorization_code","refresh_token"],"scope":"openid profile","access_token_lifespan":"10m"}`,
	`{"client_name":"Billing","grant_types":["client_credentials"],"scope":"invoices.read","audience":["https://api.example.com"]}`,
	`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt",` +
		`"jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis","y":"y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE","use":"sig"}]}}`,
	`{"client_name":"x","created_at":"2025-01-01T00:00:00Z"}`,
	`{"client_name":"x","client_secret":"hunter2"}`,
	`{"client_name":"x","Created_At":"2025-01-01T00:00:00Z"}`,
	`{"client_nam":"typo"}`,
	`{"redirect_uris":"https://app.example.com/callback"}`,
	`{"skip_consent":"yes"}`,
	`{"access_token_lifespan":"ten minutes"}`,
	`{"access_token_lifespan":600}`,
	`{"jwks":"not a key set"}`,
	`{"updated_at":"not a time"}`,
	`{"client_name":"x"} {"client_name":"y"}`,
	`{"client_name":"x",}`,
	`{"client_name":"\ud800"}`,
	`{"client_name":"x","client_name":"y"}`,
	`{"client_id":null,"redirect_uris":null,"jwks":null}`,
	`[{"client_name":"x"}]`,
	`"client"`,
	`null`,
	`{}`,
	``,
}

// FuzzDecodeClient reads client documents as POST and PUT
// /admin/clients do. It must never panic; every error must be a 4xx
// problem; and a client it reads must encode to JSON that it reads again,
// as PATCH does when it reads back the stored client with a patch applied.
func FuzzDecodeClient(f *testing.F) {
	for _, body := range clientBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var c client.Client
		if err := decodeStrict(body, &c, "a client", clientFixed); err != nil {
			checkProblem(t, err, body)
			return
		}
		again, err := json.Marshal(&c)
		if err != nil {
			t.Fatalf("%q: the client read from it does not encode: %v", body, err)
		}
		var back client.Client
		if err := decodeStrict(again, &back, "a client", nil); err != nil {
			t.Fatalf("%q: the client read from it encodes to %s, which does not read again: %v", body, again, err)
		}
	})
}

// FuzzDecodeProfile reads user documents as POST /admin/users does, with
// the same promises as FuzzDecodeClient.
func FuzzDecodeProfile(f *testing.F) {
	for _, body := range []string{
		`{"email":"ada@example.com","name":"Ada Lovelace","given_name":"Ada","family_name":"Lovelace","password":"correct horse battery staple"}`,
		`{"email":"ada@example.com","email_verified":true,"claims":{"locale":"en-GB","address":{"country":"GB"},"phone_number_verified":false}}`,
		`{"email":"ada@example.com","sub":"0b6f9a7e-4b1d-4d59-9a43-1c1a3b0b7a11"}`,
		`{"email":"ada@example.com","disabled":true}`,
		`{"email":"ada@example.com","SUB":"x"}`,
		`{"email":"ada@example.com","Password":"x"}`,
		`{"email":42}`,
		`{"email_verified":"true"}`,
		`{"claims":[]}`,
		`{"claims":{"zoneinfo":1e400}}`,
		`{"claims":{"":null}}`,
		`{"claims":{"a":{"b":{"c":[[[[[[]]]]]]}}}}`,
		`{"email":"\u0000@example.com"}`,
		`{"email":"ada@example.com"}garbage`,
		`{"email":"ada@example.com"`,
		`true`,
		``,
	} {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p profile
		if err := decodeStrict(body, &p, "a user", userFixed); err != nil {
			checkProblem(t, err, body)
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("%q: the profile read from it does not encode: %v", body, err)
		}
		var back profile
		if err := decodeStrict(again, &back, "a user", nil); err != nil {
			t.Fatalf("%q: the profile read from it encodes to %s, which does not read again: %v", body, again, err)
		}
	})
}

// FuzzMergePatch applies JSON merge patches, as PATCH /admin/clients/{id}
// and /admin/users/{id} do, to a stored client, or to a user's profile if
// user is true. It must never panic; every error, of the patch or of
// reading the result back strictly, must be a 4xx problem; and a patch
// that applies must give the document RFC 7396 §2 says it gives
// (mergeRFC7396).
func FuzzMergePatch(f *testing.F) {
	for _, seed := range []struct {
		patch string
		user  bool
	}{
		{`{"client_name":"Renamed"}`, false},
		{`{"redirect_uris":["https://app.example.com/other"],"scope":null}`, false},
		{`{"grant_types":["client_credentials"],"redirect_uris":[],"post_logout_redirect_uris":[]}`, false},
		{`{"jwks":{"keys":[]}}`, false},
		{`{"jwks":{"keys":null}}`, false},
		{`{"jwks":null}`, false},
		{`{"access_token_lifespan":"1h"}`, false},
		{`{"created_at":null}`, false},
		{`{"client_id":"other"}`, false},
		{`{"unknown":1}`, false},
		{`{"unknown":null}`, false},
		{`{"client_name":"a","client_name":null}`, false},
		{`{"email":"grace@example.com"}`, true},
		{`{"claims":{"address":{"country":null,"locality":"London"}}}`, true},
		{`{"claims":{"address":null}}`, true},
		{`{"claims":null}`, true},
		{`{"claims":{"locale":{"a":{"b":null}}}}`, true},
		{`{"name":"\u0000"}`, true},
		{`{}`, true},
		{`[]`, true},
		{`null`, true},
		{`"x"`, true},
		{`{`, true},
		{``, true},
	} {
		f.Add([]byte(seed.patch), seed.user)
	}
	stored := &client.Client{
		ID: "dashboard", Name: "Dashboard", RedirectURIs: []string{"https://app.example.com/callback"},
		GrantTypes: []string{client.GrantAuthorizationCode, client.GrantRefreshToken}, ResponseTypes: []string{"code"},
		Scope: "openid profile", Audience: []string{}, TokenEndpointAuthMethod: client.AuthSecretBasic,
		PostLogoutRedirectURIs: []string{}, AccessTokenFormat: client.FormatOpaque, IDTokenSignedResponseAlg: "RS256",
		AccessTokenLifespan: client.Lifespan(10 * time.Minute),
		CreatedAt:           time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC), UpdatedAt: time.Date(2025, 3, 2, 12, 0, 0, 0, time.UTC),
	}
	ada := profile{Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace",
		Claims: map[string]any{"locale": "en-GB", "address": map[string]any{"country": "GB", "locality": "London"}}}
	f.Fuzz(func(t *testing.T, patch []byte, user bool) {
		var current any = stored
		if user {
			current = ada
		}
		merged, err := mergePatch(current, patch)
		if err != nil {
			checkProblem(t, err, patch)
			return
		}
		doc, _ := json.Marshal(current)
		if problem := mergeProblem(doc, patch, merged); problem != "" {
			t.Fatalf("patch %s on %s gave %s: %s", patch, doc, merged, problem)
		}
		var err2 error
		if user {
			err2 = decodeStrict(merged, &profile{}, "a user", nil)
		} else {
			err2 = decodeStrict(merged, &client.Client{}, "a client", nil)
		}
		if err2 != nil {
			checkProblem(t, err2, merged)
		}
	})
}

// mergeProblem says how merged differs from what RFC 7396 makes of patch
// applied to doc, or returns "". Both are compared as encoding/json reads
// them, so that a name given twice means what it means to the code that
// reads the result.
func mergeProblem(doc, patch, merged []byte) string {
	// Numbers stay json.Number: a patch may carry one no float64 holds
	// (1e700), and it is still JSON that the merge must carry over.
	var d, p, got any
	if decodeNumbers(doc, &d) != nil || decodeNumbers(patch, &p) != nil {
		return "the document or the patch does not decode"
	}
	if err := decodeNumbers(merged, &got); err != nil {
		return "the result is not JSON: " + err.Error()
	}
	if want := mergeRFC7396(d, p); !reflect.DeepEqual(got, want) {
		w, _ := json.Marshal(want)
		return "RFC 7396 gives " + string(w)
	}
	if !bytes.HasPrefix(bytes.TrimSpace(merged), []byte("{")) {
		return "the result is not an object"
	}
	return ""
}

func decodeNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the value")
	}
	return nil
}

// mergeRFC7396 is the MergePatch function of RFC 7396 §2, word for word.
func mergeRFC7396(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for name, value := range p {
		if value == nil {
			delete(t, name)
		} else {
			t[name] = mergeRFC7396(t[name], value)
		}
	}
	return t
}
