package identity_test

import (
	"testing"

	"github.com/latchkey/latchkey/pkg/identity"
)

func TestTheLevelASignInReachesFollowsHowItWasMade(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amr  []string
		want string
	}{
		{[]string{"pwd"}, identity.ACRPassword},
		{[]string{"pwd", "otp", "mfa"}, identity.ACRMFA},
		{[]string{"pwd", "hwk", "mfa"}, identity.ACRPhishingResistant},
		{[]string{"swk", "user", "mfa"}, identity.ACRPhishingResistant},
		{[]string{"pwd", "otp", "mfa", "swk", "user"}, identity.ACRPhishingResistant},
		// A key that is not counted as a second factor reaches nothing
		// above the password.
		{[]string{"pwd", "hwk"}, identity.ACRPassword},
	} {
		if got := identity.ACRFor(tc.amr); got != tc.want {
			t.Errorf("ACRFor(%v) = %q, want %q", tc.amr, got, tc.want)
		}
	}
}

func TestEachLevelMeetsItselfAndTheLevelsBelowIt(t *testing.T) {
	t.Parallel()
	pwd, mfa, phr := identity.ACRPassword, identity.ACRMFA, identity.ACRPhishingResistant
	for _, tc := range []struct {
		achieved, wanted string
		meets            bool
	}{
		{pwd, "", true}, {pwd, pwd, true}, {pwd, mfa, false}, {pwd, phr, false},
		{mfa, pwd, true}, {mfa, mfa, true}, {mfa, phr, false},
		{phr, pwd, true}, {phr, mfa, true}, {phr, phr, true},
		{phr, "urn:example:unknown", false},
	} {
		if got := identity.ACRMeets(tc.achieved, tc.wanted); got != tc.meets {
			t.Errorf("ACRMeets(%q, %q) = %v", tc.achieved, tc.wanted, got)
		}
	}
	if got := identity.StrongestACR("urn:example:unknown", mfa, pwd); got != mfa {
		t.Errorf("StrongestACR = %q, want %q", got, mfa)
	}
	if got := identity.StrongestACR("urn:example:unknown"); got != "" {
		t.Errorf("StrongestACR of unknown levels = %q, want none", got)
	}
}
