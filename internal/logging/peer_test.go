package logging

import (
	"strings"
	"testing"
)

func TestClipAndQuote(t *testing.T) {
	long := strings.Repeat("k", MaxQuoted)
	tests := []struct {
		name      string
		in        string
		wantClip  string
		wantQuote string
	}{
		{"short printable", "live", "live", `"live"`},
		{"empty", "", "", `""`},
		{"exactly the bound", long, long, `"` + long + `"`},
		{"one byte over", long + "x", long + "...", `"` + long + `"...`},
		{"control characters", "a\x00b\x1b[31m", "a?b?[31m", `"a?b?[31m"`},
		{"invalid UTF-8", "a\xffb", "a?b", `"a?b"`},
		{"printable UTF-8 kept", "café", "café", `"café"`},
		{"quotes kept for the handler to escape", `a"b`, `a"b`, `"a\"b"`},
		{"huge control run", strings.Repeat("\x01", 1<<20), strings.Repeat("?", MaxQuoted) + "...", `"` + strings.Repeat("?", MaxQuoted) + `"...`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clip(tt.in); got != tt.wantClip {
				t.Errorf("Clip = %q, want %q", got, tt.wantClip)
			}
			if got := Quote(tt.in); got != tt.wantQuote {
				t.Errorf("Quote = %q, want %q", got, tt.wantQuote)
			}
		})
	}
}

func TestClipIsBounded(t *testing.T) {
	// Every character may become at most 4 bytes ('?' or a printable rune
	// of the cut prefix), plus the ellipsis.
	for _, in := range []string{strings.Repeat("é", 1000), strings.Repeat("\xff", 1000), strings.Repeat("\U0001F600", 1000)} {
		if got := Clip(in); len(got) > MaxQuoted+3 {
			t.Errorf("Clip of %d bytes gave %d bytes", len(in), len(got))
		}
		if got := Quote(in); len(got) > 2*MaxQuoted+5 {
			t.Errorf("Quote of %d bytes gave %d bytes", len(in), len(got))
		}
	}
}
