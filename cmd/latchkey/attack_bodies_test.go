package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/pkg/client"
)

// This file attacks the node with request bodies it should not take:
// multipart uploads that net/http spools to disk, bodies too large to
// hold, and bodies of other media types.

// spoolSize is the size of the file part of an upload: more than net/http
// keeps in memory when a handler reads a multipart form (32 MB for
// r.FormValue, 1 MB for fosite's ParseMultipartForm), so that a server
// that parses the upload writes it to a temporary file.
const spoolSize = 33 << 20

// upload is a multipart/form-data body with fields and a file part of
// size bytes of filler, made as it is sent rather than held in memory. It
// returns the body's Content-Type and length.
func upload(t *testing.T, fields url.Values, size int64) (io.Reader, string, int64) {
	t.Helper()
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for name, values := range fields {
		for _, v := range values {
			if err := mw.WriteField(name, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := mw.CreateFormFile("attachment", "big.bin"); err != nil {
		t.Fatal(err)
	}
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	body := io.MultiReader(&head, io.LimitReader(filler{}, size), strings.NewReader(tail))
	return body, mw.FormDataContentType(), int64(head.Len()) + size + int64(len(tail))
}

// filler reads as an endless run of x.
type filler struct{}

func (filler) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// sendBody sends a request with the given body, Content-Type and length
// (-1: chunked, length unknown), asking for HTML when asHTML, and returns
// the status, Content-Type and body of the answer.
func sendBody(t *testing.T, method, target string, body io.Reader, contentType string, length int64, asHTML bool) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if asHTML {
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(raw)
}

// refusedAs checks an answer the body policy gave: the status, and the
// shape the caller can read, a page for a browser and an RFC 6749 error
// for anyone else.
func refusedAs(t *testing.T, what string, status int, wantStatus int, contentType, body string, asHTML bool) {
	t.Helper()
	switch {
	case status != wantStatus:
		t.Errorf("%s: %d, want %d: %.300s", what, status, wantStatus, body)
	case asHTML && (!strings.HasPrefix(contentType, "text/html") || !strings.Contains(body, "Go back")):
		t.Errorf("%s: a browser got %s, want a page that says what to do: %.300s", what, contentType, body)
	case !asHTML && (!strings.HasPrefix(contentType, "application/json") || !strings.Contains(body, `"error":"invalid_request"`) ||
		!strings.Contains(body, `"error_description"`)):
		t.Errorf("%s: a client got %s %.300s, want an RFC 6749 invalid_request error", what, contentType, body)
	}
}

// spooled lists the multipart temporary files in dir.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "multipart-*"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestMultipartUploadsAreRefusedBeforeAnythingSpoolsThem(t *testing.T) {
	// Not parallel: it points the process's temporary directory at one of
	// its own, to see what lands there. The node starts first, so that the
	// test cluster does not.
	n, rp, b := signInScene(t)
	ar := rp.start()
	login := b.visit(ar.url)
	handle := login.handle(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	fields := url.Values{"request": {handle}, "email": {"ada@example.com"}, "password": {"wrong password"},
		"grant_type": {"client_credentials"}, "client_id": {rp.client.ID}, "decision": {"allow"}}
	for _, tt := range []struct {
		method, path string
		asHTML       bool
	}{
		{http.MethodPost, "/login", true},
		{http.MethodPost, "/login/otp", true},
		{http.MethodPost, "/login/enrol", true},
		{http.MethodPost, "/consent", true},
		{http.MethodPost, "/account/mfa/confirm", true},
		{http.MethodPost, "/account/apps/revoke", true},
		{http.MethodPost, "/account/sessions/revoke", true},
		{http.MethodPost, "/account/email", true},
		{http.MethodPost, "/login/forgot", true},
		{http.MethodPost, "/login/reset", true},
		{http.MethodPost, "/login/invitation", true},
		{http.MethodPost, "/email/verify", true},
		{http.MethodGet, "/oauth2/authorize?" + url.Values{"client_id": {rp.client.ID}}.Encode(), true},
		{http.MethodPost, "/oauth2/authorize", true},
		{http.MethodPost, "/oauth2/logout", true},
		{http.MethodPost, "/oauth2/token", false},
		{http.MethodPost, "/oauth2/introspect", false},
		{http.MethodPost, "/oauth2/revoke", false},
		{http.MethodPost, "/oauth2/userinfo", false},
	} {
		body, contentType, length := upload(t, fields, spoolSize)
		status, gotType, got := sendBody(t, tt.method, n.issuer+tt.path, body, contentType, length, tt.asHTML)
		refusedAs(t, tt.method+" "+tt.path+" with an upload", status, http.StatusUnsupportedMediaType, gotType, got, tt.asHTML)
	}
	if files := spooled(t, tmp); len(files) > 0 {
		t.Errorf("the uploads left %d files in the temporary directory: %v", len(files), files)
	}

	// The attack changed nothing for the user, who signs in as ever.
	p := b.signIn(login, "ada@example.com", testPassword)
	rp.finish(t, ar, b.decide(p, "allow").callback(t))
}

func TestAnOversizedFormIsRefusedWith413(t *testing.T) {
	t.Parallel()
	n, rp, b := signInScene(t)
	login := b.visit(rp.start().url)
	backend, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}, TokenEndpointAuthMethod: client.AuthSecretPost})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("a", 1<<20)
	loginForm := url.Values{"request": {login.handle(t)}, "email": {big + "@example.com"}, "password": {"x"}}.Encode()
	tokenForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {backend.ID}, "client_secret": {secret},
		"padding": {big}}.Encode()
	const form = "application/x-www-form-urlencoded"
	for _, tt := range []struct {
		name, path, body string
		chunked, asHTML  bool
	}{
		{"a megabyte typed at sign-in", "/login", loginForm, false, true},
		{"a megabyte typed at sign-in, of unknown length", "/login", loginForm, true, true},
		{"a megabyte token request", "/oauth2/token", tokenForm, false, false},
		{"a megabyte token request, of unknown length", "/oauth2/token", tokenForm, true, false},
	} {
		length := int64(len(tt.body))
		var body io.Reader = strings.NewReader(tt.body)
		if tt.chunked {
			length, body = -1, io.MultiReader(body) // hides the length from net/http
		}
		status, contentType, got := sendBody(t, http.MethodPost, n.issuer+tt.path, body, form, length, tt.asHTML)
		refusedAs(t, tt.name, status, http.StatusRequestEntityTooLarge, contentType, got, tt.asHTML)
	}

	// A large form within the limit still works: the limit is for bodies
	// no client sends.
	padded := url.Values{"grant_type": {"client_credentials"}, "client_id": {backend.ID}, "client_secret": {secret},
		"padding": {strings.Repeat("a", 48<<10)}}.Encode()
	if status, _, got := sendBody(t, http.MethodPost, n.issuer+"/oauth2/token", strings.NewReader(padded), form, int64(len(padded)), false); status != http.StatusOK {
		t.Fatalf("a 48 KiB token request: %d %s", status, got)
	}

	// The admin listener keeps its own limit and its problem details.
	a := n.automation(t, client.AdminScope)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, n.admin+"/admin/users",
		strings.NewReader(`{"email": "`+strings.Repeat("a", 2<<20)+`@example.com"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ans := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &ans.body)
	ans.problem(t, http.StatusRequestEntityTooLarge, "")
	if ans.body["type"] != "urn:latchkey:problem:too-large" {
		t.Fatalf("a 2 MiB admin body: %s, want the too-large problem", raw)
	}
}

func TestBodiesOfOtherMediaTypesAreRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t)
	backend, secret, err := n.clients.Create(t.Context(), client.Client{GrantTypes: []string{client.GrantClientCredentials}, TokenEndpointAuthMethod: client.AuthSecretPost})
	if err != nil {
		t.Fatal(err)
	}
	creds := url.Values{"grant_type": {"client_credentials"}, "client_id": {backend.ID}, "client_secret": {secret}}.Encode()
	for _, tt := range []struct {
		name, contentType, body string
		status                  int
	}{
		{"JSON", "application/json", fmt.Sprintf(`{"grant_type":"client_credentials","client_id":%q,"client_secret":%q}`, backend.ID, secret), http.StatusUnsupportedMediaType},
		{"a small upload", "multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--b--\r\n", http.StatusUnsupportedMediaType},
		{"no Content-Type", "", creds, http.StatusUnsupportedMediaType},
		{"a Content-Type that does not parse", "application/x-www-form-urlencoded; charset", creds, http.StatusUnsupportedMediaType},
		{"a form", "application/x-www-form-urlencoded", creds, http.StatusOK},
		{"a form with a charset", "application/x-www-form-urlencoded; charset=UTF-8", creds, http.StatusOK},
		{"a form in capitals", "Application/X-WWW-Form-URLEncoded", creds, http.StatusOK},
	} {
		status, contentType, got := sendBody(t, http.MethodPost, n.issuer+"/oauth2/token", strings.NewReader(tt.body), tt.contentType, int64(len(tt.body)), false)
		if tt.status == http.StatusOK {
			if status != http.StatusOK {
				t.Errorf("%s: %d %s, want a token", tt.name, status, got)
			}
			continue
		}
		refusedAs(t, tt.name, status, tt.status, contentType, got, false)
	}

	// A request without a body may say what it likes: there is nothing to
	// read, and some HTTP libraries send a Content-Type on every request.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, n.issuer+"/.well-known/openid-configuration", nil)
	req.Header.Set("Content-Type", "application/json")
	if status, _ := doJSON(t, req); status != http.StatusOK {
		t.Fatalf("discovery with a Content-Type and no body: %d", status)
	}
}
