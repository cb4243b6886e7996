package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-jose/go-jose/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/latchkey/latchkey/pkg/account"
	adminapi "github.com/latchkey/latchkey/pkg/admin"
	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/device"
	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/events"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/keys"
	"github.com/latchkey/latchkey/pkg/logout"
	"github.com/latchkey/latchkey/pkg/mail"
	"github.com/latchkey/latchkey/pkg/metrics"
	"github.com/latchkey/latchkey/pkg/notify"
	"github.com/latchkey/latchkey/pkg/oauth"
	"github.com/latchkey/latchkey/pkg/passkey"
	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/registration"
	"github.com/latchkey/latchkey/pkg/resource"
	"github.com/latchkey/latchkey/pkg/risk"
	"github.com/latchkey/latchkey/pkg/roles"
	"github.com/latchkey/latchkey/pkg/seal"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/signin"
	"github.com/latchkey/latchkey/pkg/tracing"
	"github.com/latchkey/latchkey/pkg/trust"
	"github.com/latchkey/latchkey/pkg/ui"
	"github.com/latchkey/latchkey/pkg/usage"
	"github.com/latchkey/latchkey/storage/postgres"
	"github.com/latchkey/latchkey/web"
)

// app is one node's dependencies, built by wire.
type app struct {
	keys    *keys.Manager
	janitor *janitor
	// public is the public listener's router, which latchkey dev adds its
	// demo app to.
	public *chi.Mux
	// admin is the admin listener's router, which latchkey dev adds its
	// webhook receiver to (the public listener takes only forms).
	admin *chi.Mux
	// outbox is where mail is written, for the sender to deliver.
	outbox *mail.Outbox
	// sender delivers the outbox. Without LATCHKEY_SMTP_URL it has no
	// Transport and does not run: mail waits in the outbox (latchkey dev
	// gives it the console).
	sender *mail.Sender
	// deliverer delivers the event outbox to webhooks and the log stream;
	// every node runs one.
	deliverer *events.Deliverer
	// logouts delivers the logout outbox: back-channel logout tokens to
	// the apps a sign-in reached once it ends; every node runs one.
	logouts *logout.Deliverer
	// meter charges calls to usage plans; its Run gives back the quota
	// budget the node does not use and writes the daily usage.
	meter *usage.Meter
	// stop releases what the node holds beyond the database (the OTLP
	// log exporter), once it has stopped serving.
	stop func()
}

// wire is the one place where Latchkey's parts are built and connected.
// Every handler receives exactly what it uses; nothing is looked up later.
// tracer traces every request, or is nil when tracing is off; the store
// must have been opened with the same one (openStore) for database calls
// to appear in the requests' traces.
func wire(ctx context.Context, cfg config.Config, store *postgres.Store, logger *slog.Logger, tracer trace.TracerProvider) (*app, error) {
	box, err := seal.New(cfg.Secrets)
	if err != nil {
		return nil, err
	}
	issuer, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	base := strings.TrimSuffix(issuer.Path, "/")
	// Mail is written to the outbox in the transaction of the change that
	// causes it; the node's sender (serveNode) delivers it.
	outbox, err := newOutbox(store, box, issuer)
	if err != nil {
		return nil, err
	}
	// The node's metrics: the handlers below count into it, and the admin
	// listener serves it at /metrics.
	nodeMetrics := metrics.New(buildVersion(), store.PoolStat)
	// The risk assessment weighs each password sign-in and failure
	// (pkg/risk). It reacts to audit events too: a successful sign-in
	// adds to the user's history, and the events that are signals get
	// the policy's actions, in their transactions.
	assessor, err := newAssessor(cfg, store, nodeMetrics, logger)
	if err != nil {
		return nil, err
	}
	// Security notices react to the audit events of the changes they tell
	// of, in the same transaction: every change that records its event
	// through this log is covered, whoever makes it.
	// Every audit event is also written to the event outbox, in its own
	// transaction, for webhooks and the log stream (pkg/events).
	auditLog := audit.New(store, logger, notify.New(store, outbox, notices(cfg)), assessor, eventOutbox(store, cfg))
	// The assessor records its own events (risk.detected, risk.alert)
	// through the log that calls it.
	assessor.Audit = auditLog
	keyManager := keys.NewManager(store, box, logger, auditLog)
	if err := keyManager.Init(ctx); err != nil {
		return nil, err
	}

	pages, err := ui.NewPages(base)
	if err != nil {
		return nil, err
	}
	nodeMetrics.WatchOutbox(store.MailCounts)
	sender := &mail.Sender{Store: store, Box: box, Logger: logger, Domain: issuer.Hostname(), Metrics: nodeMetrics,
		Timeout: cfg.SMTPTimeout, Lease: 2 * cfg.SMTPTimeout}
	if cfg.SMTPURL != "" {
		if sender.Transport, err = mail.NewSMTP(cfg.SMTPURL, mailFrom(cfg, issuer)); err != nil {
			return nil, err
		}
	}
	nodeMetrics.WatchEvents(store.EventCounts)
	nodeMetrics.WatchLogouts(store.LogoutCounts)
	deliverer := &events.Deliverer{Store: store, Box: box, Audit: auditLog, Logger: logger, Metrics: nodeMetrics,
		Client: events.NewClient(cfg.WebhookTimeout), Timeout: cfg.WebhookTimeout}
	stop := func() {}
	switch cfg.EventLog {
	case events.LogStdout:
		// Standard output is the event stream's alone: the process log
		// goes to standard error.
		deliverer.Log = &events.JSONLines{W: os.Stdout}
	case events.LogOTLP:
		otlp, err := events.NewOTLP(ctx, tracing.ServiceName, buildVersion())
		if err != nil {
			return nil, err
		}
		deliverer.Log = otlp
		stop = func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
			defer cancel()
			_ = otlp.Shutdown(sctx)
		}
	}
	users := identity.NewManager(store, identity.NewHasher(), auditLog, identity.Throttle{
		MaxFailures:     int(cfg.LoginMaxFailures),
		Window:          cfg.LoginFailureWindow,
		LockoutFailures: int(cfg.LockoutFailures),
	})
	// An account guessed at from many networks is told to its user, if
	// there is one.
	assessor.Accounts = users
	roleManager := roles.NewManager(store, auditLog)
	// Authenticator apps show the issuer's host, so users can tell their
	// Latchkey accounts apart.
	mfa := identity.NewMFA(store, box, issuer.Host, identity.Throttle{
		MaxFailures:     int(cfg.MFAMaxFailures),
		Window:          cfg.MFAFailureWindow,
		LockoutFailures: int(cfg.LockoutFailures),
	}, auditLog)
	// Passkeys belong to the issuer's host name (the WebAuthn RP ID), and
	// answers are accepted from the issuer's origin only.
	passkeys, err := passkey.New(cfg.Issuer, issuer.Host, store, auditLog)
	if err != nil {
		return nil, err
	}
	sessions := signin.NewSessions(store, auditLog, signin.SessionConfig{
		Secure:        issuer.Scheme == "https",
		IdleTimeout:   cfg.SessionIdleTimeout,
		Lifetime:      cfg.SessionLifetime,
		ParkRateLimit: int(cfg.AuthorizeRateLimit),
	})
	trusted := trust.New(store, auditLog, box, cfg.TrustedDeviceLifetime, issuer.Scheme == "https")
	clients := client.NewManager(store, auditLog, cfg.ClientSecretGracePeriod)
	// API keys are checked at the introspection endpoint like tokens, and
	// made and revoked by the admin API and the account page.
	apiKeys := apikey.New(store, clients, auditLog, logger, apikey.Config{PersonalScopes: cfg.PersonalAPIKeyScopes})
	// Usage plans: the meter charges the protocol endpoints' calls; the
	// manager applies changes made on this node to its meter at once.
	meter := usage.NewMeter(store, logger, nodeMetrics)
	plans := usage.NewManager(store, auditLog, meter)
	// RFC 8707 resources: registered by the admin API and the CLI, named
	// by clients at the authorization and token endpoints.
	resources := resource.NewManager(store, auditLog)
	provider, err := oauth.New(oauth.Config{
		Issuer:                    cfg.Issuer,
		Secrets:                   cfg.Secrets,
		AccessTokenLifespan:       cfg.AccessTokenLifespan,
		RefreshTokenLifespan:      cfg.RefreshTokenLifespan,
		IDTokenLifespan:           cfg.IDTokenLifespan,
		AuthorizationCodeLifespan: cfg.AuthorizationCodeLifespan,
		EnforcePKCE:               cfg.EnforcePKCE,
		AccessTokenSigningAlg:     jose.RS256,
		ClientRateLimit:           int(cfg.ClientRateLimit),
		ClientAuthFailureLimit:    int(cfg.ClientAuthFailureLimit),
		PAR:                       cfg.PAR,
		RequirePAR:                cfg.RequirePAR,
		PARLifespan:               cfg.PARLifespan,
		Device: oauth.DeviceConfig{Enabled: cfg.DeviceFlow, Lifespan: cfg.DeviceCodeLifespan,
			Interval: cfg.DevicePollInterval, PendingLimit: int(cfg.DevicePendingLimit)},
	}, oauth.Deps{Store: store, Keys: keyManager, Logger: logger, Users: users, Roles: roleManager,
		Audit: auditLog, Metrics: nodeMetrics, APIKeys: apiKeys, Meter: meter, Resources: resources, Devices: store})
	if err != nil {
		return nil, err
	}
	// The links Latchkey mails, and what following each does.
	accounts := &account.Service{
		Store:         store,
		Users:         users,
		MFA:           mfa,
		Audit:         auditLog,
		Mail:          outbox,
		Box:           box,
		Issuer:        strings.TrimSuffix(cfg.Issuer, "/"),
		SignIn:        strings.TrimSuffix(cfg.Issuer, "/") + signin.LoginPath,
		Forgot:        strings.TrimSuffix(cfg.Issuer, "/") + signin.ForgotPath,
		SignUpDomains: cfg.SignUpDomains,
	}
	browserSignIn := &signin.Service{
		Protocol:      provider,
		Users:         users,
		MFA:           mfa,
		Passkeys:      passkeys,
		Clients:       clients,
		Sessions:      sessions,
		Devices:       device.New(box, issuer.Scheme == "https"),
		Pages:         pages,
		FailureLimit:  ratelimit.New(int(cfg.SignInRateLimit), time.Minute),
		AttemptLimit:  ratelimit.New(int(cfg.SignInAttemptLimit), time.Minute),
		ReauthWindow:  cfg.ReauthWindow,
		Logger:        logger,
		Base:          base,
		Metrics:       nodeMetrics,
		Accounts:      accounts,
		MailLimit:     ratelimit.New(int(cfg.MailRequestLimit), time.Hour),
		SignUp:        cfg.SignUp == "open",
		SignUpDomains: cfg.SignUpDomains,

		AccountDeletion: cfg.AccountDeletion,
		Trust:           trusted,
		Ceremonies:      signin.NewCeremonies(box, issuer.Scheme == "https"),
		Risk:            assessor,
		APIKeys:         apiKeys,
	}
	if cfg.DeviceFlow {
		// RFC 8628: users approve devices at /device; wrong codes are
		// counted in Postgres, for every node together.
		browserSignIn.Device = &signin.DeviceFlow{Guesses: store,
			AddressFailures: int(cfg.DeviceCodeFailures), GlobalFailures: int(cfg.DeviceCodeGlobalFailures)}
	}

	opts := server.Options{
		Logger: logger,
		HSTS:   issuer.Scheme == "https",
		Ready:  store.Ping,

		TrustedProxies: cfg.TrustedProxies,
		Tracer:         tracer,
	}
	publicOpts, adminOpts := opts, opts
	publicOpts.Observer = nodeMetrics.HTTP("public")
	adminOpts.Observer = nodeMetrics.HTTP("admin")
	// Every public endpoint takes forms, and browsers get a page when one
	// is refused; the admin API takes JSON and checks its media types
	// itself.
	publicOpts.Bodies = server.BodyPolicy{MaxBytes: server.FormBodyLimit, FormsOnly: true,
		Refuse: server.ProtocolRefusal(func(w http.ResponseWriter, r *http.Request, status int, title, message string) {
			pages.Message(w, status, title, ui.MessagePage{Message: message, RequestID: server.RequestID(r.Context())})
		})}
	adminOpts.Bodies = server.BodyPolicy{MaxBytes: adminapi.MaxBody, Refuse: adminapi.RefuseBody}
	// Dynamic client registration (RFC 7591, RFC 7592), when on: its
	// endpoint takes JSON, the one public endpoint that does.
	registrations := registration.New(store, clients, auditLog, registrationConfig(cfg))
	registrationOn := cfg.Registration == registration.Open || cfg.Registration == registration.Token
	// Its path takes JSON even when off, so that a client trying it is
	// told 404, not that its JSON should have been a form.
	publicOpts.Bodies.JSONPaths = []string{base + discovery.RegistrationPath}
	doc := discovery.New(cfg.Issuer, discovery.Features{Registration: registrationOn, PAR: cfg.PAR, RequirePAR: cfg.RequirePAR,
		DeviceAuthorization: cfg.DeviceFlow, BackchannelLogout: true})
	metadataPath, err := discovery.OAuthMetadataPath(cfg.Issuer)
	if err != nil {
		return nil, err
	}

	// The protocol routes live under the issuer's path, so an issuer such
	// as https://example.com/id serves https://example.com/id/.well-known/...
	protocol := chi.NewRouter()
	protocol.Get(discovery.OpenIDConfigurationPath, doc.Handler().ServeHTTP)
	protocol.Get(discovery.JWKSPath, keyManager.ServeJWKS)
	// fosite answers other methods with invalid_request, in the protocol's
	// error shape, so these take every method.
	protocol.HandleFunc(discovery.TokenPath, provider.Token)
	protocol.HandleFunc(discovery.IntrospectionPath, provider.Introspect)
	protocol.HandleFunc(discovery.RevocationPath, provider.Revoke)
	if cfg.PAR {
		protocol.HandleFunc(discovery.PushedAuthorizationPath, provider.PushAuthorize)
	}
	if cfg.DeviceFlow {
		protocol.HandleFunc(discovery.DeviceAuthorizationPath, provider.DeviceAuthorization)
	}
	protocol.Get(discovery.UserinfoPath, provider.Userinfo)
	protocol.Post(discovery.UserinfoPath, provider.Userinfo)
	if registrationOn {
		(&registration.Handler{Manager: registrations, Logger: logger,
			Limit: ratelimit.New(int(cfg.RegistrationRateLimit), time.Minute)}).Mount(protocol, discovery.RegistrationPath)
	}
	protocol.Handle(ui.StaticPath+"/*", ui.Static(base))
	// The browser's side: the authorization endpoint and the pages it
	// leads to, the account page and end-session.
	browserSignIn.Mount(protocol)

	public := server.NewRouter(publicOpts)
	public.Get(metadataPath, doc.Handler().ServeHTTP)
	public.Get("/favicon.ico", ui.Favicon)
	public.Mount(mountPoint(issuer), protocol)

	admin := server.NewRouter(adminOpts)
	// Beside /healthz, unauthenticated: it holds no personal data (no
	// label names a client or user), and the admin listener is private.
	admin.Get("/metrics", nodeMetrics.Handler().ServeHTTP)
	admin.Mount(adminapi.Path, (&adminapi.API{
		Clients:   clients,
		Users:     users,
		Accounts:  accounts,
		MFA:       mfa,
		Passkeys:  passkeys,
		Trust:     trusted,
		APIKeys:   apiKeys,
		Roles:     roleManager,
		Resources: resources,
		Keys:      keyManager,
		Mail:      mail.NewManager(store, outbox, auditLog),
		Webhooks:  events.NewManager(store, box, auditLog),
		Plans:     plans,
		Audit:     auditLog,

		Registrations: registrations,
		Tokens:        provider,
		Cursors:       box,
		Logger:        logger,
	}).Routes())

	return &app{
		keys:      keyManager,
		janitor:   newJanitor(store, cfg, logger),
		public:    public,
		admin:     admin,
		outbox:    outbox,
		sender:    sender,
		deliverer: deliverer,
		// Logout tokens go out as webhooks do: the same dialer rules and
		// timeout (LATCHKEY_WEBHOOK_TIMEOUT), signed with the keys that
		// sign the apps' ID tokens.
		logouts: &logout.Deliverer{Store: store, Clients: clients, Keys: keyManager, Issuer: cfg.Issuer, Logger: logger,
			Metrics: nodeMetrics, Client: events.NewClient(cfg.WebhookTimeout), Timeout: cfg.WebhookTimeout},
		meter: meter,
		stop:  stop,
	}, nil
}

// registrationConfig is what dynamic client registration allows, from
// cfg: for a node, and for latchkey registration-tokens, whose tokens
// take the open registration's cap unless they name their own.
func registrationConfig(cfg config.Config) registration.Config {
	return registration.Config{
		Mode: cfg.Registration,
		Open: registration.Policy{GrantTypes: registration.OpenGrantTypes, Scopes: cfg.RegistrationScopes,
			RedirectURIs: cfg.RegistrationRedirectURIs},
		MaxOpenClients: int(cfg.RegistrationMaxClients),
		AddressLimit:   int(cfg.RegistrationAddressLimit),
		Endpoint:       strings.TrimSuffix(cfg.Issuer, "/") + discovery.RegistrationPath,
	}
}

// newOutbox is where mail is written, by a node and by latchkey mail
// test: its templates call this provider ({{site}}) by the issuer's host.
func newOutbox(store mail.Store, box mail.Sealer, issuer *url.URL) (*mail.Outbox, error) {
	templates, err := mail.LoadTemplates(web.Mail(), issuer.Host)
	if err != nil {
		return nil, err
	}
	return mail.NewOutbox(store, box, templates), nil
}

// notices are the security notices cfg turns on, with the pages they
// point users to; the servers and the CLI mail the same.
func notices(cfg config.Config) notify.Config {
	base := strings.TrimSuffix(cfg.Issuer, "/")
	return notify.Config{Kinds: cfg.Notifications, SignInURL: base + signin.LoginPath, AccountURL: base + signin.AccountPath}
}

// newAssessor is the risk assessment cfg asks for: the policy
// (LATCHKEY_RISK_POLICY, else the defaults) and GeoIP (LATCHKEY_GEOIP_DB,
// else the geographic signals are off, as the log says), counting into m.
// Its Audit and Accounts are set by wire, which builds them after it.
func newAssessor(cfg config.Config, store *postgres.Store, m *metrics.Metrics, logger *slog.Logger) (*risk.Assessor, error) {
	policy, err := risk.LoadPolicy(cfg.RiskPolicy)
	if err != nil {
		return nil, err
	}
	a := &risk.Assessor{Policy: policy, Store: store, Metrics: m}
	if cfg.GeoIPDB != "" {
		g, err := risk.OpenGeoIP(cfg.GeoIPDB)
		if err != nil {
			return nil, err
		}
		a.Geo = g
	} else {
		logger.Info("risk: no GeoIP database (LATCHKEY_GEOIP_DB); the new_country and impossible_travel signals are off")
	}
	signals := make([]string, len(risk.Signals))
	for i, s := range risk.Signals {
		signals[i] = string(s)
	}
	actions := make([]string, len(risk.Actions))
	for i, act := range risk.Actions {
		actions[i] = string(act)
	}
	m.WatchRisk(signals, actions, store.BlockedNetworks)
	return a, nil
}

// mailFrom is the From address of the node's mail: LATCHKEY_MAIL_FROM, or
// no-reply at the issuer's host.
func mailFrom(cfg config.Config, issuer *url.URL) string {
	if cfg.MailFrom != "" {
		return cfg.MailFrom
	}
	return "no-reply@" + issuer.Hostname()
}

func mountPoint(issuer *url.URL) string {
	if p := strings.TrimSuffix(issuer.Path, "/"); p != "" {
		return p
	}
	return "/"
}

// newLogger builds the process logger from the configured level and format.
func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openStore opens the configured database. tracer, if not nil, traces its
// calls within traced requests.
func openStore(cfg config.Config, tracer trace.TracerProvider) (*postgres.Store, error) {
	return postgres.Open(cfg.DatabaseURL, postgres.Options{
		MaxConns: cfg.DatabaseMaxConns,
		Timeout:  cfg.DatabaseTimeout,
		Tracer:   tracer,
	})
}

// tracingFlushTimeout bounds how long a stopping node waits to export the
// spans it has not sent yet.
const tracingFlushTimeout = 5 * time.Second

// startTracing turns tracing on if the OTEL_* environment asks for it
// (pkg/tracing). It returns the tracer provider, nil when tracing is off; the
// logger, whose lines within a traced request then carry trace_id and
// span_id; and stop, which exports the spans not sent yet and must be called
// once the node has stopped serving.
func startTracing(ctx context.Context, logger *slog.Logger) (trace.TracerProvider, *slog.Logger, func(), error) {
	tp, err := tracing.Start(ctx, buildVersion())
	if err != nil || tp == nil {
		return nil, logger, func() {}, err
	}
	logger = slog.New(tracing.LogHandler(logger.Handler()))
	logger.Info("tracing on")
	stop := func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
		defer cancel()
		if err := tp.Shutdown(flushCtx); err != nil {
			logger.Warn("tracing: exporting the last spans failed", "err", err)
		}
	}
	return tp, logger, stop, nil
}
