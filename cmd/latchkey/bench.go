package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/usage"
	"github.com/latchkey/latchkey/storage/pgcluster"
)

// benchScenarios are the workloads latchkey bench can drive, in the order it
// runs them.
var benchScenarios = []string{"cc-opaque", "cc-jwt", "cc-jwt-es256", "cc-jwt-eddsa", "introspect", "introspect-apikey", "cc-plan"}

// benchJWTAlgs are the client credentials scenarios for JWT access tokens
// and the algorithm each one's client registers: cc-jwt keeps the server's
// default, RS256, so that its figures compare with earlier runs.
var benchJWTAlgs = map[string]string{"cc-jwt": "", "cc-jwt-es256": "ES256", "cc-jwt-eddsa": "EdDSA"}

// benchResult is what one scenario measured.
type benchResult struct {
	scenario  string
	requests  int
	errors    int
	elapsed   time.Duration
	latencies []time.Duration // sorted
}

func (r benchResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
}

// benchCommand measures a node: latchkey bench. It starts a complete node
// (the same wiring as serve) on loopback, on a throwaway Postgres unless
// --database-url names one, registers its own clients, and drives the token
// and introspection endpoints over real HTTP with concurrent clients.
func benchCommand(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure token issuance and introspection",
		Long: `Measure token issuance and introspection: start a complete node on loopback,
on a throwaway Postgres unless --database-url names a database, register
clients of its own (deleted afterwards), and drive the token and
introspection endpoints over HTTP with concurrent clients
(docs/production.md, Sizing).`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	var o benchOptions
	fs := cmd.Flags()
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each scenario runs")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each scenario")
	fs.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients")
	fs.StringVar(&o.scenarios, "scenarios", strings.Join(benchScenarios, ","), "comma-separated scenarios: "+strings.Join(benchScenarios, ", "))
	fs.BoolVar(&o.durable, "durable", true, "run the throwaway Postgres with fsync on, as production does")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the node and the load to this `file`")
	settings := databaseFlags(cmd, "LATCHKEY_DATABASE_MAX_CONNS")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return runBench(cmd.Context(), e, settings, o)
	}
	return cmd
}

// benchOptions are latchkey bench's own flags.
type benchOptions struct {
	duration, warmup time.Duration
	concurrency      int
	scenarios        string
	durable          bool
	cpuProfile       string
}

// runBench runs the scenarios o names and prints what they measured.
func runBench(ctx context.Context, e env, settings *config.Flags, o benchOptions) error {
	run := strings.Split(o.scenarios, ",")
	for _, s := range run {
		if !slices.Contains(benchScenarios, s) {
			return usageError("unknown scenario %q; choose from %s", s, strings.Join(benchScenarios, ", "))
		}
	}
	if o.concurrency < 1 || o.concurrency > 1000 || o.duration <= 0 {
		return usageError("--concurrency must be from 1 to 1000, and --duration positive")
	}
	cfg, err := settings.Load(e.lookupEnv)
	if err != nil {
		return err
	}

	if cfg.DatabaseURL == "" {
		stop, url, err := benchDatabase(ctx, o.durable)
		if err != nil {
			return err
		}
		defer stop()
		cfg.DatabaseURL = url
	}
	if len(cfg.Secrets) == 0 {
		cfg.Secrets = [][]byte{[]byte(strings.Repeat("bench-secret-", 3))}
	}
	// Room for every concurrent request plus the janitor and key reloads.
	cfg.DatabaseMaxConns = max(cfg.DatabaseMaxConns, int32(o.concurrency)+4) // #nosec G115 -- at most 1000, checked above
	cfg.JanitorInterval = 0
	// The bench drives a few clients as hard as it can, to measure the
	// node, not its rate limits.
	cfg.ClientRateLimit = 0
	public, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = public.Close()
		return err
	}
	cfg.Issuer = "http://" + public.Addr().String()
	if err := cfg.Validate(config.NeedDatabase | config.NeedIssuer | config.NeedSecrets); err != nil {
		return err
	}
	store, err := openStore(cfg, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := wire(ctx, cfg, store, quiet, nil)
	if err != nil {
		return err
	}
	nodeCtx, stopNode := context.WithCancel(ctx)
	go store.ListenForChanges(nodeCtx, quiet, a.keys.Changed, nil, nil)
	go a.meter.Run(nodeCtx)
	served := make(chan error, 1)
	go func() {
		served <- server.Serve(nodeCtx, quiet, time.Second,
			server.Listener{Name: "public", Listener: public, Handler: a.public},
			server.Listener{Name: "admin", Listener: admin, Handler: a.admin})
	}()
	defer func() { stopNode(); <-served }()

	ctx, auditLog := operatorAudit(ctx, store, cfg)
	clients := client.NewManager(store, auditLog, cfg.ClientSecretGracePeriod)
	b, err := newBench(ctx, clients, apikey.New(store, clients, auditLog, quiet, apikey.Config{}), usage.NewManager(store, auditLog, a.meter), cfg.Issuer, o.concurrency)
	// On a database of the operator's, leave nothing behind: deleting the
	// clients deletes their tokens.
	defer b.cleanUp(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Fprintf(e.stdout, "latchkey bench: %d concurrent clients, %s per scenario, on %s\n", o.concurrency, o.duration, b.describeDB(cfg.DatabaseURL, o.durable))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests\tper second\tp50\tp99\terrors\t")
	for _, s := range run {
		do := b.scenario(s)
		b.load(ctx, o.warmup, o.concurrency, do)
		r := b.load(ctx, o.duration, o.concurrency, do)
		r.scenario = s
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%d\t\n", r.scenario, r.requests,
			float64(r.requests)/r.elapsed.Seconds(), roundMS(r.percentile(0.50)), roundMS(r.percentile(0.99)), r.errors)
		if ctx.Err() != nil {
			break
		}
	}
	return tw.Flush()
}

// benchDatabase starts a throwaway cluster and returns a function that
// stops it and deletes its files.
func benchDatabase(ctx context.Context, durable bool) (func(), string, error) {
	dir, err := os.MkdirTemp("", "latchkey-bench-")
	if err != nil {
		return nil, "", err
	}
	// As root the cluster runs as the postgres user, which must reach it.
	err = os.Chmod(dir, 0o755) // #nosec G302 -- a directory the postgres user must traverse; the cluster's own files are private
	if err != nil {
		return nil, "", err
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "postgres"), Durable: durable})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	stop := func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = cluster.Stop(stopCtx)
		_ = os.RemoveAll(dir)
	}
	if err := createDatabase(ctx, cluster.URL("postgres"), devDatabase); err != nil {
		stop()
		return nil, "", err
	}
	return stop, cluster.URL(devDatabase), nil
}

// bench holds the clients and tokens the scenarios use.
type bench struct {
	clients  *client.Manager
	plans    *usage.Manager
	http     *http.Client
	tokenURL string
	introURL string
	opaque   benchClient
	// jwt are the JWT clients by scenario (benchJWTAlgs).
	jwt map[string]benchClient
	rs  benchClient
	// planned has a usage plan: generous, so that its calls measure the
	// metering, rates and quota reservations, not refusals.
	planned benchClient
	tokens  []string
	// apiKeys are keys of the opaque client for the resource server.
	apiKeys []string
	next    atomic.Uint64
}

type benchClient struct{ id, secret string }

// benchPlan is the plan of the cc-plan scenario's client: a rate and
// quotas on the token endpoint and on all endpoints, far above what a
// node serves.
var benchPlan = usage.Plan{Name: "latchkey-bench", Description: "latchkey bench's cc-plan scenario", Limits: []usage.Limit{
	{Endpoint: usage.EndpointToken, PerSecond: 1_000_000, PerDay: 1_000_000_000},
	{Endpoint: usage.AllEndpoints, PerMonth: 10_000_000_000},
}}

func newBench(ctx context.Context, m *client.Manager, keys *apikey.Manager, plans *usage.Manager, issuer string, concurrency int) (*bench, error) {
	reg := func(format, alg string, audience ...string) (benchClient, error) {
		c, secret, err := m.Create(ctx, client.Client{
			Name:                         strings.TrimSpace("bench " + format + " " + alg),
			GrantTypes:                   []string{client.GrantClientCredentials},
			Scope:                        "bench.read bench.write",
			Audience:                     audience,
			AccessTokenFormat:            format,
			AccessTokenSignedResponseAlg: alg,
		})
		if err != nil {
			return benchClient{}, err
		}
		return benchClient{c.ID, secret}, nil
	}
	b := &bench{
		clients: m,
		plans:   plans,
		http: &http.Client{Transport: &http.Transport{
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
		}, Timeout: 30 * time.Second},
		tokenURL: issuer + discovery.TokenPath,
		introURL: issuer + discovery.IntrospectionPath,
		jwt:      map[string]benchClient{},
	}
	// The resource server introspects tokens issued for it, as docs/
	// guide-resource-server.md sets one up: the tokens' aud names its
	// client ID, which is what lets it introspect them, with no permission
	// beyond the one every API has.
	var err error
	if b.rs, err = reg(client.FormatOpaque, ""); err != nil {
		return b, err
	}
	if b.opaque, err = reg(client.FormatOpaque, "", b.rs.id); err != nil {
		return b, err
	}
	for scenario, alg := range benchJWTAlgs {
		c, err := reg(client.FormatJWT, alg, b.rs.id)
		if err != nil {
			return b, err
		}
		b.jwt[scenario] = c
		// A scenario that signed with another algorithm than its name
		// says would report that algorithm's cost under its name.
		if err := b.checkAlg(c, cmp.Or(alg, "RS256")); err != nil {
			return b, fmt.Errorf("%s: %w", scenario, err)
		}
	}
	if b.planned, err = reg(client.FormatOpaque, "", b.rs.id); err != nil {
		return b, err
	}
	if _, err := plans.Create(ctx, benchPlan); err != nil && !errors.Is(err, usage.ErrExists) {
		return b, err
	}
	if err := plans.Assign(ctx, benchPlan.Name, usage.ClientSubject(b.planned.id)); err != nil {
		return b, err
	}
	// Introspection looks tokens up among many, as a real table would hold.
	for range 1000 {
		tok, err := b.issue(b.opaque)
		if err != nil {
			return b, fmt.Errorf("issue tokens to introspect: %w", err)
		}
		b.tokens = append(b.tokens, tok)
	}
	// As many keys as a client may hold, whose audience is the resource
	// server, as a service's keys for one API would be.
	for i := range apikey.MaxPerOwner {
		_, key, err := keys.Create(ctx, apikey.Client(b.opaque.id), apikey.Request{
			Name: fmt.Sprint("bench ", i), Scope: "bench.read", Audience: []string{b.rs.id}})
		if err != nil {
			return b, fmt.Errorf("make API keys to introspect: %w", err)
		}
		b.apiKeys = append(b.apiKeys, key)
	}
	return b, nil
}

// cleanUp deletes the clients the bench registered, and so their tokens.
func (b *bench) cleanUp(ctx context.Context) {
	for _, c := range slices.Concat([]benchClient{b.opaque, b.rs, b.planned}, slices.Collect(maps.Values(b.jwt))) {
		if c.id != "" {
			_ = b.clients.Delete(ctx, c.id)
		}
	}
	_ = b.plans.Delete(ctx, benchPlan.Name)
}

func (b *bench) describeDB(url string, durable bool) string {
	if strings.Contains(url, "host=/") || strings.Contains(url, "host=%2F") {
		if durable {
			return "a throwaway PostgreSQL (fsync on)"
		}
		return "a throwaway PostgreSQL (fsync off)"
	}
	return "the given database"
}

// post sends a form with Basic credentials and returns the body of a 200.
func (b *bench) post(endpoint string, c benchClient, form url.Values) ([]byte, error) {
	// The endpoint is the issuer the operator pointed the benchmark at.
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode())) // #nosec G704 -- the operator chose this URL
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.id, c.secret)
	resp, err := b.http.Do(req) // #nosec G704 -- the operator chose this URL
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d: %s", endpoint, resp.StatusCode, body)
	}
	return body, nil
}

var ccForm = url.Values{"grant_type": {"client_credentials"}, "scope": {"bench.read"}}

func (b *bench) issue(c benchClient) (string, error) {
	body, err := b.post(b.tokenURL, c, ccForm)
	if err != nil {
		return "", err
	}
	// The token is the first string value; a JSON decode would cost the
	// load generator more than it measures.
	_, rest, _ := strings.Cut(string(body), `"access_token":"`)
	tok, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return "", errors.New("no access_token in the response")
	}
	return tok, nil
}

// checkAlg gets c a token and checks that its JWS header names alg.
func (b *bench) checkAlg(c benchClient, alg string) error {
	tok, err := b.issue(c)
	if err != nil {
		return err
	}
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return fmt.Errorf("the access token is not a JWT: %w", err)
	}
	var h struct{ Alg string }
	if err := json.Unmarshal(raw, &h); err != nil || h.Alg != alg {
		return fmt.Errorf("the access token is signed with %q, want %s", h.Alg, alg)
	}
	return nil
}

// scenario returns one request of the named workload.
func (b *bench) scenario(name string) func() error {
	switch name {
	case "cc-jwt", "cc-jwt-es256", "cc-jwt-eddsa":
		c := b.jwt[name]
		return func() error { _, err := b.post(b.tokenURL, c, ccForm); return err }
	case "cc-plan":
		return func() error { _, err := b.post(b.tokenURL, b.planned, ccForm); return err }
	case "introspect":
		return func() error {
			tok := b.tokens[b.next.Add(1)%uint64(len(b.tokens))]
			body, err := b.post(b.introURL, b.rs, url.Values{"token": {tok}})
			if err == nil && !strings.Contains(string(body), `"active":true`) {
				err = errors.New("introspection answered inactive for a live token")
			}
			return err
		}
	case "introspect-apikey":
		// The resource server says where its caller connects from, as
		// one that honours keys' allowed addresses does: after the first
		// use the address is known and costs no write.
		return func() error {
			key := b.apiKeys[b.next.Add(1)%uint64(len(b.apiKeys))]
			body, err := b.post(b.introURL, b.rs, url.Values{"token": {key}, "client_address": {"192.0.2.10"}})
			if err == nil && !strings.Contains(string(body), `"active":true`) {
				err = errors.New("introspection answered inactive for a live API key")
			}
			return err
		}
	default:
		return func() error { _, err := b.post(b.tokenURL, b.opaque, ccForm); return err }
	}
}

// load runs do from n goroutines for d and gathers every latency.
func (b *bench) load(ctx context.Context, d time.Duration, n int, do func() error) benchResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu  sync.Mutex
		res benchResult
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range n {
		wg.Go(func() {
			var lat []time.Duration
			failed := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := do(); err != nil {
					failed++
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.latencies = append(res.latencies, lat...)
			res.errors += failed
			mu.Unlock()
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.requests = len(res.latencies)
	slices.Sort(res.latencies)
	return res
}

func roundMS(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}
