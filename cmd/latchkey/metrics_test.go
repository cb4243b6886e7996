package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latchkey/latchkey/pkg/client"
)

// metricsScrape is what Prometheus read from a node's /metrics.
type metricsScrape map[string]*dto.MetricFamily

// scrape reads the node's metrics as Prometheus does: from /metrics on the
// admin listener, in the text format.
func (n *node) scrape(t *testing.T) metricsScrape {
	t.Helper()
	resp, err := http.Get(n.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics on the admin listener: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not in Prometheus's text format: %v", err)
	}
	return families
}

// value is the sum over the series of the metric name whose labels include
// labels (name, value, ...): a counter's or gauge's value, a histogram's
// count of observations. A metric that is not exposed fails the test.
func (s metricsScrape) value(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	f, ok := s[name]
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
	var sum float64
series:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue series
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// labelValues lists every label value of every series, to check what they
// may never hold.
func (s metricsScrape) labelValues() []string {
	var values []string
	for _, f := range s {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				values = append(values, l.GetName()+"="+l.GetValue())
			}
		}
	}
	return values
}

func TestMetricsCountTokensSignInsAndIntrospections(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	before := n.scrape(t)
	for _, grant := range []string{"client_credentials", "authorization_code", "refresh_token"} {
		for _, format := range []string{"opaque", "jwt"} {
			if v := before.value(t, "latchkey_tokens_issued_total", "grant_type", grant, "format", format); v != 0 {
				t.Fatalf("a new node has issued %v %s %s tokens", v, format, grant)
			}
		}
	}

	// A backend gets a token, which a resource server introspects.
	backend, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := n.tokenRequest(t, backend.ID, secret)
	if status != http.StatusOK {
		t.Fatalf("client credentials: %d %v", status, body)
	}
	if !n.introspect(t, body["access_token"].(string)) {
		t.Fatal("the backend's token is not active")
	}
	if status, _, _ := n.formCall(t, "/oauth2/introspect", backend.ID, "wrong secret", url.Values{"token": {"x"}}); status != http.StatusUnauthorized {
		t.Fatalf("introspection with a wrong secret: %d", status)
	}
	// Another backend's API wants JWT access tokens.
	jwtBackend, jwtSecret, err := n.clients.Create(t.Context(), client.Client{
		GrantTypes: []string{client.GrantClientCredentials}, AccessTokenFormat: client.FormatJWT})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body := n.tokenRequest(t, jwtBackend.ID, jwtSecret); status != http.StatusOK {
		t.Fatalf("client credentials for JWTs: %d %v", status, body)
	}

	// Ada mistypes her password, then signs in to the app.
	if p := b.signIn(b.visit(rp.start().url), "ada@example.com", "wrong password"); !p.isLogin() {
		t.Fatalf("a wrong password did not show the login page again: %d", p.status)
	}
	tok, _ := b.signedIn(rp, "ada@example.com")
	// A path no route serves, with something in it that looks like an ID.
	if status, _ := httpGet(t, n.issuer+"/clients/"+backend.ID); status != http.StatusNotFound {
		t.Fatalf("an unrouted path answered %d", status)
	}

	m := n.scrape(t)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"latchkey_tokens_issued_total", []string{"grant_type", "client_credentials", "format", "opaque"}, 1},
		{"latchkey_tokens_issued_total", []string{"grant_type", "client_credentials", "format", "jwt"}, 1},
		{"latchkey_tokens_issued_total", []string{"grant_type", "authorization_code", "format", "opaque"}, 1},
		{"latchkey_tokens_issued_total", []string{"grant_type", "refresh_token"}, 0},
		{"latchkey_introspections_total", []string{"result", "active"}, 1},
		{"latchkey_introspections_total", []string{"result", "rejected"}, 1},
		{"latchkey_introspections_total", []string{"result", "inactive"}, 0},
		{"latchkey_logins_total", []string{"result", "succeeded"}, 1},
		{"latchkey_logins_total", []string{"result", "failed"}, 1},
		{"latchkey_logins_total", []string{"result", "error"}, 0},
		{"latchkey_http_requests_total", []string{"listener", "public", "method", "POST", "route", "/oauth2/token", "status", "200"}, 3},
		{"latchkey_http_requests_total", []string{"listener", "public", "method", "POST", "route", "/login", "status", "200"}, 1},
		{"latchkey_http_requests_total", []string{"listener", "public", "method", "POST", "route", "/login", "status", "303"}, 1},
		{"latchkey_http_requests_total", []string{"listener", "public", "method", "GET", "route", "unmatched", "status", "404"}, 1},
		{"latchkey_http_requests_total", []string{"listener", "admin", "method", "GET", "route", "/metrics", "status", "200"}, 1},
		{"latchkey_http_request_duration_seconds", []string{"listener", "public", "method", "POST", "route", "/oauth2/token"}, 3},
		{"latchkey_refresh_token_reuse_total", nil, 0},
		{"latchkey_rate_limited_total", nil, 0},
	} {
		if got := m.value(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, name := range []string{"latchkey_db_pool_acquires_total", "latchkey_db_pool_max_connections", "go_goroutines", "process_resident_memory_bytes"} {
		if m.value(t, name) <= 0 {
			t.Errorf("%s = %v, want more than 0", name, m.value(t, name))
		}
	}
	if got := m.value(t, "latchkey_build_info", "version", buildVersion()); got != 1 {
		t.Errorf("latchkey_build_info{version=%q} = %v, want 1", buildVersion(), got)
	}

	// No label names who did what: not the clients, not the user, not a
	// token, not a raw path.
	u, err := n.users.GetByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range m.labelValues() {
		for _, secretive := range []string{backend.ID, jwtBackend.ID, rp.client.ID, "ada@example.com", u.ID, tok.AccessToken, "/clients/"} {
			if strings.Contains(v, secretive) {
				t.Errorf("label %s holds %q", v, secretive)
			}
		}
	}
}

func TestMetricsCountRefreshTokenReuse(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	tok, _ := b.signedIn(rp, "ada@example.com")
	refresh := func() int {
		status, _, _ := n.formCall(t, "/oauth2/token", rp.client.ID, rp.oauth.ClientSecret,
			url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		return status
	}
	if status := refresh(); status != http.StatusOK {
		t.Fatalf("first refresh: %d", status)
	}
	if status := refresh(); status != http.StatusBadRequest {
		t.Fatalf("the spent refresh token again: %d, want 400", status)
	}
	m := n.scrape(t)
	if got := m.value(t, "latchkey_refresh_token_reuse_total"); got != 1 {
		t.Errorf("latchkey_refresh_token_reuse_total = %v, want 1", got)
	}
	if got := m.value(t, "latchkey_tokens_issued_total", "grant_type", "refresh_token", "format", "opaque"); got != 1 {
		t.Errorf("refresh tokens issued = %v, want 1 (a reused one issues nothing)", got)
	}
}

func TestMetricsCountSecondFactorCodes(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	u, err := n.users.GetByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	secret := n.enrol(t, u)
	codePage := b.signIn(b.visit(rp.start().url), "ada@example.com", testPassword)
	if p := b.secondFactor(codePage, "000000"); !p.isSecondFactor() {
		t.Fatalf("a wrong code did not show the code page again: %d", p.status)
	}
	if p := b.secondFactor(codePage, totpCode(t, secret, 1)); !p.isConsent() {
		t.Fatalf("the right code did not lead on to consent: %d", p.status)
	}
	m := n.scrape(t)
	for result, want := range map[string]float64{"succeeded": 1, "failed": 1, "throttled": 0, "error": 0} {
		if got := m.value(t, "latchkey_mfa_verifications_total", "result", result); got != want {
			t.Errorf("latchkey_mfa_verifications_total{result=%q} = %v, want %v", result, got, want)
		}
	}
}

func TestMetricsCountRateLimitRefusals(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_CLIENT_RATE_LIMIT", "1", "LATCHKEY_SIGNIN_RATE_LIMIT", "1")
	backend, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		if status, _, body := n.tokenRequest(t, backend.ID, secret); status != want {
			t.Fatalf("token request: %d %v, want %d", status, body, want)
		}
	}
	n.user(t, "ada@example.com")
	b := newBrowser(t, n.issuer)
	login := b.visit(n.app(t).start().url)
	for _, want := range []int{http.StatusOK, http.StatusTooManyRequests} {
		if p := b.signIn(login, "ada@example.com", "wrong password"); p.status != want {
			t.Fatalf("sign-in attempt: %d, want %d", p.status, want)
		}
	}
	m := n.scrape(t)
	for endpoint, want := range map[string]float64{"token": 1, "sign_in": 1, "introspect": 0, "revoke": 0} {
		if got := m.value(t, "latchkey_rate_limited_total", "endpoint", endpoint); got != want {
			t.Errorf("latchkey_rate_limited_total{endpoint=%q} = %v, want %v", endpoint, got, want)
		}
	}
	if got := m.value(t, "latchkey_logins_total"); got != 1 {
		t.Errorf("logins counted: %v, want 1 (a refused attempt checks no password)", got)
	}
}
