package postgres_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/registration"
)

// An IPv6 host commonly holds a whole /64, and could take a fresh address
// for every registration: open registrations are counted per /64, as the
// rate limits count requests, while an IPv4 address is its own network.
func TestOpenRegistrationsAreCountedPerIPv6Slash64(t *testing.T) {
	t.Parallel()
	s := pgtest.Store(t)
	auditLog := audit.New(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m := registration.New(s, client.NewManager(s, auditLog, time.Hour), auditLog, registration.Config{
		Mode: registration.Open,
		Open: registration.Policy{GrantTypes: registration.OpenGrantTypes, Scopes: []string{"openid"},
			RedirectURIs: []string{registration.RuleLoopback}},
		MaxOpenClients: 100,
		AddressLimit:   2,
		Endpoint:       "https://id.example.com/oauth2/register",
	})
	register := func(from string) error {
		_, err := m.Register(t.Context(), "", registration.Metadata{
			ClientName: "CLI", RedirectURIs: []string{"http://127.0.0.1/callback"},
			TokenEndpointAuthMethod: client.AuthNone,
		}, from)
		return err
	}
	for _, from := range []string{"2001:db8:0:1::1", "2001:db8:0:1::2"} {
		if err := register(from); err != nil {
			t.Fatalf("registration from %s: %v", from, err)
		}
	}
	// A third address of the same /64 is the same host.
	if err := register("2001:db8:0:1::3"); err == nil || !strings.Contains(err.Error(), "address") {
		t.Fatalf("a third registration from the /64: %v, want the address limit", err)
	}
	// Another /64, and IPv4 addresses, each count on their own.
	for _, from := range []string{"2001:db8:0:2::1", "192.0.2.1", "192.0.2.2", "192.0.2.2"} {
		if err := register(from); err != nil {
			t.Fatalf("registration from %s: %v", from, err)
		}
	}
}
