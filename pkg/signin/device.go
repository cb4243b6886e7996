package signin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/pkg/discovery"
	"github.com/latchkey/latchkey/pkg/identity"
	"github.com/latchkey/latchkey/pkg/oauth"
	"github.com/latchkey/latchkey/pkg/ratelimit"
	"github.com/latchkey/latchkey/pkg/server"
	"github.com/latchkey/latchkey/pkg/ui"
)

// DevicePath is the page where a user types the code a device shows
// (RFC 8628 §3.3): the device grant's verification_uri.
const DevicePath = discovery.DeviceVerificationPath

// Kinds of wrong user code counted in the failure store: per address, and
// of all addresses together.
const (
	failedUserCode       = "device-code"
	failedUserCodeGlobal = "device-code-all"
)

// userCodeWindow is the period wrong user codes are counted over.
const userCodeWindow = time.Hour

// Guesses counts wrong user codes in the database, so that the limits hold
// on every node together (storage/postgres, as identity.FailureStore
// counts wrong passwords): each guess is reserved as a failure before the
// code is looked up, and given back if the code was right.
type Guesses interface {
	ReserveFailure(ctx context.Context, kind string, key []byte, window time.Duration, admit func(identity.Failures) bool) (id int64, f identity.Failures, admitted bool, err error)
	ForgetFailure(ctx context.Context, id int64) error
}

// DeviceFlow serves /device, where users approve devices (RFC 8628).
type DeviceFlow struct {
	Guesses Guesses
	// AddressFailures is how many wrong user codes an address (IPv6: a
	// /64) may enter per hour, GlobalFailures how many all addresses
	// together may; 0 is no limit. A user code has about 34 bits, so
	// these, with the codes' short lives, are what keeps guessing one
	// hopeless (RFC 8628 §5.1).
	AddressFailures, GlobalFailures int
}

// The device page: a form for the user code, prefilled from
// verification_uri_complete but never submitted for the user, since a
// code in a link may be an attacker's (RFC 8628 §5.4). A right code starts
// a sign-in like an authorization request's, through the same steps
// (password, second factor, passkeys), ending on the consent page, which
// for a device is always shown; its answer goes to the device, not to a
// redirect URI (proceed).

func (s *Service) showDevice(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("user_code")
	if n, ok := oauth.NormalizeUserCode(code); ok {
		code = oauth.FormatUserCode(n)
	} else {
		code = ""
	}
	s.Pages.Device(w, http.StatusOK, ui.DevicePage{Code: code, Action: s.Base + DevicePath})
}

func (s *Service) submitDevice(w http.ResponseWriter, r *http.Request) (failed bool) {
	ctx := r.Context()
	typed := r.PostFormValue("user_code")
	if len(typed) > 32 {
		typed = typed[:32]
	}
	again := func(msg string) {
		s.Pages.Device(w, http.StatusOK, ui.DevicePage{Code: typed, Error: msg, Action: s.Base + DevicePath})
	}
	if _, ok := oauth.NormalizeUserCode(typed); !ok {
		// Not the shape of a code: nothing to look up, and no guess.
		again("Codes are eight letters, like BCDF-GHJK. Check the code on your device.")
		return false
	}
	addr := []byte(ratelimit.AddressKey(server.ClientIP(ctx)))
	ids, ok, err := s.reserveGuess(ctx, addr)
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if !ok {
		s.metrics().RateLimited("device")
		w.Header().Set("Retry-After", "3600")
		s.Pages.Message(w, http.StatusTooManyRequests, "Too many wrong codes", ui.MessagePage{
			Message:   "Too many wrong device codes have been entered. Wait up to an hour, then get a new code on your device and try again.",
			RequestID: server.RequestID(ctx),
		})
		return true
	}
	req, err := s.Protocol.DeviceRequest(ctx, typed)
	if errors.Is(err, oauth.ErrUnknownUserCode) {
		again("That code is not valid, or it has expired. Check the code on your device, or get a new one there.")
		return true
	}
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	for _, id := range ids {
		if err := s.Device.Guesses.ForgetFailure(ctx, id); err != nil {
			s.fail(w, r, err)
			return false
		}
	}
	f := &flow{req: req, parked: Pending{Params: req.Params(), Started: time.Now()}}
	if err := s.who(ctx, f); err != nil {
		s.fail(w, r, err)
		return false
	}
	s.proceed(w, r, f)
	return false
}

// reserveGuess reserves one wrong guess for the address addr and one of
// all guesses, and reports whether both limits allowed it; a guess the
// second refuses gives back the first. ids are the reservations, to give
// back if the code is right.
func (s *Service) reserveGuess(ctx context.Context, addr []byte) (ids []int64, ok bool, err error) {
	admit := func(limit int) func(identity.Failures) bool {
		return func(f identity.Failures) bool { return limit <= 0 || f.InWindow < limit }
	}
	g := s.Device.Guesses
	id, _, ok, err := g.ReserveFailure(ctx, failedUserCode, addr, userCodeWindow, admit(s.Device.AddressFailures))
	if err != nil || !ok {
		return nil, false, err
	}
	all, _, ok, err := g.ReserveFailure(ctx, failedUserCodeGlobal, []byte("all"), userCodeWindow, admit(s.Device.GlobalFailures))
	if err != nil || !ok {
		if ferr := g.ForgetFailure(ctx, id); err == nil {
			err = ferr
		}
		return nil, false, err
	}
	return []int64{id, all}, true, nil
}

// answerDevice ends a device's sign-in on a page, since no app waits for
// the browser: the user approved (ApproveDevice, once the request's
// level is met) or denied it, and goes back to their device.
func (s *Service) answerDevice(w http.ResponseWriter, r *http.Request, f *flow) {
	ctx := r.Context()
	if f.parked.Denied {
		if err := s.Protocol.DenyDevice(ctx, f.req, f.auth.UserID); err != nil {
			s.deviceProblem(w, r, err)
			return
		}
		s.Pages.Message(w, http.StatusOK, "Device not connected", ui.MessagePage{
			Message: "You denied " + f.clientName() + " access to your account. The device will not be signed in.",
		})
		return
	}
	err := f.req.Unmet(f.auth.AMR)
	if err == nil {
		err = s.Protocol.ApproveDevice(ctx, f.req, oauth.SignIn{User: f.user, SID: f.auth.SID,
			AuthTime: f.auth.AuthTime, AMR: f.auth.AMR, Started: f.parked.Started})
	}
	if err != nil {
		s.deviceProblem(w, r, err)
		return
	}
	s.Pages.Message(w, http.StatusOK, "Device connected", ui.MessagePage{
		Message: "You allowed " + f.clientName() + " on your device. You can close this page and go back to the device.",
	})
}

// deviceProblem answers a device's sign-in that cannot go on (the code
// expired or was decided in another tab, the level the app requires
// cannot be reached) with a page that says so: no app waits to be told.
func (s *Service) deviceProblem(w http.ResponseWriter, r *http.Request, err error) {
	_, rfc := s.Protocol.AuthorizeError(w, r, nil, err)
	status := http.StatusBadRequest
	switch {
	case rfc.CodeField == http.StatusServiceUnavailable:
		status = rfc.CodeField
		w.Header().Set("Retry-After", "5")
	case rfc.CodeField >= http.StatusInternalServerError:
		status = rfc.CodeField
	}
	s.Pages.Message(w, status, "Cannot connect the device", ui.MessagePage{
		Message:   rfc.GetDescription(),
		RequestID: server.RequestID(r.Context()),
	})
}
