// Package geoiptest writes tiny GeoIP databases in MaxMind's format for
// tests: a City database that puts the addresses a test names (loopback
// ones, usually) where it says.
package geoiptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Place is a country (ISO 3166-1 alpha-2) and coordinates.
type Place struct {
	Country             string
	Latitude, Longitude float64
}

// Places a test can use, about 6,400 km apart.
var (
	Berlin  = Place{Country: "DE", Latitude: 52.52, Longitude: 13.405}
	NewYork = Place{Country: "US", Latitude: 40.7128, Longitude: -74.006}
)

// City writes a GeoIP2-City-shaped database placing each address (an IP
// address, or a CIDR range) in places, and returns its path, in a
// directory the test removes.
func City(t *testing.T, places map[string]Place) string {
	t.Helper()
	// Loopback and other reserved networks are left out of a database
	// unless asked for; a test's addresses are all reserved.
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for where, p := range places {
		_, network, err := net.ParseCIDR(where)
		if err != nil {
			ip := net.ParseIP(where)
			if ip == nil {
				t.Fatalf("geoiptest: %q is neither an address nor a range", where)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			network = &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}
		}
		record := mmdbtype.Map{
			"country": mmdbtype.Map{"iso_code": mmdbtype.String(p.Country)},
			"location": mmdbtype.Map{
				"latitude":  mmdbtype.Float64(p.Latitude),
				"longitude": mmdbtype.Float64(p.Longitude),
			},
		}
		if err := tree.Insert(network, record); err != nil {
			t.Fatalf("geoiptest: insert %s: %v", where, err)
		}
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(path) // #nosec G304 -- the test's own temporary directory
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
