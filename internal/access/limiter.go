package access

import (
	"net/netip"
	"sync"
)

// DefaultIPv6Prefix is the prefix length by which IPv6 clients are counted:
// a client is usually given a whole /64, so counting single addresses would
// in effect not limit it at all.
const DefaultIPv6Prefix = 64

// Limiter counts concurrent connections per client IP and refuses a new one
// when that IP already holds the maximum. IPv4 clients are counted per
// address; IPv6 clients per prefix (DefaultIPv6Prefix unless SetIPv6Prefix
// says otherwise). It is safe for concurrent use. The zero Limiter is
// unlimited.
//
// Every accepted connection is counted, exempt or not, so that a reload
// which changes the exempt list leaves the counts right.
type Limiter struct {
	mu         sync.Mutex
	maxPerIP   int                // guarded by mu; <= 0 means unlimited
	exempt     List               // guarded by mu
	ipv6Prefix int                // guarded by mu; 1..128, or 0 for DefaultIPv6Prefix
	counts     map[netip.Addr]int // guarded by mu: by key(address); no entry is ever 0
}

// NewLimiter returns a Limiter that allows max concurrent connections per
// IP (per DefaultIPv6Prefix for IPv6); max <= 0 means unlimited. Addresses
// in exempt are never refused.
func NewLimiter(max int, exempt List) *Limiter {
	return &Limiter{maxPerIP: max, exempt: exempt, ipv6Prefix: DefaultIPv6Prefix, counts: make(map[netip.Addr]int)}
}

// SetIPv6Prefix makes later Acquire calls count IPv6 clients per prefix of
// bits: 1..128, where 128 counts single addresses; 0 or less means
// DefaultIPv6Prefix and more than 128 means 128. Connections already
// accepted stay counted where they were.
func (l *Limiter) SetIPv6Prefix(bits int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ipv6Prefix = min(max(bits, 0), 128)
}

// keyLocked returns the address a is counted under: a itself for IPv4 (an
// IPv4-mapped IPv6 address counts as IPv4), the first address of its prefix
// for IPv6. The zone is ignored. l.mu is held.
func (l *Limiter) keyLocked(a netip.Addr) netip.Addr {
	a = a.WithZone("").Unmap()
	bits := l.ipv6Prefix
	if bits == 0 {
		bits = DefaultIPv6Prefix
	}
	if !a.Is6() || bits >= 128 {
		return a
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return a
	}
	return p.Addr()
}

// noRelease is what Acquire returns with a refusal, so callers may defer
// release unconditionally.
func noRelease() {}

// Acquire reserves a connection slot for a. It returns ok=false when a
// already holds the maximum and is not exempt; release is then a no-op.
// Otherwise the caller must call release when the connection ends; calling
// it again does nothing. The zone of a is ignored and an IPv4-mapped IPv6
// address counts as IPv4, so both forms of one client share their slots;
// IPv6 addresses of one prefix share theirs. Exemption is decided by a
// itself, not by its prefix.
func (l *Limiter) Acquire(a netip.Addr) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := l.keyLocked(a)
	n := l.counts[key]
	if l.maxPerIP > 0 && n >= l.maxPerIP && !l.exempt.Contains(a.WithZone("").Unmap()) {
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

// Count returns how many connections a holds now: with an IPv6 address,
// those of its whole prefix.
func (l *Limiter) Count(a netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[l.keyLocked(a)]
}
