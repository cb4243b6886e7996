package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/pgtest"
	"github.com/latchkey/latchkey/pkg/events"
	"github.com/latchkey/latchkey/storage/postgres"
)

// enqueueLog writes one log-stream row for event id of subject, as the
// outbox does in an event's transaction.
func enqueueLog(t *testing.T, s *postgres.Store, id int64, subject string) {
	t.Helper()
	err := s.InTx(t.Context(), func(ctx context.Context) error {
		return s.EnqueueEvents(ctx, subject, []events.Delivery{{Sink: events.LogSink, EventID: id, EventType: "login.failed", Payload: []byte(`{}`)}})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestAnEventIsClaimedOnlyOnceTheOlderEventsOfItsSubjectAreDone(t *testing.T) {
	t.Parallel()
	s := pgtest.Open(t, pgtest.URL(t))
	ctx := t.Context()
	enqueueLog(t, s, 1, "user:ada")
	enqueueLog(t, s, 2, "user:ada")
	enqueueLog(t, s, 3, "user:bob")

	first, err := s.ClaimEvent(ctx, time.Minute, true)
	if err != nil || first == nil || first.EventID != 1 {
		t.Fatalf("first claim: %+v %v; want event 1", first, err)
	}
	// Ada's second event waits behind her first, claimed and not done;
	// Bob's does not.
	second, err := s.ClaimEvent(ctx, time.Minute, true)
	if err != nil || second == nil || second.EventID != 3 {
		t.Fatalf("second claim: %+v %v; want event 3, not 2", second, err)
	}
	if c, err := s.ClaimEvent(ctx, time.Minute, true); err != nil || c != nil {
		t.Fatalf("a third claim took %+v (%v); want none while event 1 is undelivered", c, err)
	}
	// A failed attempt keeps the order: event 2 still waits.
	if _, err := s.RescheduleEvent(ctx, first, time.Now(), "down", 503, false); err != nil {
		t.Fatal(err)
	}
	again, err := s.ClaimEvent(ctx, time.Minute, true)
	if err != nil || again == nil || again.EventID != 1 {
		t.Fatalf("after a failed attempt: %+v %v; want event 1 again", again, err)
	}
	if err := s.MarkEventDelivered(ctx, again, 0); err != nil {
		t.Fatal(err)
	}
	next, err := s.ClaimEvent(ctx, time.Minute, true)
	if err != nil || next == nil || next.EventID != 2 {
		t.Fatalf("after event 1 was delivered: %+v %v; want event 2", next, err)
	}
	// A node without the log stream leaves its rows alone.
	enqueueLog(t, s, 4, "user:cyd")
	if c, err := s.ClaimEvent(ctx, time.Minute, false); err != nil || c != nil {
		t.Fatalf("a node without a log stream claimed %+v (%v)", c, err)
	}
}

func TestJanitorDeletesDeliveredEventsAfterAWeek(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := pgtest.Open(t, url)
	enqueueLog(t, s, 1, "user:ada")
	enqueueLog(t, s, 2, "user:bob")
	enqueueLog(t, s, 3, "user:cyd")
	for _, sql := range []string{
		`UPDATE event_outbox SET status = 'delivered', delivered_at = now() - interval '8 days' WHERE event_id = 1`,
		`UPDATE event_outbox SET status = 'delivered', delivered_at = now() WHERE event_id = 2`,
	} {
		if _, err := pgtest.Conn(t, url).Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := s.Sweep(t.Context(), time.Now(), 100, 0)
	if err != nil || deleted["event_outbox"] != 1 {
		t.Fatalf("swept %v (%v); want one event_outbox row", deleted, err)
	}
	left, err := s.Deliveries(t.Context(), events.DeliveryQuery{})
	if err != nil || len(left) != 2 || left[0].EventID != 3 || left[1].EventID != 2 {
		t.Fatalf("left: %+v %v", left, err)
	}
}
