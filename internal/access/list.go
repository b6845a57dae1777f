// Package access decides which client addresses may do what: allow-lists of
// IP addresses and prefixes, and a limit on concurrent connections per IP.
package access

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// ErrBadEntry is wrapped by every error that ParseList returns.
var ErrBadEntry = errors.New("access: bad list entry")

// List is a set of addresses: "*" (every address), single IPs and CIDR
// prefixes, IPv4 and IPv6. The zero List matches nothing.
//
// IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) are treated as the IPv4
// address they carry, both in entries and in Contains, so a dual-stack
// listener and an IPv4 one see the same list. An IPv6 prefix shorter than
// /96, such as ::/0, covers IPv6 addresses only.
//
// A List is immutable and safe for concurrent use; compare two with Equal.
type List struct {
	any bool // "*" was given; prefixes is then nil
	// prefixes is sorted (IPv4 first, then by address, then by length),
	// masked, unmapped, and holds no prefix covered by another one.
	prefixes []netip.Prefix
}

// ParseList parses a comma-separated list. Entries are trimmed of spaces
// and empty entries are ignored, so "" gives the zero List. An entry is
// one of:
//
//   - "*", meaning every address;
//   - an IP address without a zone, such as 10.0.0.1 or fd00::1, meaning
//     that single address;
//   - a CIDR prefix such as 10.0.0.0/8 or fd00::/8; host bits are
//     ignored, so 10.1.2.3/8 is 10.0.0.0/8.
//
// An error wraps ErrBadEntry and quotes the first entry that is none of these.
func ParseList(s string) (List, error) {
	var l List
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if entry == "*" {
			l.any = true
			continue
		}
		p, ok := parseEntry(entry)
		if !ok {
			return List{}, fmt.Errorf("%w %q: want an IP address, a CIDR prefix or *", ErrBadEntry, entry)
		}
		l.prefixes = append(l.prefixes, p)
	}
	l.canonicalize()
	return l, nil
}

// MustParseList is like ParseList but panics on error. It is meant for
// defaults and tests, where the list is a constant.
func MustParseList(s string) List {
	l, err := ParseList(s)
	if err != nil {
		panic(err)
	}
	return l
}

// parseEntry parses one address or prefix into a masked prefix, with
// IPv4-mapped IPv6 forms turned into IPv4.
func parseEntry(entry string) (netip.Prefix, bool) {
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return netip.Prefix{}, false
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(entry)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), true
}

// canonicalize puts l in the form that String prints and Equal compares:
// "*" alone, or sorted prefixes with duplicates and covered ones dropped.
func (l *List) canonicalize() {
	if l.any {
		l.prefixes = nil
		return
	}
	slices.SortFunc(l.prefixes, comparePrefix)
	kept := l.prefixes[:0]
	for _, p := range l.prefixes {
		// Sorting puts a covering prefix before the prefixes it covers, and
		// the kept prefixes are disjoint, so only the last kept one can cover p.
		if n := len(kept); n > 0 && kept[n-1].Bits() <= p.Bits() && kept[n-1].Contains(p.Addr()) {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		kept = nil
	}
	l.prefixes = kept
}

// comparePrefix orders IPv4 before IPv6, then by address, then shorter
// prefixes first.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().BitLen() - b.Addr().BitLen(); c != 0 {
		return c
	}
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// Contains reports whether a is in the list. The zone of a is ignored and
// an IPv4-mapped IPv6 address is matched as IPv4. A list holding "*"
// contains every address, even the zero netip.Addr; other lists never
// contain the zero netip.Addr.
func (l List) Contains(a netip.Addr) bool {
	if l.any {
		return true
	}
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("").Unmap()
	for _, p := range l.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Any reports whether the list holds "*".
func (l List) Any() bool { return l.any }

// IsEmpty reports whether the list matches nothing, as the zero List does.
func (l List) IsEmpty() bool { return !l.any && len(l.prefixes) == 0 }

// Equal reports whether l and m have the same canonical form, that is
// whether String returns the same for both.
func (l List) Equal(m List) bool {
	return l.any == m.any && slices.Equal(l.prefixes, m.prefixes)
}

// String returns the canonical form of the list, which ParseList accepts:
// "*", or the entries sorted and separated by commas, single addresses
// without a prefix length, entries covered by another one left out. The
// zero List gives "".
func (l List) String() string {
	if l.any {
		return "*"
	}
	var b strings.Builder
	for i, p := range l.prefixes {
		if i > 0 {
			b.WriteByte(',')
		}
		if p.IsSingleIP() {
			b.WriteString(p.Addr().String())
		} else {
			b.WriteString(p.String())
		}
	}
	return b.String()
}
