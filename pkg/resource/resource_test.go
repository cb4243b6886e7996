package resource_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/resource"
)

func TestAResourceURIMustBeAbsoluteWithoutAFragment(t *testing.T) {
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://api.example.com", true},
		{"https://api.example.com/v1?tenant=a", true},
		{"urn:example:api", true},
		{"/api", false},
		{"api.example.com", false},
		{"https://api.example.com/#x", false},
		{"https://user:pw@api.example.com", false},
		{"https://api.example.com/a b", false},
		{"https://api.example.com/\x00", false},
		{"", false},
		{"https://api.example.com/" + strings.Repeat("a", resource.MaxURILen), false},
	} {
		if err := resource.ValidateURI(tc.uri); (err == nil) != tc.ok {
			t.Errorf("ValidateURI(%.40q) = %v, want ok %v", tc.uri, err, tc.ok)
		}
	}
}

func TestAResourceListsEachValidScopeOnce(t *testing.T) {
	for _, tc := range []struct {
		scopes []string
		ok     bool
	}{
		{[]string{"notes.read", "notes.write"}, true},
		{[]string{"notes.read", "notes.read"}, false},
		{[]string{"two words"}, false},
		{[]string{""}, false},
	} {
		r := resource.Resource{URI: "https://api.example.com", Scopes: tc.scopes}
		if err := r.Validate(); (err == nil) != tc.ok {
			t.Errorf("scopes %q: %v, want ok %v", tc.scopes, err, tc.ok)
		}
	}
}
