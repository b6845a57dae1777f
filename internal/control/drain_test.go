package control

import (
	"strings"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// TestDrainCommands: drain and undrain naming this server's host reach
// OnDrain; naming another host, they are logged and do nothing.
func TestDrainCommands(t *testing.T) {
	r := testpeer.StartRedis(t)
	target := newFakeTarget(nil)
	drains := make(chan bool, 10)
	s := &Subscriber{Addr: r.Addr(), Target: target, Host: "box-1.example", OnDrain: func(on bool) { drains <- on }}
	logs := runSubscriber(t, s)
	connected(t, s)

	for _, msg := range []string{"drain>box-2.example", "drain>box-1.example", "undrain>box-1.example"} {
		mustDeliver(t, r, msg)
	}
	waitFor(t, "three outcomes in the log", func() bool { return logs.Count("control command") == 3 })
	if got := len(drains); got != 2 {
		t.Fatalf("OnDrain called %d times, want 2", got)
	}
	if first, second := <-drains, <-drains; !first || second {
		t.Errorf("OnDrain(%v), then OnDrain(%v); want true, then false", first, second)
	}
	target.none(t)
	out := logs.String()
	for _, want := range []string{
		`command=drain host=box-2.example outcome="not for this server"`,
		"command=drain host=box-1.example outcome=acted",
		"command=undrain host=box-1.example outcome=acted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
