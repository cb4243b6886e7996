package outbox_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchkey/latchkey/pkg/outbox"
)

// never is a poll interval no test waits out: only Wake makes the loop
// look again.
const never = time.Hour

func TestALoopDrainsWhatIsDueThenLooksAgainWhenWoken(t *testing.T) {
	var loop outbox.Loop
	due := atomic.Int32{}
	due.Store(3)
	looked := make(chan int32, 16)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop.Run(ctx, never, func(context.Context) (bool, error) {
			n := due.Load()
			looked <- n
			if n == 0 {
				return false, nil
			}
			due.Add(-1)
			return true, nil
		}, func(err error) { t.Errorf("failed: %v", err) })
	}()
	// All three due rows, then one look that finds nothing.
	for _, want := range []int32{3, 2, 1, 0} {
		if got := <-looked; got != want {
			t.Fatalf("looked with %d due, want %d", got, want)
		}
	}
	// A commit wakes it: it looks again without waiting for the poll.
	due.Store(1)
	loop.Wake()
	for _, want := range []int32{1, 0} {
		select {
		case got := <-looked:
			if got != want {
				t.Fatalf("after Wake, looked with %d due, want %d", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Wake did not make the loop look")
		}
	}
	cancel()
	<-done
}

func TestALoopThatCannotReadTheOutboxSaysSoAndWaits(t *testing.T) {
	var loop outbox.Loop
	broken := errors.New("database unreachable")
	failures := make(chan error, 4)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop.Run(ctx, never, func(context.Context) (bool, error) { return false, broken }, func(err error) { failures <- err })
	}()
	if err := <-failures; !errors.Is(err, broken) {
		t.Fatalf("failed with %v", err)
	}
	// It waits rather than spinning on the error.
	select {
	case err := <-failures:
		t.Fatalf("the loop tried again at once: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// A Wake before the wait is not lost, and many Wakes never block.
	for range 10 {
		loop.Wake()
	}
	if err := <-failures; !errors.Is(err, broken) {
		t.Fatalf("after Wake, failed with %v", err)
	}
	cancel()
	<-done
}
