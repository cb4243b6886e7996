package server_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/latchkey/latchkey/pkg/server"
)

// down is an error as storage/postgres returns it for an unreachable
// database.
type down struct{}

func (down) Error() string     { return "connection refused" }
func (down) Unavailable() bool { return true }

// up says it is not an unavailability.
type up struct{}

func (up) Error() string     { return "unique violation" }
func (up) Unavailable() bool { return false }

func TestUnavailableFindsTheBehaviourAnywhereInTheChain(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"marked", down{}, true},
		{"wrapped", fmt.Errorf("identity: update user: %w", fmt.Errorf("postgres: update user: %w", down{})), true},
		{"joined", errors.Join(errors.New("audit"), down{}), true},
		{"says no", fmt.Errorf("postgres: %w", up{}), false},
	} {
		if got := server.Unavailable(tt.err); got != tt.want {
			t.Errorf("%s: Unavailable(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
