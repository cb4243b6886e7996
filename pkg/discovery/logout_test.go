package discovery_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/latchkey/latchkey/pkg/discovery"
)

func TestBackchannelLogoutIsAdvertisedExactlyWhenOn(t *testing.T) {
	members := []string{"backchannel_logout_supported", "backchannel_logout_session_supported"}
	for _, on := range []bool{false, true} {
		rec := httptest.NewRecorder()
		discovery.New("https://id.example.com", discovery.Features{BackchannelLogout: on}).Handler().
			ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			v, present := doc[m]
			switch {
			case on && v != true:
				t.Errorf("back-channel logout on: %s = %v, want true", m, v)
			case !on && present:
				t.Errorf("back-channel logout off: %s is present (%v); it must be absent", m, v)
			}
		}
	}
}
