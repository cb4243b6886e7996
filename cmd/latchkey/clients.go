package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/config"
	"github.com/latchkey/latchkey/pkg/validation"
	"github.com/latchkey/latchkey/storage/postgres"
)

// secretNotice goes to stderr whenever a secret is printed, because the
// operator gets exactly one chance to copy it: only its digest is stored.
const secretNotice = "latchkey clients: store the client secret now; it cannot be shown again"

// clientsCommand manages OAuth clients directly in the configured database:
// latchkey clients create|list|get|update|delete|rotate-secret. It goes
// through client.Manager, so a client stored here is validated exactly as
// one stored through the admin API.
func clientsCommand(e env) *cobra.Command {
	return groupCommand("clients", "Manage OAuth clients",
		`Manage OAuth clients directly in the database LATCHKEY_DATABASE_URL names.
A client is checked exactly as one stored through the admin API, and every
change reaches running nodes within milliseconds (docs/clients.md).

An ID can go straight after the subcommand or after the flags. Output is a
table, or with --output json the client's RFC 7591 JSON.`,
		clientsCreateCommand(e), clientsListCommand(e), clientsGetCommand(e),
		clientsUpdateCommand(e), clientsDeleteCommand(e), clientsRotateSecretCommand(e))
}

func clientsCreateCommand(e env) *cobra.Command {
	cmd, r := clientsSubcommand(e, &cobra.Command{
		Use:   "create",
		Short: "Register a client and print it, with its secret if it has one",
		Long: `Register a client and print it, with its secret if it has one: the only time
the secret is shown, since only its digest is stored. Each flag sets one
field of the client's RFC 7591 metadata; --metadata starts from a JSON
document, which the other flags then override.`,
		Args: noArgs,
	}, clientsCreate)
	r.meta.register(cmd.Flags(), true)
	r.output = outputFlag(cmd)
	return cmd
}

func clientsListCommand(e env) *cobra.Command {
	cmd, r := clientsSubcommand(e, &cobra.Command{
		Use:   "list",
		Short: "List every client",
		Args:  noArgs,
	}, clientsList)
	r.output = outputFlag(cmd)
	return cmd
}

func clientsGetCommand(e env) *cobra.Command {
	cmd, r := clientsSubcommand(e, &cobra.Command{
		Use:   "get ID",
		Short: "Show one client",
		Args:  oneArg,
	}, clientsGet)
	r.output = outputFlag(cmd)
	return cmd
}

func clientsUpdateCommand(e env) *cobra.Command {
	cmd, r := clientsSubcommand(e, &cobra.Command{
		Use:   "update ID",
		Short: "Change the fields of a client that the flags name",
		Long: `Change the fields of a client that the flags name, and keep the rest as
stored. --metadata replaces the whole metadata with a JSON document, such as
the edited output of get --output json; other flags then override it. A
client that starts using a secret gets one, printed once.`,
		Args: oneArg,
	}, clientsUpdate)
	r.meta.register(cmd.Flags(), false)
	r.output = outputFlag(cmd)
	r.check = func(r *clientsRun) error {
		if !r.meta.changes(r.given) {
			return usageError("nothing to change: give --metadata or a flag for each field to change")
		}
		return nil
	}
	return cmd
}

func clientsDeleteCommand(e env) *cobra.Command {
	cmd, _ := clientsSubcommand(e, &cobra.Command{
		Use:   "delete ID",
		Short: "Remove a client and every token issued to it",
		Args:  oneArg,
	}, clientsDelete)
	return cmd
}

func clientsRotateSecretCommand(e env) *cobra.Command {
	cmd, r := clientsSubcommand(e, &cobra.Command{
		Use:   "rotate-secret ID",
		Short: "Give a client a new secret and print it",
		Long: `Give a client a new secret and print it, once. The old secret keeps working
for --grace, so that the client's deployments can switch without an outage.`,
		Args: oneArg,
	}, clientsRotateSecret)
	cmd.Flags().DurationVar(&r.grace, "grace", 0, "how long the old secret keeps working (default LATCHKEY_CLIENT_SECRET_GRACE_PERIOD; 0 ends it at once)")
	r.output = outputFlag(cmd)
	r.check = func(r *clientsRun) error {
		// The longest grace is client.Manager.RotateSecret's to refuse.
		if r.grace < 0 {
			return usageError("--grace is %s; it must be 0 or more", r.grace)
		}
		return nil
	}
	return cmd
}

// clientsRun is one run of a latchkey clients subcommand: the client it
// names, its flags, and the manager that does the work.
type clientsRun struct {
	e env
	// invocation's target is the client named on the command line, for
	// subcommands that act on one.
	invocation
	// output is --output, for subcommands that print clients.
	output *outputFormat
	grace  time.Duration
	meta   metadataFlags
	// check, if set, rejects flags that parse but make no sense together,
	// before the database is opened.
	check   func(*clientsRun) error
	manager *client.Manager
}

// clientsSubcommand completes cmd, a subcommand of latchkey clients: it
// gives it the database settings as flags, and makes it run do with a
// client.Manager on the database. The caller adds the subcommand's own
// flags, which fill the returned clientsRun.
func clientsSubcommand(e env, cmd *cobra.Command, do func(context.Context, *clientsRun) error) (*cobra.Command, *clientsRun) {
	r := &clientsRun{e: e}
	check := func() error {
		if r.check == nil {
			return nil
		}
		return r.check(r)
	}
	return onDatabase(e, cmd, &r.invocation, check, func(ctx context.Context, cfg config.Config, store *postgres.Store, auditLog *audit.Log) error {
		r.manager = client.NewManager(store, auditLog, cfg.ClientSecretGracePeriod)
		return do(ctx, r)
	}), r
}

// listFlag is a repeatable flag that collects every value given. An empty
// value adds nothing, so that --audience "" replaces a list with an empty
// one on update.
type listFlag []string

// String shows the values for -h output.
func (l *listFlag) String() string { return strings.Join(*l, " ") }

// Type names the kind of value in -h output.
func (l *listFlag) Type() string { return "value" }

// Set adds one value.
func (l *listFlag) Set(s string) error {
	if *l == nil {
		*l = []string{}
	}
	if s != "" {
		*l = append(*l, s)
	}
	return nil
}

// onceFlag is a string flag that may be given only once, so that a second
// --scope is an error rather than silently replacing the first: scopes go
// space-separated in one value, as in RFC 7591.
type onceFlag struct {
	value string
	set   bool
}

// String shows the value for -h output.
func (o *onceFlag) String() string { return o.value }

// Type names the kind of value in -h output.
func (o *onceFlag) Type() string { return "string" }

// Set stores the value, the first time only.
func (o *onceFlag) Set(s string) error {
	if o.set {
		return errors.New("given twice; list every value, space-separated, in one flag")
	}
	o.value, o.set = s, true
	return nil
}

// metadataFlags are the flags of create and update, one per client
// metadata field, and what they name on disk once read.
type metadataFlags struct {
	id, name, authMethod, signingAlg, format        string
	idTokenAlg, accessTokenAlg                      string
	jwksFile, jwksURI, file                         string
	scope                                           onceFlag
	grantTypes, redirectURIs                        listFlag
	postLogoutURIs, audience                        listFlag
	skipConsent, requireMFA, requirePHR, requirePAR bool
	strictAuth                                      bool
	introspectAny                                   bool
	backchannelURI                                  string
	backchannelSID                                  bool
	accessLifespan, refreshLifespan                 time.Duration
	// admin makes a client for the admin API (create only).
	admin bool

	// doc is the document --metadata named, and jwks the key set
	// --jwks-file named, read by load before the database is touched.
	doc  *client.Client
	jwks json.RawMessage
}

// register puts the metadata flags on fs. Each flag's help names the RFC
// 7591 field it sets, the name the JSON output uses.
func (m *metadataFlags) register(fs *pflag.FlagSet, create bool) {
	if create {
		fs.StringVar(&m.id, "id", "", "client_id to register under (default: a random one)")
		fs.BoolVar(&m.admin, "admin", false, "make a client for the admin API: client_credentials only, with scope \"latchkey:admin latchkey:admin:read\" unless --scope narrows it")
	}
	fs.StringVar(&m.file, "metadata", "", "RFC 7591 JSON `file` to start from (- for stdin); other flags override its fields")
	fs.StringVar(&m.name, "name", "", "client_name, shown to people")
	fs.Var(&m.grantTypes, "grant-type", "grant_types entry: authorization_code (default), refresh_token, client_credentials or urn:ietf:params:oauth:grant-type:device_code (the device grant, RFC 8628); repeatable")
	fs.Var(&m.redirectURIs, "redirect-uri", "redirect_uris entry; repeatable")
	fs.Var(&m.postLogoutURIs, "post-logout-redirect-uri", "post_logout_redirect_uris entry; repeatable")
	fs.StringVar(&m.backchannelURI, "backchannel-logout-uri", "", "backchannel_logout_uri: where logout tokens are posted when a sign-in that reached the client ends (\"\" to stop)")
	fs.BoolVar(&m.backchannelSID, "backchannel-logout-session-required", false, "backchannel_logout_session_required: the client needs sid in logout tokens (Latchkey always sends it)")
	fs.Var(&m.scope, "scope", "scope: the space-separated scopes the client may request")
	fs.Var(&m.audience, "audience", "audience entry: a resource server the client may get tokens for; repeatable")
	fs.StringVar(&m.authMethod, "auth-method", "", "token_endpoint_auth_method: client_secret_basic (default), client_secret_post, private_key_jwt or none")
	fs.StringVar(&m.signingAlg, "auth-signing-alg", "", "token_endpoint_auth_signing_alg, for private_key_jwt (default RS256)")
	fs.StringVar(&m.jwksFile, "jwks-file", "", "`file` holding the client's public JSON Web Key Set (jwks), for private_key_jwt")
	fs.StringVar(&m.jwksURI, "jwks-uri", "", "jwks_uri: where the client publishes its public keys, for private_key_jwt")
	fs.StringVar(&m.format, "access-token-format", "", "access_token_format: opaque (default) or jwt (RFC 9068)")
	fs.StringVar(&m.accessTokenAlg, "access-token-alg", "", "access_token_signed_response_alg, for JWT access tokens: RS256 (default), ES256 or EdDSA")
	fs.StringVar(&m.idTokenAlg, "id-token-alg", "", "id_token_signed_response_alg: RS256 (default) or ES256")
	fs.BoolVar(&m.skipConsent, "skip-consent", false, "skip_consent: sign users in without asking them to approve scopes")
	fs.BoolVar(&m.requireMFA, "require-mfa", false, "require_mfa: every sign-in needs a second factor; users without one enrol first")
	fs.BoolVar(&m.requirePHR, "require-phishing-resistant", false, "require_phishing_resistant: every sign-in needs a passkey; users without one add one first")
	fs.BoolVar(&m.strictAuth, "strict-auth-method", false, "strict_auth_method: a secret client must send its secret by its registered method only")
	fs.BoolVar(&m.requirePAR, "require-par", false, "require_pushed_authorization_requests: authorization requests must be pushed to the PAR endpoint first (RFC 9126)")
	fs.BoolVar(&m.introspectAny, "introspect-any-token", false, "introspect_any_token: may introspect every access token, not only its own and those whose aud names it")
	fs.DurationVar(&m.accessLifespan, "access-token-lifespan", 0, "access_token_lifespan for this client; 0 is the server's default")
	fs.DurationVar(&m.refreshLifespan, "refresh-token-lifespan", 0, "refresh_token_lifespan for this client; 0 is the server's default")
}

// load reads the files the given flags name, so that a missing or malformed
// file is reported before anything is stored; --metadata - reads stdin.
func (m *metadataFlags) load(given map[string]bool, stdin io.Reader) error {
	if given["metadata"] {
		doc, err := readMetadata(stdin, m.file)
		if err != nil {
			return err
		}
		m.doc = doc
	}
	if given["jwks-file"] && m.jwksFile != "" {
		b, err := os.ReadFile(m.jwksFile)
		if err != nil {
			return fmt.Errorf("--jwks-file: %w", err)
		}
		if !json.Valid(b) {
			return fmt.Errorf("--jwks-file %s: is not JSON; it must hold a JSON Web Key Set such as {\"keys\": [...]}", m.jwksFile)
		}
		m.jwks = b
	}
	return nil
}

// readMetadata reads one RFC 7591 JSON document from path, or from stdin
// for "-". Unknown fields are errors: a misspelt field silently ignored
// would register a client other than the one the operator wrote down.
func readMetadata(stdin io.Reader, path string) (*client.Client, error) {
	in := stdin
	if path != "-" {
		f, err := os.Open(path) // #nosec G304 -- the file the operator named with --metadata or --jwks-file
		if err != nil {
			return nil, fmt.Errorf("--metadata: %w", err)
		}
		defer f.Close()
		in = f
	}
	dec := json.NewDecoder(in)
	dec.DisallowUnknownFields()
	var c client.Client
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("--metadata %s: %s", path, strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, fmt.Errorf("--metadata %s: holds more than one JSON document", path)
	}
	return &c, nil
}

// setters returns, for each metadata flag by name, how it changes c. Only
// the given ones run, which is what makes update a partial change.
func (m *metadataFlags) setters(c *client.Client) map[string]func() {
	return map[string]func(){
		"id":   func() { c.ID = m.id },
		"name": func() { c.Name = m.name },
		"grant-type": func() {
			c.GrantTypes = slices.Clone(m.grantTypes)
			// The response types follow from the grants; Normalize
			// recomputes them.
			c.ResponseTypes = nil
		},
		"redirect-uri":             func() { c.RedirectURIs = slices.Clone(m.redirectURIs) },
		"post-logout-redirect-uri": func() { c.PostLogoutRedirectURIs = slices.Clone(m.postLogoutURIs) },
		"backchannel-logout-uri":   func() { c.BackchannelLogoutURI = m.backchannelURI },
		"backchannel-logout-session-required": func() {
			c.BackchannelLogoutSessionRequired = m.backchannelSID
		},
		"scope":                      func() { c.Scope = m.scope.value },
		"audience":                   func() { c.Audience = slices.Clone(m.audience) },
		"auth-method":                func() { c.TokenEndpointAuthMethod = m.authMethod },
		"auth-signing-alg":           func() { c.TokenEndpointAuthSigningAlg = m.signingAlg },
		"jwks-file":                  func() { c.JWKS = slices.Clone(m.jwks) },
		"jwks-uri":                   func() { c.JWKSURI = m.jwksURI },
		"access-token-format":        func() { c.AccessTokenFormat = m.format },
		"access-token-alg":           func() { c.AccessTokenSignedResponseAlg = m.accessTokenAlg },
		"id-token-alg":               func() { c.IDTokenSignedResponseAlg = m.idTokenAlg },
		"skip-consent":               func() { c.SkipConsent = m.skipConsent },
		"require-mfa":                func() { c.RequireMFA = m.requireMFA },
		"require-phishing-resistant": func() { c.RequirePhishingResistant = m.requirePHR },
		"introspect-any-token":       func() { c.IntrospectAnyToken = m.introspectAny },
		"require-par":                func() { c.RequirePushedAuthorizationRequests = m.requirePAR },
		"access-token-lifespan":      func() { c.AccessTokenLifespan = client.Lifespan(m.accessLifespan) },
		"refresh-token-lifespan":     func() { c.RefreshTokenLifespan = client.Lifespan(m.refreshLifespan) },
	}
}

// apply changes c as the given flags say: first the --metadata document, if
// any, replaces the metadata wholesale, then each flag sets its field.
func (m *metadataFlags) apply(c *client.Client, given map[string]bool) {
	if m.doc != nil {
		*c = *m.doc
	}
	for name, set := range m.setters(c) {
		if given[name] {
			set()
		}
	}
}

// changes reports whether the given flags change any metadata at all.
func (m *metadataFlags) changes(given map[string]bool) bool {
	if given["metadata"] {
		return true
	}
	for name := range m.setters(&client.Client{}) {
		if given[name] {
			return true
		}
	}
	return false
}

// clientsCreate registers a client and prints it with its secret, if it
// has one.
func clientsCreate(ctx context.Context, r *clientsRun) error {
	if err := r.meta.load(r.given, r.e.stdin); err != nil {
		return err
	}
	var c client.Client
	r.meta.apply(&c, r.given)
	if r.meta.admin {
		c.GrantTypes, c.ResponseTypes = []string{client.GrantClientCredentials}, nil
		if !r.given["scope"] {
			c.Scope = client.AdminScope + " " + client.AdminReadScope
		}
		if c.Name == "" {
			c.Name = "admin"
		}
	}
	created, secret, err := r.manager.Create(ctx, c)
	if err != nil {
		return clientError(c.ID, err)
	}
	return r.show(created, secret)
}

// clientsList prints every client.
func clientsList(ctx context.Context, r *clientsRun) error {
	cs, err := r.manager.List(ctx)
	if err != nil {
		return err
	}
	if *r.output == outputJSON {
		if cs == nil {
			cs = []*client.Client{}
		}
		return writeJSON(r.e.stdout, cs)
	}
	return writeClientList(r.e.stdout, cs)
}

// clientsGet prints one client.
func clientsGet(ctx context.Context, r *clientsRun) error {
	c, err := r.manager.Get(ctx, r.target)
	if err != nil {
		return clientError(r.target, err)
	}
	return r.show(c, "")
}

// clientsUpdate changes the fields of a client that the flags name and
// leaves the rest as stored.
func clientsUpdate(ctx context.Context, r *clientsRun) error {
	if err := r.meta.load(r.given, r.e.stdin); err != nil {
		return err
	}
	if d := r.meta.doc; d != nil && d.ID != "" && d.ID != r.target {
		return fmt.Errorf("--metadata %s describes client %q, not %q", r.meta.file, d.ID, r.target)
	}
	updated, secret, err := r.manager.Update(ctx, r.target, func(c *client.Client) error {
		r.meta.apply(c, r.given)
		return nil
	})
	if err != nil {
		return clientError(r.target, err)
	}
	return r.show(updated, secret)
}

// clientsDelete removes a client and, with it, every token issued to it.
func clientsDelete(ctx context.Context, r *clientsRun) error {
	if err := r.manager.Delete(ctx, r.target); err != nil {
		return clientError(r.target, err)
	}
	fmt.Fprintf(r.e.stdout, "deleted client %s\n", r.target)
	return nil
}

// clientsRotateSecret gives a client a new secret and prints it. Without
// --grace, the Manager's default (the configured grace period) applies.
func clientsRotateSecret(ctx context.Context, r *clientsRun) error {
	grace := time.Duration(-1)
	if r.given["grace"] {
		grace = r.grace
	}
	c, secret, err := r.manager.RotateSecret(ctx, r.target, grace)
	if err != nil {
		return clientError(r.target, err)
	}
	return r.show(c, secret)
}

// clientError turns the Manager's expected errors into one line an
// operator can act on; anything else is returned as it is.
func clientError(id string, err error) error {
	var invalid *validation.Error
	switch {
	case errors.Is(err, client.ErrNotFound):
		return fmt.Errorf("no client with ID %q", id)
	case errors.Is(err, client.ErrExists):
		return fmt.Errorf("a client with ID %q already exists", id)
	case errors.Is(err, client.ErrNoSecret):
		return fmt.Errorf("client %q has no secret to rotate: %v", id, err)
	case errors.As(err, &invalid):
		return invalid
	}
	return err
}

// clientJSON is a client as printed in JSON: its RFC 7591 metadata, plus
// the secret on the one occasion it exists in clear.
type clientJSON struct {
	*client.Client
	Secret string `json:"client_secret,omitempty"`
}

// show prints a client in the chosen format and, when a secret was just
// generated, the secret and a reminder on stderr that it is shown once.
func (r *clientsRun) show(c *client.Client, secret string) error {
	var err error
	if *r.output == outputJSON {
		err = writeJSON(r.e.stdout, clientJSON{Client: c, Secret: secret})
	} else {
		err = writeClientTable(r.e.stdout, c, secret)
	}
	if err == nil && secret != "" {
		fmt.Fprintln(r.e.stderr, secretNotice)
	}
	return err
}

// writeJSON writes v indented, without escaping &, < and >, which are
// common in redirect URIs and harmless outside HTML.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeClientTable writes the fields of c that an operator reads, one per
// line, and list entries one per line under their field.
func writeClientTable(w io.Writer, c *client.Client, secret string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(field string, values ...string) {
		if len(values) == 0 || (len(values) == 1 && values[0] == "") {
			values = []string{"-"}
		}
		fmt.Fprintf(tw, "%s\t%s\n", field, values[0])
		for _, v := range values[1:] {
			fmt.Fprintf(tw, "\t%s\n", v)
		}
	}
	row("client_id", c.ID)
	if secret != "" {
		row("client_secret", secret)
	}
	row("client_name", c.Name)
	row("grant_types", c.GrantTypes...)
	row("redirect_uris", c.RedirectURIs...)
	if len(c.PostLogoutRedirectURIs) > 0 {
		row("post_logout_redirect_uris", c.PostLogoutRedirectURIs...)
	}
	if c.BackchannelLogoutURI != "" {
		row("backchannel_logout_uri", c.BackchannelLogoutURI)
	}
	row("scope", c.Scope)
	row("audience", c.Audience...)
	row("token_endpoint_auth_method", c.TokenEndpointAuthMethod)
	writeKeyRows(row, c)
	row("access_token_format", c.AccessTokenFormat)
	if c.AccessTokenSignedResponseAlg != "" {
		row("access_token_signed_response_alg", c.AccessTokenSignedResponseAlg)
	}
	row("skip_consent", strconv.FormatBool(c.SkipConsent))
	if c.IntrospectAnyToken {
		row("introspect_any_token", "true")
	}
	if c.AccessTokenLifespan > 0 {
		row("access_token_lifespan", time.Duration(c.AccessTokenLifespan).String())
	}
	if c.RefreshTokenLifespan > 0 {
		row("refresh_token_lifespan", time.Duration(c.RefreshTokenLifespan).String())
	}
	row("created_at", c.CreatedAt.UTC().Format(time.RFC3339))
	row("updated_at", c.UpdatedAt.UTC().Format(time.RFC3339))
	return tw.Flush()
}

// writeKeyRows adds the private_key_jwt fields, which only such clients
// have. The key set itself is long, so the table only says it is there.
func writeKeyRows(row func(string, ...string), c *client.Client) {
	if c.TokenEndpointAuthSigningAlg != "" {
		row("token_endpoint_auth_signing_alg", c.TokenEndpointAuthSigningAlg)
	}
	if len(c.JWKS) > 0 {
		row("jwks", "registered (see --output json)")
	}
	if c.JWKSURI != "" {
		row("jwks_uri", c.JWKSURI)
	}
}

// writeClientList writes one line per client, enough to find the one to
// look at with get.
func writeClientList(w io.Writer, cs []*client.Client) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tGRANT TYPES\tAUTH METHOD\tCREATED")
	for _, c := range cs {
		name := c.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, name, strings.Join(c.GrantTypes, ","),
			c.TokenEndpointAuthMethod, c.CreatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}
