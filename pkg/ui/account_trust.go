package ui

import (
	"strconv"
	"time"
)

// TrustOffer is the second-factor page's checkbox, "Don't ask again on
// this browser" (pkg/trust). The zero value shows none: trusted devices
// are off.
type TrustOffer struct {
	// TrustFor is how long the browser would be trusted, as Period says
	// it; "" shows no checkbox.
	TrustFor string
	// TrustTicked keeps the box ticked when the page comes back after a
	// wrong code.
	TrustTicked bool
}

// AccountTrust is the account page's list of the browsers the user
// trusts to skip the second factor. Its block comes after the rest of the
// page.
type AccountTrust struct {
	// TrustOn says the operator allows trusted devices; without it the
	// block is absent.
	TrustOn bool
	// TrustFor is how long a browser is trusted, as Period says it.
	TrustFor        string
	TrustedBrowsers []TrustedBrowser
}

// TrustedBrowser is one browser the user trusts.
type TrustedBrowser struct {
	// ID names the device to the forget form.
	ID string
	// Label is what the browser was when trusted, such as "Firefox on
	// Linux" (device.Describe): never the header's own text.
	Label             string
	LastUsed, Expires string
}

// Period says a duration as a person would: "30 days", "1 day", or hours
// for what is not whole days ("12 hours"), since the setting that gives it
// (LATCHKEY_TRUSTED_DEVICE_LIFETIME) is in hours.
func Period(d time.Duration) string {
	day := 24 * time.Hour
	if d >= day && d%day == 0 {
		return plural(int(d/day), "day")
	}
	return plural(int((d+time.Hour-1)/time.Hour), "hour")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
