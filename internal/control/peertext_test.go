package control

import (
	"strings"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestLongStreamIDLogBounded sends close-stream with a stream id as long as
// a message may be: the target gets all of it, the log line a clipped one.
func TestLongStreamIDLogBounded(t *testing.T) {
	r := testpeer.StartRedis(t)
	target := newFakeTarget(nil)
	s := &Subscriber{Addr: r.Addr(), Target: target}
	logs := runSubscriber(t, s)
	connected(t, s)

	id := strings.Repeat("i", MaxMessageSize-len("close-stream>ch|"))
	mustDeliver(t, r, "close-stream>ch|"+id)
	if got, want := target.next(t), (call{"CloseStream", "ch", id}); got != want {
		t.Errorf("call = %+v, want the whole stream id", got)
	}
	waitFor(t, "the command in the log", func() bool { return logs.Count("control command") == 1 })
	for _, line := range strings.Split(logs.String(), "\n") {
		if len(line) > 1024 {
			t.Errorf("a log line of %d bytes: %.200s...", len(line), line)
		}
	}
}
