package postgres

import (
	"fmt"
	"testing"
)

func TestRememberedMissesAreBoundedWhateverIDsAreSent(t *testing.T) {
	var cc clientCache
	cc.setLive(true)
	for i := range 3 * maxMisses {
		cc.putMiss(fmt.Sprintf("random-%d", i), cc.generation())
	}
	if n := len(cc.misses); n != maxMisses {
		t.Fatalf("%d misses remembered after %d random IDs, want at most %d", n, 3*maxMisses, maxMisses)
	}
	last := fmt.Sprintf("random-%d", 3*maxMisses-1)
	if c, ok := cc.get(last); !ok || c != nil {
		t.Fatalf("the newest miss is not remembered: %v %v", c, ok)
	}
	cc.evict(last)
	if _, ok := cc.get(last); ok {
		t.Fatal("an evicted miss is still remembered")
	}
	cc.setLive(false)
	if len(cc.misses) != 0 {
		t.Fatal("misses outlived the listener")
	}
}
