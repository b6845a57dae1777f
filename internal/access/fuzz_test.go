package access

import "testing"

// FuzzParseList checks that ParseList never panics and that the canonical
// form of every list it accepts parses back to the same list.
func FuzzParseList(f *testing.F) {
	for _, tt := range parseListTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseList(s)
		if err != nil {
			return
		}
		canonical := l.String()
		again, err := ParseList(canonical)
		if err != nil {
			t.Fatalf("ParseList(%q) gave %q, which does not parse: %v", s, canonical, err)
		}
		if !again.Equal(l) {
			t.Fatalf("ParseList(%q) gave %q, which parses to %q", s, canonical, again)
		}
		if again.String() != canonical {
			t.Fatalf("String is not stable: %q then %q", canonical, again.String())
		}
		if l.IsEmpty() != (canonical == "") {
			t.Fatalf("IsEmpty() = %v for %q", l.IsEmpty(), canonical)
		}
	})
}
