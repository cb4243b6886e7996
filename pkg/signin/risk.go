package signin

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/latchkey/latchkey/pkg/risk"
	"github.com/latchkey/latchkey/pkg/ui"
)

// Risk weighs password sign-ins against the user's own history and
// recent failures, and applies the operator's policy (pkg/risk).
type Risk interface {
	// Blocked reports whether sign-ins from addr or to the account email
	// names are blocked, and until when.
	Blocked(ctx context.Context, addr netip.Addr, email string) (time.Time, bool, error)
	// Failed counts a wrong password from addr at email.
	Failed(ctx context.Context, addr netip.Addr, email string) error
	// Assess weighs a sign-in whose password was right.
	Assess(ctx context.Context, at risk.Attempt) (risk.Decision, error)
}

// riskBlocked is Risk.Blocked, or never blocked without a Risk.
func (s *Service) riskBlocked(ctx context.Context, addr netip.Addr, email string) (time.Time, bool, error) {
	if s.Risk == nil {
		return time.Time{}, false, nil
	}
	return s.Risk.Blocked(ctx, addr, email)
}

// riskFailed tells the Risk of a wrong password. The answer to the
// password is the same whatever happens here, so an error is logged, not
// shown.
func (s *Service) riskFailed(ctx context.Context, addr netip.Addr, email string) {
	if s.Risk == nil {
		return
	}
	if err := s.Risk.Failed(ctx, addr, email); err != nil {
		s.Logger.WarnContext(ctx, "risk: a failed sign-in was not counted", "err", err)
	}
}

// assess is Risk.Assess, or a decision of nothing without a Risk.
func (s *Service) assess(ctx context.Context, at risk.Attempt) (risk.Decision, error) {
	if s.Risk == nil {
		return risk.Decision{}, nil
	}
	return s.Risk.Assess(ctx, at)
}

// blocked answers a sign-in the risk policy blocks until then. It says
// neither which was blocked, the network or the account, nor anything of
// the account: a block by network answers alike for every email.
func (s *Service) blocked(w http.ResponseWriter, until time.Time) {
	wait := max(time.Until(until), time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.5)))
	s.Pages.Message(w, http.StatusTooManyRequests, "Sign-in paused", ui.MessagePage{
		Message: fmt.Sprintf("Signing in from your network, or to this account, is paused after unusual activity. "+
			"Try again after %s UTC (in about %d minutes).", until.UTC().Format("15:04"), int(wait.Minutes())+1),
	})
}
