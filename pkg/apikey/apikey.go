// Package apikey is Latchkey's API keys: long-lived credentials, made for
// a service client by an admin (the admin API, latchkey api-keys) or by a
// user for themselves (personal keys, on the account page), that resource
// servers check by token introspection exactly as they check access
// tokens (pkg/oauth answers for them).
//
// # What a key is
//
// A key has a name, scopes within what its owner may have, and optionally
// an expiry, an audience (the clients, besides its owner, that may
// introspect it) and the addresses it may be used from. The key itself is
// shown once, when it is made; only its SHA-256 digest is stored
// (format.go has the format and why).
//
// # Checking a key
//
// Check is the hot path: the format is checked with no database read,
// then one indexed lookup by digest reads the key together with what its
// owner may have now (a client's registered scope; whether a user is
// disabled), and whether the address it is used from was seen before. Its
// bookkeeping writes only when something changed: the first use from an
// address (one row, and an audit event, per address, decided by a
// primary key so that parallel requests on any number of nodes record it
// once, up to a cap of addresses per key), and the last-used time at most
// once a minute. Nothing is cached,
// so a revoked key, whose row is deleted, is refused by every node at
// once.
package apikey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/latchkey/latchkey/pkg/audit"
	"github.com/latchkey/latchkey/pkg/client"
	"github.com/latchkey/latchkey/pkg/validation"
)

// PersonalClientID is the client_id introspection answers for a personal
// key, which no client requested. Client IDs cannot contain a colon
// (pkg/client), so no registered client can ever be mistaken for it.
const PersonalClientID = "latchkey:personal"

// MaxPerOwner bounds the keys one client or user may hold at once, so that
// a leaked admin credential or a careless script cannot fill the table;
// revoking one makes room.
const MaxPerOwner = 20

// MaxLifetime bounds how far away a key's expiry may be. A key without an
// expiry lives until it is revoked.
const MaxLifetime = 2 * 366 * 24 * time.Hour

// touchEvery is how stale a key's last-used time may get before a use
// writes it again: the listing is accurate to a minute, and a busy key
// costs one write a minute, not one per request.
const touchEvery = time.Minute

// MaxNameLen is the longest name a key may have, in characters.
const MaxNameLen = 100

// Limits of what a key carries.
const (
	maxAudience     = 10
	maxAllowedCIDRs = 20
)

var (
	// ErrNotFound means the owner has no key with that ID.
	ErrNotFound = errors.New("apikey: no such key")
	// ErrTooMany means the owner holds MaxPerOwner keys already.
	ErrTooMany = fmt.Errorf("apikey: an owner may hold at most %d keys", MaxPerOwner)
	// ErrInactive means a key cannot be used now: malformed, unknown,
	// revoked, expired, its user disabled, or used from an address it does
	// not allow. Which one is never told to the caller.
	ErrInactive = errors.New("apikey: the key is not active")
	// ErrNotOwner means a client asked to revoke a key it does not own.
	ErrNotOwner = errors.New("apikey: the key belongs to someone else")
)

// Owner is whom a key belongs to: a client or a user, never both.
type Owner struct {
	ClientID string
	UserID   string
}

// Client is the owner that is a client.
func Client(id string) Owner { return Owner{ClientID: id} }

// User is the owner that is a user.
func User(sub string) Owner { return Owner{UserID: sub} }

// target names the owner in audit events.
func (o Owner) target() string {
	if o.UserID != "" {
		return audit.User(o.UserID)
	}
	return audit.Client(o.ClientID)
}

// Key is an API key as it is listed: everything but the key itself.
type Key struct {
	ID string `json:"id"`
	// Prefix is the key's first characters, for people to recognise it.
	Prefix string `json:"prefix"`
	// ClientID is the owning client; empty for a personal key.
	ClientID string `json:"client_id,omitempty"`
	// UserID is the owning user of a personal key.
	UserID string `json:"user_id,omitempty"`
	Name   string `json:"name"`
	// Scope is space-separated, as OAuth writes scopes.
	Scope string `json:"scope"`
	// Audience are clients, besides the owner, that may introspect the key.
	Audience []string `json:"audience"`
	// AllowedAddresses, if not empty, are the only networks the key may be
	// used from, as the resource server reports the address.
	AllowedAddresses []netip.Prefix `json:"allowed_addresses"`
	ExpiresAt        *time.Time     `json:"expires_at"`
	CreatedAt        time.Time      `json:"created_at"`
	LastUsedAt       *time.Time     `json:"last_used_at"`
	// LastUsedFrom is the address of the last use a resource server
	// reported, if any.
	LastUsedFrom string `json:"last_used_from,omitempty"`
}

// Owner is the key's owner.
func (k *Key) Owner() Owner { return Owner{ClientID: k.ClientID, UserID: k.UserID} }

// Scopes are the key's scopes.
func (k *Key) Scopes() []string { return strings.Fields(k.Scope) }

// Subject is whom the key acts for: its user, or its client.
func (k *Key) Subject() string {
	if k.UserID != "" {
		return k.UserID
	}
	return k.ClientID
}

// IssuedTo is the client_id introspection answers: the owning client, or
// PersonalClientID.
func (k *Key) IssuedTo() string {
	if k.UserID != "" {
		return PersonalClientID
	}
	return k.ClientID
}

// Found is a key as Check reads it: the key and what its owner may have
// now.
type Found struct {
	Key
	// OwnerScope is the owning client's registered scope now; empty for a
	// personal key.
	OwnerScope string
	// OwnerDisabled is true when the owning user is disabled.
	OwnerDisabled bool
	// AddressKnown is true when the key was used from the address asked
	// about before.
	AddressKnown bool
	// AddressesFull is true when the key has recorded as many addresses as
	// it may: new ones are no longer recorded.
	AddressesFull bool
}

// AddressRecord is what recording a use from an address did.
type AddressRecord int

const (
	// AddressKnown: the address was recorded already (by a parallel
	// request), or the key is gone; nothing was written.
	AddressKnown AddressRecord = iota
	// AddressNew: the address is recorded now, for the first time.
	AddressNew
	// AddressesFull: the key had its cap of addresses, and this use is the
	// first to find it so; it is marked full. Exactly one use per key
	// gets this.
	AddressesFull
	// AddressRefused: the key was marked full before; nothing was written.
	AddressRefused
)

// Store keeps keys (storage/postgres). Each call joins the transaction its
// context carries, if any.
type Store interface {
	// CreateAPIKey stores k under digest unless its owner holds max keys
	// already (ErrTooMany), deciding under a lock of the owner so that
	// parallel creations cannot exceed it.
	CreateAPIKey(ctx context.Context, k *Key, digest []byte, max int) error
	// APIKeyByDigest reads the key with digest and its owner, and whether
	// the key was used from from before (ErrNotFound if none): one
	// indexed lookup.
	APIKeyByDigest(ctx context.Context, digest []byte, from netip.Addr) (*Found, error)
	// RecordAPIKeyAddress records that the key was used from from, at
	// now, unless it has max addresses recorded already, and says what
	// it did: of any number of parallel calls, exactly one gets
	// AddressNew for an address, and exactly one AddressesFull for a key,
	// and no more than max addresses are ever recorded.
	RecordAPIKeyAddress(ctx context.Context, id string, from netip.Addr, now time.Time, max int) (AddressRecord, error)
	// TouchAPIKey records a use of the key at now, from from if valid,
	// unless one within touchEvery of now is recorded already.
	TouchAPIKey(ctx context.Context, id string, from netip.Addr, now time.Time, every time.Duration) error
	// APIKeys lists the owner's keys, newest first.
	APIKeys(ctx context.Context, owner Owner) ([]Key, error)
	// DeleteAPIKey deletes the owner's key id and returns it; ErrNotFound
	// if the owner has none with that ID.
	DeleteAPIKey(ctx context.Context, owner Owner, id string) (*Key, error)
}

// Clients reads the clients that own keys (pkg/client).
type Clients interface {
	Get(ctx context.Context, id string) (*client.Client, error)
}

// Auditor records changes with their audit events (pkg/audit).
type Auditor interface {
	Change(ctx context.Context, change func(ctx context.Context) (audit.Event, error)) error
}

// DefaultMaxAddresses is how many addresses a key records, and audits
// one by one, unless Config says otherwise: far more than a key used from
// a few servers or offices needs, and few enough that a leaked key used
// from everywhere costs a bounded number of rows and audit events.
const DefaultMaxAddresses = 100

// Config is what a Manager allows.
type Config struct {
	// PersonalScopes are the scopes users may give their own keys
	// (LATCHKEY_PERSONAL_API_KEY_SCOPES); none turns personal keys off.
	PersonalScopes []string
	// MaxAddresses is how many addresses each key records; 0 means
	// DefaultMaxAddresses. Beyond it, uses from new addresses still work
	// (allowed addresses are what limits where a key works) but are not
	// recorded, and one api_key.addresses_capped event says so.
	MaxAddresses int
}

// Manager makes, checks, lists and revokes keys. The admin API, the CLI,
// the account page and introspection all go through it.
type Manager struct {
	store   Store
	clients Clients
	audit   Auditor
	logger  *slog.Logger
	// personal are the scopes users may give their own keys; none turns
	// personal keys off.
	personal []string
	// maxAddresses is how many addresses each key records.
	maxAddresses int
}

// New returns a Manager that allows what cfg says.
func New(store Store, clients Clients, audit Auditor, logger *slog.Logger, cfg Config) *Manager {
	m := &Manager{store: store, clients: clients, audit: audit, logger: logger,
		personal: slices.Clone(cfg.PersonalScopes), maxAddresses: cfg.MaxAddresses}
	if m.maxAddresses <= 0 {
		m.maxAddresses = DefaultMaxAddresses
	}
	return m
}

// PersonalScopes are the scopes users may give their own keys; none when
// personal keys are off.
func (m *Manager) PersonalScopes() []string { return slices.Clone(m.personal) }

// Request is what a new key is asked for with.
type Request struct {
	Name string `json:"name"`
	// Scope is space-separated; it must be within what the owner may have.
	Scope string `json:"scope"`
	// ExpiresAt, if set, ends the key; at most MaxLifetime away.
	ExpiresAt *time.Time `json:"expires_at"`
	// Audience are clients, besides the owner, that may introspect the key.
	Audience []string `json:"audience"`
	// AllowedAddresses are networks (CIDR) or single addresses.
	AllowedAddresses []string `json:"allowed_addresses"`
}

// Create makes a key for owner, records api_key.created, and returns it
// with the key itself, which is never available again. A key for a
// client may have only scopes the client is registered for; a personal
// key only the personal scopes; neither may have the admin scopes, whose
// power comes from the client credentials grant alone. Invalid requests
// are *validation.Error naming the field.
func (m *Manager) Create(ctx context.Context, owner Owner, req Request) (*Key, string, error) {
	if owner.UserID != "" && uuid.Validate(owner.UserID) != nil {
		return nil, "", ErrNotFound
	}
	allowed, err := m.allowedScopes(ctx, owner)
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	k, err := req.validate(allowed, owner, now)
	if err != nil {
		return nil, "", err
	}
	secret := generate()
	k.ID, k.Prefix, k.CreatedAt = uuid.NewString(), secret[:displayLen], now
	err = m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		details := map[string]any{"key": k.ID, "name": k.Name, "scope": k.Scope, "prefix": k.Prefix}
		if k.ExpiresAt != nil {
			details["expires_at"] = k.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return audit.Event{Action: audit.APIKeyCreated, Target: owner.target(), Details: details},
			m.store.CreateAPIKey(ctx, k, Digest(secret), MaxPerOwner)
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// allowedScopes is what a key of owner may carry.
func (m *Manager) allowedScopes(ctx context.Context, owner Owner) ([]string, error) {
	if owner.UserID != "" {
		return m.personal, nil
	}
	c, err := m.clients.Get(ctx, owner.ClientID)
	if err != nil {
		return nil, err
	}
	return c.Scopes(), nil
}

// validate checks a request for owner, allowed the given scopes, and
// returns the key it asks for.
func (req Request) validate(allowed []string, owner Owner, now time.Time) (*Key, error) {
	e := &validation.Error{Of: "API key"}
	name := strings.TrimSpace(req.Name)
	if name == "" || len([]rune(name)) > MaxNameLen {
		e.Add("name", "must be 1 to %d characters, to tell the key apart from the owner's others", MaxNameLen)
	}
	scopes := strings.Fields(req.Scope)
	if len(scopes) == 0 {
		e.Add("scope", "must name at least one scope")
	}
	for _, s := range scopes {
		switch {
		case s == client.AdminScope || s == client.AdminReadScope:
			e.Add("scope", "%s is not for keys: admin API power comes only from a client's client credentials grant", s)
		case !slices.Contains(allowed, s) && owner.UserID != "":
			e.Add("scope", "%s is not one users may give their own keys (allowed: %q)", s, strings.Join(allowed, " "))
		case !slices.Contains(allowed, s):
			e.Add("scope", "%s is not among the client's registered scopes (%q); register it on the client first", s, strings.Join(allowed, " "))
		}
	}
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	if req.ExpiresAt != nil {
		switch {
		case !req.ExpiresAt.After(now):
			e.Add("expires_at", "is in the past")
		case req.ExpiresAt.Sub(now) > MaxLifetime:
			e.Add("expires_at", "is more than %s away; leave it out for a key that lives until revoked", MaxLifetime)
		}
	}
	if len(req.Audience) > maxAudience {
		e.Add("audience", "may name at most %d clients", maxAudience)
	}
	for _, a := range req.Audience {
		if a == "" || strings.ContainsAny(a, " \t\r\n") {
			e.Add("audience", "must be client IDs")
			break
		}
	}
	if len(req.AllowedAddresses) > maxAllowedCIDRs {
		e.Add("allowed_addresses", "may name at most %d networks", maxAllowedCIDRs)
	}
	var nets []netip.Prefix
	for _, s := range req.AllowedAddresses {
		p, err := parsePrefix(s)
		if err != nil {
			e.Add("allowed_addresses", "%q is neither an address nor a network in CIDR notation (203.0.113.0/24, 2001:db8::/32)", s)
			continue
		}
		nets = append(nets, p)
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	k := &Key{ClientID: owner.ClientID, UserID: owner.UserID, Name: name, Scope: strings.Join(scopes, " "),
		Audience: slices.Clone(req.Audience), AllowedAddresses: nets}
	if req.ExpiresAt != nil {
		exp := req.ExpiresAt.UTC().Truncate(time.Second)
		k.ExpiresAt = &exp
	}
	return k, nil
}

// parsePrefix reads a network, or an address as the network of it alone.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// List returns the owner's keys, newest first; never the keys themselves,
// which are not stored.
func (m *Manager) List(ctx context.Context, owner Owner) ([]Key, error) {
	if owner.UserID != "" && uuid.Validate(owner.UserID) != nil {
		return nil, nil // no user has this sub
	}
	return m.store.APIKeys(ctx, owner)
}

// Revoke ends the owner's key id at once, on every node, and records
// api_key.revoked; ErrNotFound if the owner has no such key.
func (m *Manager) Revoke(ctx context.Context, owner Owner, id string) error {
	if uuid.Validate(id) != nil || (owner.UserID != "" && uuid.Validate(owner.UserID) != nil) {
		return ErrNotFound
	}
	return m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
		k, err := m.store.DeleteAPIKey(ctx, owner, id)
		details := map[string]any{"key": id}
		if k != nil {
			details["name"], details["prefix"] = k.Name, k.Prefix
		}
		return audit.Event{Action: audit.APIKeyRevoked, Target: owner.target(), Details: details}, err
	})
}

// RevokeSecret revokes the key secret on behalf of the client clientID,
// for RFC 7009 revocation: a client may revoke only its own keys
// (ErrNotOwner for another's). An unknown, malformed or already revoked
// key is no error, as RFC 7009 §2.2 says.
func (m *Manager) RevokeSecret(ctx context.Context, clientID, secret string) error {
	if !Wellformed(secret) {
		return nil
	}
	f, err := m.store.APIKeyByDigest(ctx, Digest(secret), netip.Addr{})
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case f.ClientID != clientID:
		return ErrNotOwner
	}
	err = m.Revoke(ctx, Client(clientID), f.ID)
	if errors.Is(err, ErrNotFound) {
		return nil // revoked a moment ago by someone else
	}
	return err
}

// Check returns the key secret if it may be used now, from the address
// from (the zero Addr when the resource server does not say), with the
// scopes it has now: those it was made with that its owner still may
// have. Anything else is ErrInactive: a malformed key without reading the
// database; an unknown or revoked one, an expired one, one whose user is
// disabled, one used from outside its allowed addresses, and one with an
// allowed list when the address is not given (it fails closed).
//
// It records the use: the first from each address, audited as
// api_key.used_from_new_address, up to the manager's MaxAddresses per key
// (then one api_key.addresses_capped, and no more addresses), and
// otherwise the last-used time at most once a minute. A failure of that bookkeeping is logged and does not
// refuse the key.
func (m *Manager) Check(ctx context.Context, secret string, from netip.Addr) (*Key, error) {
	if !Wellformed(secret) {
		return nil, ErrInactive
	}
	from = from.Unmap()
	f, err := m.store.APIKeyByDigest(ctx, Digest(secret), from)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInactive
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if f.OwnerDisabled || (f.ExpiresAt != nil && !now.Before(*f.ExpiresAt)) || !allows(f.AllowedAddresses, from) {
		return nil, ErrInactive
	}
	owner := m.personal
	if f.ClientID != "" {
		owner = strings.Fields(f.OwnerScope)
	}
	var scopes []string
	for _, s := range f.Scopes() {
		if slices.Contains(owner, s) {
			scopes = append(scopes, s)
		}
	}
	if len(scopes) == 0 {
		// The owner may have none of the key's scopes any more.
		return nil, ErrInactive
	}
	k := f.Key
	k.Scope = strings.Join(scopes, " ")
	if err := m.recordUse(ctx, f, from, now); err != nil {
		m.logger.LogAttrs(ctx, slog.LevelWarn, "apikey: recording a key's use failed", slog.String("key", f.ID), slog.String("err", err.Error()))
	}
	return &k, nil
}

// allows reports whether a key with the allowed networks may be used from
// from: any address if there are none; otherwise only a known address
// inside one of them.
func allows(allowed []netip.Prefix, from netip.Addr) bool {
	if len(allowed) == 0 {
		return true
	}
	if !from.IsValid() {
		return false
	}
	for _, p := range allowed {
		if p.Contains(from) {
			return true
		}
	}
	return false
}

// errNotRecorded rolls back the audit event of a use from an address
// that was not recorded: another request recorded it first, or the key's
// addresses were full already.
var errNotRecorded = errors.New("apikey: address not recorded")

// recordUse is Check's bookkeeping: it writes only the first use from an
// address, while the key has fewer than maxAddresses, the one use that
// finds them full, and a last-used time older than touchEvery.
func (m *Manager) recordUse(ctx context.Context, f *Found, from netip.Addr, now time.Time) error {
	if from.IsValid() && !f.AddressKnown && !f.AddressesFull {
		err := m.audit.Change(ctx, func(ctx context.Context) (audit.Event, error) {
			rec, err := m.store.RecordAPIKeyAddress(ctx, f.ID, from, now, m.maxAddresses)
			details := map[string]any{"key": f.ID, "name": f.Name, "prefix": f.Prefix, "address": from.String()}
			e := audit.Event{Action: audit.APIKeyUsedFromNewAddress, Target: f.Owner().target(), Details: details}
			switch {
			case err != nil:
			case rec == AddressesFull:
				// One note for all the addresses to come; the address of
				// the use that found the cap is kept for the record.
				e.Action = audit.APIKeyAddressesCapped
				details["max_addresses"] = m.maxAddresses
			case rec != AddressNew:
				err = errNotRecorded
			}
			return e, err
		})
		if !errors.Is(err, errNotRecorded) {
			return err
		}
	}
	if f.LastUsedAt != nil && now.Sub(*f.LastUsedAt) < touchEvery {
		return nil
	}
	return m.store.TouchAPIKey(ctx, f.ID, from, now, touchEvery)
}
