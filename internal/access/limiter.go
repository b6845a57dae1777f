package access

import (
	"net/netip"
	"sync"
)

// Limiter counts concurrent connections per client IP and refuses a new one
// when that IP already holds the maximum. It is safe for concurrent use.
// The zero Limiter is unlimited.
//
// Every accepted connection is counted, exempt or not, so that a reload
// which changes the exempt list leaves the counts right.
type Limiter struct {
	mu       sync.Mutex
	maxPerIP int                // guarded by mu; <= 0 means unlimited
	exempt   List               // guarded by mu
	counts   map[netip.Addr]int // guarded by mu; no entry is ever 0
}

// NewLimiter returns a Limiter that allows max concurrent connections per
// IP; max <= 0 means unlimited. Addresses in exempt are never refused.
func NewLimiter(max int, exempt List) *Limiter {
	return &Limiter{maxPerIP: max, exempt: exempt, counts: make(map[netip.Addr]int)}
}

// noRelease is what Acquire returns with a refusal, so callers may defer
// release unconditionally.
func noRelease() {}

// Acquire reserves a connection slot for a. It returns ok=false when a
// already holds the maximum and is not exempt; release is then a no-op.
// Otherwise the caller must call release when the connection ends; calling
// it again does nothing. The zone of a is ignored and an IPv4-mapped IPv6
// address counts as IPv4, so both forms of one client share their slots.
func (l *Limiter) Acquire(a netip.Addr) (release func(), ok bool) {
	key := a.WithZone("").Unmap()

	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.counts[key]
	if l.maxPerIP > 0 && n >= l.maxPerIP && !l.exempt.Contains(key) {
		return noRelease, false
	}
	if l.counts == nil {
		l.counts = make(map[netip.Addr]int)
	}
	l.counts[key] = n + 1

	released := false // guarded by l.mu
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if released {
			return
		}
		released = true
		if n := l.counts[key] - 1; n > 0 {
			l.counts[key] = n
		} else {
			delete(l.counts, key)
		}
	}, true
}

// SetLimits changes the maximum and the exempt list for later Acquire
// calls, as on a configuration reload. Connections already accepted are
// kept, even when an address now holds more than the new maximum.
func (l *Limiter) SetLimits(max int, exempt List) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maxPerIP = max
	l.exempt = exempt
}

// Count returns how many connections a holds now.
func (l *Limiter) Count(a netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[a.WithZone("").Unmap()]
}
