package client_test

import (
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
)

func TestBackchannelLogoutURIFollowsTheRedirectURIRules(t *testing.T) {
	for _, tt := range []struct {
		name  string
		edit  func(c *client.Client)
		field string // "" when valid
	}{
		{"https", func(c *client.Client) { c.BackchannelLogoutURI = "https://app.example.com/logout?tenant=a" }, ""},
		{"http on loopback", func(c *client.Client) { c.BackchannelLogoutURI = "http://127.0.0.1:8080/bcl" }, ""},
		{"with sid required", func(c *client.Client) {
			c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = "https://app.example.com/bcl", true
		}, ""},
		{"plain http elsewhere", func(c *client.Client) { c.BackchannelLogoutURI = "http://app.example.com/bcl" }, "backchannel_logout_uri"},
		{"a fragment", func(c *client.Client) { c.BackchannelLogoutURI = "https://app.example.com/bcl#x" }, "backchannel_logout_uri"},
		{"relative", func(c *client.Client) { c.BackchannelLogoutURI = "/bcl" }, "backchannel_logout_uri"},
		{"user info", func(c *client.Client) { c.BackchannelLogoutURI = "https://u:p@app.example.com/bcl" }, "backchannel_logout_uri"},
		{"another scheme", func(c *client.Client) { c.BackchannelLogoutURI = "javascript:alert(1)" }, "backchannel_logout_uri"},
		{"sid required without a URI", func(c *client.Client) { c.BackchannelLogoutSessionRequired = true }, "backchannel_logout_session_required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := webApp()
			tt.edit(&c)
			got := problems(t, c)
			if tt.field == "" {
				if got != nil {
					t.Fatalf("valid client refused: %v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Field != tt.field {
				t.Fatalf("problems = %v, want one on %s", got, tt.field)
			}
		})
	}
	// A client that signs no user in has no sign-in to be told about.
	c := backend()
	c.BackchannelLogoutURI = "https://api.example.com/bcl"
	if got := problems(t, c); len(got) != 1 || got[0].Field != "backchannel_logout_uri" {
		t.Fatalf("client_credentials client with a backchannel_logout_uri: %v, want refused", got)
	}
}
