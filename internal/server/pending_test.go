package server

import (
	"errors"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/client"
)

// count returns how many publishes of channel wait to go live.
func (p *pendingPublishes) count(channel string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byChannel[channel])
}

// TestKillSessionReachesPublishWaitingForStalePublisher: a reconnecting
// encoder's publish waits for its silent old session to turn stale; a
// kill-session then ends the old session and refuses the waiting publish,
// which never goes live.
func TestKillSessionReachesPublishWaitingForStalePublisher(t *testing.T) {
	ts := startServer(t, nil)
	publish(t, ts, "live", "k") // sends no media: silent

	type result struct {
		st  client.Status
		err error
	}
	results := make(chan result, 1)
	again := ts.dial(t, "live")
	go func() {
		st, err := again.Publish("k")
		results <- result{st, err}
	}()
	waitFor(t, "the publish waiting for the stale one", 5*time.Second, func() bool { return ts.waiting.count("live") == 1 })

	live, pending := ts.KillSession("live")
	if !live || pending != 1 {
		t.Fatalf("KillSession = live %v, pending %d; want the old session and 1 pending publish", live, pending)
	}
	var res result
	select {
	case res = <-results:
	case <-time.After(15 * time.Second):
		t.Fatal("the waiting publish got no answer")
	}
	var st client.Status
	if !errors.As(res.err, &st) || st.Code != "NetStream.Publish.BadName" {
		t.Fatalf("waiting publish after kill-session: %v %v, want NetStream.Publish.BadName", res.st, res.err)
	}
	waitFor(t, "the channel empty", 5*time.Second, func() bool { return ts.Hub().Lookup("live") == nil })
	// The refused publish leaves the registry after its status is sent:
	// the client may read the status first.
	waitFor(t, "no publish registered as waiting", 5*time.Second, func() bool { return ts.waiting.count("live") == 0 })
}
