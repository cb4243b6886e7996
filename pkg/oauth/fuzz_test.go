package oauth

// The fuzz targets here post what the fuzzer makes up to a real token
// endpoint, on a real database, and check what it answers against RFC 6749
// and RFC 7523, decided independently of fosite. Their seeds (the f.Add
// calls and testdata/fuzz) run as ordinary tests in every `go test`.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/go-jose/go-jose/v4"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/roles"
	"github.com/latchkey/latchkey/pkg/seal"
)

// The fuzz node's clients, registered under fixed IDs so that seeds can
// name them.
const (
	fuzzBasic = "fuzz-basic" // client_secret_basic, client credentials
	fuzzPost  = "fuzz-post"  // client_secret_post, client credentials
	fuzzWeb   = "fuzz-web"   // client_secret_basic, code flow
	fuzzSPA   = "fuzz-spa"   // public, code flow
	fuzzJWT   = "fuzz-jwt"   // private_key_jwt with fuzzKeyID, client credentials
	fuzzKeyID = "fuzz-key"
)

// fuzzNode is one Latchkey node serving the token endpoint, with a client
// of every kind. A fuzz target starts it once, not per input, since each
// input runs many times; every fuzzing worker process starts its own.
type fuzzNode struct {
	issuer, tokenURL string
	http             *http.Client
	clients          map[string]*client.Client
	// secrets are the clients' secrets, by client ID.
	secrets map[string]string
	// key is fuzzJWT's private key, which signs its assertions.
	key *ecdsa.PrivateKey

	mu sync.Mutex
	// accepted holds the jti of every assertion that was given a token:
	// RFC 7523 §3 lets none of them be used again.
	accepted map[string]bool
}

// startFuzzNode starts a node as newFixture does; newFixture takes a
// *testing.T, which a fuzz target does not have before its inputs run.
func startFuzzNode(f *testing.F) *fuzzNode {
	f.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	store := pgtest.OpenWithin(f, pgtest.URL(f), 5*time.Second)
	listen, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.ListenForChanges(listen, logger, func() {}, nil, nil)
	}()
	f.Cleanup(func() { stop(); <-done })
	auditLog := audit.New(store, logger)
	box, err := seal.New([][]byte{testSecret})
	if err != nil {
		f.Fatal(err)
	}
	km := keys.NewManager(store, box, logger, auditLog)
	if err := km.Init(ctx); err != nil {
		f.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	p, err := New(Config{
		Issuer:                    issuer,
		Secrets:                   [][]byte{testSecret},
		AccessTokenLifespan:       15 * time.Minute,
		RefreshTokenLifespan:      24 * time.Hour,
		IDTokenLifespan:           time.Hour,
		AuthorizationCodeLifespan: 5 * time.Minute,
		EnforcePKCE:               true,
		AccessTokenSigningAlg:     jose.RS256,
	}, Deps{Store: store, Keys: km, Logger: logger, Audit: auditLog,
		Users: identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{}), Roles: roles.NewManager(store, auditLog)})
	if err != nil {
		f.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(discovery.TokenPath, p.Token)
	srv.Config.Handler = mux
	srv.Start()
	f.Cleanup(srv.Close)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: fuzzKeyID, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		f.Fatal(err)
	}
	n := &fuzzNode{
		issuer: issuer, tokenURL: issuer + discovery.TokenPath,
		http:    &http.Client{Timeout: 30 * time.Second},
		clients: map[string]*client.Client{}, secrets: map[string]string{},
		key: key, accepted: map[string]bool{},
	}
	clients := client.NewManager(store, auditLog, time.Hour)
	for _, c := range []client.Client{
		{ID: fuzzBasic, GrantTypes: []string{client.GrantClientCredentials}, Scope: "invoices.read invoices.write",
			Audience: []string{"https://api.example.com"}},
		{ID: fuzzPost, GrantTypes: []string{client.GrantClientCredentials}, Scope: "reports.read",
			TokenEndpointAuthMethod: client.AuthSecretPost},
		{ID: fuzzWeb, GrantTypes: []string{client.GrantAuthorizationCode, client.GrantRefreshToken},
			RedirectURIs: []string{"https://app.example.com/callback"}, Scope: "openid offline_access profile"},
		{ID: fuzzSPA, GrantTypes: []string{client.GrantAuthorizationCode}, TokenEndpointAuthMethod: client.AuthNone,
			RedirectURIs: []string{"http://127.0.0.1:5173/callback"}, Scope: "openid"},
		{ID: fuzzJWT, GrantTypes: []string{client.GrantClientCredentials}, Scope: "reports.read",
			TokenEndpointAuthMethod: client.AuthPrivateKeyJWT, TokenEndpointAuthSigningAlg: "ES256", JWKS: set},
	} {
		created, secret, err := clients.Create(ctx, c)
		if err != nil {
			f.Fatalf("register %s: %v", c.ID, err)
		}
		n.clients[c.ID], n.secrets[c.ID] = created, secret
	}
	return n
}

// tokenAnswer is what the token endpoint said.
type tokenAnswer struct {
	status int
	header http.Header
	raw    []byte
	// body is raw decoded, if it is a JSON object.
	body map[string]any
}

// post sends a request to the token endpoint. It returns false if the
// request could not be sent at all: Go's HTTP client refuses header values
// that no server could receive, such as ones holding a newline.
func (n *fuzzNode) post(t *testing.T, contentType, authorization, body string) (tokenAnswer, bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, n.tokenURL, strings.NewReader(body))
	if err != nil {
		return tokenAnswer{}, false
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := n.http.Do(req)
	if err != nil {
		var invalid bool
		for _, field := range []string{"Content-Type", "Authorization"} {
			invalid = invalid || strings.Contains(err.Error(), fmt.Sprintf("invalid header field value for %q", field))
		}
		if invalid {
			return tokenAnswer{}, false
		}
		t.Fatalf("POST %s: %v", n.tokenURL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	a := tokenAnswer{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &a.body)
	return a, true
}

// problem says what is wrong with an answer of the token endpoint, or
// returns "". Every answer must be a token or an RFC 6749 §5.2 error in
// JSON; never a server error except 503, for a database that cannot be
// reached, and so never a 500. A rate limit may also answer 429, with an
// error body like the others.
func (a tokenAnswer) problem() string {
	switch {
	case a.body == nil:
		return fmt.Sprintf("the token endpoint answered %d with a body that is not a JSON object: %q", a.status, a.raw)
	case a.status == http.StatusOK:
		if tok, _ := a.body["access_token"].(string); tok == "" || !strings.EqualFold(fmt.Sprint(a.body["token_type"]), "bearer") {
			return fmt.Sprintf("a 200 without a bearer access token: %s", a.raw)
		}
		// RFC 6749 §5.1: tokens must not be cached.
		if a.header.Get("Cache-Control") != "no-store" {
			return fmt.Sprintf("a token answer with Cache-Control %q, want no-store", a.header.Get("Cache-Control"))
		}
	case a.status >= 500 && a.status != http.StatusServiceUnavailable, a.status < 400:
		return fmt.Sprintf("the token endpoint answered %d: %s", a.status, a.raw)
	default:
		if code, _ := a.body["error"].(string); code == "" {
			return fmt.Sprintf("a %d answer without an error code: %s", a.status, a.raw)
		}
	}
	return ""
}

// fill replaces the placeholders a seed may hold with the node's secrets,
// which are made anew by every node: {basic-secret}, {post-secret} and
// {web-secret}, and {basic-credentials} and {web-credentials}, the value
// of an Authorization: Basic header for the client.
func (n *fuzzNode) fill(s string) string {
	basic := func(id string) string {
		return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(n.secrets[id])))
	}
	return strings.NewReplacer(
		"{basic-secret}", n.secrets[fuzzBasic],
		"{post-secret}", n.secrets[fuzzPost],
		"{web-secret}", n.secrets[fuzzWeb],
		"{basic-credentials}", basic(fuzzBasic),
		"{web-credentials}", basic(fuzzWeb),
	).Replace(s)
}

// authenticated reports which client a token request proves it is, by the
// client's registered method, reading the request as RFC 6749 §2.3.1 says:
// the Basic credentials, form-urlencoded, or else client_id and
// client_secret in the body. It returns "" for a request that proves
// nothing.
func (n *fuzzNode) authenticated(contentType, authorization, body string) string {
	r := httptest.NewRequest(http.MethodPost, n.tokenURL, strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	r.Header.Set("Authorization", authorization)
	_ = r.ParseMultipartForm(1 << 20) // as fosite reads the body
	method, id, secret := client.AuthSecretPost, r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if user, password, ok := r.BasicAuth(); ok {
		method = client.AuthSecretBasic
		id, _ = url.QueryUnescape(user)
		secret, _ = url.QueryUnescape(password)
	}
	c := n.clients[id]
	// A secret client may use either secret method unless it is strict
	// (client.Client.AuthenticatingWith).
	if c == nil || !c.HasSecret() || (c.StrictAuthMethod && c.TokenEndpointAuthMethod != method) ||
		n.secrets[id] == "" || secret != n.secrets[id] {
		return ""
	}
	return id
}

// FuzzTokenEndpoint posts arbitrary bodies, with arbitrary Content-Type and
// Authorization headers, to the token endpoint. Every answer must be a
// token or an RFC 6749 error (checkAnswer), and a token only for the
// client credentials grant of a client whose secret the request holds,
// presented either secret way (the registered one, for a strict client),
// with no scope it was not
// registered for: no request can hold a valid code, refresh token or
// signed assertion here.
func FuzzTokenEndpoint(f *testing.F) {
	const form = "application/x-www-form-urlencoded"
	for _, seed := range [][3]string{
		{form, "Basic {basic-credentials}", "grant_type=client_credentials"},
		{form, "Basic {basic-credentials}", "grant_type=client_credentials&scope=invoices.read"},
		{form, "Basic {basic-credentials}", "grant_type=client_credentials&scope=invoices"},
		{form, "Basic {basic-credentials}", "grant_type=client_credentials&scope=reports.read"},
		{form, "Basic {basic-credentials}", "grant_type=client_credentials&audience=https%3A%2F%2Fapi.example.com"},
		{form, "Basic {basic-credentials}", "grant_type=client_credentials&audience=https%3A%2F%2Fother.example.com"},
		{form, "Basic {basic-credentials}", "grant_type=password&username=ada&password=x"},
		{form, "Basic {basic-credentials}", "grant_type=client_credentials&grant_type=refresh_token"},
		{form, "Basic {web-credentials}", "grant_type=client_credentials"},
		{form, "Basic {web-credentials}", "grant_type=authorization_code&code=abc.def&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&code_verifier=x"},
		{form, "Basic {web-credentials}", "grant_type=refresh_token&refresh_token=ory_rt_abc.def"},
		{form, "", "grant_type=client_credentials&client_id=fuzz-post&client_secret={post-secret}"},
		{form, "", "grant_type=client_credentials&client_id=fuzz-basic&client_secret={basic-secret}"},
		{form, "", "grant_type=client_credentials&client_id=fuzz-post&client_secret="},
		{form, "", "grant_type=authorization_code&client_id=fuzz-spa&code=abc&code_verifier=x&redirect_uri=http%3A%2F%2F127.0.0.1%3A5173%2Fcallback"},
		{form, "", "grant_type=refresh_token&client_id=fuzz-spa&refresh_token=x"},
		{form, "Basic ZnV6ei1iYXNpYzp3cm9uZw==", "grant_type=client_credentials"},
		{form, "Basic ZnV6ei1iYXNpYzo=", "grant_type=client_credentials"},
		{form, "Basic Zm9vJXp6OmJhcg==", "grant_type=client_credentials"},
		{form, "Basic !!!", "grant_type=client_credentials"},
		{form, "Bearer abc", "grant_type=client_credentials"},
		{form, "", "grant_type=client_credentials&client_assertion_type=" + url.QueryEscape(jwtBearer) + "&client_assertion=a.b.c"},
		{form, "", "grant_type=client_credentials&client_assertion_type=urn%3Aother&client_assertion=x"},
		{form, "", "grant_type=client_credentials&client_id=%00&client_secret=x"},
		{form, "", "grant_type=client_credentials&client_id=%FF&client_secret=x"},
		{form, "", "grant_type=%zz"},
		{form, "", ""},
		{"application/json", "Basic {basic-credentials}", `{"grant_type":"client_credentials"}`},
		{"multipart/form-data; boundary=b", "Basic {basic-credentials}",
			"--b\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--b--\r\n"},
		{"multipart/form-data", "Basic {basic-credentials}", "grant_type=client_credentials"},
		{"", "Basic {basic-credentials}", "grant_type=client_credentials"},
		{"text/plain; charset=\x00", "", "grant_type=client_credentials"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	n := startFuzzNode(f)
	f.Fuzz(func(t *testing.T, contentType, authorization, body string) {
		authorization, body = n.fill(authorization), n.fill(body)
		a, sent := n.post(t, contentType, authorization, body)
		if !sent {
			return
		}
		if problem := a.problem(); problem != "" {
			t.Fatalf("Content-Type %q, Authorization %q, body %q: %s", contentType, authorization, body, problem)
		}
		if a.status != http.StatusOK {
			return
		}
		id := n.authenticated(contentType, authorization, body)
		if id == "" {
			t.Fatalf("a token for a request that proves no client's identity: %q %q %q: %v", contentType, authorization, body, a.body)
		}
		c := n.clients[id]
		r := httptest.NewRequest(http.MethodPost, n.tokenURL, strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		_ = r.ParseMultipartForm(1 << 20)
		if r.PostForm.Get("grant_type") != client.GrantClientCredentials || !c.CanUse(client.GrantClientCredentials) {
			t.Fatalf("%s got a token without the client credentials grant: %q: %v", id, body, a.body)
		}
		scope, _ := a.body["scope"].(string)
		for _, s := range strings.Fields(scope) {
			if !slices.Contains(c.Scopes(), s) {
				t.Fatalf("%s, registered for %q, was granted %q", id, c.Scope, s)
			}
		}
		if a.body["refresh_token"] != nil || a.body["id_token"] != nil {
			t.Fatalf("a client credentials grant gave more than an access token: %v", a.body)
		}
	})
}

// assertionForm is a client credentials request that authenticates with
// the assertion, naming the client too if clientID is not empty.
func assertionForm(assertion, clientID string) string {
	form := url.Values{
		"grant_type":            {client.GrantClientCredentials},
		"client_assertion_type": {jwtBearer},
		"client_assertion":      {assertion},
	}
	if clientID != "" {
		form.Set("client_id", clientID)
	}
	return form.Encode()
}

// sendAssertion presents an assertion and checks the answer (problem): a
// token only for an assertion that is valid (assertionProblem) and whose
// jti has not been seen before, and never a second token for the same
// assertion. It returns the status, and what is wrong, if anything.
func (n *fuzzNode) sendAssertion(t *testing.T, assertion, clientID string) (status int, problem string) {
	t.Helper()
	body := assertionForm(assertion, clientID)
	a, _ := n.post(t, "application/x-www-form-urlencoded", "", body)
	if problem := a.problem(); problem != "" || a.status != http.StatusOK {
		return a.status, problem
	}
	jti, problem := n.assertionProblem(assertion, clientID)
	if problem != "" {
		return a.status, "it was given a token, but " + problem
	}
	n.mu.Lock()
	replayed := n.accepted[jti]
	n.accepted[jti] = true
	n.mu.Unlock()
	if replayed {
		return a.status, fmt.Sprintf("it was given a token, but an assertion with jti %q already was", jti)
	}
	if again, _ := n.post(t, "application/x-www-form-urlencoded", "", body); again.status == http.StatusOK {
		return a.status, "it was given a token twice"
	}
	return a.status, ""
}

// assertionProblem says why an assertion does not authenticate fuzzJWT,
// by RFC 7523 §3, or returns "" with the assertion's jti if it does: it is
// a JWS signed with ES256, the algorithm the client registered, by the
// client's key; its claims name the client as iss and sub, the issuer or
// the token endpoint as aud, and a jti; it has not expired, does not live
// longer than maxAssertionLifetime (with its leeway), and is not used
// before its iat or nbf. A client_id in the request must name the client
// too. Whether the jti was used before is left to the caller.
//
// fosite reads assertions with go-jose v3, which takes more ways of writing
// the same signed content than RFC 7519's compact serialization: the JWS
// JSON serialization, whitespace anywhere, and base64url with padding. So
// does this check, except padding, which it strips: each way carries the
// same jti, which is what stops a replay.
func (n *fuzzNode) assertionProblem(assertion, clientID string) (jti, problem string) {
	parse := jose.ParseSignedJSON
	if !strings.HasPrefix(strings.TrimSpace(assertion), "{") {
		parse = jose.ParseSignedCompact
		parts := strings.Split(strings.Join(strings.FieldsFunc(assertion, unicode.IsSpace), ""), ".")
		for i := range parts {
			parts[i] = strings.TrimRight(parts[i], "=")
		}
		assertion = strings.Join(parts, ".")
	}
	jws, err := parse(assertion, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", "it is not a JWS signed with ES256: " + err.Error()
	}
	if len(jws.Signatures) != 1 || (jws.Signatures[0].Header.KeyID != "" && jws.Signatures[0].Header.KeyID != fuzzKeyID) {
		return "", "it does not have one signature by the client's key"
	}
	payload, err := jws.Verify(&n.key.PublicKey)
	if err != nil {
		return "", "its signature does not verify: " + err.Error()
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return "", "its claims are not a JSON object"
	}
	now := float64(time.Now().Unix())
	number := func(name string) (float64, bool) { v, ok := claims[name].(float64); return v, ok }
	aud := claims["aud"]
	if list, ok := aud.([]any); ok {
		aud = nil
		for _, a := range list {
			if a == n.tokenURL || a == n.issuer {
				aud = a
			}
		}
	}
	jti, _ = claims["jti"].(string)
	exp, hasExp := number("exp")
	iat, hasIat := number("iat")
	nbf, hasNbf := number("nbf")
	switch {
	case claims["iss"] != fuzzJWT || claims["sub"] != fuzzJWT:
		return "", fmt.Sprintf("its iss %v and sub %v are not both %s", claims["iss"], claims["sub"], fuzzJWT)
	case clientID != "" && clientID != fuzzJWT:
		return "", "the request's client_id is " + clientID
	case aud != n.tokenURL && aud != n.issuer:
		return "", fmt.Sprintf("its aud %v is neither %s nor %s", claims["aud"], n.issuer, n.tokenURL)
	case jti == "":
		return "", "it has no jti"
	case !hasExp || exp < now-1:
		return "", fmt.Sprintf("it expired (exp %v)", claims["exp"])
	case exp > now+1+(maxAssertionLifetime+assertionLeeway).Seconds(), hasIat && exp-iat > maxAssertionLifetime.Seconds():
		return "", fmt.Sprintf("it lives longer than %v (iat %v, exp %v)", maxAssertionLifetime, claims["iat"], claims["exp"])
	case hasIat && iat > now+1, hasNbf && nbf > now+1:
		return "", fmt.Sprintf("it is not valid yet (iat %v, nbf %v)", claims["iat"], claims["nbf"])
	}
	return jti, ""
}

// sign returns a JWS compact serialization of the header and claims,
// exactly as given, signed with ES256 by fuzzJWT's key.
func (n *fuzzNode) sign(header, claims string) string {
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, n.key, digest[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// The assertion a client would send: what FuzzSignedClientAssertion
// mutates, and what the {jwt} placeholder of FuzzClientAssertion stands for.
const (
	validHeader = `{"alg":"ES256","kid":"{kid}","typ":"JWT"}`
	validClaims = `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"{jti}","iat":{now},"exp":{exp}}`
)

// fillClaims replaces the placeholders of a header or claims template:
// {kid}, {client_id}, {aud} (the token endpoint), {issuer}, {jti} (new for
// every input), {now} and {exp} (a minute from now), in seconds.
func (n *fuzzNode) fillClaims(s, jti string) string {
	now := time.Now().Unix()
	return strings.NewReplacer(
		"{kid}", fuzzKeyID,
		"{client_id}", fuzzJWT,
		"{aud}", n.tokenURL,
		"{issuer}", n.issuer,
		"{jti}", jti,
		"{now}", strconv.FormatInt(now, 10),
		"{exp}", strconv.FormatInt(now+60, 10),
	).Replace(s)
}

// FuzzClientAssertion presents arbitrary client_assertion values, with an
// arbitrary client_id or none, to the token endpoint. A token may be given
// only for a valid, fresh assertion (sendAssertion), and the valid
// assertion itself must be given one. In the assertion, {jwt} stands for a
// valid assertion made for the input, and {header}, {payload} and
// {signature} for its three parts, so that the fuzzer can take a valid
// assertion apart and put it together in other ways.
func FuzzClientAssertion(f *testing.F) {
	for _, seed := range [][2]string{
		{"{jwt}", ""},
		{"{jwt}", fuzzJWT},
		{"{jwt}", fuzzBasic},
		{"{jwt}", "someone-else"},
		{"{jwt}.", ""},
		{" {jwt} ", ""},
		{"{header}.{payload}.", ""},
		{"{header}.{payload}.{signature}==", ""},
		{"{header}.{payload}.{signature}.{signature}", ""},
		{"{header}. {payload}.{signature}", ""},
		{"{header}.{payload}", ""},
		{`{"protected":"{header}","payload":"{payload}","signature":"{signature}"}`, ""},
		{`{"payload":"{payload}","signatures":[{"protected":"{header}","signature":"{signature}"},{"protected":"{header}","signature":"{signature}"}]}`, ""},
		{"eyJhbGciOiJub25lIn0.{payload}.", ""},
		{"eyJhbGciOiJIUzI1NiJ9.{payload}.{signature}", ""},
		{"eyJhbGciOiJFUzI1NiIsImtpZCI6Im90aGVyIn0.{payload}.{signature}", ""},
		{"a.b.c", ""},
		{"...", ""},
		{"", ""},
	} {
		f.Add(seed[0], seed[1])
	}
	n := startFuzzNode(f)
	f.Fuzz(func(t *testing.T, assertion, clientID string) {
		valid := n.sign(n.fillClaims(validHeader, ""), n.fillClaims(validClaims, rand.Text()))
		parts := strings.Split(valid, ".")
		sent := strings.NewReplacer("{jwt}", valid, "{header}", parts[0], "{payload}", parts[1], "{signature}", parts[2]).Replace(assertion)
		status, problem := n.sendAssertion(t, sent, clientID)
		if problem != "" {
			t.Fatalf("client_assertion %q, client_id %q: %s", sent, clientID, problem)
		}
		if assertion == "{jwt}" && (clientID == "" || clientID == fuzzJWT) && status != http.StatusOK && status != http.StatusTooManyRequests {
			t.Fatalf("a valid assertion for %s was refused with %d", fuzzJWT, status)
		}
	})
}

// FuzzSignedClientAssertion presents assertions whose header and claims
// the fuzzer writes (templates, see fillClaims) and which are then really
// signed by the client's key, so that the fuzzer explores what the token
// endpoint makes of claims it can trust the signature of. tamper is XORed
// into the signature. A token may be given only for a valid, fresh
// assertion (sendAssertion); the untampered valid assertion must be given
// one.
func FuzzSignedClientAssertion(f *testing.F) {
	for _, seed := range []struct {
		header, claims string
		tamper         []byte
	}{
		{validHeader, validClaims, nil},
		{validHeader, validClaims, []byte{0, 0, 0}},
		{validHeader, validClaims, []byte{1}},
		{`{"alg":"ES256","typ":"JWT"}`, validClaims, nil},
		{`{"alg":"ES256","kid":"other"}`, validClaims, nil},
		{`{"alg":"ES256","kid":7}`, validClaims, nil},
		{`{"alg":"RS256","kid":"{kid}"}`, validClaims, nil},
		{`{"alg":"none"}`, validClaims, nil},
		{`{"alg":"ES256","crit":["exp"],"exp":1}`, validClaims, nil},
		{`{"alg":"ES256","alg":"HS256"}`, validClaims, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":["https://elsewhere.example","{aud}"],"jti":"{jti}","exp":{exp}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{issuer}","jti":"{jti}","exp":{exp}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}/","jti":"{jti}","exp":{exp}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"{jti}"}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"{jti}","exp":"{exp}"}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"{jti}","exp":{exp}.5}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"{jti}","exp":9224318015999}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"{jti}","exp":{exp},"iat":{now},"nbf":{now}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","exp":{exp}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"","exp":{exp}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"reused","exp":{exp}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","aud":"{aud}","jti":"\u0000","exp":{exp}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"fuzz-basic","aud":"{aud}","jti":"{jti}","exp":{exp}}`, nil},
		{validHeader, `{"iss":"fuzz-basic","sub":"{client_id}","aud":"{aud}","jti":"{jti}","exp":{exp}}`, nil},
		{validHeader, `{"iss":"{client_id}","sub":"{client_id}","sub":"fuzz-basic","aud":"{aud}","jti":"{jti}","exp":{exp}}`, nil},
		{validHeader, `[]`, nil},
		{validHeader, `not json`, nil},
	} {
		f.Add(seed.header, seed.claims, seed.tamper)
	}
	n := startFuzzNode(f)
	f.Fuzz(func(t *testing.T, header, claims string, tamper []byte) {
		jti := rand.Text()
		filledHeader, filled := n.fillClaims(header, jti), n.fillClaims(claims, jti)
		assertion := n.sign(filledHeader, filled)
		untampered := !slices.ContainsFunc(tamper, func(b byte) bool { return b != 0 })
		if !untampered {
			dot := strings.LastIndexByte(assertion, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(assertion[dot+1:])
			for i, b := range tamper {
				sig[i%len(sig)] ^= b
			}
			assertion = assertion[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
		}
		status, problem := n.sendAssertion(t, assertion, "")
		if problem != "" {
			t.Fatalf("header %s, claims %s, tamper %x: %s", filledHeader, filled, tamper, problem)
		}
		if untampered && header == validHeader && claims == validClaims && status != http.StatusOK && status != http.StatusTooManyRequests {
			t.Fatalf("a valid assertion for %s was refused with %d", fuzzJWT, status)
		}
	})
}
