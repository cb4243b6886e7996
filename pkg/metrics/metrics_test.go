package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/metrics"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// scrape reads m's metrics over HTTP, as Prometheus does.
func scrape(t *testing.T, m *metrics.Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("not Prometheus's text format: %v", err)
	}
	return families
}

// labelsOf lists a family's series as name=value lists (labels in name
// order, as the exposition has them), sorted.
func labelsOf(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		out = append(out, strings.Join(ls, ","))
	}
	slices.Sort(out)
	return out
}

func TestPoolStatisticsAreReadFromTheStoreAtEachScrape(t *testing.T) {
	t.Parallel()
	// A pool size no default gives.
	store := pgtest.Open(t, pgtest.URL(t)+"&pool_max_conns=7")
	m := metrics.New("test", store.PoolStat)
	first := scrape(t, m)["latchkey_db_pool_acquires_total"].GetMetric()[0].GetCounter().GetValue()
	if err := store.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	families := scrape(t, m)
	if got := families["latchkey_db_pool_max_connections"].GetMetric()[0].GetGauge().GetValue(); got != 7 {
		t.Errorf("latchkey_db_pool_max_connections = %v, want the pool's 7", got)
	}
	if got := families["latchkey_db_pool_acquires_total"].GetMetric()[0].GetCounter().GetValue(); got != first+1 {
		t.Errorf("latchkey_db_pool_acquires_total went from %v to %v over one ping, want one more", first, got)
	}
	if got := families["latchkey_db_pool_connections"].GetMetric()[0].GetGauge().GetValue(); got < 1 {
		t.Errorf("latchkey_db_pool_connections = %v after a ping, want at least 1", got)
	}
}

func TestEverySeriesExistsFromTheStart(t *testing.T) {
	t.Parallel()
	families := scrape(t, metrics.New("test", nil))
	for name, want := range map[string][]string{
		"latchkey_introspections_total":    {"result=active", "result=error", "result=inactive", "result=rejected"},
		"latchkey_logins_total":            {"result=error", "result=failed", "result=succeeded"},
		"latchkey_mfa_verifications_total": {"result=error", "result=failed", "result=succeeded", "result=throttled"},
		"latchkey_rate_limited_total":      {"endpoint=authorize", "endpoint=client_auth", "endpoint=device", "endpoint=introspect", "endpoint=revoke", "endpoint=sign_in", "endpoint=token"},
		"latchkey_tokens_issued_total": {
			"format=jwt,grant_type=authorization_code", "format=jwt,grant_type=client_credentials",
			"format=jwt,grant_type=refresh_token", "format=opaque,grant_type=authorization_code",
			"format=opaque,grant_type=client_credentials", "format=opaque,grant_type=refresh_token",
		},
		"latchkey_refresh_token_reuse_total": {""},
		"latchkey_build_info":                {"version=test"},
	} {
		if got := labelsOf(families[name]); !slices.Equal(got, want) {
			t.Errorf("%s series %q, want %q", name, got, want)
		}
	}
	if _, ok := families["latchkey_db_pool_acquires_total"]; ok {
		t.Error("metrics made without a pool report one")
	}
}

func TestHTTPLabelsTakeOnlyKnownValues(t *testing.T) {
	t.Parallel()
	m := metrics.New("test", nil)
	public := m.HTTP("public")
	public.ObserveRequest("BREW", "unmatched", 418, time.Millisecond)
	public.ObserveRequest(http.MethodGet, "/oauth2/userinfo", 999, time.Millisecond)
	m.HTTP("admin").ObserveRequest(http.MethodGet, "/admin/clients/{id}", http.StatusOK, time.Millisecond)
	families := scrape(t, m)
	want := []string{
		"listener=admin,method=GET,route=/admin/clients/{id},status=200",
		"listener=public,method=GET,route=/oauth2/userinfo,status=other",
		"listener=public,method=other,route=unmatched,status=418",
	}
	if got := labelsOf(families["latchkey_http_requests_total"]); !slices.Equal(got, want) {
		t.Errorf("requests series %q, want %q", got, want)
	}
}

// TestDocsDescribeEveryMetric keeps docs/observability.md and /metrics in
// step: each latchkey_ metric exposed is documented, and each documented
// one exists.
func TestDocsDescribeEveryMetric(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	store := pgtest.Store(t)
	m := metrics.New("test", store.PoolStat)
	m.WatchOutbox(store.MailCounts)
	m.WatchRisk([]string{"new_device"}, []string{"allow"}, store.BlockedNetworks)
	m.WatchEvents(store.EventCounts)
	m.WatchLogouts(store.LogoutCounts)
	m.HTTP("public").ObserveRequest(http.MethodGet, "/healthz", http.StatusOK, time.Millisecond)
	exposed := scrape(t, m)

	documented := map[string]bool{}
	for _, name := range regexp.MustCompile("`(latchkey_[a-z_]+)`").FindAllStringSubmatch(string(b), -1) {
		documented[name[1]] = true
	}
	for name := range exposed {
		if strings.HasPrefix(name, "latchkey_") && !documented[name] {
			t.Errorf("%s is exposed but not in docs/observability.md", name)
		}
	}
	// PromQL in the docs may name a histogram's series.
	for _, name := range regexp.MustCompile(`latchkey_[a-z_]+`).FindAllString(string(b), -1) {
		base := name
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if f, ok := exposed[strings.TrimSuffix(name, suffix)]; ok && f.GetType() == dto.MetricType_HISTOGRAM {
				base = strings.TrimSuffix(name, suffix)
			}
		}
		if _, ok := exposed[base]; !ok {
			t.Errorf("docs/observability.md mentions %s, which /metrics does not have", name)
		}
	}
}

func TestTheOutboxGaugesCountPendingAndFailedMailOfEveryNode(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	store := pgtest.Open(t, url)
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if err := store.InsertMail(t.Context(), &mail.Stored{Template: "test", Recipient: to, Sealed: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pgtest.Conn(t, url).Exec(t.Context(), `UPDATE mail_outbox SET status = 'failed' WHERE recipient = 'c@example.com'`); err != nil {
		t.Fatal(err)
	}
	// Another node's metrics, on the same database, see the same outbox.
	m := metrics.New("test", nil)
	m.WatchOutbox(pgtest.Open(t, url).MailCounts)
	got := map[string]float64{}
	for _, s := range scrape(t, m)["latchkey_mail_outbox_messages"].GetMetric() {
		got[s.GetLabel()[0].GetValue()] = s.GetGauge().GetValue()
	}
	if got["pending"] != 2 || got["failed"] != 1 {
		t.Fatalf("outbox gauges %v, want pending 2 and failed 1", got)
	}
}
