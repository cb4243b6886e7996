package oauth

// This file is the device authorization grant (RFC 8628): the device
// authorization endpoint, which gives a device a device code to poll with
// and a user code for its user to type at /device (pkg/signin); the
// grant's token endpoint handler, composed into fosite like its own
// grants, so that fosite's strategies issue the tokens; and what the
// sign-in calls to find, approve and deny a request by its user code.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/storage"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/devicegrant"
	"github.com/latchkey/latchkey/pkg/discovery"
)

// DeviceConfig configures the device authorization grant.
type DeviceConfig struct {
	// Enabled offers the grant to clients registered with it.
	Enabled bool
	// Lifespan is how long a device code waits for the user's decision.
	Lifespan time.Duration
	// Interval is the polling interval a device is given at first.
	Interval time.Duration
	// PendingLimit is the most pending codes a client may hold; 0 is no
	// limit.
	PendingLimit int
}

// userCodeAlphabet is what user codes are made of: RFC 8628 §6.1's
// consonants, which cannot be mistaken for each other or for digits, and
// make no words. Eight of them, about 34.6 bits, shown as XXXX-XXXX.
const (
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLen      = 8
)

// deviceSlowDownStep is what each poll that comes too soon adds to a
// device's interval (RFC 8628 §3.5).
const deviceSlowDownStep = 5 * time.Second

// userCodeKeyInfo labels the derivation of the key that user codes are
// stored under (an HMAC: a user code is short enough to search for
// through a plain digest).
const userCodeKeyInfo = "latchkey oauth v1: user code key"

// deviceParam is the one parameter of a parked device request: its ID.
const deviceParam = "device_request"

// maxDeviceScope bounds the scope parameter of a device authorization
// request, as authorizeParams bounds an authorization request's.
const maxDeviceScope = 1024

// maxDeviceCodeLen bounds a device_code presented at the token endpoint:
// the ones issued are 52 characters.
const maxDeviceCodeLen = 128

// ErrUnknownUserCode reports a user code that names no pending request:
// mistyped, guessed, expired or already used.
var ErrUnknownUserCode = errors.New("oauth: unknown user code")

// deviceError is an RFC 8628 §3.5 error of the token endpoint. Each call
// makes a new value: fosite's shared errors must never be changed.
func deviceError(code, description string) *fosite.RFC6749Error {
	return &fosite.RFC6749Error{ErrorField: code, DescriptionField: description, CodeField: http.StatusBadRequest}
}

// NormalizeUserCode returns a user code as it is stored: upper case,
// without the dash, spaces or other punctuation a user may type (RFC 8628
// §6.1), and whether what is left can be a user code at all.
func NormalizeUserCode(s string) (string, bool) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case strings.ContainsRune(userCodeAlphabet, r):
			b.WriteRune(r)
		case r == '-' || r == ' ' || r == '\t':
		default:
			return "", false
		}
	}
	return b.String(), b.Len() == userCodeLen
}

// FormatUserCode shows a normalized user code as users are given it.
func FormatUserCode(code string) string {
	if len(code) != userCodeLen {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// newUserCode draws a user code, uniformly from the alphabet.
func newUserCode() (string, error) {
	b := make([]byte, userCodeLen)
	n := big.NewInt(int64(len(userCodeAlphabet)))
	for i := range b {
		k, err := rand.Int(rand.Reader, n)
		if err != nil {
			return "", err
		}
		b[i] = userCodeAlphabet[k.Int64()]
	}
	return string(b), nil
}

// userCodeHash is how a normalized user code is stored and looked up.
func (p *Provider) userCodeHash(code string) []byte {
	m := hmac.New(sha256.New, p.userCodeKey)
	m.Write([]byte(code))
	return m.Sum(nil)
}

// deviceCodeHash is how a device code is stored and looked up: 256 random
// bits need no key.
func deviceCodeHash(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

// DeviceAuthorization serves the device authorization endpoint (RFC 8628
// §3.1, §3.2). The caller must be a client registered with the device
// grant, authenticated as at the token endpoint (a public client names
// itself), so that an anonymous caller can store nothing; each client
// holds at most DeviceConfig.PendingLimit pending codes, and its calls
// count against its rate limit and usage plan as token requests do.
func (p *Provider) DeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	ctx, release := p.store.GuardTransactions(r.Context())
	defer release()
	if r.Method != http.MethodPost {
		p.writeError(ctx, w, fosite.ErrInvalidRequest.WithHint("Use POST."))
		return
	}
	if err := r.ParseForm(); err != nil {
		p.writeError(ctx, w, fosite.ErrInvalidRequest.WithHint("The body must be a form (application/x-www-form-urlencoded)."))
		return
	}
	fc, err := p.fosite.AuthenticateClient(ctx, r, r.PostForm)
	if err == nil {
		err = p.limit(ctx, w, "token", fc.GetID())
	}
	if err != nil {
		p.writeError(ctx, w, err)
		return
	}
	c, ok := fc.(*client.Client)
	if !ok || !c.CanUse(client.GrantDeviceCode) {
		p.writeError(ctx, w, fosite.ErrUnauthorizedClient.WithHintf("The client is not registered for the grant type %s.", client.GrantDeviceCode))
		return
	}
	scope := r.PostForm.Get("scope")
	if len(scope) > maxDeviceScope {
		p.writeError(ctx, w, fosite.ErrInvalidRequest.WithHintf("The scope parameter is longer than the %d characters Latchkey accepts.", maxDeviceScope))
		return
	}
	scopes := strings.Fields(scope)
	for _, s := range scopes {
		if !p.fosite.Config.GetScopeStrategy(ctx)(c.GetScopes(), s) {
			p.writeError(ctx, w, fosite.ErrInvalidScope.WithHintf("The client may not ask for the scope %q.", s))
			return
		}
	}
	deviceCode := rand.Text() + rand.Text() // 2 x 128 bits, base32
	d := devicegrant.Code{
		ID:             rand.Text(),
		DeviceCodeHash: deviceCodeHash(deviceCode),
		ClientID:       c.ID,
		Scopes:         scopes,
		Interval:       p.device.Interval,
		ExpiresAt:      time.Now().Add(p.device.Lifespan),
	}
	var userCode string
	// 20^8 codes: a clash with a live one is rare, and three in a row
	// rarer than the database failing.
	for range 3 {
		if userCode, err = newUserCode(); err != nil {
			break
		}
		d.UserCodeHash = p.userCodeHash(userCode)
		if err = p.devices.CreateDeviceCode(ctx, d, p.device.PendingLimit); !errors.Is(err, devicegrant.ErrUserCodeTaken) {
			break
		}
	}
	switch {
	case errors.Is(err, devicegrant.ErrLimit):
		p.writeError(ctx, w, &rateLimited{p.device.Interval, "This client has too many device codes waiting for approval"})
		return
	case err != nil:
		p.writeError(ctx, w, err)
		return
	}
	verify := p.issuer + discovery.DeviceVerificationPath
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"device_code":               deviceCode,
		"user_code":                 FormatUserCode(userCode),
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?" + url.Values{"user_code": {FormatUserCode(userCode)}}.Encode(),
		"expires_in":                int(p.device.Lifespan / time.Second),
		"interval":                  int(p.device.Interval / time.Second),
	})
}

// errDeviceGone is what the sign-in is told of a device request that
// cannot be decided any more: it expired, or was decided already.
func errDeviceGone() *fosite.RFC6749Error {
	return deviceError("expired_token", "This code has expired or was already used. Start again on your device to get a new one.")
}

// DeviceRequest returns the pending device request whose user code the
// user typed, as an authorization request for the sign-in to take through
// its steps (IsDevice); ErrUnknownUserCode if there is none.
func (p *Provider) DeviceRequest(ctx context.Context, userCode string) (*AuthorizeRequest, error) {
	code, ok := NormalizeUserCode(userCode)
	if !ok {
		return nil, ErrUnknownUserCode
	}
	d, err := p.devices.DeviceCodeByUserCode(ctx, p.userCodeHash(code))
	if errors.Is(err, devicegrant.ErrNotFound) {
		return nil, ErrUnknownUserCode
	}
	if err != nil {
		return nil, err
	}
	return p.deviceRequest(ctx, d)
}

// ParseDevice returns the device request a parked sign-in serves, given
// its parked parameters, while it is still pending.
func (p *Provider) ParseDevice(ctx context.Context, params url.Values) (*AuthorizeRequest, error) {
	d, err := p.devices.DeviceCodeByID(ctx, params.Get(deviceParam))
	switch {
	case errors.Is(err, devicegrant.ErrNotFound):
		return nil, errDeviceGone()
	case err != nil:
		return nil, err
	case d.Status != devicegrant.Pending || !time.Now().Before(d.ExpiresAt):
		return nil, errDeviceGone()
	}
	return p.deviceRequest(ctx, d)
}

// IsDeviceParams reports whether parked parameters are a device request's.
func IsDeviceParams(params url.Values) bool { return params.Has(deviceParam) }

// deviceRequest makes d an authorization request without a redirect URI:
// what the sign-in reads of it (client, scopes) is the device request's,
// and it carries no prompt, max_age or claims.
func (p *Provider) deviceRequest(ctx context.Context, d devicegrant.Code) (*AuthorizeRequest, error) {
	c, err := p.store.ClientByID(ctx, d.ClientID)
	if errors.Is(err, client.ErrNotFound) {
		return nil, errDeviceGone()
	}
	if err != nil {
		return nil, err
	}
	ar := fosite.NewAuthorizeRequest()
	ar.ID = d.ID
	ar.Client = c
	ar.RequestedScope = d.Scopes
	ar.Form = url.Values{deviceParam: {d.ID}}
	return &AuthorizeRequest{ar: ar, Client: c, device: d.ID}, nil
}

// ApproveDevice records that the user of in approved the device request
// req: the session its tokens will carry, as Approve issues a code with,
// and the audit event, in one transaction. The device gets the tokens at
// its next poll.
func (p *Provider) ApproveDevice(ctx context.Context, req *AuthorizeRequest, in SignIn) error {
	s := p.signInSession(req, in)
	if err := p.addRoles(ctx, req.ar, s); err != nil {
		return err
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return p.decideDevice(ctx, req, devicegrant.Approved, in.User.ID, raw, audit.DeviceApproved)
}

// DenyDevice records that userID denied the device request req; the
// device is told access_denied at its next poll.
func (p *Provider) DenyDevice(ctx context.Context, req *AuthorizeRequest, userID string) error {
	return p.decideDevice(ctx, req, devicegrant.Denied, userID, nil, audit.DeviceDenied)
}

func (p *Provider) decideDevice(ctx context.Context, req *AuthorizeRequest, status, userID string, session json.RawMessage, action string) error {
	err := p.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		if err := p.devices.DecideDeviceCode(ctx, req.device, status, userID, session); err != nil {
			return audit.Event{}, err
		}
		return audit.Event{Action: action, Target: audit.Client(req.Client.ID),
			Details: map[string]any{"scopes": req.Scopes(), "request_id": req.device}}, nil
	})
	if errors.Is(err, devicegrant.ErrNotFound) {
		return errDeviceGone()
	}
	return err
}

// deviceTokenStore is what the device grant handler stores tokens in:
// the fosite store the other grants use, with its transactions.
type deviceTokenStore interface {
	oauth2.AccessTokenStorage
	oauth2.RefreshTokenStorage
	storage.Transactional
}

// deviceGrant is the token endpoint's handler of the device code grant
// (RFC 8628 §3.4, §3.5). fosite v0.49 has none; this one follows its
// authorization code handler: the request is checked in
// HandleTokenEndpointRequest, and the grant spent and the tokens stored
// in one transaction in PopulateTokenEndpointResponse, with the core
// strategy making the tokens and the OpenID Connect strategy the ID token.
type deviceGrant struct {
	config   fosite.Configurator
	store    deviceTokenStore
	devices  devicegrant.Store
	tokens   oauth2.CoreStrategy
	idTokens *openid.IDTokenHandleHelper
}

var _ fosite.TokenEndpointHandler = (*deviceGrant)(nil)

// deviceGrantFactory composes the handler, with devices to keep its codes
// in, when enabled; otherwise it composes nothing (compose skips a nil).
func deviceGrantFactory(enabled bool, devices devicegrant.Store) compose.Factory {
	return func(config fosite.Configurator, store any, strategy any) any {
		if !enabled {
			return nil
		}
		cs := strategy.(*compose.CommonStrategy)
		return &deviceGrant{
			config:   config,
			store:    store.(deviceTokenStore),
			devices:  devices,
			tokens:   cs.CoreStrategy,
			idTokens: &openid.IDTokenHandleHelper{IDTokenStrategy: cs.OpenIDConnectTokenStrategy},
		}
	}
}

func (*deviceGrant) CanSkipClientAuth(context.Context, fosite.AccessRequester) bool { return false }

func (*deviceGrant) CanHandleTokenEndpointRequest(_ context.Context, ar fosite.AccessRequester) bool {
	return ar.GetGrantTypes().ExactOne(client.GrantDeviceCode)
}

// HandleTokenEndpointRequest answers a poll (RFC 8628 §3.5): pending
// (slow_down if it came too soon, which raises the device's interval on
// every node), denied, expired, used; or approved, when it loads what the
// user approved into ar for the tokens.
func (h *deviceGrant) HandleTokenEndpointRequest(ctx context.Context, ar fosite.AccessRequester) error {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	c := ar.GetClient()
	if !c.GetGrantTypes().Has(client.GrantDeviceCode) {
		return fosite.ErrUnauthorizedClient.WithHintf("The client is not registered for the grant type %s.", client.GrantDeviceCode)
	}
	code := ar.GetRequestForm().Get("device_code")
	switch {
	case code == "":
		return fosite.ErrInvalidRequest.WithHint("The device_code parameter is missing.")
	case len(code) > maxDeviceCodeLen:
		return fosite.ErrInvalidGrant.WithHint("The device_code is not one this server issued to this client.")
	}
	poll, err := h.devices.PollDeviceCode(ctx, deviceCodeHash(code), c.GetID(), deviceSlowDownStep)
	switch {
	case errors.Is(err, devicegrant.ErrNotFound):
		return fosite.ErrInvalidGrant.WithHint("The device_code is not one this server issued to this client.")
	case err != nil:
		return err
	case !time.Now().Before(poll.ExpiresAt):
		return deviceError("expired_token", "The device_code has expired; start again.")
	}
	switch poll.Status {
	case devicegrant.Denied:
		return fosite.ErrAccessDenied.WithHint("The user denied the request.")
	case devicegrant.Used:
		return fosite.ErrInvalidGrant.WithHint("The device_code was already used.")
	case devicegrant.Pending:
		if poll.TooSoon {
			return deviceError("slow_down", "Poll less often: wait "+poll.Interval.String()+" between requests.")
		}
		return deviceError("authorization_pending", "The user has not approved the request yet.")
	}
	s, ok := ar.GetSession().(*Session)
	if !ok {
		return fosite.ErrServerError.WithDebug("the session is not a *Session")
	}
	if err := json.Unmarshal(poll.Session, s); err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug("the approved session does not decode")
	}
	// The grant's tokens share the request's ID, so that revoking one
	// revokes them all.
	ar.SetID(poll.ID)
	for _, scope := range poll.Scopes {
		ar.GrantScope(scope)
	}
	for _, a := range c.GetAudience() {
		ar.GrantAudience(a)
	}
	now := time.Now().UTC()
	gt := fosite.GrantType(client.GrantDeviceCode)
	s.SetExpiresAt(fosite.AccessToken, now.Add(fosite.GetEffectiveLifespan(c, gt, fosite.AccessToken, h.config.GetAccessTokenLifespan(ctx))).Round(time.Second))
	if rt := fosite.GetEffectiveLifespan(c, gt, fosite.RefreshToken, h.config.GetRefreshTokenLifespan(ctx)); rt > -1 {
		s.SetExpiresAt(fosite.RefreshToken, now.Add(rt).Round(time.Second))
	}
	return nil
}

// PopulateTokenEndpointResponse spends the approved device code and
// issues the tokens, in one transaction: of a burst of polls after
// approval, one spends the code and the rest are refused.
func (h *deviceGrant) PopulateTokenEndpointResponse(ctx context.Context, ar fosite.AccessRequester, resp fosite.AccessResponder) (err error) {
	if !h.CanHandleTokenEndpointRequest(ctx, ar) {
		return fosite.ErrUnknownRequest
	}
	access, accessSignature, err := h.tokens.GenerateAccessToken(ctx, ar)
	if err != nil {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	var refresh, refreshSignature string
	// As for codes: a refresh token for offline access, to a client that
	// may use one.
	if rs := h.config.GetRefreshTokenScopes(ctx); (len(rs) == 0 || ar.GetGrantedScopes().HasOneOf(rs...)) &&
		ar.GetClient().GetGrantTypes().Has(client.GrantRefreshToken) {
		if refresh, refreshSignature, err = h.tokens.GenerateRefreshToken(ctx, ar); err != nil {
			return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
		}
	}
	ctx, err = storage.MaybeBeginTx(ctx, h.store)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = storage.MaybeRollbackTx(ctx, h.store)
		}
	}()
	if err = h.devices.SpendDeviceCode(ctx, ar.GetID()); errors.Is(err, devicegrant.ErrNotFound) {
		return fosite.ErrInvalidGrant.WithHint("The device_code was already used.")
	} else if err != nil {
		return err
	}
	if err = h.store.CreateAccessTokenSession(ctx, accessSignature, ar.Sanitize(nil)); err != nil {
		return err
	}
	if refreshSignature != "" {
		if err = h.store.CreateRefreshTokenSession(ctx, refreshSignature, accessSignature, ar.Sanitize(nil)); err != nil {
			return err
		}
	}
	resp.SetAccessToken(access)
	resp.SetTokenType("bearer")
	resp.SetExpiresIn(time.Until(ar.GetSession().GetExpiresAt(fosite.AccessToken)).Round(time.Second))
	resp.SetScopes(ar.GetGrantedScopes())
	if refresh != "" {
		resp.SetExtra("refresh_token", refresh)
	}
	if ar.GetGrantedScopes().Has("openid") {
		s, _ := ar.GetSession().(*Session)
		s.IDTokenClaims().AccessTokenHash = h.idTokens.GetAccessTokenHash(ctx, ar, resp)
		lifespan := fosite.GetEffectiveLifespan(ar.GetClient(), fosite.GrantType(client.GrantDeviceCode), fosite.IDToken, h.config.GetIDTokenLifespan(ctx))
		if err = h.idTokens.IssueExplicitIDToken(ctx, lifespan, ar, resp); err != nil {
			return err
		}
	}
	return storage.MaybeCommitTx(ctx, h.store)
}
