// Package config is Latchkey's configuration: every setting, where it comes
// from, its default, and the rules its value must follow.
//
// Each setting is read from a flag given explicitly on the command line, else
// from its LATCHKEY_ environment variable, else from its default. Loading is
// two steps. Parse turns text into a Config and reports text that cannot be
// read at all, such as a malformed duration. Validate then checks the values
// and, for the command being run, which settings must be present. Both report
// every problem at once, one line each, so an operator fixes a deployment in
// one round rather than one error per restart.
//
// One table in this package lists every setting; the flags, their -h text
// and Settings all come from it, and docs/configuration.md is tested against
// it. Parse registers every setting as a flag of a flag.FlagSet; Bind
// registers the few a command uses on its pflag.FlagSet, the form the
// latchkey CLI (cobra) takes, and reads the rest from the environment.
package config

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is Latchkey's whole configuration. It is passed by value to whoever
// needs it; there is no global state.
type Config struct {
	// DatabaseURL is the PostgreSQL connection string, in URL or key=value
	// form. It may hold a password, so it never appears in an error.
	DatabaseURL string
	// Issuer is the public base URL of this provider. It is the iss claim of
	// every token, and clients compare it byte for byte.
	Issuer string
	// Secrets encrypt data at rest. The first encrypts; every one decrypts,
	// which is what lets an operator rotate them.
	Secrets [][]byte
	// PublicAddr is where the OAuth2/OIDC endpoints and login pages listen.
	PublicAddr string
	// AdminAddr is where the admin API listens. It defaults to loopback
	// because the admin API must not face the internet.
	AdminAddr string
	// AccessTokenLifespan is how long an access token is accepted.
	AccessTokenLifespan time.Duration
	// RefreshTokenLifespan is how long a refresh token can be redeemed.
	RefreshTokenLifespan time.Duration
	// IDTokenLifespan is how long an ID token is valid.
	IDTokenLifespan time.Duration
	// AuthorizationCodeLifespan is how long an authorization code can be
	// exchanged for tokens.
	AuthorizationCodeLifespan time.Duration
	// LogLevel is the least severe level that is logged.
	LogLevel slog.Level
	// LogFormat is "json" or "text".
	LogFormat string
	// DatabaseMaxConns caps this node's connection pool. Nodes share the
	// server's max_connections, so it is a per-node figure.
	DatabaseMaxConns int32
	// DatabaseTimeout is the deadline for every database call; it is also
	// sent to the server as statement_timeout.
	DatabaseTimeout time.Duration
	// KeysReloadInterval bounds how long a node takes to see signing keys
	// rotated from another node.
	KeysReloadInterval time.Duration
	// ShutdownTimeout is how long a graceful shutdown waits for requests in
	// flight before closing them.
	ShutdownTimeout time.Duration
	// EnforcePKCE requires PKCE of confidential clients as well as public
	// ones, as RFC 9700 §2.1.1 recommends.
	EnforcePKCE bool
	// PAR serves the pushed authorization request endpoint (RFC 9126).
	PAR bool
	// RequirePAR refuses every authorization request that was not pushed
	// first; without it only clients registered with
	// require_pushed_authorization_requests must push.
	RequirePAR bool
	// PARLifespan is how long a pushed request's request_uri may wait to
	// be used.
	PARLifespan time.Duration
	// ClientSecretGracePeriod is how long a client's previous secret keeps
	// working after a rotation, unless the rotation says otherwise.
	ClientSecretGracePeriod time.Duration
	// JanitorInterval is how often serve deletes expired tokens; 0 turns
	// the loop off (run latchkey janitor from cron instead).
	JanitorInterval time.Duration
	// JanitorBatchSize is how many rows one janitor statement deletes.
	JanitorBatchSize int32
	// SessionIdleTimeout ends a browser session unused for this long.
	SessionIdleTimeout time.Duration
	// SessionLifetime ends a browser session this long after sign-in.
	SessionLifetime time.Duration
	// MFAMaxFailures is how many wrong second-factor codes a user may
	// enter within MFAFailureWindow before each further try must wait.
	MFAMaxFailures int32
	// MFAFailureWindow is the period over which wrong codes are counted.
	MFAFailureWindow time.Duration
	// LoginMaxFailures is how many wrong passwords an account may get
	// within LoginFailureWindow before each further try must wait.
	LoginMaxFailures int32
	// LoginFailureWindow is the period over which wrong passwords are
	// counted.
	LoginFailureWindow time.Duration
	// LockoutFailures locks an account for an hour once it has this many
	// wrong passwords, or this many wrong codes, within an hour.
	LockoutFailures int32
	// ClientRateLimit is how many requests per second each client may make
	// to each of the token, introspection and revocation endpoints of a
	// node; 0 is no limit.
	ClientRateLimit int32
	// SignInRateLimit is how many failed sign-in attempts (wrong passwords
	// and codes) per minute each IP address may make on a node; 0 is no
	// limit.
	SignInRateLimit int32
	// SignInAttemptLimit is how many sign-in attempts, failed or not, per
	// minute each IP address may make on a node: a ceiling high enough for
	// many people behind one address; 0 is no limit.
	SignInAttemptLimit int32
	// ReauthWindow is how recently a user must have proven who they are
	// to make a sensitive change on their account page.
	ReauthWindow time.Duration
	// TrustedDeviceLifetime is how long a browser the user trusts at the
	// second-factor step ("Don't ask again on this browser") skips that
	// step; 0 turns trusted devices off (no checkbox, no cookie honoured).
	TrustedDeviceLifetime time.Duration
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when telling where a request came from.
	TrustedProxies []netip.Prefix
	// AuthorizeRateLimit is how many authorization requests per minute
	// each IP address may park (in a browser session, while the user signs
	// in or consents) on a node; 0 is no limit.
	AuthorizeRateLimit int32
	// AuditRetention is how long the janitor keeps audit events; 0 keeps
	// them for ever.
	AuditRetention time.Duration
	// ClientAuthFailureLimit is how many failed client authentications per
	// minute each client ID may have from each IP address on a node, at
	// the token, introspection and revocation endpoints; 0 is no limit.
	ClientAuthFailureLimit int32
	// SMTPURL is the mail server that the outbox delivers through, such as
	// smtp://user:pass@mail.example.com:587 (STARTTLS required) or
	// smtps://mail.example.com:465 (TLS from the start); see pkg/mail.
	// Empty keeps mail in the outbox, unsent (latchkey dev shows it at
	// /dev/mail instead).
	SMTPURL string
	// SMTPTimeout bounds one delivery attempt; a message claimed by a
	// node that died is taken over after twice this.
	SMTPTimeout time.Duration
	// MailFrom is the From address of every mail, such as
	// "Example ID <no-reply@example.com>"; empty is no-reply at the
	// issuer's host.
	MailFrom string
	// MailRequestLimit is how many mail-sending requests per hour (forgot
	// password, sign-up, resending a verification) an IP address may make
	// on a node; 0 is no limit.
	MailRequestLimit int32
	// Notifications are the security notifications users are mailed
	// (pkg/notify names them); empty mails none.
	Notifications []string
	// SignUp says whether people may create their own accounts: "off" or
	// "open".
	SignUp string
	// SignUpDomains, if not empty, are the only email domains sign-up
	// accepts.
	SignUpDomains []string
	// AccountDeletion lets users delete their own account from the
	// account page.
	AccountDeletion bool
	// PersonalAPIKeyScopes are the scopes users may give their personal
	// API keys (pkg/apikey); none turns personal keys off.
	PersonalAPIKeyScopes []string
	// GeoIPDB is the path of a MaxMind City or Country database (.mmdb)
	// that places sign-ins for the risk signals new_country and
	// impossible_travel (pkg/risk); empty turns them off.
	GeoIPDB string
	// RiskPolicy is the path of a YAML file that overrides the risk
	// policy's defaults (pkg/risk; docs/security-events.md); empty keeps
	// the defaults.
	RiskPolicy string
	// EventLog is where every audit event is also delivered as a log
	// record for a SIEM (pkg/events): "none", "stdout" (JSON lines) or
	// "otlp" (OpenTelemetry logs, configured by OTEL_EXPORTER_OTLP_*).
	EventLog string
	// WebhookTimeout bounds one attempt at delivering an event to a
	// webhook; a node that dies mid-delivery has the event delivered by
	// another after twice this.
	WebhookTimeout time.Duration
	// Registration is dynamic client registration (RFC 7591, RFC 7592;
	// pkg/registration): "off", "open" (anyone may register) or "token"
	// (an initial access token an admin issued is required).
	Registration string
	// RegistrationScopes are the scopes open registration allows, and an
	// initial access token unless it names its own.
	RegistrationScopes []string
	// RegistrationRedirectURIs are the redirect URI rules open
	// registration allows, and an initial access token unless it names
	// its own: loopback, any, or https URL prefixes.
	RegistrationRedirectURIs []string
	// RegistrationRateLimit is how many registration requests (register,
	// read, update, delete) per minute an IP address may make on a node;
	// 0 is no limit.
	RegistrationRateLimit int32
	// RegistrationAddressLimit is how many clients one IP address may
	// register through open registration per hour, across nodes.
	RegistrationAddressLimit int32
	// RegistrationMaxClients is how many clients open registration may
	// hold at once.
	RegistrationMaxClients int32
	// DeviceFlow turns on the device authorization grant (RFC 8628): the
	// device authorization endpoint, the /device page and the device_code
	// grant at the token endpoint, for clients registered with it.
	DeviceFlow bool
	// DeviceCodeLifespan is how long a device code and its user code wait
	// for the user to approve them.
	DeviceCodeLifespan time.Duration
	// DevicePollInterval is how long a device waits between polls of the
	// token endpoint, to begin with (RFC 8628 §3.2 interval).
	DevicePollInterval time.Duration
	// DevicePendingLimit is the most device codes one client may have
	// waiting for approval at once; 0 is no limit.
	DevicePendingLimit int32
	// DeviceCodeFailures is how many wrong user codes an IP address may
	// enter within an hour, on every node together; DeviceCodeGlobalFailures
	// is how many all addresses together may. 0 is no limit.
	DeviceCodeFailures, DeviceCodeGlobalFailures int32
}

// Setting describes one configuration setting, for --help output and for
// the test that keeps docs/configuration.md true.
type Setting struct {
	// Env is the environment variable, such as LATCHKEY_ISSUER.
	Env string
	// Flag is the flag name without dashes, or "" for a setting that can be
	// given only in the environment.
	Flag string
	// Default is the default as it would be written, or "" for none.
	Default string
	// Description says what the setting is for, in one line.
	Description string
}

// Settings describes every setting, in the order docs/configuration.md lists
// them.
func Settings() []Setting {
	bs := bindings(new(Config))
	out := make([]Setting, len(bs))
	for i, b := range bs {
		out[i] = b.Setting
	}
	return out
}

// binding ties a Setting to the Config field it fills.
type binding struct {
	Setting
	// metavar names the kind of value in -h output ("-issuer url"). It
	// is never "bool", which pflag would take for a flag without a value:
	// a boolean setting, like every other, takes one.
	metavar string
	// set stores text into the field. Its error describes the text without
	// the setting's name; Parse adds that.
	set func(text string) error
}

// bindings is the table of settings, bound to the fields of c. Defaults are
// written as text and go through the same set function as any other text,
// so the documented default is exactly what a node runs with.
func bindings(c *Config) []binding {
	return []binding{
		{Setting{"LATCHKEY_DATABASE_URL", "database-url", "",
			"PostgreSQL connection URL (or key=value string)"}, "url", setString(&c.DatabaseURL)},
		{Setting{"LATCHKEY_ISSUER", "issuer", "",
			"public base URL of this provider, the iss claim of every token"}, "url", setString(&c.Issuer)},
		{Setting{"LATCHKEY_SECRETS", "", "",
			"comma-separated secrets that encrypt data at rest; the first encrypts, all decrypt"}, "", setSecrets(&c.Secrets)},
		{Setting{"LATCHKEY_PUBLIC_ADDR", "public-addr", ":8080",
			"public listen address, for the OAuth2/OIDC endpoints and login pages"}, "host:port", setString(&c.PublicAddr)},
		{Setting{"LATCHKEY_ADMIN_ADDR", "admin-addr", "127.0.0.1:8081",
			"admin API listen address; keep it off the internet"}, "host:port", setString(&c.AdminAddr)},
		{Setting{"LATCHKEY_ACCESS_TOKEN_LIFESPAN", "access-token-lifespan", "15m",
			"how long an access token is valid"}, "duration", setDuration(&c.AccessTokenLifespan)},
		{Setting{"LATCHKEY_REFRESH_TOKEN_LIFESPAN", "refresh-token-lifespan", "720h",
			"how long a refresh token can be redeemed"}, "duration", setDuration(&c.RefreshTokenLifespan)},
		{Setting{"LATCHKEY_ID_TOKEN_LIFESPAN", "id-token-lifespan", "1h",
			"how long an ID token is valid"}, "duration", setDuration(&c.IDTokenLifespan)},
		{Setting{"LATCHKEY_AUTHORIZATION_CODE_LIFESPAN", "authorization-code-lifespan", "5m",
			"how long an authorization code can be exchanged for tokens"}, "duration", setDuration(&c.AuthorizationCodeLifespan)},
		{Setting{"LATCHKEY_LOG_LEVEL", "log-level", "info",
			"least severe level logged: debug, info, warn or error"}, "level", setLogLevel(&c.LogLevel)},
		{Setting{"LATCHKEY_LOG_FORMAT", "log-format", "json",
			"log format: json or text"}, "format", setLogFormat(&c.LogFormat)},
		{Setting{"LATCHKEY_DATABASE_MAX_CONNS", "database-max-conns", "20",
			"most database connections this node opens"}, "number", setInt32(&c.DatabaseMaxConns)},
		{Setting{"LATCHKEY_DATABASE_TIMEOUT", "database-timeout", "5s",
			"deadline for every database call, also sent as statement_timeout"}, "duration", setDuration(&c.DatabaseTimeout)},
		{Setting{"LATCHKEY_KEYS_RELOAD_INTERVAL", "keys-reload-interval", "30s",
			"how often signing keys are reloaded, so a node sees keys rotated elsewhere"}, "duration", setDuration(&c.KeysReloadInterval)},
		{Setting{"LATCHKEY_SHUTDOWN_TIMEOUT", "shutdown-timeout", "15s",
			"how long a graceful shutdown waits for requests in flight"}, "duration", setDuration(&c.ShutdownTimeout)},
		{Setting{"LATCHKEY_ENFORCE_PKCE", "enforce-pkce", "true",
			"require PKCE of confidential clients too (public clients always need it)"}, "true|false", setBool(&c.EnforcePKCE)},
		{Setting{"LATCHKEY_PAR", "par", "true",
			"serve the pushed authorization request endpoint, /oauth2/par (RFC 9126)"}, "true|false", setBool(&c.PAR)},
		{Setting{"LATCHKEY_REQUIRE_PAR", "require-par", "false",
			"refuse authorization requests of every client unless pushed to /oauth2/par first; needs LATCHKEY_PAR"}, "true|false", setBool(&c.RequirePAR)},
		{Setting{"LATCHKEY_PAR_LIFESPAN", "par-lifespan", "60s",
			"how long a pushed request's request_uri may wait to be used, at most 10m"}, "duration", setDuration(&c.PARLifespan)},
		{Setting{"LATCHKEY_CLIENT_SECRET_GRACE_PERIOD", "client-secret-grace-period", "24h",
			"how long a client's previous secret keeps working after a rotation"}, "duration", setDuration(&c.ClientSecretGracePeriod)},
		{Setting{"LATCHKEY_JANITOR_INTERVAL", "janitor-interval", "10m",
			"how often serve deletes expired tokens; 0 turns it off"}, "duration", setDuration(&c.JanitorInterval)},
		{Setting{"LATCHKEY_JANITOR_BATCH_SIZE", "janitor-batch-size", "1000",
			"rows the janitor deletes per statement"}, "number", setInt32(&c.JanitorBatchSize)},
		{Setting{"LATCHKEY_SESSION_IDLE_TIMEOUT", "session-idle-timeout", "8h",
			"a browser session unused for this long ends"}, "duration", setDuration(&c.SessionIdleTimeout)},
		{Setting{"LATCHKEY_SESSION_LIFETIME", "session-lifetime", "168h",
			"a browser session ends this long after sign-in, however active"}, "duration", setDuration(&c.SessionLifetime)},
		{Setting{"LATCHKEY_MFA_MAX_FAILURES", "mfa-max-failures", "5",
			"wrong second-factor codes a user may enter before each further try waits"}, "number", setInt32(&c.MFAMaxFailures)},
		{Setting{"LATCHKEY_MFA_FAILURE_WINDOW", "mfa-failure-window", "15m",
			"period over which wrong second-factor codes are counted"}, "duration", setDuration(&c.MFAFailureWindow)},
		{Setting{"LATCHKEY_LOGIN_MAX_FAILURES", "login-max-failures", "5",
			"wrong passwords an account may get before each further try waits"}, "number", setInt32(&c.LoginMaxFailures)},
		{Setting{"LATCHKEY_LOGIN_FAILURE_WINDOW", "login-failure-window", "15m",
			"period over which wrong passwords are counted"}, "duration", setDuration(&c.LoginFailureWindow)},
		{Setting{"LATCHKEY_LOCKOUT_FAILURES", "lockout-failures", "20",
			"wrong passwords, or wrong codes, within an hour that lock an account for an hour"}, "number", setInt32(&c.LockoutFailures)},
		{Setting{"LATCHKEY_CLIENT_RATE_LIMIT", "client-rate-limit", "0",
			"requests per second a client may make to each of the token, introspection and revocation endpoints of a node; 0 is no limit (limit clients with usage plans instead)"}, "number", setInt32(&c.ClientRateLimit)},
		{Setting{"LATCHKEY_SIGNIN_RATE_LIMIT", "signin-rate-limit", "30",
			"failed sign-in attempts per minute an IP address may make on a node; 0 is no limit"}, "number", setInt32(&c.SignInRateLimit)},
		{Setting{"LATCHKEY_SIGNIN_ATTEMPT_LIMIT", "signin-attempt-limit", "300",
			"sign-in attempts, failed or not, per minute an IP address may make on a node; 0 is no limit"}, "number", setInt32(&c.SignInAttemptLimit)},
		{Setting{"LATCHKEY_REAUTH_WINDOW", "reauth-window", "10m",
			"how recently a user must have signed in to change their second factor, end their other sessions or delete their account"}, "duration", setDuration(&c.ReauthWindow)},
		{Setting{"LATCHKEY_TRUSTED_DEVICE_LIFETIME", "trusted-device-lifetime", "720h",
			"how long a browser the user trusts at the second-factor step skips that step; 0 turns trusted devices off"}, "duration", setDuration(&c.TrustedDeviceLifetime)},
		{Setting{"LATCHKEY_TRUSTED_PROXIES", "trusted-proxies", "",
			"comma-separated IP addresses or CIDR ranges of proxies whose X-Forwarded-For is believed"}, "list", setPrefixes(&c.TrustedProxies)},
		{Setting{"LATCHKEY_AUTHORIZE_RATE_LIMIT", "authorize-rate-limit", "30",
			"authorization requests per minute an IP address may park on a node while its user signs in; 0 is no limit"}, "number", setInt32(&c.AuthorizeRateLimit)},
		{Setting{"LATCHKEY_AUDIT_RETENTION", "audit-retention", "8760h",
			"how long the janitor keeps audit events; 0 keeps them for ever"}, "duration", setDuration(&c.AuditRetention)},
		{Setting{"LATCHKEY_CLIENT_AUTH_FAILURE_LIMIT", "client-auth-failure-limit", "20",
			"failed client authentications per minute a client ID may have from an IP address on a node; 0 is no limit"}, "number", setInt32(&c.ClientAuthFailureLimit)},
		{Setting{"LATCHKEY_SMTP_URL", "smtp-url", "",
			"mail server to send through: smtp://user:pass@host:587 (STARTTLS) or smtps://host:465; empty keeps mail unsent in the outbox"}, "url", setString(&c.SMTPURL)},
		{Setting{"LATCHKEY_SMTP_TIMEOUT", "smtp-timeout", "30s",
			"how long one attempt at delivering a mail may take; a node that dies mid-send has its mail sent by another after twice this"}, "duration", setDuration(&c.SMTPTimeout)},
		{Setting{"LATCHKEY_MAIL_FROM", "mail-from", "",
			"From address of every mail, such as \"Example ID <no-reply@example.com>\"; empty is no-reply@ the issuer's host"}, "address", setString(&c.MailFrom)},
		{Setting{"LATCHKEY_MAIL_REQUEST_LIMIT", "mail-request-limit", "20",
			"requests that send mail (forgot password, sign-up, resend) per hour an IP address may make on a node; 0 is no limit"}, "number", setInt32(&c.MailRequestLimit)},
		{Setting{"LATCHKEY_NOTIFICATIONS", "notifications", "password,email,mfa,recovery-codes,new-browser",
			"security notifications mailed to users: any of password, email, mfa, recovery-codes, new-browser, or none"}, "list", setWords(&c.Notifications)},
		{Setting{"LATCHKEY_SIGNUP", "signup", "off",
			"whether people may create their own accounts: off or open"}, "off|open", setLogFormat(&c.SignUp)},
		{Setting{"LATCHKEY_SIGNUP_DOMAINS", "signup-domains", "",
			"comma-separated email domains sign-up accepts; empty accepts any"}, "list", setWords(&c.SignUpDomains)},
		{Setting{"LATCHKEY_ACCOUNT_DELETION", "account-deletion", "false",
			"let users delete their own account from the account page"}, "true|false", setBool(&c.AccountDeletion)},
		{Setting{"LATCHKEY_PERSONAL_API_KEY_SCOPES", "personal-api-key-scopes", "",
			"scopes users may give their personal API keys, comma- or space-separated; empty turns personal keys off"}, "list", setScopes(&c.PersonalAPIKeyScopes)},
		{Setting{"LATCHKEY_GEOIP_DB", "geoip-db", "",
			"path of a MaxMind City or Country database (.mmdb) for the new_country and impossible_travel risk signals; empty turns them off"}, "path", setString(&c.GeoIPDB)},
		{Setting{"LATCHKEY_RISK_POLICY", "risk-policy", "",
			"path of a YAML file overriding the risk policy's defaults (docs/security-events.md); empty keeps the defaults"}, "path", setString(&c.RiskPolicy)},
		{Setting{"LATCHKEY_EVENT_LOG", "event-log", "none",
			"also deliver every audit event, at least once, as a log record for a SIEM: none, stdout (JSON lines) or otlp (OTEL_EXPORTER_OTLP_*)"}, "none|stdout|otlp", setLogFormat(&c.EventLog)},
		{Setting{"LATCHKEY_WEBHOOK_TIMEOUT", "webhook-timeout", "10s",
			"how long one attempt at delivering an event to a webhook may take; a node that dies mid-delivery has it delivered by another after twice this"}, "duration", setDuration(&c.WebhookTimeout)},
		{Setting{"LATCHKEY_REGISTRATION", "registration", "off",
			"dynamic client registration (RFC 7591/7592): off, open (anyone may register) or token (an initial access token an admin issued is required)"}, "off|open|token", setLogFormat(&c.Registration)},
		{Setting{"LATCHKEY_REGISTRATION_SCOPES", "registration-scopes", "openid,profile,email,offline_access",
			"scopes a registered client may have, under open registration and for initial access tokens that name none; never the admin scopes"}, "list", setScopes(&c.RegistrationScopes)},
		{Setting{"LATCHKEY_REGISTRATION_REDIRECT_URIS", "registration-redirect-uris", "loopback",
			"redirect URI rules of open registration and of initial access tokens that name none: loopback, any, or https URL prefixes ending in /"}, "list", setScopes(&c.RegistrationRedirectURIs)},
		{Setting{"LATCHKEY_REGISTRATION_RATE_LIMIT", "registration-rate-limit", "20",
			"registration requests (register, read, update, delete) per minute an IP address may make on a node; 0 is no limit"}, "number", setInt32(&c.RegistrationRateLimit)},
		{Setting{"LATCHKEY_REGISTRATION_ADDRESS_LIMIT", "registration-address-limit", "10",
			"clients an IP address (an IPv6 /64) may register through open registration per hour, counted across nodes"}, "number", setInt32(&c.RegistrationAddressLimit)},
		{Setting{"LATCHKEY_REGISTRATION_MAX_CLIENTS", "registration-max-clients", "1000",
			"clients open registration may hold at once; further registrations are refused until some are deleted"}, "number", setInt32(&c.RegistrationMaxClients)},
		{Setting{"LATCHKEY_DEVICE_FLOW", "device-flow", "false",
			"offer the device authorization grant (RFC 8628) to clients registered with it"}, "true|false", setBool(&c.DeviceFlow)},
		{Setting{"LATCHKEY_DEVICE_CODE_LIFESPAN", "device-code-lifespan", "10m",
			"how long a device code and its user code wait for the user to approve them"}, "duration", setDuration(&c.DeviceCodeLifespan)},
		{Setting{"LATCHKEY_DEVICE_POLL_INTERVAL", "device-poll-interval", "5s",
			"how long a device waits between polls of the token endpoint, at first; each poll too soon adds 5s"}, "duration", setDuration(&c.DevicePollInterval)},
		{Setting{"LATCHKEY_DEVICE_PENDING_LIMIT", "device-pending-limit", "100",
			"device codes a client may have waiting for approval at once; 0 is no limit"}, "number", setInt32(&c.DevicePendingLimit)},
		{Setting{"LATCHKEY_DEVICE_CODE_FAILURES", "device-code-failures", "10",
			"wrong user codes an IP address may enter at /device per hour, on all nodes together; 0 is no limit"}, "number", setInt32(&c.DeviceCodeFailures)},
		{Setting{"LATCHKEY_DEVICE_CODE_GLOBAL_FAILURES", "device-code-global-failures", "1000",
			"wrong user codes all addresses together may enter at /device per hour; 0 is no limit"}, "number", setInt32(&c.DeviceCodeGlobalFailures)},
	}
}

// Parse registers a flag for every setting on fs, parses args, and fills a
// Config from the flags given explicitly, then the environment (read through
// lookupEnv, normally os.LookupEnv), then the defaults. An environment
// variable set to the empty string counts as unset, because deployment
// templates often define variables they leave blank.
//
// Parse reports every value it cannot read (a malformed duration, number or
// log level), all at once, one line per problem, each naming the setting.
// Flag values are read here too, rather than by the flag package, so that a
// bad flag is reported with every other problem instead of alone. Parse does
// not check required settings or ranges: that is Validate.
//
// The caller may register its own flags on fs beforehand and reads
// positional arguments with fs.Args(). If fs.Parse fails (an unknown flag,
// or -h, which gives flag.ErrHelp), Parse returns that error unchanged.
func Parse(fs *flag.FlagSet, args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	var c Config
	bs := bindings(&c)
	flags := map[string]*flagText{}
	for _, b := range bs {
		if b.Flag == "" {
			continue
		}
		flags[b.Env] = &flagText{text: b.Default}
		fs.Var(flags[b.Env], b.Flag, fmt.Sprintf("%s (`%s`, env %s)", b.Description, b.metavar, b.Env))
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if _, err := read(bs, flags, nil, lookupEnv); err != nil {
		return Config{}, err
	}
	return c, nil
}

// read stores into bs's fields, for each setting, the first of: its flag in
// flags if it was given, its environment variable if set to something other
// than "", and its default, this command's own from defaults or else the
// table's. It reports every value it cannot read, all at once, and returns
// which settings were given rather than defaulted, by environment variable.
func read(bs []binding, flags map[string]*flagText, defaults map[string]string, lookupEnv func(string) (string, bool)) (map[string]bool, error) {
	given := map[string]bool{}
	var problems []error
	for _, b := range bs {
		def, ok := defaults[b.Env]
		if !ok {
			def = b.Default
		}
		var text, from string
		if f := flags[b.Env]; f != nil && f.given {
			text, from = f.text, "the command line"
			given[b.Env] = true
		} else if v, ok := lookupEnv(b.Env); ok && v != "" {
			text, from = v, "the environment"
			given[b.Env] = true
		} else if def != "" {
			text, from = def, "the default"
		} else {
			continue
		}
		if err := b.set(text); err != nil {
			problems = append(problems, fmt.Errorf("%s: %s from %s %v", label(b.Setting), describe(b, text), from, err))
		}
	}
	return given, errors.Join(problems...)
}

// describe quotes text for an error message, except for the settings that
// may hold a password or a secret.
func describe(b binding, text string) string {
	switch b.Env {
	case "LATCHKEY_DATABASE_URL", "LATCHKEY_SECRETS", "LATCHKEY_SMTP_URL":
		return "the value"
	}
	return strconv.Quote(text)
}

// label names a setting at the start of an error line: its environment
// variable, and its flag when it has one.
func label(s Setting) string {
	if s.Flag == "" {
		return s.Env
	}
	return s.Env + " (--" + s.Flag + ")"
}

// flagText records a flag's text for Parse or Load to read later, and
// whether the flag was given, which is what lets an explicit flag beat the
// environment. It is a flag.Value and a pflag.Value both.
type flagText struct {
	text  string
	given bool
	// metavar names the kind of value in pflag's help ("--issuer url").
	metavar string
}

func (f *flagText) String() string {
	if f == nil {
		return ""
	}
	return f.text
}

func (f *flagText) Set(text string) error {
	f.text, f.given = text, true
	return nil
}

// Type is what pflag shows as the kind of value in help.
func (f *flagText) Type() string { return f.metavar }

func setString(p *string) func(string) error {
	return func(text string) error {
		*p = text
		return nil
	}
}

// setSecrets splits on commas and trims spaces around each entry. It keeps
// empty entries, so that Validate can point at a stray comma rather than
// silently run with fewer secrets than the operator listed.
func setSecrets(p *[][]byte) func(string) error {
	return func(text string) error {
		parts := strings.Split(text, ",")
		secrets := make([][]byte, len(parts))
		for i, s := range parts {
			secrets[i] = []byte(strings.TrimSpace(s))
		}
		*p = secrets
		return nil
	}
}

// setPrefixes reads comma-separated IP addresses and CIDR ranges; an
// address is a range of one.
func setPrefixes(p *[]netip.Prefix) func(string) error {
	return func(text string) error {
		var out []netip.Prefix
		for _, s := range strings.Split(text, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if pfx, err := netip.ParsePrefix(s); err == nil {
				out = append(out, pfx.Masked())
				continue
			}
			addr, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("has %q, which is neither an IP address nor a CIDR range such as 10.0.0.0/8", s)
			}
			out = append(out, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
		}
		*p = out
		return nil
	}
}

func setDuration(p *time.Duration) func(string) error {
	return func(text string) error {
		d, err := time.ParseDuration(strings.TrimSpace(text))
		if err != nil {
			return errors.New("is not a duration; write a number with a unit, such as 90s, 15m or 1h30m")
		}
		*p = d
		return nil
	}
}

func setInt32(p *int32) func(string) error {
	return func(text string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 32)
		if errors.Is(err, strconv.ErrRange) {
			return errors.New("is too large")
		}
		if err != nil {
			return errors.New("is not a whole number")
		}
		*p = int32(n)
		return nil
	}
}

func setBool(p *bool) func(string) error {
	return func(text string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return errors.New("is not true or false")
		}
		*p = b
		return nil
	}
}

// logLevels are the levels an operator can name. slog itself also accepts
// offsets such as "INFO+2", which are not worth documenting.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func setLogLevel(p *slog.Level) func(string) error {
	return func(text string) error {
		l, ok := logLevels[strings.ToLower(strings.TrimSpace(text))]
		if !ok {
			return errors.New("is not a log level; use debug, info, warn or error")
		}
		*p = l
		return nil
	}
}

// setWords reads a comma-separated list, each word trimmed and in lower
// case; "none" is the empty list. Validate checks the words.
func setWords(p *[]string) func(string) error {
	return func(text string) error {
		var out []string
		for _, w := range strings.Split(text, ",") {
			if w = strings.ToLower(strings.TrimSpace(w)); w != "" && w != "none" {
				out = append(out, w)
			}
		}
		*p = out
		return nil
	}
}

// setScopes reads OAuth scopes, which are case-sensitive, separated by
// commas or spaces.
func setScopes(p *[]string) func(string) error {
	return func(text string) error {
		*p = strings.Fields(strings.ReplaceAll(text, ",", " "))
		return nil
	}
}

// setLogFormat folds case, as log levels do; Validate checks the value.
// Other one-word choices (LATCHKEY_SIGNUP) are read the same way.
func setLogFormat(p *string) func(string) error {
	return func(text string) error {
		*p = strings.ToLower(strings.TrimSpace(text))
		return nil
	}
}
