package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
)

// resourceServer is an API that accepts Latchkey's access tokens, and so
// API keys, as a real one does: it takes the bearer token its caller
// sends and asks the introspection endpoint about it, authenticating as
// its own client with HTTP Basic as golang.org/x/oauth2 does
// (AuthStyleInHeader). It tells Latchkey the address its caller connects
// from (client_address), for keys limited to some addresses.
type resourceServer struct {
	*httptest.Server
	id, secret string
	// introspect is the introspection endpoint it asks.
	mu         sync.Mutex
	introspect string
}

func newResourceServer(t *testing.T, n *node, cr credentials) *resourceServer {
	t.Helper()
	rs := &resourceServer{id: cr.id, secret: cr.secret, introspect: n.issuer + "/oauth2/introspect"}
	rs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		form := url.Values{"token": {token}, "client_address": {host}}
		rs.mu.Lock()
		endpoint := rs.introspect
		rs.mu.Unlock()
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(rs.id), url.QueryEscape(rs.secret))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var got map[string]any
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&got) != nil {
			http.Error(w, fmt.Sprint("introspection failed: ", resp.StatusCode), http.StatusBadGateway)
			return
		}
		if got["active"] != true || got["token_type"] != "Bearer" {
			http.Error(w, "inactive", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(got)
	}))
	t.Cleanup(rs.Close)
	return rs
}

// call calls the resource server with key from the loopback address from
// ("" for the default), and returns its status and what introspection
// said.
func (rs *resourceServer) call(t *testing.T, key, from string) (int, map[string]any) {
	t.Helper()
	dialer := &net.Dialer{}
	if from != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, rs.URL, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if json.Unmarshal(raw, &body) != nil {
		body = map[string]any{"error": strings.TrimSpace(string(raw))}
	}
	return resp.StatusCode, body
}

// createKey makes an API key for the client through the admin API and
// returns the answer, the key in it and its ID.
func (a *automation) createKey(t *testing.T, clientID string, req map[string]any) (answer, string, string) {
	t.Helper()
	ans := a.call(http.MethodPost, "/admin/clients/"+clientID+"/api-keys", req).must(t, http.StatusCreated)
	key, _ := ans.body["key"].(string)
	id, _ := ans.body["id"].(string)
	return ans, key, id
}

// query reads one value from the node's database.
func (n *node) query(t *testing.T, dest any, sql string, args ...any) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), n.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(dest); err != nil {
		t.Fatal(err)
	}
}

// An admin makes a key for a service; a resource server that knows
// nothing of API keys accepts it by introspection on one node, and stops
// accepting it within a second of its revocation on another node.
func TestAnAPIKeyWorksAtAResourceServerUntilRevokedOnAnotherNode(t *testing.T) {
	t.Parallel()
	a := startNode(t)
	b := startNode(t, "LATCHKEY_DATABASE_URL", a.dbURL)
	svc := a.service(t, func(c *client.Client) { c.Scope = "reports.read reports.write" })
	rs := newResourceServer(t, a, a.service(t))
	adm := a.automation(t, client.AdminScope)

	created, key, id := adm.createKey(t, svc.id, map[string]any{"name": "nightly export", "scope": "reports.read", "audience": []string{rs.id}})
	if !apikey.Wellformed(key) || !strings.HasPrefix(key, "lk_ak_") || len(key) != 42 {
		t.Fatalf("the new key %q is not lk_ak_ and 36 base62 characters with a good checksum", key)
	}
	if loc := created.header.Get("Location"); loc != "/admin/clients/"+svc.id+"/api-keys/"+id {
		t.Errorf("Location %q", loc)
	}

	status, got := rs.call(t, key, "")
	if status != http.StatusOK {
		t.Fatalf("the resource server refused a fresh key: %d", status)
	}
	for member, want := range map[string]any{"active": true, "scope": "reports.read", "sub": svc.id, "client_id": svc.id,
		"token_type": "Bearer", "key_id": id} {
		if got[member] != want {
			t.Errorf("introspection says %s=%v, want %v (%v)", member, got[member], want, got)
		}
	}
	if _, ok := got["iat"].(float64); !ok {
		t.Errorf("introspection has no iat: %v", got)
	}
	if _, ok := got["exp"]; ok {
		t.Errorf("a key without an expiry has exp: %v", got)
	}

	// The key is shown once: lists never hold it, and the database holds
	// only its digest.
	list := adm.call(http.MethodGet, "/admin/clients/"+svc.id+"/api-keys", nil).must(t, http.StatusOK)
	if strings.Contains(list.raw, key) || strings.Contains(list.raw, key[10:]) || len(list.items()) != 1 {
		t.Fatalf("the list shows the key or not one item: %s", list.raw)
	}
	if item := list.items()[0]; item["prefix"] != key[:10] || item["name"] != "nightly export" || item["last_used_at"] == nil || item["last_used_from"] != "127.0.0.1" {
		t.Errorf("the listed key: %v; want its prefix, name and last use from 127.0.0.1", item)
	}
	var rows int
	digest := sha256.Sum256([]byte(key))
	a.query(t, &rows, `SELECT count(*) FROM api_keys WHERE digest = $1`, digest[:])
	var leaks bool
	a.query(t, &leaks, `SELECT EXISTS (SELECT 1 FROM api_keys k WHERE row_to_json(k)::text LIKE '%' || $1 || '%')`, key[10:])
	if rows != 1 || leaks {
		t.Fatalf("the database holds %d rows with the key's digest (want 1), and the key itself: %v", rows, leaks)
	}

	// Revoked on B, refused by the resource server introspecting on A
	// within a second: no node caches keys.
	bAdm := b.automation(t, client.AdminScope)
	bAdm.call(http.MethodDelete, "/admin/clients/"+svc.id+"/api-keys/"+id, nil).must(t, http.StatusNoContent)
	revoked := time.Now()
	for {
		if status, _ := rs.call(t, key, ""); status == http.StatusUnauthorized {
			break
		}
		if time.Since(revoked) > time.Second {
			t.Fatal("a second after revocation on B, the key still works through A")
		}
		time.Sleep(20 * time.Millisecond)
	}
	bAdm.call(http.MethodDelete, "/admin/clients/"+svc.id+"/api-keys/"+id, nil).problem(t, http.StatusNotFound, "")
}

// The owning client revokes its own key at the revocation endpoint (RFC
// 7009), on another node; another client may not.
func TestAnAPIKeyIsRevokedByItsOwnerAtTheRevocationEndpoint(t *testing.T) {
	t.Parallel()
	a := startNode(t)
	b := startNode(t, "LATCHKEY_DATABASE_URL", a.dbURL)
	svc := a.service(t)
	other := a.service(t)
	rs := a.service(t, introspectAnyToken)
	adm := a.automation(t, client.AdminScope)
	_, key, _ := adm.createKey(t, svc.id, map[string]any{"name": "ci", "scope": "reports.read"})

	status, body := doJSON(t, other.form(b.issuer+"/oauth2/revoke", url.Values{"token": {key}}))
	if status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
		t.Fatalf("another client revoking the key: %d %v, want 400 unauthorized_client", status, body)
	}
	if got := rs.introspect(t, a.issuer, key); got["active"] != true {
		t.Fatalf("another client's attempt revoked the key: %v", got)
	}
	if status := svc.revoke(t, b.issuer, key); status != http.StatusOK {
		t.Fatalf("the owner revoking its key on B: %d", status)
	}
	if got := rs.introspect(t, a.issuer, key); got["active"] != false {
		t.Fatalf("the key revoked on B is active on A: %v", got)
	}
	if status := svc.revoke(t, b.issuer, key); status != http.StatusOK {
		t.Fatalf("revoking it again: %d, want 200 (RFC 7009 §2.2)", status)
	}
	var events int
	a.query(t, &events, `SELECT count(*) FROM audit_events WHERE action = $1 AND actor = $2`, audit.APIKeyRevoked, audit.Client(svc.id))
	if events != 1 {
		t.Fatalf("%d api_key.revoked events by the owner, want 1", events)
	}
}

// Every key that must not work answers {"active": false}, and nothing
// more, to a resource server allowed to introspect anything.
func TestAPIKeysThatMustNotWorkAreInactive(t *testing.T) {
	t.Parallel()
	n := startNode(t, "LATCHKEY_PERSONAL_API_KEY_SCOPES", "reports.read")
	svc := n.service(t)
	stranger := n.service(t)
	rs := n.service(t, introspectAnyToken)
	adm := n.automation(t, client.AdminScope)
	_, good, _ := adm.createKey(t, svc.id, map[string]any{"name": "good", "scope": "reports.read"})
	_, expiring, expiringID := adm.createKey(t, svc.id, map[string]any{"name": "expiring", "scope": "reports.read",
		"expires_at": time.Now().Add(time.Hour).Format(time.RFC3339)})
	n.exec(t, `UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, expiringID)
	_, limited, _ := adm.createKey(t, svc.id, map[string]any{"name": "office", "scope": "reports.read", "allowed_addresses": []string{"203.0.113.0/24"}})

	// A personal key of a user who is then disabled.
	u := n.user(t, "ada@example.com")
	keys := apikey.New(n.store, n.clients, audit.New(n.store, quietLogger()), quietLogger(), apikey.Config{PersonalScopes: []string{"reports.read"}})
	_, personal, err := keys.Create(t.Context(), apikey.User(u.ID), apikey.Request{Name: "laptop", Scope: "reports.read"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.introspect(t, n.issuer, personal); got["active"] != true || got["sub"] != u.ID || got["client_id"] != apikey.PersonalClientID {
		t.Fatalf("the personal key before its user is disabled: %v", got)
	}
	if err := n.users.Disable(t.Context(), u.ID); err != nil {
		t.Fatal(err)
	}

	// A checksum one character off: refused before any lookup.
	last := good[len(good)-1]
	tampered := good[:len(good)-1] + map[bool]string{true: "A", false: "B"}[last != 'A']

	for _, tt := range []struct {
		name, key string
		form      url.Values
		as        credentials
	}{
		{"a key whose checksum is wrong", tampered, nil, rs},
		{"a key cut short", good[:30], nil, rs},
		{"an expired key", expiring, nil, rs},
		{"a key of a disabled user", personal, nil, rs},
		{"a key from an address it does not allow", limited, url.Values{"client_address": {"198.51.100.7"}}, rs},
		{"a key with allowed addresses, and no address given", limited, nil, rs},
		{"a key asked about by a client neither its owner nor its audience", good, nil, stranger},
	} {
		form := url.Values{"token": {tt.key}}
		for k, v := range tt.form {
			form[k] = v
		}
		status, got := doJSON(t, tt.as.form(n.issuer+"/oauth2/introspect", form))
		if status != http.StatusOK || len(got) != 1 || got["active"] != false {
			t.Errorf("%s: %d %v, want {\"active\": false}", tt.name, status, got)
		}
	}
	if got := rs.introspect(t, n.issuer, good); got["active"] != true {
		t.Fatalf("the good key: %v", got)
	}
	status, got := doJSON(t, rs.form(n.issuer+"/oauth2/introspect", url.Values{"token": {limited}, "client_address": {"203.0.113.9"}}))
	if status != http.StatusOK || got["active"] != true {
		t.Fatalf("the limited key from an address it allows: %d %v", status, got)
	}
}

// Checking a key's format reads nothing: a mistyped or forged key is
// refused by a Manager that has no store at all.
func TestAKeyWithABadChecksumIsRefusedWithoutTheDatabase(t *testing.T) {
	t.Parallel()
	keys := apikey.New(nil, nil, nil, quietLogger(), apikey.Config{})
	for _, k := range []string{"lk_ak_" + strings.Repeat("a", 36), "lk_ak_short", "lk_ak_" + strings.Repeat("!", 36)} {
		if _, err := keys.Check(context.Background(), k, netip.Addr{}); err != apikey.ErrInactive {
			t.Errorf("%q: %v, want ErrInactive", k, err)
		}
	}
}

// What an admin may not make: a key beyond the client's scopes or with an
// admin scope (422 naming the field), more keys than the limit (409), or
// any key with a read-only admin token (403).
func TestAdminAPIKeyCreationIsBounded(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	svc := n.service(t)
	adm := n.automation(t, client.AdminScope)
	reader := n.automation(t, client.AdminReadScope)
	path := "/admin/clients/" + svc.id + "/api-keys"

	adm.call(http.MethodPost, path, map[string]any{"name": "wide", "scope": "reports.read billing.write"}).problem(t, http.StatusUnprocessableEntity, "scope")
	adm.call(http.MethodPost, path, map[string]any{"name": "admin", "scope": client.AdminScope}).problem(t, http.StatusUnprocessableEntity, "scope")
	adm.call(http.MethodPost, path, map[string]any{"name": "", "scope": "reports.read"}).problem(t, http.StatusUnprocessableEntity, "name")
	adm.call(http.MethodPost, path, map[string]any{"name": "x", "scope": "reports.read", "allowed_addresses": []string{"office"}}).problem(t, http.StatusUnprocessableEntity, "allowed_addresses")
	adm.call(http.MethodPost, path, map[string]any{"name": "x", "scope": "reports.read", "key": "lk_ak_mine"}).problem(t, http.StatusBadRequest, "key")
	adm.call(http.MethodPost, "/admin/clients/nobody/api-keys", map[string]any{"name": "x", "scope": "reports.read"}).problem(t, http.StatusNotFound, "")
	reader.call(http.MethodPost, path, map[string]any{"name": "x", "scope": "reports.read"}).problem(t, http.StatusForbidden, "")

	// Parallel creations cannot exceed the limit.
	var wg sync.WaitGroup
	statuses := make(chan int, apikey.MaxPerOwner+5)
	for i := range apikey.MaxPerOwner + 5 {
		wg.Go(func() {
			statuses <- n.adminCall(t, adm.token, http.MethodPost, path, map[string]any{"name": fmt.Sprint("key ", i), "scope": "reports.read"}).status
		})
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusCreated] != apikey.MaxPerOwner || count[http.StatusConflict] != 5 {
		t.Fatalf("%d parallel creations: %v, want %d created and 5 conflicts", apikey.MaxPerOwner+5, count, apikey.MaxPerOwner)
	}
	adm.call(http.MethodPost, path, map[string]any{"name": "one more", "scope": "reports.read"}).problem(t, http.StatusConflict, "")
	if got := len(reader.call(http.MethodGet, path, nil).must(t, http.StatusOK).items()); got != apikey.MaxPerOwner {
		t.Fatalf("the read-only admin lists %d keys, want %d", got, apikey.MaxPerOwner)
	}
}

// A burst of uses of one key from several addresses, in parallel, records
// one api_key.used_from_new_address event per address, and writes the
// key's row about once per address, not once per request.
func TestAKeyUsedFromNewAddressesIsAuditedOncePerAddressWithoutAWriteStorm(t *testing.T) {
	t.Parallel()
	// The burst is one resource server's, 200 requests at once: its
	// per-client rate limit, and the failure limit that reserves an
	// attempt per authentication in flight, would refuse most of it.
	n := startNode(t, "LATCHKEY_CLIENT_RATE_LIMIT", "0", "LATCHKEY_CLIENT_AUTH_FAILURE_LIMIT", "0")
	svc := n.service(t)
	rs := newResourceServer(t, n, n.service(t, introspectAnyToken))
	adm := n.automation(t, client.AdminScope)
	_, key, id := adm.createKey(t, svc.id, map[string]any{"name": "fleet", "scope": "reports.read"})
	n.exec(t, `CREATE TABLE key_writes (at timestamptz DEFAULT clock_timestamp());
		CREATE FUNCTION count_key_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO key_writes DEFAULT VALUES; RETURN NEW; END $$;
		CREATE TRIGGER count_key_writes AFTER UPDATE ON api_keys FOR EACH ROW EXECUTE FUNCTION count_key_write();`)

	addresses := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if status, body := rs.call(t, key, addresses[i%len(addresses)]); status != http.StatusOK {
				t.Errorf("use %d: %d %v", i, status, body)
			}
		})
	}
	wg.Wait()

	for _, addr := range addresses {
		var events int
		n.query(t, &events, `SELECT count(*) FROM audit_events WHERE action = $1 AND details->>'address' = $2 AND details->>'key' = $3`,
			audit.APIKeyUsedFromNewAddress, addr, id)
		if events != 1 {
			t.Errorf("%d used_from_new_address events for %s, want 1", events, addr)
		}
	}
	var writes int
	n.query(t, &writes, `SELECT count(*) FROM key_writes`)
	if writes > len(addresses)+1 {
		t.Fatalf("200 uses from %d addresses wrote the key %d times, want at most %d", len(addresses), writes, len(addresses)+1)
	}
}

// An operator makes a key with the CLI, on the database a node serves;
// a resource server accepts it; the CLI lists it without the key and
// revokes it, and it stops working at once.
func TestAPIKeysCLICreatesListsAndRevokesAKey(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	svc := n.service(t)
	rs := newResourceServer(t, n, n.service(t, introspectAnyToken))
	cli := func(args ...string) (int, string, string) {
		return runCLI(t.Context(), vars{"LATCHKEY_DATABASE_URL": n.dbURL}, append([]string{"api-keys"}, args...)...)
	}

	code, stdout, stderr := cli("create", "--client", svc.id, "--name", "deploy bot", "--scope", "reports.read", "--expires-in", "24h", "--output", "json")
	if code != 0 || !strings.Contains(stderr, "cannot be shown again") {
		t.Fatalf("create: exit %d, stderr %q", code, stderr)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(stdout), &created); err != nil {
		t.Fatal(err)
	}
	key, _ := created["key"].(string)
	id, _ := created["id"].(string)
	if status, got := rs.call(t, key, ""); status != http.StatusOK || got["exp"] == nil {
		t.Fatalf("the resource server with the CLI's key: %d %v, want accepted with an exp", status, got)
	}

	code, stdout, _ = cli("list", "--client", svc.id)
	if code != 0 || !strings.Contains(stdout, id) || !strings.Contains(stdout, "deploy bot") || strings.Contains(stdout, key[10:]) {
		t.Fatalf("list: exit %d\n%s\nwant the key's ID and name, never the key", code, stdout)
	}
	if code, _, stderr := cli("create", "--client", svc.id, "--name", "wide", "--scope", "payroll.write"); code != 1 || !strings.Contains(stderr, "payroll.write") {
		t.Fatalf("a key beyond the client's scopes: exit %d, stderr %q; want exit 1 naming the scope", code, stderr)
	}
	if code, _, stderr := cli("revoke", id, "--client", svc.id); code != 0 {
		t.Fatalf("revoke: exit %d, stderr %q", code, stderr)
	}
	if status, _ := rs.call(t, key, ""); status != http.StatusUnauthorized {
		t.Fatalf("the revoked key: %d, want refused", status)
	}
	if code, _, _ := cli("revoke", id, "--client", svc.id); code != 1 {
		t.Fatalf("revoking it again: exit %d, want 1", code)
	}
}

// A leaked key used from a great many addresses records only its cap of
// them: a burst from 300 loopback addresses, in parallel, against a
// manager capped at 5, leaves 5 address rows, 5
// api_key.used_from_new_address events and one api_key.addresses_capped,
// and every use still works. Uses after the cap write nothing new.
func TestAKeyRecordsAtMostItsCapOfAddressesAndSaysSoOnce(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	svc := n.service(t)
	const capped = 5
	keys := apikey.New(n.store, n.clients, audit.New(n.store, quietLogger()), quietLogger(), apikey.Config{MaxAddresses: capped})
	k, key, err := keys.Create(t.Context(), apikey.Client(svc.id), apikey.Request{Name: "leaked", Scope: "reports.read"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			from := netip.AddrFrom4([4]byte{127, 0, byte(1 + i/250), byte(1 + i%250)})
			if _, err := keys.Check(t.Context(), key, from); err != nil {
				t.Errorf("use %d from %s: %v", i, from, err)
			}
		})
	}
	wg.Wait()

	var rows, fresh, notes int
	n.query(t, &rows, `SELECT count(*) FROM api_key_addresses WHERE key_id = $1`, k.ID)
	n.query(t, &fresh, `SELECT count(*) FROM audit_events WHERE action = $1 AND details->>'key' = $2`, audit.APIKeyUsedFromNewAddress, k.ID)
	n.query(t, &notes, `SELECT count(*) FROM audit_events WHERE action = $1 AND details->>'key' = $2`, audit.APIKeyAddressesCapped, k.ID)
	if rows != capped || fresh != capped || notes != 1 {
		t.Fatalf("300 addresses recorded %d rows, %d new-address events and %d capped notes; want %d, %d and 1", rows, fresh, notes, capped, capped)
	}
	var events int
	n.query(t, &events, `SELECT count(*) FROM audit_events`)
	if _, err := keys.Check(t.Context(), key, netip.MustParseAddr("127.0.9.9")); err != nil {
		t.Fatalf("a use from yet another address after the cap: %v", err)
	}
	var after int
	n.query(t, &after, `SELECT count(*) FROM audit_events`)
	if after != events {
		t.Fatalf("a use from a new address after the cap wrote %d audit events", after-events)
	}
}
