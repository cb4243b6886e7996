package bearer

import (
	"sync"
	"time"
)

// cache keeps introspection answers by the SHA-256 of their token. A nil
// *Claims is a cached "inactive".
type cache struct {
	mu      sync.Mutex
	max     int
	entries map[[32]byte]entry
}

type entry struct {
	claims *Claims
	until  time.Time
}

func newCache(max int) *cache {
	return &cache{max: max, entries: map[[32]byte]entry{}}
}

// get returns the answer cached for key, if it is still good at now.
func (c *cache) get(key [32]byte, now time.Time) (*Claims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if !now.Before(e.until) {
		delete(c.entries, key)
		return nil, false
	}
	return e.claims, true
}

// put keeps claims for key until until. When the cache is full it first
// drops the entries that have ended, then, if it is still full, an
// arbitrary one: a flood of distinct tokens costs cache hits, not memory.
func (c *cache) put(key [32]byte, claims *Claims, until, now time.Time) {
	if c.max <= 0 || !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
	}
	if len(c.entries) >= c.max {
		for k := range c.entries { // map order is random
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = entry{claims: claims, until: until}
}
