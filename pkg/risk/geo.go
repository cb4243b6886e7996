package risk

import (
	"fmt"
	"math"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Place is where GeoIP puts an address: its country (ISO 3166-1 alpha-2)
// and, from a City database, its coordinates.
type Place struct {
	Country string
	// HasCoordinates says Latitude and Longitude were known.
	HasCoordinates      bool
	Latitude, Longitude float64
}

// Geo places addresses. GeoIP is the one Latchkey has; without a database
// there is none, and the geographic signals are off.
type Geo interface {
	Locate(addr netip.Addr) (Place, bool)
}

// GeoIP places addresses from a MaxMind database (City or Country, GeoIP2
// or GeoLite2, or any .mmdb of the same shape) the operator provides:
// LATCHKEY_GEOIP_DB. Latchkey ships none.
type GeoIP struct{ db *maxminddb.Reader }

// OpenGeoIP opens the database at path.
func OpenGeoIP(path string) (*GeoIP, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("risk: geoip database %s: %w", path, err)
	}
	return &GeoIP{db: db}, nil
}

// Close releases the database.
func (g *GeoIP) Close() error { return g.db.Close() }

// mmdbRecord is what GeoIP reads of a City or Country record.
type mmdbRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// Locate places addr, or reports that the database does not know it.
func (g *GeoIP) Locate(addr netip.Addr) (Place, bool) {
	var rec mmdbRecord
	res := g.db.Lookup(addr.Unmap())
	if !res.Found() || res.Decode(&rec) != nil {
		return Place{}, false
	}
	p := Place{Country: rec.Country.ISOCode}
	if rec.Location.Latitude != nil && rec.Location.Longitude != nil {
		p.HasCoordinates, p.Latitude, p.Longitude = true, *rec.Location.Latitude, *rec.Location.Longitude
	}
	return p, p.Country != "" || p.HasCoordinates
}

// earthRadius is the Earth's mean radius in km.
const earthRadius = 6371.0

// Distance is the great-circle distance between a and b in km (the
// haversine formula).
func Distance(a, b Place) float64 {
	rad := func(deg float64) float64 { return deg * math.Pi / 180 }
	dLat, dLon := rad(b.Latitude-a.Latitude), rad(b.Longitude-a.Longitude)
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(a.Latitude))*math.Cos(rad(b.Latitude))*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadius * math.Asin(math.Sqrt(min(h, 1)))
}

// Network is the network an address belongs to, as the signals count
// them: its /24 for IPv4, its /64 for IPv6, where one household or office
// usually sits.
func Network(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := 64
	if addr.Is4() {
		bits = 24
	}
	p, _ := addr.Prefix(bits)
	return p
}
