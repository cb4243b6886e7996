package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/pkg/client"
)

// The demo device latchkey dev seeds, so that the device grant (RFC 8628)
// can be tried from a browser: /dev/demo/device plays the TV or CLI tool
// that shows a code, and the user approves it at /device in another tab.
const (
	demoDeviceClientID = "demo-device"
	demoDevicePath     = demoPath + "/device"
)

// demoDevice is the device grant's demo client. It is public, as a TV's
// app is: it cannot keep a secret.
var demoDevice = client.Client{
	ID:                      demoDeviceClientID,
	Name:                    "Latchkey demo device",
	GrantTypes:              []string{client.GrantDeviceCode},
	Scope:                   "openid profile email",
	TokenEndpointAuthMethod: client.AuthNone,
}

// devDevice is the demo device. It keeps the device codes it was given in
// memory, by a random name the page carries, as a device keeps its own.
type devDevice struct {
	demo *devDemo
	page *template.Template

	mu    sync.Mutex
	codes map[string]*oauth2.DeviceAuthResponse
}

// devDeviceView is what the device's page shows.
type devDeviceView struct {
	Path  string
	ID    string
	Code  *oauth2.DeviceAuthResponse
	State string
	// Claims are the ID token's, once the user approved the device.
	Claims map[string]any
	Error  string
}

func newDevDevice(demo *devDemo) *devDevice {
	return &devDevice{demo: demo, page: template.Must(template.New("device").Parse(devDevicePage)),
		codes: map[string]*oauth2.DeviceAuthResponse{}}
}

// Register mounts the device's page.
func (d *devDevice) Register(mux interface {
	HandleFunc(string, http.HandlerFunc)
}) {
	mux.HandleFunc(demoDevicePath, d.show)
	mux.HandleFunc(demoDevicePath+"/start", d.start)
	mux.HandleFunc(demoDevicePath+"/check", d.check)
}

// config is the device's OAuth configuration, from discovery.
func (d *devDevice) config(ctx context.Context) (*oauth2.Config, *oidc.Provider, error) {
	conf, provider, err := d.demo.config(ctx)
	if err != nil {
		return nil, nil, err
	}
	if conf.Endpoint.DeviceAuthURL == "" {
		return nil, nil, fmt.Errorf("the device grant is off (LATCHKEY_DEVICE_FLOW=false)")
	}
	conf.ClientID, conf.RedirectURL = demoDeviceClientID, ""
	return conf, provider, nil
}

func (d *devDevice) show(w http.ResponseWriter, _ *http.Request) {
	d.render(w, devDeviceView{Path: demoDevicePath})
}

// start asks for a device code, as the device does when switched on.
func (d *devDevice) start(w http.ResponseWriter, r *http.Request) {
	v := devDeviceView{Path: demoDevicePath}
	conf, _, err := d.config(r.Context())
	if err == nil {
		v.Code, err = conf.DeviceAuth(r.Context())
	}
	if err != nil {
		v.Error = err.Error()
		d.render(w, v)
		return
	}
	v.ID = rand.Text()
	d.mu.Lock()
	d.codes[v.ID] = v.Code
	d.mu.Unlock()
	d.render(w, v)
}

// check polls the token endpoint once, as the device does every few
// seconds, and shows the answer: still pending, denied, expired, or the
// user it signed in.
func (d *devDevice) check(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.FormValue("id")
	d.mu.Lock()
	code := d.codes[id]
	d.mu.Unlock()
	v := devDeviceView{Path: demoDevicePath, ID: id, Code: code}
	conf, provider, err := d.config(ctx)
	switch {
	case err != nil:
		v.Error = err.Error()
	case code == nil:
		v.Error = "unknown device code: start again"
	default:
		v.State, v.Claims, err = d.poll(ctx, conf, provider, code.DeviceCode)
		if err != nil {
			v.Error = err.Error()
		}
		if v.Claims != nil || v.State == "access_denied" || v.State == "expired_token" {
			d.mu.Lock()
			delete(d.codes, id)
			d.mu.Unlock()
		}
	}
	d.render(w, v)
}

// poll makes one token request with the device code. x/oauth2's
// DeviceAccessToken polls until an answer; the page shows each one.
func (d *devDevice) poll(ctx context.Context, conf *oauth2.Config, provider *oidc.Provider, deviceCode string) (string, map[string]any, error) {
	form := url.Values{"grant_type": {client.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {conf.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, conf.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var answer struct {
		Error   string `json:"error"`
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return "", nil, fmt.Errorf("the token endpoint answered %s", resp.Status)
	}
	if answer.Error != "" {
		return answer.Error, nil, nil
	}
	id, err := provider.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, answer.IDToken)
	if err != nil {
		return "", nil, fmt.Errorf("the ID token does not verify: %w", err)
	}
	var claims map[string]any
	err = id.Claims(&claims)
	return "approved", claims, err
}

func (d *devDevice) render(w http.ResponseWriter, v devDeviceView) {
	// Like the demo app's page, it runs no script.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	render(w, d.page, v)
}

const devDevicePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Latchkey demo device</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem">
<h1>Latchkey demo device</h1>
<p>This page plays a TV or a CLI tool that signs its user in with the device authorization grant (RFC 8628).</p>
{{if .Error}}<p id="error"><strong>Error:</strong> {{.Error}}</p>{{end}}
{{if .Claims}}<p id="signed-in">The device is signed in as <strong>{{index .Claims "email"}}</strong>.</p>
<h2>ID token claims</h2><ul>{{range $k, $v := .Claims}}<li><code>{{$k}}</code>: {{$v}}</li>{{end}}</ul>
<form method="post" action="{{.Path}}/start"><button>Start again</button></form>
{{else if .Code}}<p>On your phone or computer, open <a id="verify" href="{{.Code.VerificationURIComplete}}" target="_blank" rel="noopener">{{.Code.VerificationURI}}</a> and enter</p>
<p id="user-code" style="font-size: 2rem; letter-spacing: .2rem"><strong>{{.Code.UserCode}}</strong></p>
{{if .State}}<p id="state">The token endpoint answered <code>{{.State}}</code>.</p>{{end}}
<form method="post" action="{{.Path}}/check"><input type="hidden" name="id" value="{{.ID}}"><button id="check">Check now</button></form>
<p>A real device checks every {{.Code.Interval}} seconds by itself.</p>
{{else}}<form method="post" action="{{.Path}}/start"><button id="start">Switch the device on</button></form>{{end}}
</body></html>`
