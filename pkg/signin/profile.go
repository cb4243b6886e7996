package signin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/ui"
	"github.com/latchkey/latchkey/pkg/validation"
)

// profileField is a part of the profile a user edits on the account page:
// the names, which identity.User has fields for, and the standard claims
// it keeps in Claims that are the user's to say (OpenID Connect Core
// §5.1). The email has a flow of its own (it must be verified), and the
// address, phone number and birthdate stay with the admin API and the
// CLI, where an organisation keeps them.
type profileField struct {
	name, label, hint, autocomplete, inputMode string
	// max is the most characters identity.User.Validate takes.
	max int
}

// profileFields are the account page's profile form, in its order.
var profileFields = []profileField{
	{name: "name", label: "Full name", autocomplete: "name", max: 200},
	{name: "given_name", label: "Given name", autocomplete: "given-name", max: 200},
	{name: "family_name", label: "Family name", autocomplete: "family-name", max: 200},
	{name: "nickname", label: "Nickname", autocomplete: "nickname", max: 500},
	{name: "preferred_username", label: "Preferred username", autocomplete: "username", max: 500},
	{name: "locale", label: "Language", hint: "a language tag, such as en-GB or de", autocomplete: "language", max: 500},
	{name: "zoneinfo", label: "Time zone", hint: "such as Europe/London", autocomplete: "off", max: 500},
	{name: "website", label: "Website", hint: "https://…", autocomplete: "url", inputMode: "url", max: 500},
	{name: "picture", label: "Picture", hint: "web address of an image, https://…", autocomplete: "photo", inputMode: "url", max: 500},
}

// profileValue is the stored value of a profile field.
func profileValue(u *identity.User, name string) string {
	switch name {
	case "name":
		return u.Name
	case "given_name":
		return u.GivenName
	case "family_name":
		return u.FamilyName
	}
	v, _ := u.Claims[name].(string)
	return v
}

// profileForm is the profile form showing value(name) in each field.
func profileForm(value func(name string) string) []ui.ProfileField {
	out := make([]ui.ProfileField, len(profileFields))
	for i, f := range profileFields {
		out[i] = ui.ProfileField{Name: f.name, ID: "profile-" + strings.ReplaceAll(f.name, "_", "-"), Label: f.label,
			Value: value(f.name), Hint: f.hint, Autocomplete: f.autocomplete, InputMode: f.inputMode, Max: f.max}
	}
	return out
}

// errDisabled refuses a change to a user an administrator disabled
// between the page's check of the session and the change.
var errDisabled = errors.New("signin: the user is disabled")

// accountProfile saves the profile form through Users.Update, whose
// validation is the one the admin API and the CLI meet. An empty field
// removes the claim. A refused form comes back with what was typed and a
// message naming each field at fault.
func (s *Service) accountProfile(w http.ResponseWriter, r *http.Request) {
	f := s.signedIn(w, r)
	if f == nil {
		return
	}
	typed := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	_, err := s.Users.Update(r.Context(), f.user.ID, func(u *identity.User) error {
		// Read in the update's transaction, with the user locked: an
		// account disabled since the session was checked changes no more.
		if u.Disabled {
			return errDisabled
		}
		if u.Claims == nil {
			u.Claims = map[string]any{}
		}
		for _, pf := range profileFields {
			v := typed(pf.name)
			switch pf.name {
			case "name":
				u.Name = v
			case "given_name":
				u.GivenName = v
			case "family_name":
				u.FamilyName = v
			default:
				if v == "" {
					delete(u.Claims, pf.name)
				} else {
					u.Claims[pf.name] = v
				}
			}
		}
		return nil
	})
	var invalid *validation.Error
	switch {
	case errors.As(err, &invalid):
		s.accountPageWith(w, r, http.StatusBadRequest, "", profileProblem(invalid), typed)
		return
	case errors.Is(err, errDisabled), errors.Is(err, identity.ErrNotFound):
		http.Redirect(w, r, s.Base+LoginPath, http.StatusSeeOther)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.accountDone(w, r, "profile-saved")
}

// profileProblem says which fields of the profile form were refused, and
// why, by their labels on the page.
func profileProblem(invalid *validation.Error) string {
	var parts []string
	for _, p := range invalid.Problems {
		label := strings.TrimPrefix(p.Field, "claims.")
		for _, pf := range profileFields {
			if pf.name == label {
				label = pf.label
			}
		}
		parts = append(parts, label+" "+p.Message)
	}
	return "Your profile was not saved. " + strings.Join(parts, "; ") + "."
}

// accountSettings is the account page's part for changing the account:
// the profile form with typed's values, or the stored ones if typed is
// nil, the password policy, and whether deletion is offered.
func (s *Service) accountSettings(u *identity.User, typed func(name string) string) ui.AccountSettings {
	if typed == nil {
		typed = func(name string) string { return profileValue(u, name) }
	}
	return ui.AccountSettings{Profile: profileForm(typed), PasswordMin: identity.MinPasswordLength,
		PasswordMax: identity.MaxPasswordLength, Deletion: s.AccountDeletion}
}
