package access

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

func TestLimiterMax(t *testing.T) {
	l := NewLimiter(2, List{})
	a := netip.MustParseAddr("192.0.2.1")
	other := netip.MustParseAddr("192.0.2.2")

	r1, ok := l.Acquire(a)
	if !ok {
		t.Fatal("first Acquire refused")
	}
	r2, ok := l.Acquire(a)
	if !ok {
		t.Fatal("second Acquire refused")
	}
	r3, ok := l.Acquire(a)
	if ok {
		t.Fatal("third Acquire accepted with max 2")
	}
	r3() // a refusal's release is a no-op
	if got := l.Count(a); got != 2 {
		t.Fatalf("Count = %d after a refusal, want 2", got)
	}
	if _, ok := l.Acquire(other); !ok {
		t.Fatal("another address was refused")
	}

	r1()
	if got := l.Count(a); got != 1 {
		t.Fatalf("Count = %d after one release, want 1", got)
	}
	if _, ok := l.Acquire(a); !ok {
		t.Fatal("Acquire refused after a release")
	}
	_ = r2
}

func TestLimiterReleaseIdempotent(t *testing.T) {
	l := NewLimiter(1, List{})
	a := netip.MustParseAddr("2001:db8::1")

	r1, ok := l.Acquire(a)
	if !ok {
		t.Fatal("Acquire refused")
	}
	r1()
	r1()
	if got := l.Count(a); got != 0 {
		t.Fatalf("Count = %d after double release, want 0", got)
	}

	// A second release of an old slot must not free someone else's slot.
	r2, ok := l.Acquire(a)
	if !ok {
		t.Fatal("Acquire refused after release")
	}
	r1()
	if got := l.Count(a); got != 1 {
		t.Fatalf("Count = %d after a stale release, want 1", got)
	}
	if _, ok := l.Acquire(a); ok {
		t.Fatal("a stale release freed a slot")
	}
	r2()
	if len(l.counts) != 0 {
		t.Fatalf("counts leak: %v", l.counts)
	}
}

func TestLimiterUnlimited(t *testing.T) {
	for _, max := range []int{0, -1} {
		l := NewLimiter(max, List{})
		a := netip.MustParseAddr("192.0.2.1")
		var releases []func()
		for i := range 100 {
			r, ok := l.Acquire(a)
			if !ok {
				t.Fatalf("max %d: Acquire %d refused", max, i)
			}
			releases = append(releases, r)
		}
		if got := l.Count(a); got != 100 {
			t.Errorf("max %d: Count = %d, want 100", max, got)
		}
		for _, r := range releases {
			r()
		}
		if len(l.counts) != 0 {
			t.Errorf("max %d: counts leak: %v", max, l.counts)
		}
	}
}

func TestLimiterZeroValue(t *testing.T) {
	var l Limiter
	a := netip.MustParseAddr("192.0.2.1")
	r, ok := l.Acquire(a)
	if !ok {
		t.Fatal("zero Limiter refused")
	}
	if got := l.Count(a); got != 1 {
		t.Fatalf("Count = %d, want 1", got)
	}
	r()
	if got := l.Count(a); got != 0 {
		t.Fatalf("Count = %d, want 0", got)
	}
}

func TestLimiterExempt(t *testing.T) {
	l := NewLimiter(1, MustParseList("10.0.0.0/8"))
	exempt := netip.MustParseAddr("10.1.2.3")
	limited := netip.MustParseAddr("192.0.2.1")

	for i := range 5 {
		if _, ok := l.Acquire(exempt); !ok {
			t.Fatalf("exempt address refused at %d", i)
		}
	}
	if got := l.Count(exempt); got != 5 {
		t.Errorf("exempt Count = %d, want 5", got)
	}
	if _, ok := l.Acquire(limited); !ok {
		t.Fatal("first Acquire of a limited address refused")
	}
	if _, ok := l.Acquire(limited); ok {
		t.Fatal("limited address got a second slot")
	}
}

func TestLimiterMappedAddressSharesSlots(t *testing.T) {
	l := NewLimiter(1, List{})
	if _, ok := l.Acquire(netip.MustParseAddr("192.0.2.1")); !ok {
		t.Fatal("Acquire refused")
	}
	if _, ok := l.Acquire(netip.MustParseAddr("::ffff:192.0.2.1")); ok {
		t.Fatal("the IPv4-mapped form of the same client got its own slot")
	}
	if got := l.Count(netip.MustParseAddr("::ffff:192.0.2.1")); got != 1 {
		t.Fatalf("Count of mapped form = %d, want 1", got)
	}
}

func TestLimiterSetLimits(t *testing.T) {
	l := NewLimiter(3, List{})
	a := netip.MustParseAddr("192.0.2.1")
	var releases []func()
	for range 3 {
		r, ok := l.Acquire(a)
		if !ok {
			t.Fatal("Acquire refused")
		}
		releases = append(releases, r)
	}

	// Lowering the limit keeps existing connections but refuses new ones.
	l.SetLimits(1, List{})
	if got := l.Count(a); got != 3 {
		t.Fatalf("Count = %d after SetLimits, want 3", got)
	}
	if _, ok := l.Acquire(a); ok {
		t.Fatal("Acquire accepted above the lowered limit")
	}
	releases[0]()
	releases[1]()
	if _, ok := l.Acquire(a); ok {
		t.Fatal("Acquire accepted at the lowered limit")
	}
	releases[2]()
	r, ok := l.Acquire(a)
	if !ok {
		t.Fatal("Acquire refused below the lowered limit")
	}

	// Exempting the address lifts the limit for it.
	l.SetLimits(1, MustParseList("192.0.2.0/24"))
	if _, ok := l.Acquire(a); !ok {
		t.Fatal("Acquire refused for a newly exempt address")
	}

	// Removing the limit.
	l.SetLimits(0, List{})
	if _, ok := l.Acquire(a); !ok {
		t.Fatal("Acquire refused with no limit")
	}
	if got := l.Count(a); got != 3 {
		t.Fatalf("Count = %d, want 3", got)
	}
	r()
}

// TestLimiterConcurrent has many goroutines take and give back slots for a
// few addresses, and checks that no address ever holds more than the
// maximum and that nothing is left counted at the end. Run it with -race.
func TestLimiterConcurrent(t *testing.T) {
	const (
		max        = 3
		goroutines = 32
		rounds     = 500
	)
	l := NewLimiter(max, MustParseList("192.0.2.200"))
	addrs := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("::ffff:192.0.2.1"), // same client as above
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("192.0.2.200"), // exempt
	}
	key := func(a netip.Addr) netip.Addr { return a.Unmap() }
	var holders sync.Map // netip.Addr -> *atomic.Int64
	for _, a := range addrs {
		holders.LoadOrStore(key(a), new(atomic.Int64))
	}
	var accepted atomic.Int64

	errc := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				a := addrs[(g+i)%len(addrs)]
				release, ok := l.Acquire(a)
				if !ok {
					continue
				}
				accepted.Add(1)
				v, _ := holders.Load(key(a))
				h := v.(*atomic.Int64)
				if n := h.Add(1); n > max && a.Unmap() != netip.MustParseAddr("192.0.2.200") {
					errc <- fmt.Errorf("%s holds %d slots, max %d", a, n, max)
					h.Add(-1)
					release()
					return
				}
				h.Add(-1)
				release()
				if i%2 == 0 {
					release() // idempotent
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if accepted.Load() == 0 {
		t.Error("no Acquire succeeded")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counts) != 0 {
		t.Errorf("counts leak after all releases: %v", l.counts)
	}
}

// TestLimiterIPv6Prefix: with max 1, a second address shares the first's
// slot exactly when both fall under the same counting key.
func TestLimiterIPv6Prefix(t *testing.T) {
	tests := []struct {
		name          string
		prefix        int // 0: NewLimiter's default
		first, second string
		shared        bool
	}{
		{"same /64 by default", 0, "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"another /64 by default", 0, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"zones ignored", 0, "fe80::1%eth0", "fe80::2%eth1", true},
		{"loopback and its /64", 0, "::1", "::2", true},
		{"/128 counts single addresses", 128, "2001:db8::1", "2001:db8::2", false},
		{"/128 same address", 128, "2001:db8::1", "2001:db8::1", true},
		{"/48", 48, "2001:db8:1:2::1", "2001:db8:1:ff::1", true},
		{"/48 other", 48, "2001:db8:1::1", "2001:db8:2::1", false},
		{"/56 boundary", 56, "2001:db8:1:1ff::1", "2001:db8:1:100::1", true},
		{"/56 across boundary", 56, "2001:db8:1:1ff::1", "2001:db8:1:200::1", false},
		{"IPv4 stays /32", 0, "192.0.2.1", "192.0.2.2", false},
		{"IPv4-mapped stays /32", 0, "::ffff:192.0.2.1", "::ffff:192.0.2.2", false},
		{"IPv4-mapped is its IPv4", 0, "::ffff:192.0.2.1", "192.0.2.1", true},
		{"IPv4 stays /32 with /1", 1, "192.0.2.1", "192.0.2.2", false},
		{"IPv4-mapped not grouped with IPv6 /64", 0, "::ffff:192.0.2.1", "::ffff:192.0.3.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(1, List{})
			if tt.prefix != 0 {
				l.SetIPv6Prefix(tt.prefix)
			}
			first, second := netip.MustParseAddr(tt.first), netip.MustParseAddr(tt.second)
			release, ok := l.Acquire(first)
			if !ok {
				t.Fatal("first Acquire refused")
			}
			_, ok = l.Acquire(second)
			if ok == tt.shared {
				t.Fatalf("second Acquire ok=%v, want the slot shared=%v", ok, tt.shared)
			}
			if got := l.Count(second); tt.shared && got != 1 {
				t.Fatalf("Count(second) = %d, want the first's 1", got)
			}
			release()
			if got := l.Count(second); tt.shared && got != 0 {
				t.Fatalf("Count(second) = %d after the first's release, want 0", got)
			}
		})
	}
}

// TestLimiterIPv6PrefixExempt: exemption is decided by the address, so an
// exempt address does not lend its exemption to its /64 neighbours.
func TestLimiterIPv6PrefixExempt(t *testing.T) {
	exempt, err := ParseList("2001:db8::1")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLimiter(1, exempt)
	if _, ok := l.Acquire(netip.MustParseAddr("2001:db8::2")); !ok {
		t.Fatal("first Acquire refused")
	}
	if _, ok := l.Acquire(netip.MustParseAddr("2001:db8::3")); ok {
		t.Fatal("a neighbour of an exempt address was let past the limit")
	}
	if _, ok := l.Acquire(netip.MustParseAddr("2001:db8::1")); !ok {
		t.Fatal("the exempt address was refused")
	}
}
