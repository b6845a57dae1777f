package access

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var parseListTests = []struct {
	name string
	in   string
	want string // canonical form; ignored when err is set
	err  string // substring of the error; "" for success
}{
	{name: "empty", in: "", want: ""},
	{name: "only commas and spaces", in: " , ,, ", want: ""},
	{name: "star", in: "*", want: "*"},
	{name: "star with others", in: "10.0.0.0/8, *, ::1", want: "*"},
	{name: "bare ipv4", in: "127.0.0.1", want: "127.0.0.1"},
	{name: "bare ipv6", in: "::1", want: "::1"},
	{name: "bare ipv4 as /32", in: "127.0.0.1/32", want: "127.0.0.1"},
	{name: "ipv4 cidr", in: "10.0.0.0/8", want: "10.0.0.0/8"},
	{name: "ipv6 cidr", in: "fd00::/8", want: "fd00::/8"},
	{name: "host bits masked", in: "10.1.2.3/8", want: "10.0.0.0/8"},
	{name: "spaces trimmed", in: "  127.0.0.1 ,\t10.0.0.0/8  ", want: "10.0.0.0/8,127.0.0.1"},
	{name: "readme example", in: "127.0.0.1,10.0.0.0/8", want: "10.0.0.0/8,127.0.0.1"},
	{name: "sorted v4 before v6", in: "fd00::/8,192.168.0.0/16,::1,10.0.0.1", want: "10.0.0.1,192.168.0.0/16,::1,fd00::/8"},
	{name: "duplicates dropped", in: "10.0.0.1,10.0.0.1,10.0.0.1/32", want: "10.0.0.1"},
	{name: "covered dropped", in: "10.1.2.0/24,10.0.0.0/8,10.1.0.0/16,10.200.0.1", want: "10.0.0.0/8"},
	{name: "disjoint kept", in: "10.0.0.0/16,10.0.5.0/24,10.1.0.0/24", want: "10.0.0.0/16,10.1.0.0/24"},
	{name: "mapped bare is ipv4", in: "::ffff:10.0.0.1", want: "10.0.0.1"},
	{name: "mapped prefix is ipv4", in: "::ffff:10.0.0.0/104", want: "10.0.0.0/8"},
	{name: "mapped /128", in: "::ffff:1.2.3.4/128", want: "1.2.3.4"},
	{name: "ipv6 all", in: "::/0", want: "::/0"},
	{name: "ipv4 all", in: "0.0.0.0/0", want: "0.0.0.0/0"},

	{name: "bad octet", in: "10.0.0.300", err: `access: bad list entry "10.0.0.300": want an IP address, a CIDR prefix or *`},
	{name: "v4 prefix too long", in: "1.2.3.4/33", err: `"1.2.3.4/33"`},
	{name: "v6 prefix too long", in: "::1/129", err: `"::1/129"`},
	{name: "negative prefix", in: "10.0.0.0/-1", err: `"10.0.0.0/-1"`},
	{name: "empty prefix length", in: "10.0.0.0/", err: `"10.0.0.0/"`},
	{name: "garbage", in: "localhost", err: `"localhost"`},
	{name: "garbage after good", in: "10.0.0.1, nope", err: `"nope"`},
	{name: "zone", in: "fe80::1%eth0", err: `"fe80::1%eth0"`},
	{name: "brackets", in: "[::1]", err: `"[::1]"`},
	{name: "leading zero octet", in: "010.0.0.1", err: `"010.0.0.1"`},
	{name: "star inside", in: "10.*", err: `"10.*"`},
	{name: "space separated", in: "10.0.0.1 10.0.0.2", err: `"10.0.0.1 10.0.0.2"`},
}

func TestParseList(t *testing.T) {
	for _, tt := range parseListTests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseList(tt.in)
			if tt.err != "" {
				if err == nil {
					t.Fatalf("ParseList(%q) = %q, want error containing %q", tt.in, l, tt.err)
				}
				if !errors.Is(err, ErrBadEntry) {
					t.Errorf("error %v does not wrap ErrBadEntry", err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %q does not contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseList(%q): %v", tt.in, err)
			}
			if got := l.String(); got != tt.want {
				t.Errorf("ParseList(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			again, err := ParseList(l.String())
			if err != nil {
				t.Fatalf("reparsing %q: %v", l, err)
			}
			if !again.Equal(l) {
				t.Errorf("reparsing %q gave %q", l, again)
			}
			if got, want := l.IsEmpty(), tt.want == ""; got != want {
				t.Errorf("IsEmpty() = %v, want %v", got, want)
			}
			if got, want := l.Any(), tt.want == "*"; got != want {
				t.Errorf("Any() = %v, want %v", got, want)
			}
		})
	}
}

func TestZeroList(t *testing.T) {
	var l List
	if !l.IsEmpty() || l.Any() || l.String() != "" {
		t.Errorf("zero List: IsEmpty=%v Any=%v String=%q", l.IsEmpty(), l.Any(), l)
	}
	for _, a := range []string{"127.0.0.1", "::1", "0.0.0.0"} {
		if l.Contains(netip.MustParseAddr(a)) {
			t.Errorf("zero List contains %s", a)
		}
	}
	if !l.Equal(MustParseList("")) || !l.Equal(MustParseList(" , ")) {
		t.Error("zero List differs from a parsed empty list")
	}
}

func TestMustParseListPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParseList did not panic on a bad entry")
		}
	}()
	MustParseList("nope")
}

func TestContains(t *testing.T) {
	tests := []struct {
		list string
		addr string
		want bool
	}{
		{"*", "1.2.3.4", true},
		{"*", "::1", true},
		{"", "1.2.3.4", false},
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"10.0.0.0/8", "10.255.255.255", true},
		{"10.0.0.0/8", "11.0.0.0", false},
		{"10.0.0.0/8", "9.255.255.255", false},
		{"10.0.0.0/8", "::ffff:10.0.0.1", true},
		{"10.0.0.0/8", "::ffff:11.0.0.1", false},
		{"::ffff:10.0.0.1", "10.0.0.1", true},
		{"::ffff:10.0.0.1", "::ffff:10.0.0.1", true},
		{"::ffff:1.2.3.4/128", "1.2.3.4", true},
		{"::ffff:10.0.0.0/104", "10.9.8.7", true},
		{"fd00::/8", "fd12:3456::1", true},
		{"fd00::/8", "fe80::1", false},
		{"fe80::/10", "fe80::1%eth0", true},
		{"::1", "::1", true},
		{"::1", "127.0.0.1", false},
		{"127.0.0.1", "::1", false},
		{"::/0", "2001:db8::1", true},
		{"::/0", "1.2.3.4", false},
		{"::/0", "::ffff:1.2.3.4", false},
		{"0.0.0.0/0", "::ffff:1.2.3.4", true},
		{"0.0.0.0/0", "::1", false},
		{"10.0.0.0/8, 192.168.1.0/24, ::1", "192.168.1.77", true},
		{"10.0.0.0/8, 192.168.1.0/24, ::1", "192.168.2.1", false},
	}
	for _, tt := range tests {
		l := MustParseList(tt.list)
		a := netip.MustParseAddr(tt.addr)
		if got := l.Contains(a); got != tt.want {
			t.Errorf("ParseList(%q).Contains(%s) = %v, want %v", tt.list, tt.addr, got, tt.want)
		}
	}
}

func TestContainsInvalidAddr(t *testing.T) {
	if MustParseList("0.0.0.0/0,::/0").Contains(netip.Addr{}) {
		t.Error("a prefix list contains the zero Addr")
	}
	if !MustParseList("*").Contains(netip.Addr{}) {
		t.Error(`"*" does not contain the zero Addr`)
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"*", "*", true},
		{"*", "10.0.0.0/8,*", true},
		{"10.0.0.1,10.0.0.0/8", "10.0.0.0/8", true},
		{"127.0.0.1, 10.0.0.0/8", "10.0.0.0/8,127.0.0.1/32", true},
		{"10.0.0.0/8", "10.0.0.0/9", false},
		{"", "*", false},
		{"::1", "127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := MustParseList(tt.a).Equal(MustParseList(tt.b)); got != tt.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
