package server

import (
	"bytes"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/message"
)

// sessionKinds returns the kinds of the events of session, in order.
func sessionKinds(l *eventLog, session uint64) []EventKind {
	var kinds []EventKind
	for _, ev := range l.matching(func(ev Event) bool { return ev.Session == session }) {
		kinds = append(kinds, ev.Kind)
	}
	return kinds
}

// TestObserverSeesLifecycle: the observer hears a publisher's and a
// player's connections go through their states, a refused publish and a
// refused play with their reasons, and the end of the stream.
func TestObserverSeesLifecycle(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	started := ts.events.wait(t, "the publish", 1, kind(PublishAccepted, ""))[0]
	if started.Channel != "live" || started.StreamID == "" || !started.ClientIP.IsLoopback() {
		t.Fatalf("publish event %+v", started)
	}

	player := ts.dial(t, "live")
	if st, err := player.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	play := ts.events.wait(t, "the play", 1, kind(PlayAccepted, ""))[0]
	if play.Waiting {
		t.Fatalf("play event %+v: waiting, though the stream is published", play)
	}

	dup := ts.dial(t, "live")
	st, err := dup.Publish("k2")
	expectStatus(t, st, err, "NetStream.Publish.BadName")
	ts.events.wait(t, "the refused publish", 1, kind(PublishRefused, "stream already publishing"))
	wrong := ts.dial(t, "live")
	st, err = wrong.Play("other")
	expectStatus(t, st, err, "NetStream.Play.BadName")
	ts.events.wait(t, "the refused play", 1, kind(PlayRefused, "stream key does not match"))

	if err := pub.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
		t.Fatal(err)
	}
	pub.Close()
	ended := ts.events.wait(t, "the end of the stream", 1, kind(StreamEnded, ""))[0]
	if ended.Session != started.Session || ended.StreamID != started.StreamID || ended.Duration <= 0 {
		t.Fatalf("stream-ended event %+v after %+v", ended, started)
	}
	ts.events.wait(t, "the publisher's close", 1, func(ev Event) bool { return ev.Kind == ConnClosed && ev.Session == started.Session })
	player.Close()
	ts.events.wait(t, "the player's close", 1, func(ev Event) bool { return ev.Kind == ConnClosed && ev.Session == play.Session })

	want := []EventKind{ConnAccepted, HandshakeDone, Connected, PublishAccepted, StreamEnded, ConnClosed}
	if got := sessionKinds(ts.events, started.Session); !slices.Equal(got, want) {
		t.Errorf("publisher's events %v, want %v", got, want)
	}
	want = []EventKind{ConnAccepted, HandshakeDone, Connected, PlayAccepted, PlayStopped, ConnClosed}
	if got := sessionKinds(ts.events, play.Session); !slices.Equal(got, want) {
		t.Errorf("player's events %v, want %v", got, want)
	}
}

// TestObserverNil: a server without an observer serves as before.
func TestObserverNil(t *testing.T) {
	ts := startServer(t, nil, func(s *Server) { s.Observer = nil })
	pub := publish(t, ts, "live", "k")
	player := ts.dial(t, "live")
	if st, err := player.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	_ = pub.WriteMedia(message.TypeVideo, 0, videoHeader)
	_ = pub.WriteMedia(message.TypeVideo, 0, keyframe(1))
	readMedia(t, player, 2)
	if n := len(ts.events.matching(func(Event) bool { return true })); n != 0 {
		t.Fatalf("%d events recorded without an observer", n)
	}
}

// TestObserverSeesPlayerSkip: a player that stops reading while the
// publisher sends more than its queue holds skips ahead to a keyframe, and
// the observer hears it (from the player's writer, when its blocked write
// ends: here when the player goes away).
func TestObserverSeesPlayerSkip(t *testing.T) {
	// The writer must outlast the publisher's burst, however slow the machine.
	ts := startServer(t, nil, func(s *Server) { s.WriteTimeout = time.Minute })
	pub := publish(t, ts, "live", "k")
	if err := pub.SetChunkSize(64 << 10); err != nil {
		t.Fatal(err)
	}
	stalled := ts.dial(t, "live") // plays, then never reads
	if st, err := stalled.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	// A fixed receive buffer, so the kernel does not absorb the stream.
	if err := stalled.NetConn().(*net.TCPConn).SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	play := ts.events.wait(t, "the play", 1, kind(PlayAccepted, ""))[0]
	frame := bytes.Repeat([]byte{0xAB}, 64<<10)
	frame[0], frame[1] = 0x17, 0x01
	for i := range 400 { // 25 MiB: more than the player's socket and queue hold
		if err := pub.WriteMedia(message.TypeVideo, uint32(i*40), frame); err != nil {
			t.Fatalf("publisher blocked at frame %d: %v", i, err)
		}
	}
	// The player's writer may have taken much of the burst in one batch;
	// media it has not taken skips ahead at the latest once it has waited
	// MaxQueueDelay. The publisher goes on until then.
	overflowed := func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		for c := range ts.conns {
			if c.id == play.Session {
				return c.queue.Overflows() > 0
			}
		}
		return false
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(time.Minute)
	for i := 400; !overflowed(); i++ {
		if time.Now().After(deadline) {
			t.Fatal("the stalled player's queue never overflowed")
		}
		if err := pub.WriteMedia(message.TypeVideo, uint32(i*40), frame); err != nil {
			t.Fatalf("publisher blocked at frame %d: %v", i, err)
		}
		<-tick.C
	}
	// Its writer, blocked on the full socket, reports the skip once the
	// player is gone.
	stalled.Close()
	defer func() {
		if t.Failed() {
			t.Logf("events: %+v", ts.events.matching(func(Event) bool { return true }))
		}
	}()
	skipped := ts.events.wait(t, "the stalled player's skip", 1, func(ev Event) bool {
		return ev.Kind == PlayerSkipped && ev.Session == play.Session
	})[0]
	if skipped.Skips == 0 || skipped.Channel != "live" {
		t.Fatalf("skip event %+v", skipped)
	}
}
