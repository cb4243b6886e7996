package signin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/trust"
	"github.com/latchkey/latchkey/pkg/ui"
)

// Trust keeps the browsers users trust to stand in for their second
// factor (pkg/trust).
type Trust interface {
	// Enabled reports whether browsers may be trusted at all; Lifetime is
	// for how long.
	Enabled() bool
	Lifetime() time.Duration
	Trust(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string) error
	Recognised(ctx context.Context, r *http.Request, userID string) (bool, error)
	List(ctx context.Context, userID string) ([]trust.Device, error)
	Forget(ctx context.Context, userID, id string) error
	ForgetAll(ctx context.Context, userID string) (int64, error)
}

// trustField is the second-factor form's checkbox, "Don't ask again on
// this browser".
const trustField = "trust"

// trustOn reports whether the operator lets browsers be trusted
// (LATCHKEY_TRUSTED_DEVICE_LIFETIME is not 0).
func (s *Service) trustOn() bool { return s.Trust != nil && s.Trust.Enabled() }

// trustStandsIn reports whether a browser the user trusts may stand in
// for their second factor in sign-in f. It is the one rule for where
// trust counts; everywhere else the second factor is asked for as usual.
//
// Trust stands for a second factor given on this browser days ago. It
// cannot answer a request that wants the user to prove who they are now
// (prompt=login, OpenID Connect Core §3.1.2.1), nor within max_age, which
// bounds how long ago they last actively did: in both the factor is asked
// for. Nor does it answer an app that wants a level above the password
// (require_mfa, require_phishing_resistant, acr_values or an acr claim
// for the MFA or phishing-resistant level): the sign-in trust lets
// through is truthfully the password's (amr pwd), so such an app would
// get the factor asked for after it anyway, and asking at once makes it
// one sign-in. Nor, last, does it answer a sign-in the risk policy steps
// up (stepUp: pkg/risk found it unusual, such as from a new country):
// trust was given on this browser, and the password may not be the
// user's hand on it.
func (f *flow) trustStandsIn(stepUp bool) bool {
	if stepUp {
		return false
	}
	if f.req == nil {
		return true
	}
	if f.req.Prompt("login") {
		return false
	}
	if _, ok := f.req.MaxAge(); ok {
		return false
	}
	return identity.ACRMeets(identity.ACRPassword, f.acrWanted())
}

// trusted reports whether the browser of r is one userID trusts, with
// trusted devices on.
func (s *Service) trusted(r *http.Request, userID string) (bool, error) {
	if !s.trustOn() {
		return false, nil
	}
	return s.Trust.Recognised(r.Context(), r, userID)
}

// trust makes the browser of r one userID trusts, if the operator allows
// it; with trusted devices off, a ticked box (from a page shown before)
// does nothing.
func (s *Service) trust(w http.ResponseWriter, r *http.Request, userID string) error {
	if !s.trustOn() {
		return nil
	}
	return s.Trust.Trust(r.Context(), w, r, userID)
}

// trustOffer is the second-factor page's checkbox: absent with trusted
// devices off, and ticked if the user ticked it before a wrong code.
func (s *Service) trustOffer(ticked bool) ui.TrustOffer {
	if !s.trustOn() {
		return ui.TrustOffer{}
	}
	return ui.TrustOffer{TrustFor: ui.Period(s.Trust.Lifetime()), TrustTicked: ticked}
}

// accountTrust is the account page's list of the user's trusted browsers.
func (s *Service) accountTrust(ctx context.Context, userID string) (ui.AccountTrust, error) {
	if !s.trustOn() {
		return ui.AccountTrust{}, nil
	}
	devices, err := s.Trust.List(ctx, userID)
	if err != nil {
		return ui.AccountTrust{}, err
	}
	t := ui.AccountTrust{TrustOn: true, TrustFor: ui.Period(s.Trust.Lifetime())}
	for _, d := range devices {
		t.TrustedBrowsers = append(t.TrustedBrowsers, ui.TrustedBrowser{ID: d.ID, Label: d.Label,
			LastUsed: d.LastUsedAt.UTC().Format(dateFormat), Expires: d.ExpiresAt.UTC().Format(dateFormat)})
	}
	return t, nil
}

// accountForgetDevice stops one of the user's browsers being trusted, or,
// with "all", every one. Forgetting takes trust away, so, like revoking
// an app, it needs no recent sign-in. (It works with trusted devices off
// too, so that a user can clear what was trusted before.)
func (s *Service) accountForgetDevice(w http.ResponseWriter, r *http.Request) {
	f := s.signedIn(w, r)
	if f == nil {
		return
	}
	if s.Trust == nil {
		s.accountDone(w, r, "device-forgotten")
		return
	}
	var err error
	if r.PostFormValue("all") != "" {
		_, err = s.Trust.ForgetAll(r.Context(), f.user.ID)
	} else {
		err = s.Trust.Forget(r.Context(), f.user.ID, r.PostFormValue("device"))
	}
	// A device forgotten already (in another tab, or by an admin) is gone
	// all the same.
	if err != nil && !errors.Is(err, trust.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	s.accountDone(w, r, "device-forgotten")
}
