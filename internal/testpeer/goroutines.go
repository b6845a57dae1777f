package testpeer

import (
	"runtime"
	"strings"
)

// Goroutines returns the stacks of the running goroutines that have a
// frame in one of funcs, each a function name prefix as it appears in a
// stack trace (for example "github.com/rtmp-server/rtmp-server/internal/hub.(*Stream).fanOut"):
// after a component's Close returns, none of its goroutines should be
// left, and a test checks that Goroutines of its functions is empty.
func Goroutines(funcs ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if hasAnyPrefix(line, funcs) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
