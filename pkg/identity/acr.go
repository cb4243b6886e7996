package identity

import "slices"

// Authentication context classes (acr): the levels of assurance a sign-in
// can reach, each meeting the ones below it.
const (
	// ACRPassword is a sign-in with a password alone, or one a trusted
	// browser let through without its second factor.
	ACRPassword = "urn:latchkey:acr:pwd" // #nosec G101 -- an acr URN, not a credential
	// ACRMFA is a sign-in with a second factor: a code or a passkey after
	// the password, or a passkey that verified its user.
	ACRMFA = "urn:latchkey:acr:mfa"
	// ACRPhishingResistant is a multi-factor sign-in in which a passkey
	// took part. A passkey answers only the site it was made for
	// (WebAuthn binds each answer to the origin), so a look-alike site
	// that relays the password and the code in real time gets nothing it
	// can use; a code from an app it can relay. No trusted browser, and
	// no code, ever reaches this level.
	ACRPhishingResistant = "urn:latchkey:acr:phr"
)

// ACRValues lists the acr values Latchkey can achieve, weakest first, for
// discovery.
var ACRValues = []string{ACRPassword, ACRMFA, ACRPhishingResistant}

// Authentication methods (amr, RFC 8176) that Latchkey records.
const (
	AMRPassword = "pwd"
	AMROTP      = "otp"
	AMRMFA      = "mfa"
	// AMRHardwareKey and AMRSoftwareKey are a passkey bound to one
	// device, and one that may be synced between a user's devices
	// (pkg/passkey tells them apart by the backup-eligible flag); AMRUser
	// is an authenticator that verified its user (biometrics or a PIN).
	AMRHardwareKey = "hwk"
	AMRSoftwareKey = "swk"
	AMRUser        = "user"
)

// ACRFor is the authentication context class a sign-in achieved, given
// how the user proved who they are.
func ACRFor(amr []string) string {
	if !slices.Contains(amr, AMRMFA) {
		return ACRPassword
	}
	if slices.Contains(amr, AMRHardwareKey) || slices.Contains(amr, AMRSoftwareKey) {
		return ACRPhishingResistant
	}
	return ACRMFA
}

// ACRMeets reports whether a sign-in that achieved the level achieved
// meets the level wanted: the same or a stronger one. Every sign-in meets
// no level (""); none meets a level Latchkey does not know.
func ACRMeets(achieved, wanted string) bool {
	if wanted == "" {
		return true
	}
	w := slices.Index(ACRValues, wanted)
	return w >= 0 && slices.Index(ACRValues, achieved) >= w
}

// StrongestACR returns the strongest of the levels Latchkey knows among
// values, and "" when it knows none of them.
func StrongestACR(values ...string) string {
	best := ""
	for _, v := range values {
		if slices.Contains(ACRValues, v) && !ACRMeets(best, v) {
			best = v
		}
	}
	return best
}
