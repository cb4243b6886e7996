package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/usage"
)

// fromAddress is an HTTP client whose connections come from the loopback
// address 127.0.0.N, as calls from several machines do.
func fromAddress(n int) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 8}}
}

// metered is one answer of a metered endpoint: its status, the RateLimit
// fields and the body.
type metered struct {
	status          int
	policy, limit   string
	retryAfter      string
	body            map[string]any
	err             error
	raw             string
	rateLimitFields bool
}

func call(hc *http.Client, req *http.Request) metered {
	resp, err := hc.Do(req)
	if err != nil {
		return metered{err: err}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	m := metered{status: resp.StatusCode, policy: resp.Header.Get("RateLimit-Policy"), limit: resp.Header.Get("RateLimit"),
		retryAfter: resp.Header.Get("Retry-After"), raw: string(raw)}
	m.rateLimitFields = m.policy != "" && m.limit != ""
	_ = json.Unmarshal(raw, &m.body)
	return m
}

// quotaRefusal checks an answer is the 429 of a used-up daily quota of
// token requests: the RFC 6749 error quota_exceeded, naming the quota and
// when it resets, with Retry-After and the RateLimit fields.
func quotaRefusal(t *testing.T, m metered, endpoint string, limit int) {
	t.Helper()
	tomorrow := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour).Format(time.RFC3339)
	secs, _ := strconv.Atoi(m.retryAfter)
	if m.status != http.StatusTooManyRequests || m.body["error"] != "quota_exceeded" || m.body["quota"] != endpoint+"-day" ||
		m.body["limit"] != float64(limit) || m.body["resets_at"] != tomorrow || secs < 1 ||
		!strings.Contains(fmt.Sprint(m.body["error_description"]), "daily quota of "+strconv.Itoa(limit)+" "+endpoint+" requests") ||
		!strings.Contains(fmt.Sprint(m.body["error_description"]), tomorrow) {
		t.Fatalf("over the quota: %d Retry-After %q %s; want 429 quota_exceeded naming the daily %s quota of %d and its reset at %s",
			m.status, m.retryAfter, m.raw, endpoint, limit, tomorrow)
	}
	if m.policy != fmt.Sprintf(`"%s-day";q=%d;w=86400`, endpoint, limit) || !strings.HasPrefix(m.limit, `"`+endpoint+`-day";r=0;t=`) {
		t.Fatalf("over the quota: RateLimit-Policy %q, RateLimit %q; want the daily quota with nothing left", m.policy, m.limit)
	}
}

// Two nodes, one plan with a daily quota of 1,000 token requests, and
// 1,200 calls spread across both from several addresses: at most 1,000
// succeed (the stated overshoot is 0), the rest get 429 with the quota
// body and headers. The budget a node holds unused when the calls end is
// given back when it stops, and the other node serves it: over the day,
// exactly 1,000 succeed.
func TestAPlanQuotaHoldsAcrossTwoNodes(t *testing.T) {
	t.Parallel()
	const quota, calls = 1000, 1200
	c := startCluster(t)
	svc := c.node.service(t)
	adm := c.node.automation(t, client.AdminScope)
	adm.call(http.MethodPost, "/admin/plans", map[string]any{"name": "daily-1000",
		"limits": []map[string]any{{"endpoint": "token", "per_day": quota}}}).must(t, http.StatusCreated)
	adm.call(http.MethodPut, "/admin/plans/daily-1000/subjects/client:"+svc.id, nil).must(t, http.StatusNoContent)
	// Each node reads plans every PlansRefresh.
	time.Sleep(usage.PlansRefresh + 1500*time.Millisecond)

	nodes := []string{c.a.public, c.b.public}
	var succeeded, refused atomic.Int64
	var wg sync.WaitGroup
	var failed sync.Once
	const workers = 12
	for w := range workers {
		hc := fromAddress(2 + w%4)
		wg.Go(func() {
			for i := range calls / workers {
				m := call(hc, svc.tokenRequest(nodes[(w+i)%2]))
				switch {
				case m.err != nil:
					failed.Do(func() { t.Errorf("call: %v", m.err) })
				case m.status == http.StatusOK && m.rateLimitFields:
					succeeded.Add(1)
				case m.status == http.StatusOK:
					failed.Do(func() { t.Errorf("a successful answer without RateLimit fields: %q %q", m.policy, m.limit) })
				default:
					refused.Add(1)
					quotaRefusal(t, m, "token", quota)
				}
			}
		})
	}
	wg.Wait()
	served := succeeded.Load()
	t.Logf("%d succeeded, %d refused", served, refused.Load())
	if served > quota {
		t.Fatalf("%d of %d calls succeeded under a daily quota of %d: the stated overshoot is 0", served, calls, quota)
	}
	// Each node parks at most its last slice: a quarter of what was left.
	if parked := int64(2 * min(quota/4, usage.MaxSlice)); served < quota-parked || served+refused.Load() != calls {
		t.Fatalf("%d succeeded and %d refused of %d calls; at most %d may be parked at the two nodes", served, refused.Load(), calls, parked)
	}

	// A stops, giving back what it holds; B serves it once it asks again
	// (every second while the quota is used up), and no more.
	c.a.terminate(t)
	deadline := time.Now().Add(5 * time.Second)
	hc := fromAddress(7)
	for time.Now().Before(deadline) {
		if m := call(hc, svc.tokenRequest(c.b.public)); m.status == http.StatusOK {
			served++
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.b.terminate(t)
	if served != quota {
		t.Fatalf("%d succeeded over the day, want exactly the quota of %d once the nodes gave back what they held", served, quota)
	}
	conn, err := pgx.Connect(t.Context(), c.node.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var reserved int64
	if err := conn.QueryRow(t.Context(), `SELECT reserved FROM usage_quotas WHERE subject = $1`, "client:"+svc.id).Scan(&reserved); err != nil || reserved != quota {
		t.Fatalf("the database counts %d reserved (%v), want %d: what the nodes served", reserved, err, quota)
	}
}

// Without a plan, an authenticated client is not throttled below what a
// node can serve: 200 concurrent token requests from one backend all
// succeed (with the old default of 100 a second per node, about 85 got
// 429).
func TestConcurrentTokenRequestsOfAClientWithoutAPlanAllSucceed(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	svc := n.service(t)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	var wg sync.WaitGroup
	var start sync.WaitGroup
	start.Add(1)
	statuses := make([]metered, 200)
	for i := range statuses {
		wg.Go(func() {
			start.Wait()
			statuses[i] = call(hc, svc.tokenRequest(n.issuer))
		})
	}
	start.Done()
	wg.Wait()
	failed := 0
	for _, m := range statuses {
		if m.status != http.StatusOK {
			if failed == 0 {
				t.Logf("first failure: %d %v %s", m.status, m.err, m.raw)
			}
			failed++
		}
		if m.policy != "" {
			t.Fatalf("a client without a plan got RateLimit-Policy %q", m.policy)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of 200 concurrent token requests failed, want none", failed)
	}
}

// A plan's rate per second refuses the call over it with 429 and
// Retry-After; every answer carries the RateLimit fields; the calls show
// in the usage report by endpoint and day, and in metrics by endpoint and
// result, never by client.
func TestAPlanRateRefusesWithRetryAfterAndUsageIsReported(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	svc := n.service(t)
	adm := n.automation(t, client.AdminScope)
	adm.call(http.MethodPost, "/admin/plans", map[string]any{"name": "burst", "description": "two a second",
		"limits": []map[string]any{{"endpoint": "token", "per_second": 2}, {"endpoint": "*", "per_month": 1000}}}).must(t, http.StatusCreated)
	adm.call(http.MethodPut, "/admin/plans/burst/subjects/client:"+svc.id, nil).must(t, http.StatusNoContent)

	waitForNextSecond()
	var answers []metered
	for range 3 {
		answers = append(answers, call(http.DefaultClient, svc.tokenRequest(n.issuer)))
	}
	for i, m := range answers[:2] {
		if m.status != http.StatusOK || !strings.HasPrefix(m.policy, `"token-second";q=2;w=1, "all-month";q=1000;w=`) ||
			!strings.HasPrefix(m.limit, fmt.Sprintf(`"token-second";r=%d;t=1, "all-month";r=`, 1-i)) {
			t.Fatalf("call %d within the rate: %d, RateLimit-Policy %q, RateLimit %q", i+1, m.status, m.policy, m.limit)
		}
	}
	over := answers[2]
	limited(t, "a plan's rate", over.status, http.Header{"Retry-After": {over.retryAfter}}, over.body)
	if !strings.Contains(fmt.Sprint(over.body["error_description"]), "rate of 2 token requests per second") || !over.rateLimitFields {
		t.Fatalf("over the rate: %s, RateLimit %q; want the rate named and the fields", over.raw, over.limit)
	}
	// Introspection is limited by the monthly quota of all endpoints only.
	token, _ := answers[0].body["access_token"].(string)
	m := call(http.DefaultClient, svc.form(n.issuer+"/oauth2/introspect", url.Values{"token": {token}}))
	if m.status != http.StatusOK || !strings.HasPrefix(m.policy, `"all-month";q=1000;w=`) {
		t.Fatalf("introspection: %d, RateLimit-Policy %q", m.status, m.policy)
	}

	today := time.Now().UTC().Format(time.DateOnly)
	var report []map[string]any
	waitFor(t, "the usage report to count the calls", func() bool {
		report = adm.call(http.MethodGet, "/admin/usage?subject=client:"+svc.id+"&from="+today+"&to="+today, nil).must(t, http.StatusOK).items()
		return len(report) == 2
	})
	if report[0]["endpoint"] != "introspect" || report[0]["served"] != float64(1) || report[1]["endpoint"] != "token" ||
		report[1]["served"] != float64(2) || report[1]["refused"] != float64(1) || !strings.HasPrefix(fmt.Sprint(report[1]["day"]), today) {
		t.Fatalf("usage report %v, want today's introspect 1 served and token 2 served 1 refused", report)
	}

	s := n.scrape(t)
	if got := s.value(t, "latchkey_usage_calls_total", "endpoint", "token", "result", "rate"); got != 1 {
		t.Errorf("latchkey_usage_calls_total{endpoint=token,result=rate} = %v, want 1", got)
	}
	for name, f := range s {
		for _, series := range f.GetMetric() {
			for _, l := range series.GetLabel() {
				if strings.Contains(l.GetValue(), svc.id) {
					t.Errorf("%s has the client ID in label %s", name, l.GetName())
				}
			}
		}
	}
}

func TestAdminAPIValidatesPlansAndReadOnlyAdminsCannotChangeThem(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	adm := n.automation(t, client.AdminScope)
	for _, tt := range []struct {
		name  string
		body  any
		field string
	}{
		{"unknown endpoint", map[string]any{"name": "p", "limits": []map[string]any{{"endpoint": "userinfo", "per_day": 1}}}, "limits[0].endpoint"},
		{"negative limit", map[string]any{"name": "p", "limits": []map[string]any{{"endpoint": "token", "per_second": -5}}}, "limits[0].per_second"},
		{"oversized name", map[string]any{"name": strings.Repeat("n", 65), "limits": []map[string]any{{"endpoint": "*", "per_day": 1}}}, "name"},
	} {
		adm.call(http.MethodPost, "/admin/plans", tt.body).problem(t, http.StatusUnprocessableEntity, tt.field)
	}
	adm.call(http.MethodPost, "/admin/plans", map[string]any{"name": "p", "limits": []map[string]any{{"endpoint": "*", "per_day": 5}}}).must(t, http.StatusCreated)
	adm.call(http.MethodPost, "/admin/plans", map[string]any{"name": "p", "limits": []map[string]any{{"endpoint": "*", "per_day": 5}}}).problem(t, http.StatusConflict, "name")
	adm.call(http.MethodPut, "/admin/plans/p/subjects/user:abc", nil).problem(t, http.StatusBadRequest, "subject")
	adm.call(http.MethodPut, "/admin/plans/nope/subjects/client:abc", nil).problem(t, http.StatusNotFound, "")
	adm.call(http.MethodGet, "/admin/usage?subject=client:x&from=yesterday", nil).problem(t, http.StatusBadRequest, "from")

	reader := n.automation(t, client.AdminReadScope)
	reader.call(http.MethodPost, "/admin/plans", map[string]any{"name": "q", "limits": []map[string]any{{"endpoint": "*", "per_day": 5}}}).problem(t, http.StatusForbidden, "")
	reader.call(http.MethodPut, "/admin/plans/p/subjects/client:abc", nil).problem(t, http.StatusForbidden, "")
	if plans := reader.call(http.MethodGet, "/admin/plans", nil).must(t, http.StatusOK).items(); len(plans) != 1 || plans[0]["name"] != "p" {
		t.Fatalf("plans read by a read-only admin: %v", plans)
	}

	adm.call(http.MethodPut, "/admin/plans/p/subjects/client:abc", nil).must(t, http.StatusNoContent)
	if es := adm.call(http.MethodGet, "/admin/audit-events?action=plan.assigned", nil).must(t, http.StatusOK).items(); len(es) != 1 || es[0]["target"] != "client:abc" {
		t.Fatalf("plan.assigned events %v", es)
	}
}

// The CLI manages plans as the admin API does, and says what is wrong in
// one line.
func TestPlansCLIAssignsPlansAndReportsUsageWithOneLineErrors(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	db := vars{"LATCHKEY_DATABASE_URL": n.dbURL}
	run := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		code, stdout, stderr := runCLI(t.Context(), db, args...)
		if code != wantCode {
			t.Fatalf("latchkey %s: exit %d, want %d: %s%s", strings.Join(args, " "), code, wantCode, stdout, stderr)
		}
		return stdout, stderr
	}
	run(0, "plans", "create", "gold", "--limit", "token:per_second=20,per_day=10000", "--limit", "*:per_month=100000")
	if out, _ := run(0, "plans", "list"); !strings.Contains(out, "gold") || !strings.Contains(out, "token:per_second=20,per_day=10000") {
		t.Fatalf("plans list: %s", out)
	}
	run(0, "plans", "assign", "gold", "client:backend")
	run(0, "usage", "client:backend")
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"plans", "create", "bad", "--limit", "userinfo:per_day=1"}, "limits[0].endpoint"},
		{[]string{"plans", "create", "neg", "--limit", "token:per_second=-1"}, "limits[0].per_second"},
		{[]string{"plans", "assign", "nope", "client:backend"}, "no plan has this name"},
		{[]string{"plans", "assign", "gold", "user:ada"}, `"client:" or "key:"`},
		{[]string{"usage", "client:backend", "--from", "yesterday"}, "--from must be a day"},
	} {
		code, _, stderr := runCLI(t.Context(), db, tt.args...)
		if code == 0 || !strings.Contains(stderr, tt.says) || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
			t.Errorf("latchkey %s: exit %d, %q; want a failure saying %q in one line", strings.Join(tt.args, " "), code, stderr, tt.says)
		}
	}
}

// A plan assigned to an API key limits the introspections of that key,
// whichever resource server asks: past its daily quota, introspection
// answers 429 with the quota body, and the key's other uses are not the
// introspecting client's to pay for.
func TestAnAPIKeysPlanLimitsItsIntrospections(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	svc := n.service(t, func(c *client.Client) { c.Scope = "reports.read" })
	rs := n.service(t, introspectAnyToken)
	adm := n.automation(t, client.AdminScope)
	_, key, id := adm.createKey(t, svc.id, map[string]any{"name": "partner", "scope": "reports.read"})
	adm.call(http.MethodPost, "/admin/plans", map[string]any{"name": "partner-trial", "description": "three checks a day",
		"limits": []map[string]any{{"endpoint": "introspect", "per_day": 3}}}).must(t, http.StatusCreated)
	adm.call(http.MethodPut, "/admin/plans/partner-trial/subjects/key:"+id, nil).must(t, http.StatusNoContent)

	introspect := func() metered {
		return call(http.DefaultClient, rs.form(n.issuer+"/oauth2/introspect", url.Values{"token": {key}}))
	}
	// A plan change reaches the node within its refresh; wait until the
	// key's calls carry the plan's fields.
	var first metered
	waitFor(t, "the key's plan to apply", func() bool {
		first = introspect()
		return first.policy != ""
	})
	if first.status != http.StatusOK || first.body["active"] != true || !strings.HasPrefix(first.policy, `"introspect-day";q=3;w=86400`) {
		t.Fatalf("the key's first introspection under its plan: %d %s, RateLimit-Policy %q", first.status, first.raw, first.policy)
	}
	served := 1
	var over metered
	for range 5 {
		m := introspect()
		if m.status == http.StatusOK {
			served++
			continue
		}
		over = m
		break
	}
	if served > 3 {
		t.Fatalf("%d introspections of the key served under a daily quota of 3", served)
	}
	quotaRefusal(t, over, "introspect", 3)
	if !strings.Contains(fmt.Sprint(over.body["error_description"]), "This API key has used") {
		t.Errorf("the refusal blames %q, want the API key", over.body["error_description"])
	}
	// The resource server's own introspections of tokens are not the
	// key's quota.
	tok, _ := call(http.DefaultClient, svc.tokenRequest(n.issuer)).body["access_token"].(string)
	if m := call(http.DefaultClient, rs.form(n.issuer+"/oauth2/introspect", url.Values{"token": {tok}})); m.status != http.StatusOK || m.body["active"] != true {
		t.Fatalf("the resource server introspecting a token after the key's quota ran out: %d %s", m.status, m.raw)
	}
}
