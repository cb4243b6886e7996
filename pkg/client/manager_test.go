package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/validation"
)

// oneClient is a Store holding one client with a secret, that counts its
// updates; the Manager's other calls are not used here.
type oneClient struct {
	client.Store
	c       client.Client
	updates int
}

func (s *oneClient) UpdateClient(_ context.Context, id string, update func(*client.Client) error) (*client.Client, error) {
	if id != s.c.ID {
		return nil, client.ErrNotFound
	}
	c := s.c
	if err := update(&c); err != nil {
		return nil, err
	}
	s.c = c
	s.updates++
	return &c, nil
}

// unaudited runs changes without recording them.
type unaudited struct{}

func (unaudited) Change(ctx context.Context, change func(context.Context) (audit.Event, error)) error {
	_, err := change(ctx)
	return err
}

func rotatable() *oneClient {
	_, digest := client.NewSecret()
	return &oneClient{c: client.Client{ID: "backend", TokenEndpointAuthMethod: client.AuthSecretBasic, SecretHash: digest}}
}

// A replaced secret may have leaked: however a rotation is asked for (the
// CLI's --grace, the admin API's "grace", the configured default), the old
// one works for 30 days at the most, and a longer grace changes nothing.
func TestRotateSecretRefusesAGraceOverMaxSecretGrace(t *testing.T) {
	for _, tt := range []struct {
		name           string
		defaultGrace   time.Duration
		grace          time.Duration
		wantRefused    bool
		wantPreviousAt time.Duration
	}{
		{"the longest grace", time.Hour, client.MaxSecretGrace, false, client.MaxSecretGrace},
		{"longer by a second", time.Hour, client.MaxSecretGrace + time.Second, true, 0},
		{"a default within bounds", time.Hour, -1, false, time.Hour},
		{"a default over the bound", client.MaxSecretGrace + time.Hour, -1, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := rotatable()
			m := client.NewManager(store, unaudited{}, tt.defaultGrace)
			c, secret, err := m.RotateSecret(t.Context(), "backend", tt.grace)
			var invalid *validation.Error
			switch {
			case tt.wantRefused && (!errors.As(err, &invalid) || invalid.Problems[0].Field != "grace"):
				t.Fatalf("RotateSecret = %v, want a validation error on grace", err)
			case tt.wantRefused && (store.updates != 0 || secret != ""):
				t.Fatalf("a refused rotation changed the client (%d updates) or made a secret", store.updates)
			case tt.wantRefused:
				return
			case err != nil:
				t.Fatal(err)
			}
			if left := time.Until(c.PreviousSecretExpiresAt); left > tt.wantPreviousAt || left < tt.wantPreviousAt-time.Minute {
				t.Errorf("the old secret works for %v more, want %v", left, tt.wantPreviousAt)
			}
		})
	}
}
