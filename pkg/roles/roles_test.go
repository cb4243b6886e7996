package roles_test

import (
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/roles"
)

func TestRoleNamesArePlainAndShort(t *testing.T) {
	tests := []struct {
		name  string
		valid bool
	}{
		{"admin", true},
		{"billing:read", true},
		{"team.eng-2_lead", true},
		{"A", true},
		{strings.Repeat("r", 64), true},
		{strings.Repeat("r", 65), false},
		{"", false},
		{"has space", false},
		{"-leading-dash", false},
		{"ünïcode", false},
		{"a/b", false},
	}
	for _, tt := range tests {
		r := roles.Role{Name: tt.name}
		if err := r.Validate(); tt.valid != (err == nil) {
			t.Errorf("role name %q: %v, want valid=%v", tt.name, err, tt.valid)
		}
	}
}

func TestRoleDescriptionIsOneShortLine(t *testing.T) {
	for _, d := range []string{"two\nlines", strings.Repeat("x", 501)} {
		r := roles.Role{Name: "ok", Description: d}
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "description") {
			t.Errorf("description %.20q: %v, want a description problem", d, err)
		}
	}
}
