// Package admin is Latchkey's admin API: JSON over HTTP under /admin/ on
// the admin listener, for the operators and automation that register
// clients, manage users and roles, rotate keys, watch the mail outbox,
// subscribe webhooks to events and read the audit log.
//
// # Who may call it
//
// Callers present an access token from Latchkey's own token endpoint,
// obtained with the client credentials grant by a client registered for
// the admin scopes (latchkey clients create --admin): latchkey:admin for
// everything, latchkey:admin:read for reading only. Every change is
// recorded in the audit log under the calling client's ID.
//
// # The request path
//
// Handlers decode and check the request, then call the same domain
// managers the CLI uses (pkg/client, pkg/identity, pkg/roles, pkg/keys,
// pkg/mail, pkg/trust, pkg/events, pkg/apikey, pkg/usage, pkg/registration),
// which validate, store and audit in one transaction. Errors come back as
// RFC 9457 problem details. The routes are described in
// docs/admin-api.yaml, which a test keeps in step with Routes.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/latchkey/latchkey/pkg/account"
	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/oauth"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/registration"
	"github.com/latchkey/latchkey/pkg/resource"
	"github.com/latchkey/latchkey/pkg/roles"
	"github.com/latchkey/latchkey/pkg/trust"
	"github.com/latchkey/latchkey/pkg/usage"
)

// Path is where the API is mounted on the admin listener.
const Path = "/admin"

// TokenVerifier checks bearer tokens (pkg/oauth.Provider).
type TokenVerifier interface {
	VerifyAccessToken(ctx context.Context, token string) (oauth.Grant, error)
}

// API serves the admin API. Every field is required.
type API struct {
	Clients *client.Manager
	Users   *identity.Manager
	// Accounts mails the links of user creation and address changes:
	// invitations and verifications.
	Accounts *account.Service
	MFA      *identity.MFA
	Passkeys *passkey.Manager
	// Trust lists and forgets users' trusted browsers.
	Trust *trust.Manager
	// APIKeys makes, lists and revokes API keys (pkg/apikey).
	APIKeys *apikey.Manager
	Roles   *roles.Manager
	// Resources registers RFC 8707 resources (pkg/resource).
	Resources *resource.Manager
	Keys      *keys.Manager
	Mail      Outbox
	// Webhooks manages webhook subscriptions (pkg/events).
	Webhooks Webhooks
	// Plans defines usage plans, assigns them and reports usage.
	Plans *usage.Manager
	// Registrations issues, lists and revokes initial access tokens for
	// dynamic client registration (pkg/registration).
	Registrations *registration.Manager
	Audit         *audit.Log
	Tokens        TokenVerifier
	// Cursors seals list cursors.
	Cursors Sealer
	Logger  *slog.Logger
}

// Routes returns the API's router, to mount at Path.
func (a *API) Routes() http.Handler {
	r := chi.NewRouter()
	r.Use(a.authenticate)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Type: typeNotFound, Status: http.StatusNotFound,
			Detail: "No such route in the admin API; see docs/admin-api.yaml."})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		allowed := allowedMethods(r, req)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeProblem(w, req, Problem{Type: typeMethodNotAllowed, Status: http.StatusMethodNotAllowed,
			Detail: "This route takes " + strings.Join(allowed, ", ") + ", not " + req.Method + "."})
	})

	r.Get("/clients", a.handleList(a.listClients))
	r.Post("/clients", a.handle(a.createClient))
	r.Get("/clients/{id}", a.handle(a.getClient))
	r.Put("/clients/{id}", a.handle(a.replaceClient))
	r.Patch("/clients/{id}", a.handle(a.patchClient))
	r.Delete("/clients/{id}", a.handle(a.deleteClient))
	r.Post("/clients/{id}/secret", a.handle(a.rotateSecret))
	r.Delete("/clients/{id}/tokens", a.handle(a.revokeClientTokens))
	r.Get("/clients/{id}/api-keys", a.handle(a.listClientAPIKeys))
	r.Post("/clients/{id}/api-keys", a.handle(a.createClientAPIKey))
	r.Delete("/clients/{id}/api-keys/{key}", a.handle(a.revokeClientAPIKey))

	r.Get("/users", a.handleList(a.listUsers))
	r.Post("/users", a.handle(a.createUser))
	r.Get("/users/{id}", a.handle(a.getUser))
	r.Patch("/users/{id}", a.handle(a.patchUser))
	r.Delete("/users/{id}", a.handle(a.deleteUser))
	r.Post("/users/{id}/disable", a.handle(a.disableUser))
	r.Post("/users/{id}/enable", a.handle(a.enableUser))
	r.Post("/users/{id}/unlock", a.handle(a.unlockUser))
	r.Put("/users/{id}/password", a.handle(a.setPassword))
	r.Post("/users/{id}/invitation", a.handle(a.resendInvitation))
	r.Delete("/users/{id}/invitation", a.handle(a.revokeInvitation))
	r.Get("/users/{id}/mfa", a.handle(a.getMFA))
	r.Delete("/users/{id}/mfa", a.handle(a.resetMFA))
	r.Get("/users/{id}/passkeys", a.handle(a.listPasskeys))
	r.Delete("/users/{id}/passkeys/{credential}", a.handle(a.removePasskey))
	r.Get("/users/{id}/sessions", a.handle(a.listSessions))
	r.Delete("/users/{id}/sessions", a.handle(a.signOutEverywhere))
	r.Delete("/users/{id}/sessions/{sid}", a.handle(a.endSession))
	r.Get("/users/{id}/trusted-devices", a.handle(a.listTrustedDevices))
	r.Delete("/users/{id}/trusted-devices", a.handle(a.forgetTrustedDevices))
	r.Delete("/users/{id}/trusted-devices/{device}", a.handle(a.forgetTrustedDevice))
	r.Get("/users/{id}/api-keys", a.handle(a.listUserAPIKeys))
	r.Delete("/users/{id}/api-keys/{key}", a.handle(a.revokeUserAPIKey))
	r.Get("/users/{id}/consents", a.handle(a.listConsents))
	r.Delete("/users/{id}/consents/{client_id}", a.handle(a.revokeConsent))
	r.Get("/users/{id}/roles", a.handle(a.listUserRoles))
	r.Put("/users/{id}/roles/{role}", a.handle(a.assignRole))
	r.Delete("/users/{id}/roles/{role}", a.handle(a.unassignRole))

	r.Get("/roles", a.handleList(a.listRoles))
	r.Post("/roles", a.handle(a.createRole))
	r.Get("/roles/{name}", a.handle(a.getRole))
	r.Patch("/roles/{name}", a.handle(a.patchRole))
	r.Delete("/roles/{name}", a.handle(a.deleteRole))

	r.Get("/resources", a.handleList(a.listResources))
	r.Post("/resources", a.handle(a.createResource))
	r.Get("/resources/{uri}", a.handle(a.getResource))
	r.Put("/resources/{uri}", a.handle(a.replaceResource))
	r.Delete("/resources/{uri}", a.handle(a.deleteResource))

	r.Get("/keys", a.handle(a.listKeys))
	r.Post("/keys/rotate", a.handle(a.rotateKeys))
	r.Post("/keys/{kid}/retire", a.handle(a.retireKey))

	r.Get("/mail", a.handleList(a.listMail))
	r.Post("/mail/test", a.handle(a.sendTestMail))
	r.Get("/mail/{id}", a.handle(a.getMail))
	r.Post("/mail/{id}/retry", a.handle(a.retryMail))

	r.Get("/webhooks", a.handle(a.listWebhooks))
	r.Post("/webhooks", a.handle(a.createWebhook))
	r.Get("/webhooks/{id}", a.handle(a.getWebhook))
	r.Patch("/webhooks/{id}", a.handle(a.patchWebhook))
	r.Delete("/webhooks/{id}", a.handle(a.deleteWebhook))
	r.Post("/webhooks/{id}/enable", a.handle(a.enableWebhook))
	r.Post("/webhooks/{id}/rotate-secret", a.handle(a.rotateWebhookSecret))
	r.Post("/webhooks/{id}/test", a.handle(a.testWebhook))
	r.Get("/webhooks/{id}/deliveries", a.handleList(a.listWebhookDeliveries))

	r.Get("/plans", a.handle(a.listPlans))
	r.Post("/plans", a.handle(a.createPlan))
	r.Get("/plans/{name}", a.handle(a.getPlan))
	r.Put("/plans/{name}", a.handle(a.replacePlan))
	r.Delete("/plans/{name}", a.handle(a.deletePlan))
	r.Get("/plans/{name}/subjects", a.handle(a.listPlanSubjects))
	r.Put("/plans/{name}/subjects/{subject}", a.handle(a.assignPlan))
	r.Delete("/plans/{name}/subjects/{subject}", a.handle(a.unassignPlan))
	r.Get("/usage", a.handleList(a.getUsage))

	r.Get("/registration-tokens", a.handle(a.listRegistrationTokens))
	r.Post("/registration-tokens", a.handle(a.createRegistrationToken))
	r.Delete("/registration-tokens/{id}", a.handle(a.revokeRegistrationToken))

	r.Get("/audit-events", a.handleList(a.listAuditEvents))
	return r
}

// may reports whether scopes allow reading (read) or changing (!read):
// latchkey:admin allows both, latchkey:admin:read reading alone. A call
// needs both the token's scopes and its client's current ones to allow
// it.
func may(scopes []string, read bool) bool {
	return slices.Contains(scopes, client.AdminScope) || (read && slices.Contains(scopes, client.AdminReadScope))
}

// stillIssuable reports whether the grant's token could be issued now as
// it was: it came after its client's last secret rotation. A rotation is
// how an operator answers a leaked secret, and tokens the leaked secret
// got must end with it; tokens from the old secret in its grace period,
// issued after the rotation, are the grace period's point and still work.
func stillIssuable(g oauth.Grant) bool {
	return g.Client != nil && !g.IssuedAt.Before(g.Client.SecretRotatedAt)
}

// reply is a successful answer: a status and a body to encode as JSON, or
// no body for 204.
type reply struct {
	status   int
	body     any
	location string
}

func ok(body any) reply { return reply{status: http.StatusOK, body: body} }

var noContent = reply{status: http.StatusNoContent}

// allowedMethods lists the methods router serves at req's path, for the
// Allow header of a 405 (RFC 9110 §15.5.6).
func allowedMethods(router chi.Routes, req *http.Request) []string {
	path := req.URL.Path
	if rctx := chi.RouteContext(req.Context()); rctx != nil && rctx.RoutePath != "" {
		path = rctx.RoutePath
	}
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if router.Match(chi.NewRouteContext(), m, path) {
			allowed = append(allowed, m)
		}
	}
	return allowed
}

// handleList is handle for lists, whose handlers read the query
// (parseList).
func (a *API) handleList(h func(r *http.Request) (reply, error)) http.HandlerFunc {
	return a.serve(h)
}

// handle adapts a handler that returns its answer or an error, so that
// every error reaches writeError and every body is written the same way.
// Only lists take query parameters: elsewhere one is refused, so that a
// misspelt or misplaced parameter cannot silently do nothing.
func (a *API) handle(h func(r *http.Request) (reply, error)) http.HandlerFunc {
	return a.serve(func(r *http.Request) (reply, error) {
		if q := r.URL.Query(); len(q) > 0 {
			return reply{}, badField(slices.Sorted(maps.Keys(q))[0], "is not a query parameter of this route, which takes none")
		}
		return h(r)
	})
}

func (a *API) serve(h func(r *http.Request) (reply, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rep, err := h(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if rep.location != "" {
			w.Header().Set("Location", rep.location)
		}
		if rep.body == nil {
			w.WriteHeader(rep.status)
			return
		}
		body, err := json.Marshal(rep.body)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rep.status)
		_, _ = w.Write(append(body, '\n'))
	}
}

// authenticate lets through requests with a valid admin token that has
// the scope the method needs: latchkey:admin:read (or latchkey:admin) to
// read, latchkey:admin to change anything. The caller becomes the actor of
// the audit events its request causes.
//
// Each call is judged against the token's client as it is now, not as it
// was when the token was issued, so that an operator who downgrades a
// client, rotates its secret or deletes it takes its power away at once,
// not up to an access token's lifespan later (may, stillIssuable).
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin"`)
			writeProblem(w, r, Problem{Type: typeUnauthorized, Status: http.StatusUnauthorized,
				Detail: "Send an admin access token in the Authorization header: Bearer TOKEN."})
			return
		}
		grant, err := a.Tokens.VerifyAccessToken(r.Context(), token)
		if err == nil && !stillIssuable(grant) {
			err = oauth.ErrInvalidToken
		}
		switch {
		case errors.Is(err, oauth.ErrInvalidToken):
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin", error="invalid_token", error_description="The access token is expired, revoked or unknown, or older than its client's secret."`)
			writeProblem(w, r, Problem{Type: typeUnauthorized, Status: http.StatusUnauthorized,
				Detail: "The access token is expired, revoked or unknown, or was issued before its client's secret was last rotated; get a new one from the token endpoint."})
			return
		case err != nil:
			a.writeError(w, r, err)
			return
		}
		// Admin power is a client's own: a token a user delegated never
		// carries it, whatever its scopes say. Validation keeps such tokens
		// from existing; this keeps them from working if one ever did.
		if grant.Subject != grant.ClientID {
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin", error="insufficient_scope"`)
			writeProblem(w, r, Problem{Type: typeForbidden, Status: http.StatusForbidden,
				Detail: "Admin API tokens come from the client credentials grant; this one acts for a user."})
			return
		}
		read := r.Method == http.MethodGet
		allowed := may(grant.Scopes, read) && may(grant.Client.Scopes(), read)
		if !allowed {
			need := client.AdminScope
			if read {
				need = client.AdminReadScope
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="latchkey-admin", error="insufficient_scope", scope="`+need+`"`)
			writeProblem(w, r, Problem{Type: typeForbidden, Status: http.StatusForbidden,
				Detail: "The access token lacks the scope " + need + " that this request needs."})
			return
		}
		ctx := audit.WithActor(r.Context(), audit.Client(grant.ClientID))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
