package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/registration"
)

// Requirement says which settings a command cannot run without. Combine
// them with |; the zero Requirement needs nothing.
type Requirement uint

const (
	// NeedDatabase requires LATCHKEY_DATABASE_URL, for any command that
	// touches the database.
	NeedDatabase Requirement = 1 << iota
	// NeedIssuer requires LATCHKEY_ISSUER, for a command that issues tokens
	// or publishes discovery metadata.
	NeedIssuer
	// NeedSecrets requires LATCHKEY_SECRETS, for a command that reads or
	// writes data encrypted at rest, such as signing keys.
	NeedSecrets
)

// Limits from the protocols and from what operating Latchkey sensibly needs.
const (
	// minSecretLen matches the 256-bit key the secrets are stretched into.
	minSecretLen = 32
	// maxCodeLifespan is RFC 6749 §4.1.2's recommended maximum.
	maxCodeLifespan = 10 * time.Minute
	// maxPARLifespan is RFC 9126 §2.2's "short" for a request_uri, as long
	// as a code may live.
	maxPARLifespan     = 10 * time.Minute
	maxDatabaseConns   = 1000
	maxDatabaseTimeout = 5 * time.Minute
	// minKeysReloadInterval keeps a fleet from polling the database in a loop.
	minKeysReloadInterval = time.Second
	minJanitorInterval    = time.Second
	// maxSessionLifetime bounds how long one sign-in lasts: a stolen session
	// cookie must not work forever.
	maxSessionLifetime = 90 * 24 * time.Hour
	maxJanitorBatch    = 100000
	// minAuditRetention keeps a typo ("24m" for "24h") from sweeping the
	// audit log away.
	minAuditRetention = 24 * time.Hour
	// maxTrustedDeviceLifetime bounds how long a browser may stand in for
	// the second factor.
	maxTrustedDeviceLifetime = 8760 * time.Hour
)

// Notifications are the security notifications LATCHKEY_NOTIFICATIONS can
// name: a password changed, an email changed, two-step verification
// turned on or off, recovery codes used or renewed, a sign-in from a
// browser new to the account.
var Notifications = []string{"password", "email", "mfa", "recovery-codes", "new-browser"}

// smtpURLProblem says what is wrong with a LATCHKEY_SMTP_URL, without
// quoting it, since it may hold a password; "" if nothing.
func smtpURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "does not parse as a URL (the value is not shown because it may hold a password)"
	}
	if u.Scheme != "smtp" && u.Scheme != "smtps" {
		return "must start with smtp:// (STARTTLS) or smtps:// (TLS from the start)"
	}
	if u.Hostname() == "" {
		return "names no host; use smtp://user:password@mail.example.com:587"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "has a port that is not a number from 1 to 65535"
		}
	}
	switch u.Query().Get("tls") {
	case "", "required":
	case "none":
		if u.Scheme == "smtps" {
			return "cannot be smtps:// with tls=none"
		}
	default:
		return "has tls=" + u.Query().Get("tls") + "; it may be tls=required (the default) or tls=none, for a relay on this host only"
	}
	return ""
}

// generateHint tells an operator how to make a secret that passes.
const generateHint = "generate one with: openssl rand -base64 32"

// Validate checks every setting's value, and that the settings need names
// are present. It returns every problem at once, one line each (joined with
// errors.Join), each starting with the setting's environment variable and
// flag, for example:
//
//	LATCHKEY_ISSUER (--issuer): must use https; plain http is allowed only for localhost and loopback addresses
//
// No message contains a secret or the database URL, which may hold a
// password.
func (c Config) Validate(need Requirement) error {
	var p problems

	switch {
	case c.DatabaseURL == "":
		if need&NeedDatabase != 0 {
			p.add("LATCHKEY_DATABASE_URL", "is required; set it to a PostgreSQL URL such as postgres://latchkey@db.internal:5432/latchkey")
		}
	default:
		if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
			// pgx's message can quote the URL, password included.
			p.add("LATCHKEY_DATABASE_URL", "does not parse as a PostgreSQL URL or key=value string (the value is not shown because it may hold a password)")
		}
	}

	switch {
	case c.Issuer == "":
		if need&NeedIssuer != 0 {
			p.add("LATCHKEY_ISSUER", "is required; set it to the public URL clients reach this provider at, such as https://id.example.com")
		}
	default:
		for _, msg := range issuerProblems(c.Issuer) {
			p.add("LATCHKEY_ISSUER", "%s", msg)
		}
	}

	switch {
	case len(c.Secrets) == 0:
		if need&NeedSecrets != 0 {
			p.add("LATCHKEY_SECRETS", "is required; set it to one or more comma-separated secrets of at least %d bytes (%s)", minSecretLen, generateHint)
		}
	default:
		for _, msg := range secretsProblems(c.Secrets) {
			p.add("LATCHKEY_SECRETS", "%s", msg)
		}
	}

	p.addr("LATCHKEY_PUBLIC_ADDR", c.PublicAddr)
	p.addr("LATCHKEY_ADMIN_ADDR", c.AdminAddr)
	// Two ephemeral ports (":0") are distinct ports, which tests rely on.
	if c.AdminAddr != "" && c.PublicAddr == c.AdminAddr && !strings.HasSuffix(c.AdminAddr, ":0") {
		p.add("LATCHKEY_ADMIN_ADDR", "is the same as LATCHKEY_PUBLIC_ADDR; the admin API needs its own address")
	}

	p.positive("LATCHKEY_ACCESS_TOKEN_LIFESPAN", c.AccessTokenLifespan)
	if c.AccessTokenLifespan > client.MaxAccessTokenLifespan {
		p.add("LATCHKEY_ACCESS_TOKEN_LIFESPAN", "is %s; it can be at most %s (use refresh tokens for longer sessions)", fmtDuration(c.AccessTokenLifespan), fmtDuration(client.MaxAccessTokenLifespan))
	}
	p.positive("LATCHKEY_REFRESH_TOKEN_LIFESPAN", c.RefreshTokenLifespan)
	if c.RefreshTokenLifespan > 0 && c.AccessTokenLifespan > 0 && c.RefreshTokenLifespan <= c.AccessTokenLifespan {
		p.add("LATCHKEY_REFRESH_TOKEN_LIFESPAN", "is %s; it must be longer than LATCHKEY_ACCESS_TOKEN_LIFESPAN (%s)", fmtDuration(c.RefreshTokenLifespan), fmtDuration(c.AccessTokenLifespan))
	}
	p.positive("LATCHKEY_ID_TOKEN_LIFESPAN", c.IDTokenLifespan)
	p.positive("LATCHKEY_AUTHORIZATION_CODE_LIFESPAN", c.AuthorizationCodeLifespan)
	if c.AuthorizationCodeLifespan > maxCodeLifespan {
		p.add("LATCHKEY_AUTHORIZATION_CODE_LIFESPAN", "is %s; it can be at most %s (RFC 6749 §4.1.2)", fmtDuration(c.AuthorizationCodeLifespan), fmtDuration(maxCodeLifespan))
	}
	p.positive("LATCHKEY_PAR_LIFESPAN", c.PARLifespan)
	if c.PARLifespan > maxPARLifespan {
		p.add("LATCHKEY_PAR_LIFESPAN", "is %s; it can be at most %s: a request_uri is meant to be used at once (RFC 9126 §2.2)", fmtDuration(c.PARLifespan), fmtDuration(maxPARLifespan))
	}
	if c.RequirePAR && !c.PAR {
		p.add("LATCHKEY_REQUIRE_PAR", "is true but LATCHKEY_PAR is false: requests cannot be required to use an endpoint that is off")
	}

	switch c.LogLevel {
	case slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError:
	default:
		p.add("LATCHKEY_LOG_LEVEL", "is %s; it must be debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		p.add("LATCHKEY_LOG_FORMAT", "is %q; it must be json or text", c.LogFormat)
	}

	if c.DatabaseMaxConns < 1 || c.DatabaseMaxConns > maxDatabaseConns {
		p.add("LATCHKEY_DATABASE_MAX_CONNS", "is %d; it must be from 1 to %d", c.DatabaseMaxConns, maxDatabaseConns)
	}
	if c.DatabaseTimeout <= 0 || c.DatabaseTimeout > maxDatabaseTimeout {
		p.add("LATCHKEY_DATABASE_TIMEOUT", "is %s; it must be more than 0 and at most %s", fmtDuration(c.DatabaseTimeout), fmtDuration(maxDatabaseTimeout))
	}
	if c.KeysReloadInterval < minKeysReloadInterval {
		p.add("LATCHKEY_KEYS_RELOAD_INTERVAL", "is %s; it must be at least %s", fmtDuration(c.KeysReloadInterval), fmtDuration(minKeysReloadInterval))
	}
	if c.ClientSecretGracePeriod < 0 || c.ClientSecretGracePeriod > client.MaxSecretGrace {
		p.add("LATCHKEY_CLIENT_SECRET_GRACE_PERIOD", "is %s; it must be from 0 to %s", fmtDuration(c.ClientSecretGracePeriod), fmtDuration(client.MaxSecretGrace))
	}
	if c.JanitorInterval != 0 && c.JanitorInterval < minJanitorInterval {
		p.add("LATCHKEY_JANITOR_INTERVAL", "is %s; it must be 0 (off) or at least %s", fmtDuration(c.JanitorInterval), fmtDuration(minJanitorInterval))
	}
	if c.JanitorBatchSize < 1 || c.JanitorBatchSize > maxJanitorBatch {
		p.add("LATCHKEY_JANITOR_BATCH_SIZE", "is %d; it must be from 1 to %d", c.JanitorBatchSize, maxJanitorBatch)
	}
	if c.SessionIdleTimeout < time.Minute {
		p.add("LATCHKEY_SESSION_IDLE_TIMEOUT", "is %s; it must be at least 1m", fmtDuration(c.SessionIdleTimeout))
	}
	if c.SessionLifetime < time.Minute || c.SessionLifetime > maxSessionLifetime {
		p.add("LATCHKEY_SESSION_LIFETIME", "is %s; it must be from 1m to %s", fmtDuration(c.SessionLifetime), fmtDuration(maxSessionLifetime))
	}
	if c.MFAMaxFailures < 1 || c.MFAMaxFailures > 100 {
		p.add("LATCHKEY_MFA_MAX_FAILURES", "is %d; it must be from 1 to 100", c.MFAMaxFailures)
	}
	if c.MFAFailureWindow < time.Minute || c.MFAFailureWindow > time.Hour {
		p.add("LATCHKEY_MFA_FAILURE_WINDOW", "is %s; it must be from 1m to 1h", fmtDuration(c.MFAFailureWindow))
	}
	if c.LoginMaxFailures < 1 || c.LoginMaxFailures > 100 {
		p.add("LATCHKEY_LOGIN_MAX_FAILURES", "is %d; it must be from 1 to 100", c.LoginMaxFailures)
	}
	if c.LoginFailureWindow < time.Minute || c.LoginFailureWindow > time.Hour {
		p.add("LATCHKEY_LOGIN_FAILURE_WINDOW", "is %s; it must be from 1m to 1h", fmtDuration(c.LoginFailureWindow))
	}
	// NIST SP 800-63B §5.2.2: no more than 100 failed attempts per account.
	if c.LockoutFailures < 1 || c.LockoutFailures > 100 {
		p.add("LATCHKEY_LOCKOUT_FAILURES", "is %d; it must be from 1 to 100 (NIST SP 800-63B allows at most 100 failed attempts per account)", c.LockoutFailures)
	}
	if c.ClientRateLimit < 0 {
		p.add("LATCHKEY_CLIENT_RATE_LIMIT", "is %d; it must be 0 (no limit) or more", c.ClientRateLimit)
	}
	if c.SignInRateLimit < 0 {
		p.add("LATCHKEY_SIGNIN_RATE_LIMIT", "is %d; it must be 0 (no limit) or more", c.SignInRateLimit)
	}
	if c.SignInAttemptLimit < 0 {
		p.add("LATCHKEY_SIGNIN_ATTEMPT_LIMIT", "is %d; it must be 0 (no limit) or more", c.SignInAttemptLimit)
	}
	if c.ReauthWindow < time.Second || c.ReauthWindow > 24*time.Hour {
		p.add("LATCHKEY_REAUTH_WINDOW", "is %s; it must be from 1s to 24h", fmtDuration(c.ReauthWindow))
	}
	// A trusted browser skips the second factor: a year is the most any
	// operator should want, and a negative period means nothing.
	if c.TrustedDeviceLifetime < 0 || c.TrustedDeviceLifetime > maxTrustedDeviceLifetime {
		p.add("LATCHKEY_TRUSTED_DEVICE_LIFETIME", "is %s; it must be 0 (off) or up to %s", fmtDuration(c.TrustedDeviceLifetime), fmtDuration(maxTrustedDeviceLifetime))
	}
	if c.AuthorizeRateLimit < 0 {
		p.add("LATCHKEY_AUTHORIZE_RATE_LIMIT", "is %d; it must be 0 (no limit) or more", c.AuthorizeRateLimit)
	}
	if c.ClientAuthFailureLimit < 0 {
		p.add("LATCHKEY_CLIENT_AUTH_FAILURE_LIMIT", "is %d; it must be 0 (no limit) or more", c.ClientAuthFailureLimit)
	}
	if c.AuditRetention != 0 && c.AuditRetention < minAuditRetention {
		p.add("LATCHKEY_AUDIT_RETENTION", "is %s; it must be 0 (keep events for ever) or at least %s", fmtDuration(c.AuditRetention), fmtDuration(minAuditRetention))
	}
	if c.SMTPURL != "" {
		if msg := smtpURLProblem(c.SMTPURL); msg != "" {
			p.add("LATCHKEY_SMTP_URL", "%s", msg)
		}
	}
	if c.SMTPTimeout < time.Second || c.SMTPTimeout > 5*time.Minute {
		p.add("LATCHKEY_SMTP_TIMEOUT", "is %s; it must be from 1s to 5m", fmtDuration(c.SMTPTimeout))
	}
	if c.MailFrom != "" {
		if a, err := mail.ParseAddress(c.MailFrom); err != nil || a.Address == "" {
			p.add("LATCHKEY_MAIL_FROM", "is %q; it must be an address such as no-reply@example.com or \"Example ID <no-reply@example.com>\"", c.MailFrom)
		}
	}
	if c.MailRequestLimit < 0 {
		p.add("LATCHKEY_MAIL_REQUEST_LIMIT", "is %d; it must be 0 (no limit) or more", c.MailRequestLimit)
	}
	for _, n := range c.Notifications {
		if !slices.Contains(Notifications, n) {
			p.add("LATCHKEY_NOTIFICATIONS", "names %q; it may name %s, or none", n, strings.Join(Notifications, ", "))
		}
	}
	if c.EventLog != "none" && c.EventLog != "stdout" && c.EventLog != "otlp" {
		p.add("LATCHKEY_EVENT_LOG", "is %q; it must be none, stdout or otlp", c.EventLog)
	}
	if c.WebhookTimeout < time.Second || c.WebhookTimeout > time.Minute {
		p.add("LATCHKEY_WEBHOOK_TIMEOUT", "is %s; it must be from 1s to 1m", fmtDuration(c.WebhookTimeout))
	}
	// RFC 8628 §6.1: a user code short enough to type is safe only while
	// it lives minutes, not hours.
	if c.DeviceCodeLifespan < time.Second || c.DeviceCodeLifespan > time.Hour {
		p.add("LATCHKEY_DEVICE_CODE_LIFESPAN", "is %s; it must be from 1s to 1h", fmtDuration(c.DeviceCodeLifespan))
	}
	if c.DevicePollInterval < time.Second || c.DevicePollInterval > time.Minute || c.DevicePollInterval%time.Second != 0 {
		p.add("LATCHKEY_DEVICE_POLL_INTERVAL", "is %s; it must be whole seconds from 1s to 1m", fmtDuration(c.DevicePollInterval))
	}
	for _, l := range []struct {
		env string
		n   int32
	}{{"LATCHKEY_DEVICE_PENDING_LIMIT", c.DevicePendingLimit}, {"LATCHKEY_DEVICE_CODE_FAILURES", c.DeviceCodeFailures},
		{"LATCHKEY_DEVICE_CODE_GLOBAL_FAILURES", c.DeviceCodeGlobalFailures}} {
		if l.n < 0 {
			p.add(l.env, "is %d; it must be 0 (no limit) or more", l.n)
		}
	}
	if c.SignUp != "off" && c.SignUp != "open" {
		p.add("LATCHKEY_SIGNUP", "is %q; it must be off or open", c.SignUp)
	}
	for _, d := range c.SignUpDomains {
		if strings.ContainsAny(d, "@/ ") || !strings.Contains(d, ".") {
			p.add("LATCHKEY_SIGNUP_DOMAINS", "names %q; give domains such as example.com, without @", d)
		}
	}
	for _, sc := range c.PersonalAPIKeyScopes {
		// The admin scopes' power comes from a client's client credentials
		// grant alone (pkg/apikey refuses them in any key).
		if strings.HasPrefix(sc, "latchkey:admin") {
			p.add("LATCHKEY_PERSONAL_API_KEY_SCOPES", "names %q; admin scopes cannot be given to API keys", sc)
		}
	}
	p = append(p, registrationProblems(c)...)
	if c.ShutdownTimeout < 0 {
		p.add("LATCHKEY_SHUTDOWN_TIMEOUT", "is %s; it must be 0 (close at once) or more", fmtDuration(c.ShutdownTimeout))
	}

	return errors.Join(p...)
}

// issuerProblems checks the rules OpenID Connect Discovery and RFC 8414 set
// for an issuer. Its messages do not quote the issuer, which would echo a
// password written as user info.
func issuerProblems(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return []string{"must be an absolute URL such as https://id.example.com"}
	}
	var out []string
	switch u.Scheme {
	case "https":
	case "http":
		if !client.IsLoopback(u.Hostname()) {
			out = append(out, "must use https; plain http is allowed only for localhost and loopback addresses")
		}
	default:
		out = append(out, fmt.Sprintf("has scheme %q; it must use https (or http for localhost and loopback addresses)", u.Scheme))
	}
	if u.User != nil {
		out = append(out, "must not contain user info (user@ or user:password@)")
	}
	if u.RawQuery != "" || u.ForceQuery {
		out = append(out, "must not have a query (?...)")
	}
	if strings.Contains(issuer, "#") {
		out = append(out, "must not have a fragment (#...)")
	}
	if strings.HasSuffix(issuer, "/") {
		out = append(out, "ends with \"/\"; remove the trailing slash: the issuer is compared byte for byte by clients")
	}
	return out
}

// secretsProblems names secrets only by position: a message must never
// carry a secret, nor enough of one to help guess it.
func secretsProblems(secrets [][]byte) []string {
	var out []string
	n := len(secrets)
	for i, s := range secrets {
		switch {
		case len(s) == 0:
			out = append(out, fmt.Sprintf("secret %d of %d is empty; remove the extra comma", i+1, n))
		case len(s) < minSecretLen:
			out = append(out, fmt.Sprintf("secret %d of %d is %d bytes; each needs at least %d (%s)", i+1, n, len(s), minSecretLen, generateHint))
		}
	}
	for i := range secrets {
		for j := i + 1; j < n; j++ {
			if len(secrets[i]) > 0 && bytes.Equal(secrets[i], secrets[j]) {
				out = append(out, fmt.Sprintf("secrets %d and %d of %d are the same; list each secret once", i+1, j+1, n))
			}
		}
	}
	return out
}

// problems collects one error per problem, each labelled with its setting.
type problems []error

func (p *problems) add(env, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", labelFor(env), fmt.Sprintf(format, args...)))
}

// addr checks a listen address. It insists on a numeric port, because a
// service name (":http") depends on /etc/services being present in the
// container.
func (p *problems) addr(env, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add(env, "is %q; it must be host:port, such as :8080 or 127.0.0.1:8081", addr)
		return
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add(env, "is %q; its port must be a number from 0 to 65535", addr)
	}
}

func (p *problems) positive(env string, d time.Duration) {
	if d <= 0 {
		p.add(env, "is %s; it must be more than 0", fmtDuration(d))
	}
}

// labelFor is label for a setting named by its environment variable. An
// unknown name is a mistake in this package, caught by its tests.
func labelFor(env string) string {
	for _, s := range Settings() {
		if s.Env == env {
			return label(s)
		}
	}
	panic("config: no setting " + env)
}

// fmtDuration writes d the way the defaults are written ("10m", not
// "10m0s").
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// registrationProblems checks the settings of dynamic client registration
// (pkg/registration).
func registrationProblems(c Config) problems {
	var p problems
	if !slices.Contains(registration.Modes, c.Registration) {
		p.add("LATCHKEY_REGISTRATION", "is %q; it must be off, open or token", c.Registration)
	}
	if len(c.RegistrationScopes) == 0 {
		p.add("LATCHKEY_REGISTRATION_SCOPES", "is empty; a registered client needs at least one scope, such as openid")
	}
	for _, sc := range c.RegistrationScopes {
		if sc == client.AdminScope || sc == client.AdminReadScope {
			p.add("LATCHKEY_REGISTRATION_SCOPES", "names %q; admin scopes cannot be registered", sc)
		} else if err := client.ValidateScopeToken(sc); err != nil {
			p.add("LATCHKEY_REGISTRATION_SCOPES", "%v", err)
		}
	}
	if len(c.RegistrationRedirectURIs) == 0 {
		p.add("LATCHKEY_REGISTRATION_REDIRECT_URIS", "is empty; give loopback, any, or https URL prefixes")
	}
	for _, r := range c.RegistrationRedirectURIs {
		if err := registration.ParseRule(r); err != nil {
			p.add("LATCHKEY_REGISTRATION_REDIRECT_URIS", "%v", err)
		}
	}
	if c.RegistrationRateLimit < 0 {
		p.add("LATCHKEY_REGISTRATION_RATE_LIMIT", "is %d; it must be 0 (no limit) or more", c.RegistrationRateLimit)
	}
	// Open registration is anonymous: its caps are what keeps it from
	// storing without bound, so neither can be turned off.
	if c.RegistrationAddressLimit < 1 {
		p.add("LATCHKEY_REGISTRATION_ADDRESS_LIMIT", "is %d; it must be 1 or more", c.RegistrationAddressLimit)
	}
	if c.RegistrationMaxClients < 1 {
		p.add("LATCHKEY_REGISTRATION_MAX_CLIENTS", "is %d; it must be 1 or more", c.RegistrationMaxClients)
	}
	return p
}
