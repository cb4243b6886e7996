package risk

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/geoiptest"
)

func TestTheDefaultPolicyIsValid(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestAPolicyFileOverridesOnlyWhatItNames(t *testing.T) {
	p := DefaultPolicy()
	err := p.read([]byte(`
signals:
  new_network: {actions: [notify, alert]}
  credential_stuffing: {actions: [block], block_for: 1h}
limits:
  stuffing_accounts: 5
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Rules[NewNetwork].Actions; !slices.Equal(got, []Action{Notify, Alert}) {
		t.Errorf("new_network: %v", got)
	}
	if r := p.Rules[CredentialStuffing]; r.BlockFor != time.Hour || !r.Has(Block) || r.Has(Alert) {
		t.Errorf("credential_stuffing: %+v", r)
	}
	if p.Limits.StuffingAccounts != 5 || p.Limits.TargetedNetworks != DefaultPolicy().Limits.TargetedNetworks {
		t.Errorf("limits: %+v", p.Limits)
	}
	if !slices.Equal(p.Rules[NewCountry].Actions, DefaultPolicy().Rules[NewCountry].Actions) {
		t.Error("a signal the file does not name lost its default")
	}
}

func TestAPolicyFileThatIsWrongIsRefusedInOneLineSayingWhy(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{"signals:\n  new_planet: {actions: [alert]}\n", `"new_planet" is not a signal`},
		{"signals:\n  new_network: {actions: [shout]}\n", `"shout" is not an action`},
		{"signals:\n  token_reuse: {actions: [step_up]}\n", "token_reuse cannot step_up"},
		{"signals:\n  credential_stuffing: {actions: [block]}\n", "needs a block_for"},
		{"signals:\n  new_network: {actions: [alert], block_for: 5m}\n", "does not block"},
		{"signals:\n  new_network: {actions: [allow, alert]}\n", "stands alone"},
		{"signals:\n  new_network: {actions: []}\n", "has no actions"},
		{"signals:\n  new_network: {acts: [alert]}\n", "field acts not found"},
		{"limits:\n  failure_window: soon\n", "not a duration"},
		{"signals: [\n", "yaml"},
	} {
		p := DefaultPolicy()
		err := p.read([]byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: got %v, want one line with %q", c.file, err, c.want)
		}
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("signals:\n  new_network: {actions: [shout]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPolicy(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadPolicy names the file: %v", err)
	}
}

// fixedGeo places addresses from a map.
type fixedGeo map[netip.Addr]Place

func (g fixedGeo) Locate(a netip.Addr) (Place, bool) { p, ok := g[a]; return p, ok }

func TestSignalsComeFromTheUsersOwnHistory(t *testing.T) {
	berlin := Place{Country: "DE", HasCoordinates: true, Latitude: 52.52, Longitude: 13.405}
	potsdam := Place{Country: "DE", HasCoordinates: true, Latitude: 52.39, Longitude: 13.06}
	newYork := Place{Country: "US", HasCoordinates: true, Latitude: 40.71, Longitude: -74.0}
	home, office, away := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("192.0.2.1")
	geo := fixedGeo{home: berlin, office: potsdam, away: newYork}
	now := time.Now()
	history := []Seen{{Network: Network(home), Place: berlin, LastSeen: now.Add(-time.Hour)}}
	p := DefaultPolicy()
	for _, c := range []struct {
		name    string
		at      Attempt
		history []Seen
		geo     Geo
		want    []Signal
	}{
		{"the first sign-in sets the history", Attempt{Addr: away}, nil, geo, nil},
		{"a new browser", Attempt{Addr: home, NewDevice: true}, history, geo, []Signal{NewDevice}},
		{"a known network", Attempt{Addr: home}, history, geo, nil},
		{"another address in a known /24", Attempt{Addr: netip.MustParseAddr("198.51.100.200")}, history, geo, nil},
		{"a new network nearby", Attempt{Addr: office}, history, geo, []Signal{NewNetwork}},
		{"another continent an hour later", Attempt{Addr: away}, history, geo, []Signal{NewNetwork, NewCountry, ImpossibleTravel}},
		{"without GeoIP", Attempt{Addr: away}, history, nil, []Signal{NewNetwork}},
		{"another continent a week later", Attempt{Addr: away}, []Seen{{Network: Network(home), Place: berlin, LastSeen: now.Add(-7 * 24 * time.Hour)}}, geo, []Signal{NewNetwork, NewCountry}},
	} {
		got, reasons := p.weigh(c.geo, c.at, c.history, now)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		for _, s := range got {
			if reasons[s] == "" {
				t.Errorf("%s: %s has no reason", c.name, s)
			}
		}
	}
}

func TestDistanceIsTheGreatCircle(t *testing.T) {
	km := Distance(Place{Latitude: 52.52, Longitude: 13.405}, Place{Latitude: 40.7128, Longitude: -74.006})
	if km < 6350 || km > 6420 {
		t.Fatalf("Berlin to New York: %.0f km, want about 6,385", km)
	}
}

func TestAGeoIPDatabasePlacesLoopbackAddressesForTests(t *testing.T) {
	path := geoiptest.City(t, map[string]geoiptest.Place{"127.0.1.2": geoiptest.NewYork, "127.0.2.0/24": geoiptest.Berlin})
	g, err := OpenGeoIP(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if p, ok := g.Locate(netip.MustParseAddr("127.0.1.2")); !ok || p.Country != "US" || !p.HasCoordinates {
		t.Errorf("127.0.1.2: %+v %v", p, ok)
	}
	if p, ok := g.Locate(netip.MustParseAddr("127.0.2.3")); !ok || p.Country != "DE" {
		t.Errorf("127.0.2.3: %+v %v", p, ok)
	}
	if _, ok := g.Locate(netip.MustParseAddr("127.0.3.1")); ok {
		t.Error("an address the database does not have was placed")
	}
}
