// Package outbox is the part Latchkey's transactional outboxes share: the
// loop that drains one and then waits to be woken or for its next look.
//
// Mail (pkg/mail), events (pkg/events) and logout tokens (pkg/logout) are
// each written to a table of their own in the transaction that causes
// them, and delivered from it by every node. Each keeps its own claim,
// retry and give-up rules, which differ; what they share is that a node
// delivers everything due, then sleeps until a poll interval passes or a
// commit tells it (Wake) that something new is waiting.
package outbox

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Loop drains an outbox. The zero value is ready to use; Wake may be
// called before, during or without Run.
type Loop struct {
	once sync.Once
	wake chan struct{}
}

// Wake makes Run look at the outbox now rather than at its next poll. It
// never blocks: a wake-up already pending covers this one.
func (l *Loop) Wake() {
	select {
	case l.channel() <- struct{}{}:
	default:
	}
}

func (l *Loop) channel() chan struct{} {
	l.once.Do(func() { l.wake = make(chan struct{}, 1) })
	return l.wake
}

// Run calls deliverOne until it reports that nothing was due, then waits
// for poll to pass or a Wake, until ctx ends. An error from deliverOne
// (the outbox could not be read) is handed to failed, unless ctx ended,
// and the loop waits as if nothing were due: the next look tries again.
func (l *Loop) Run(ctx context.Context, poll time.Duration, deliverOne func(context.Context) (bool, error), failed func(error)) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			did, err := deliverOne(ctx)
			if err != nil {
				if ctx.Err() == nil {
					failed(err)
				}
				break
			}
			if !did {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.channel():
		}
	}
}

// Backoff is the wait after the attempts-th failed attempt at a delivery:
// first, doubling at each further attempt up to most, less a tenth plus up
// to a fifth of jitter, so that the rows held up by one outage do not all
// retry at the same instant.
func Backoff(attempts int, first, most time.Duration) time.Duration {
	b := most
	if attempts < 30 {
		b = min(first<<max(attempts-1, 0), most)
	}
	if b <= 0 { // overflow
		b = most
	}
	jitter := time.Duration(rand.Int64N(int64(b/5) + 1)) // #nosec G404 -- spreading retries, not a secret
	return b - b/10 + jitter
}
