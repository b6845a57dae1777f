package logging

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxQuoted is how many bytes of a peer's text (a command name, an RTMP
// app, a callback's stream id, a Redis message) a log line or an error
// carries. The rest is cut, so a peer's text costs the log a bounded size
// whatever its length.
const MaxQuoted = 64

// Clip returns s for a log attribute: at most MaxQuoted bytes of it, with
// invalid UTF-8 and non-printable characters replaced by '?', and "..."
// appended when s was cut. A short printable s is returned as it is. The
// handler quotes the result as it quotes any value.
func Clip(s string) string { return ClipN(s, MaxQuoted) }

// ClipN is Clip with a bound of n bytes instead of MaxQuoted, for longer
// texts that only may carry a peer's bytes, such as a transport error.
func ClipN(s string, n int) string {
	if len(s) <= n && printable(s) {
		return s
	}
	clipped, cut := sanitize(s, n)
	if cut {
		clipped += "..."
	}
	return clipped
}

// Quote returns s for the text of an error or a log message: Clip's bytes
// as a Go-quoted string, with "..." after the closing quote when s was cut.
func Quote(s string) string {
	clipped, cut := sanitize(s, MaxQuoted)
	q := strconv.Quote(clipped)
	if cut {
		q += "..."
	}
	return q
}

// sanitize returns the first n bytes of s with invalid UTF-8 and
// non-printable characters replaced by '?', and whether s was longer.
func sanitize(s string, n int) (string, bool) {
	cut := len(s) > n
	if cut {
		s = s[:n]
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		i += size
	}
	return b.String(), cut
}

// printable reports whether s is valid UTF-8 of printable characters only.
func printable(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) {
			return false
		}
		i += size
	}
	return true
}
