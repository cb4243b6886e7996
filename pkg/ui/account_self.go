package ui

import "net/http"

// accountPageNames are the templates of the account page's own changes,
// parsed with pageNames.
var accountPageNames = []string{"goodbye"}

// AccountSettings is what the account page offers for changing the
// account itself: its password, its profile, and deleting it. Its blocks
// come after the rest of the page.
type AccountSettings struct {
	// Profile is the profile form: the stored values, or what was typed
	// when the form was refused, so that nothing typed is lost.
	Profile []ProfileField
	// PasswordMin and PasswordMax are the password policy's lengths, for
	// the new-password field.
	PasswordMin, PasswordMax int
	// Deletion says the operator lets users delete their own account.
	Deletion bool
}

// ProfileField is one field of the profile form: a name or a standard
// claim (OpenID Connect Core §5.1).
type ProfileField struct {
	// Name is the form field's name, the claim's; ID its element ID.
	Name, ID string
	Label    string
	Value    string
	// Hint says what form the value takes, for claims apps parse (a
	// language tag, a time zone, a web address); "" for free text.
	Hint string
	// Autocomplete is the field's autocomplete token, for the names a
	// browser can fill in; "off" for the rest.
	Autocomplete string
	// InputMode is the keyboard a phone shows: "url" for web addresses,
	// "" for text.
	InputMode string
	// Max is the most characters the field takes.
	Max int
}

// GoodbyePage is what a user sees once they have deleted their account.
type GoodbyePage struct {
	page
	// Email is the address the account had, so the user knows which went.
	Email string
	// SignInURL is where to go if they ever come back.
	SignInURL string
}

// Goodbye renders the page after a user deleted their account.
func (p *Pages) Goodbye(w http.ResponseWriter, d GoodbyePage) {
	d.page = p.base("Your account is deleted")
	p.render(w, http.StatusOK, "goodbye", "", d)
}
