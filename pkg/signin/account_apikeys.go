package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/pkg/apikey"
	"github.com/latchkey/latchkey/pkg/ui"
	"github.com/latchkey/latchkey/pkg/validation"
)

// APIKeys makes, lists and revokes users' personal API keys (pkg/apikey):
// long-lived credentials for their own scripts, checked by resource
// servers at the introspection endpoint.
type APIKeys interface {
	// PersonalScopes are the scopes a user may give a key; none when the
	// operator has personal keys off.
	PersonalScopes() []string
	Create(ctx context.Context, owner apikey.Owner, req apikey.Request) (*apikey.Key, string, error)
	List(ctx context.Context, owner apikey.Owner) ([]apikey.Key, error)
	Revoke(ctx context.Context, owner apikey.Owner, id string) error
}

// Fields of the new-key form.
const (
	apiKeyNameField    = "name"
	apiKeyScopeField   = "scope"
	apiKeyExpiresField = "expires"
	apiKeyField        = "key" // the revoke form's key ID
)

// apiKeyExpiries are the lifetimes the form offers, the first the
// default: a key that expires is one fewer forgotten credential, so
// "never" is a choice the user makes, not one they get.
var apiKeyExpiries = []ui.APIKeyExpiry{
	{Value: "90", Label: "90 days"},
	{Value: "30", Label: "30 days"},
	{Value: "7", Label: "7 days"},
	{Value: "365", Label: "1 year"},
	{Value: "never", Label: "Never (until revoked)"},
}

// personalKeysOn reports whether users may make personal keys: there is a
// key manager and the operator named scopes for them
// (LATCHKEY_PERSONAL_API_KEY_SCOPES).
func (s *Service) personalKeysOn() bool {
	return s.APIKeys != nil && len(s.APIKeys.PersonalScopes()) > 0
}

// accountAPIKeys is the account page's personal API keys section for
// userID. With personal keys off it is absent, unless the user still
// holds keys from when they were on: those are listed, inactive, to be
// revoked.
func (s *Service) accountAPIKeys(ctx context.Context, userID string) (ui.AccountAPIKeys, error) {
	if s.APIKeys == nil {
		return ui.AccountAPIKeys{}, nil
	}
	keys, err := s.APIKeys.List(ctx, apikey.User(userID))
	if err != nil {
		return ui.AccountAPIKeys{}, err
	}
	d := ui.AccountAPIKeys{APIKeyScopes: s.APIKeys.PersonalScopes(), APIKeyMaxName: apikey.MaxNameLen, APIKeyExpiries: apiKeyExpiries}
	d.APIKeysShown = len(d.APIKeyScopes) > 0 || len(keys) > 0
	for _, k := range keys {
		item := ui.AccountAPIKey{ID: k.ID, Prefix: k.Prefix, Name: k.Name, Scopes: k.Scope,
			Created: k.CreatedAt.UTC().Format(dateFormat), LastUsedFrom: k.LastUsedFrom}
		if k.ExpiresAt != nil {
			item.Expires = k.ExpiresAt.UTC().Format(dateFormat)
		}
		if k.LastUsedAt != nil {
			item.LastUsed = k.LastUsedAt.UTC().Format(dateFormat)
		}
		d.APIKeys = append(d.APIKeys, item)
	}
	return d, nil
}

// accountCreateAPIKey makes a personal API key and shows it, once. It
// needs a recent sign-in: a key outlives the session, so a stolen session
// cookie must not be able to turn itself into one.
func (s *Service) accountCreateAPIKey(w http.ResponseWriter, r *http.Request) (failed bool) {
	if !s.personalKeysOn() {
		// Checked before the password is asked for, so that nobody is
		// asked for it in vain.
		if s.signedIn(w, r) != nil {
			s.accountPage(w, r, http.StatusForbidden, "", "Personal API keys are off on this server.")
		}
		return false
	}
	user, failed := s.recentUser(w, r)
	if user == nil {
		return failed
	}
	req := apikey.Request{Name: r.PostFormValue(apiKeyNameField), Scope: strings.Join(r.PostForm[apiKeyScopeField], " ")}
	switch v := r.PostFormValue(apiKeyExpiresField); v {
	case "never":
	default:
		days, err := strconv.Atoi(v)
		if err != nil || days < 1 || days > 366 {
			s.accountPage(w, r, http.StatusBadRequest, "", "Choose when the key expires from the list.")
			return false
		}
		at := time.Now().Add(time.Duration(days) * 24 * time.Hour)
		req.ExpiresAt = &at
	}
	k, secret, err := s.APIKeys.Create(r.Context(), apikey.User(user.ID), req)
	var invalid *validation.Error
	switch {
	case errors.As(err, &invalid):
		s.accountPage(w, r, http.StatusBadRequest, "", apiKeyProblem(invalid))
		return false
	case errors.Is(err, apikey.ErrTooMany):
		s.accountPage(w, r, http.StatusConflict, "", "You have as many API keys as you may hold. Revoke one you no longer use to make room.")
		return false
	case err != nil:
		s.fail(w, r, err)
		return false
	}
	d := ui.APIKeyPage{Key: secret, Name: k.Name, Scopes: k.Scope, Continue: s.Base + AccountPath + "?notice=api-key-created"}
	if k.ExpiresAt != nil {
		d.Expires = k.ExpiresAt.UTC().Format(dateFormat)
	}
	s.Pages.APIKey(w, d)
	return false
}

// apiKeyProblem says what is wrong with a new key's form, in the form's
// words rather than the API's field names.
func apiKeyProblem(e *validation.Error) string {
	var msgs []string
	for _, p := range e.Problems {
		switch p.Field {
		case "name":
			msgs = append(msgs, fmt.Sprintf("Give the key a name of at most %d characters, to tell it from your others.", apikey.MaxNameLen))
		case "scope":
			if strings.HasPrefix(p.Message, "must") {
				msgs = append(msgs, "Choose at least one scope for the key.")
			} else {
				msgs = append(msgs, "The scope "+p.Message+".")
			}
		case "expires_at":
			msgs = append(msgs, "Choose when the key expires from the list.")
		default:
			msgs = append(msgs, "The key's "+p.Field+" "+p.Message+".")
		}
	}
	return strings.Join(msgs, " ")
}

// accountRevokeAPIKey revokes one of the user's personal keys, at once on
// every node. Revoking takes power away, so, like forgetting a browser,
// it needs no recent sign-in; and it works with personal keys off, so
// that keys from before can be cleared.
func (s *Service) accountRevokeAPIKey(w http.ResponseWriter, r *http.Request) {
	f := s.signedIn(w, r)
	if f == nil {
		return
	}
	err := apikey.ErrNotFound // with no key manager, no user has a key
	if s.APIKeys != nil {
		err = s.APIKeys.Revoke(r.Context(), apikey.User(f.user.ID), r.PostFormValue(apiKeyField))
	}
	switch {
	case err == nil:
		s.accountDone(w, r, "api-key-revoked")
	case errors.Is(err, apikey.ErrNotFound):
		s.accountPage(w, r, http.StatusNotFound, "", "That API key is not on your account. It may have been revoked already.")
	default:
		s.fail(w, r, err)
	}
}
