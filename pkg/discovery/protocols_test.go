package discovery_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/discovery"
)

// docs/protocols.md is the table of every protocol Latchkey implements and
// what controls it. These tests keep it true as protocols are added: each
// discovery member, with every optional protocol on, is in the table, and
// every setting it names is a real one.
const protocolsDoc = "../../docs/protocols.md"

func readProtocols(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(protocolsDoc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTheProtocolsTableNamesEveryDiscoveryMember(t *testing.T) {
	doc := readProtocols(t)
	all := discovery.Features{Registration: true, PAR: true, RequirePAR: true, DeviceAuthorization: true, BackchannelLogout: true}
	raw, err := json.Marshal(discovery.New("https://id.example.com", all))
	if err != nil {
		t.Fatal(err)
	}
	var members map[string]any
	if err := json.Unmarshal(raw, &members); err != nil {
		t.Fatal(err)
	}
	for name := range members {
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("docs/protocols.md does not name the discovery member %s: add it to its protocol's row", name)
		}
	}
}

func TestTheProtocolsTableNamesOnlyRealSettings(t *testing.T) {
	doc := readProtocols(t)
	known := map[string]bool{}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	for _, name := range regexp.MustCompile("`(LATCHKEY_[A-Z0-9_]+)`").FindAllStringSubmatch(doc, -1) {
		if !known[name[1]] {
			t.Errorf("docs/protocols.md names %s, which is no setting", name[1])
		}
	}
}
