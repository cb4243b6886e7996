// Package identity is Latchkey's user directory: who can sign in, what they
// prove it with, and what apps may learn about them.
//
// A user is identified by sub, a random UUID that never changes and says
// nothing about the person; the email is an attribute, unique regardless of
// case, that a user can change without becoming someone else to every app.
// Passwords are hashed with argon2id (password.go). Claims returns what a
// user's profile tells an app, by the OpenID Connect scopes it was granted.
package identity

import (
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/mohae/deepcopy"

	"github.com/latchkey/latchkey/pkg/validation"
)

// User is a person who can sign in.
type User struct {
	// ID is the subject (sub) apps know the user by.
	ID            string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name,omitempty"`
	GivenName     string `json:"given_name,omitempty"`
	FamilyName    string `json:"family_name,omitempty"`
	// Claims holds the other standard claims the user has (OpenID Connect
	// Core §5.1), under their claim names: picture, locale, address,
	// phone_number and so on.
	Claims    map[string]any `json:"claims,omitempty"`
	Disabled  bool           `json:"disabled"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`

	// PasswordHash is the argon2id hash; empty for a user who has not set
	// a password.
	PasswordHash string `json:"-"`
}

// newSub returns a new user's sub: a random UUID, which says nothing about
// the person and never changes.
func newSub() string { return uuid.NewString() }

// IsSub reports whether s has the form of a user's sub: a UUID, as newSub
// makes them. What has not names no user, so the managers answer
// ErrNotFound without asking the store; and a client ID may not have it
// (pkg/client), so that a client is never taken for a user.
func IsSub(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil
}

// clone returns a copy of u that shares nothing with it, so that an edit of
// one leaves the other as it was.
func (u *User) clone() User {
	c := *u
	if u.Claims != nil {
		c.Claims = deepcopy.Copy(u.Claims).(map[string]any)
	}
	return c
}

// Scope claims, as OpenID Connect Core §5.4 assigns them. Claims in
// otherClaims may be set in User.Claims; the rest have fields of their own.
var (
	profileClaims = []string{"name", "family_name", "given_name", "middle_name", "nickname",
		"preferred_username", "profile", "picture", "website", "gender", "birthdate",
		"zoneinfo", "locale", "updated_at"}
	emailClaims   = []string{"email", "email_verified"}
	addressClaims = []string{"address"}
	phoneClaims   = []string{"phone_number", "phone_number_verified"}
	scopeClaims   = map[string][]string{
		"profile": profileClaims,
		"email":   emailClaims,
		"address": addressClaims,
		"phone":   phoneClaims,
	}
	// otherClaims are the standard claims kept in User.Claims.
	otherClaims = []string{"middle_name", "nickname", "preferred_username", "profile", "picture",
		"website", "gender", "birthdate", "zoneinfo", "locale", "address", "phone_number",
		"phone_number_verified"}
)

// SupportedClaims lists every claim a user can carry, for discovery.
func SupportedClaims() []string {
	out := []string{"sub"}
	for _, s := range []string{"profile", "email", "address", "phone"} {
		out = append(out, scopeClaims[s]...)
	}
	return out
}

// ClaimsForScopes returns the claim names the given scopes grant.
func ClaimsForScopes(scopes []string) []string {
	var names []string
	for _, s := range scopes {
		names = append(names, scopeClaims[s]...)
	}
	return names
}

// ClaimValues returns the named claims the user has, plus sub, ready for
// an ID token or userinfo. A claim the user lacks is left out rather than
// sent empty, as OpenID Connect Core §5.3.2 asks.
func (u *User) ClaimValues(names []string) map[string]any {
	out := map[string]any{"sub": u.ID}
	for _, name := range names {
		var v any
		switch name {
		case "email":
			v = u.Email
		case "email_verified":
			v = u.EmailVerified
		case "name":
			v = u.Name
		case "given_name":
			v = u.GivenName
		case "family_name":
			v = u.FamilyName
		case "updated_at":
			v = u.UpdatedAt.Unix()
		default:
			if slices.Contains(otherClaims, name) {
				v = u.Claims[name]
			}
		}
		if v != nil && v != "" {
			out[name] = v
		}
	}
	return out
}

// addressFields are the members of the address claim (OpenID Connect Core
// §5.1.1).
var addressFields = []string{"formatted", "street_address", "locality", "region", "postal_code", "country"}

// claimValueProblem checks a claim's value has the type OpenID Connect Core
// §5.1 gives it, so that apps can rely on it: the address an object of
// strings, phone_number_verified a boolean, the rest short single-line
// strings.
func claimValueProblem(name string, v any) string {
	switch name {
	case "address":
		m, ok := v.(map[string]any)
		if !ok {
			return "must be an object with " + strings.Join(addressFields, ", ")
		}
		for k, f := range m {
			if s, ok := f.(string); !slices.Contains(addressFields, k) || !ok || len(s) > 500 {
				return fmt.Sprintf("has member %q; it may hold only the strings %s", k, strings.Join(addressFields, ", "))
			}
		}
		return ""
	case "phone_number_verified":
		if _, ok := v.(bool); !ok {
			return "must be true or false"
		}
		return ""
	}
	s, ok := v.(string)
	if !ok || utf8.RuneCountInString(s) > 500 || strings.ContainsFunc(s, unicode.IsControl) {
		return "must be a string of at most 500 characters on one line"
	}
	return ""
}

// Validate checks a user's attributes: a plausible email, names without
// control characters, and only standard claim names in Claims. It reports
// every problem at once as a *validation.Error.
func (u *User) Validate() error {
	e := &validation.Error{Of: "user"}
	if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email || len(u.Email) > 254 {
		e.Add("email", "%q is not an email address such as ada@example.com", u.Email)
	}
	for _, f := range []struct{ field, v string }{{"family_name", u.FamilyName}, {"given_name", u.GivenName}, {"name", u.Name}} {
		if utf8.RuneCountInString(f.v) > 200 || strings.ContainsFunc(f.v, unicode.IsControl) {
			e.Add(f.field, "must be at most 200 characters, with no control characters")
		}
	}
	for _, name := range slices.Sorted(maps.Keys(u.Claims)) {
		if !slices.Contains(otherClaims, name) {
			e.Add("claims."+name, "is not a standard claim Latchkey keeps (%s)", strings.Join(otherClaims, ", "))
			continue
		}
		if msg := claimValueProblem(name, u.Claims[name]); msg != "" {
			e.Add("claims."+name, "%s", msg)
		}
	}
	return e.Err()
}
