package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/pkg/client"
)

// The NOTIFY channels on which changes are announced to every node, in the
// transaction that makes them: a client's, with its ID as payload; a
// signing key's, with its kid.
const (
	clientsChannel = "latchkey_clients"
	keysChannel    = "latchkey_keys"
	// mailChannel announces mail written to the outbox, so that senders
	// deliver it at once rather than at their next look.
	mailChannel = "latchkey_mail"
	// eventsChannel announces rows written to the event outbox (or made
	// due again), so that deliverers send them at once.
	eventsChannel = "latchkey_events"
)

// changes is what ListenForChanges tells of what any node changed: keys of
// a signing key added, retired or rotated, mail of mail written to the
// outbox, events of rows written to the event outbox. Any may be nil.
type changes struct {
	keys, mail, events func()
}

func (c changes) eventsQueued() {
	if c.events != nil {
		c.events()
	}
}

func (c changes) keysChanged() {
	if c.keys != nil {
		c.keys()
	}
}

func (c changes) mailQueued() {
	if c.mail != nil {
		c.mail()
	}
}

// Timings of the client cache.
const (
	// clientCacheTTL bounds how long an entry lives even if a notification
	// were somehow missed.
	clientCacheTTL = time.Minute
	// listenerProbe is how often an idle listener checks its connection, so
	// that a silently dead one stops the cache within this time.
	listenerProbe = 10 * time.Second
	// listenerRetry is the pause before reconnecting a failed listener.
	listenerRetry = time.Second
	// maxMisses bounds the unknown IDs remembered, which an attacker
	// chooses: at most MaxIDLen bytes each, so a few megabytes.
	maxMisses = 10_000
)

// clientCache keeps the clients this node has loaded, because every token
// and introspection request authenticates one and the row almost never
// changes. It is trusted only while this node listens on clientsChannel:
// each change to a client, its creation included, is announced in the
// transaction that makes it, and the announcement evicts the client here.
// While the listener is down the cache is empty and bypassed, so a stale
// client can outlive a change only for as long as a notification takes to
// arrive.
//
// It also remembers IDs that name no client (misses), so that requests
// naming random client IDs cost no query each. Misses are trusted and
// evicted like clients, and are at most maxMisses: past that, each new
// one takes the place of an old one, which only costs that one a query
// again.
type clientCache struct {
	mu      sync.Mutex
	entries map[string]cachedClient
	// misses holds, for each ID remembered as no client's, when that
	// stops being trusted.
	misses map[string]time.Time
	// gen changes with every eviction and every (re)connection; a load that
	// started under another generation may have read a row older than an
	// eviction, so it is not stored.
	gen  uint64
	live bool
}

type cachedClient struct {
	c       *client.Client
	expires time.Time
}

// get returns the cached client with id, or a nil client for an ID
// remembered as no client's; ok is false when the cache cannot say.
func (cc *clientCache) get(id string) (c *client.Client, ok bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.live {
		return nil, false
	}
	now := time.Now()
	if e, found := cc.entries[id]; found && now.Before(e.expires) {
		return e.c, true
	}
	if expires, missed := cc.misses[id]; missed && now.Before(expires) {
		return nil, true
	}
	return nil, false
}

// generation returns the current generation, to hand to put after a load.
func (cc *clientCache) generation() uint64 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.gen
}

func (cc *clientCache) put(c *client.Client, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.live || gen != cc.gen {
		return
	}
	if cc.entries == nil {
		cc.entries = map[string]cachedClient{}
	}
	cc.entries[c.ID] = cachedClient{c: c, expires: time.Now().Add(clientCacheTTL)}
}

// putMiss remembers that no client has id, as a load under gen found.
func (cc *clientCache) putMiss(id string, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.live || gen != cc.gen {
		return
	}
	if cc.misses == nil {
		cc.misses = map[string]time.Time{}
	}
	if _, known := cc.misses[id]; !known && len(cc.misses) >= maxMisses {
		for old := range cc.misses { // an arbitrary one: map order is random
			delete(cc.misses, old)
			break
		}
	}
	cc.misses[id] = time.Now().Add(clientCacheTTL)
}

func (cc *clientCache) evict(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delete(cc.entries, id)
	delete(cc.misses, id)
	cc.gen++
}

// setLive switches the cache on or off, emptying it either way: entries
// from before a reconnection may have missed notifications.
func (cc *clientCache) setLive(live bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.entries, cc.misses = nil, nil
	cc.live = live
	cc.gen++
}

// cachedClient returns a client for the hot path, from the cache when it
// can be trusted and from the database otherwise, or client.ErrNotFound.
// An ID longer than any client's is not looked up at all.
func (s *Store) cachedClient(ctx context.Context, id string) (*client.Client, error) {
	if len(id) > client.MaxIDLen {
		return nil, client.ErrNotFound
	}
	if c, ok := s.clients.get(id); ok {
		if c == nil {
			return nil, client.ErrNotFound
		}
		return c, nil
	}
	gen := s.clients.generation()
	c, err := s.ClientByID(ctx, id)
	if errors.Is(err, client.ErrNotFound) {
		s.clients.putMiss(id, gen)
	}
	if err != nil {
		return nil, err
	}
	s.clients.put(c, gen)
	return c, nil
}

// ListenForChanges keeps this node's caches in step with every node's
// changes until ctx ends, reconnecting when the connection drops: it evicts
// changed clients from the client cache, and calls keysChanged when a
// signing key was added or retired and mailQueued when mail was written
// to the outbox and eventsQueued when events were written to the event
// outbox (any may be nil), each also after every (re)connection, since announcements may
// have been missed while it was down. Neither may block. Without it running (as in one-shot CLI commands) the client
// cache stays off. serve runs it for the life of the node.
func (s *Store) ListenForChanges(ctx context.Context, logger *slog.Logger, keysChanged, mailQueued, eventsQueued func()) {
	on := changes{keys: keysChanged, mail: mailQueued, events: eventsQueued}
	defer s.clients.setLive(false)
	for ctx.Err() == nil {
		err := s.listen(ctx, on)
		s.clients.setLive(false)
		if ctx.Err() != nil {
			return
		}
		logger.Warn("change listener lost; the client cache is off until it reconnects", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(listenerRetry):
		}
	}
}

func (s *Store) listen(ctx context.Context, on changes) error {
	cctx, cancel := s.deadline(ctx)
	conn, err := pgx.ConnectConfig(cctx, s.pool.Config().ConnConfig.Copy())
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+clientsChannel+"; LISTEN "+keysChannel+"; LISTEN "+mailChannel+"; LISTEN "+eventsChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.clients.setLive(true)
	// Whatever was announced while not listening is caught up on now.
	on.keysChanged()
	on.mailQueued()
	on.eventsQueued()
	for {
		wctx, cancel := context.WithTimeout(ctx, listenerProbe)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n.Channel == keysChannel:
			on.keysChanged()
		case err == nil && n.Channel == mailChannel:
			on.mailQueued()
		case err == nil && n.Channel == eventsChannel:
			on.eventsQueued()
		case err == nil:
			s.clients.evict(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Quiet for a while: make sure the connection is still there.
			pctx, cancel := s.deadline(ctx)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("probe: %w", err)
			}
		default:
			return err
		}
	}
}

// announceClientChange tells every node, this one included, to forget a
// client.
func announceClientChange(ctx context.Context, q querier, id string) error {
	return announce(ctx, q, clientsChannel, id)
}

// announce notifies every node on channel. Inside a transaction the
// notification is sent on commit, and not at all on rollback.
func announce(ctx context.Context, q querier, channel, payload string) error {
	_, err := q.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload)
	return err
}
