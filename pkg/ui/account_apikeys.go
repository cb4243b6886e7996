package ui

import "net/http"

// apiKeyPageNames are the templates of the personal API key pages, parsed
// with pageNames.
var apiKeyPageNames = []string{"apikey"}

// AccountAPIKeys is the account page's personal API keys section
// (pkg/apikey). Its block comes after the passkeys'.
type AccountAPIKeys struct {
	// APIKeysShown says the section is on the page: personal keys are on,
	// or the user still holds keys from when they were.
	APIKeysShown bool
	// APIKeyScopes are the scopes a user may give a key
	// (LATCHKEY_PERSONAL_API_KEY_SCOPES); none means personal keys are
	// off, and the page offers no form to make one.
	APIKeyScopes []string
	APIKeys      []AccountAPIKey
	// APIKeyMaxName is the longest name a key may have.
	APIKeyMaxName int
	// APIKeyExpiries are the lifetimes the form offers, the first the
	// default.
	APIKeyExpiries []APIKeyExpiry
}

// APIKeyExpiry is one choice of the form's expiry list.
type APIKeyExpiry struct {
	// Value is what the form posts: days, or "never".
	Value, Label string
}

// AccountAPIKey is one of the user's personal API keys: never the key
// itself, which is not stored.
type AccountAPIKey struct {
	// ID names the key to the revoke form.
	ID string
	// Prefix is the key's first characters, to tell it apart.
	Prefix, Name, Scopes string
	// Expires, Created and LastUsed are dates to show; Expires "" for a
	// key that lives until revoked, LastUsed "" for one never used.
	Expires, Created, LastUsed string
	// LastUsedFrom is the address a resource server reported for the last
	// use, if any.
	LastUsedFrom string
}

// APIKeyPage shows a personal API key just made, the one time it is
// shown: it is stored only as a digest.
type APIKeyPage struct {
	page
	Key, Name, Scopes string
	// Expires is "" for a key that lives until revoked.
	Expires string
	// Continue is the account page.
	Continue string
}

// APIKey renders the page that shows a new personal API key. Like every
// page it is sent with Cache-Control: no-store, so that the key is not
// kept by the browser's cache or the back button.
func (p *Pages) APIKey(w http.ResponseWriter, d APIKeyPage) {
	d.page = p.base("Your new API key")
	p.render(w, http.StatusOK, "apikey", "", d)
}
