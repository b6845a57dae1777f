package server

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// TestDrain: while the server drains, a live publisher and its player
// keep streaming; a new publish is refused with the reason, and in
// DrainConnections a new connection too; DrainOff takes new ones again.
func TestDrain(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	player := ts.dial(t, "live")
	if st, err := player.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	frame := 0
	stream := func(what string) {
		t.Helper()
		frame++
		if err := pub.WriteMedia(message.TypeVideo, uint32(frame*40), keyframe(byte(frame))); err != nil {
			t.Fatalf("%s: publisher: %v", what, err)
		}
		got := readMedia(t, player, 1)
		if !bytes.Equal(got[len(got)-1].Payload, keyframe(byte(frame))) {
			t.Fatalf("%s: player got % x, want frame %d", what, got[len(got)-1].Payload, frame)
		}
	}
	if err := pub.WriteMedia(message.TypeVideo, 0, videoHeader); err != nil {
		t.Fatal(err)
	}
	readMedia(t, player, 1)
	stream("before draining")

	ts.Drain(DrainPublishes)
	stream("draining publishes")
	refused := ts.dial(t, "other")
	st, err := refused.Publish("k")
	expectStatus(t, st, err, "NetStream.Publish.BadName")
	if st.Description != drainPublishDescription {
		t.Errorf("description %q, want %q", st.Description, drainPublishDescription)
	}
	ts.events.wait(t, "the refused publish", 1, kind(PublishRefused, "server draining"))
	// Players may still join.
	late := ts.dial(t, "live")
	if st, err := late.Play("k"); err != nil {
		t.Fatalf("a new player while draining publishes: %v %v", st, err)
	}
	stream("draining publishes, second player joined")

	ts.Drain(DrainConnections)
	stream("draining connections")
	c, err := client.Dial(ts.addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	err = c.Connect("other")
	if !errors.As(err, &st) || st.Code != "NetConnection.Connect.Rejected" || st.Description != drainConnectDescription {
		t.Fatalf("connect while draining connections: %v, want NetConnection.Connect.Rejected %q", err, drainConnectDescription)
	}
	ts.events.wait(t, "the refused connection", 1, kind(ConnectRefused, "server draining"))
	stream("draining connections, after a refusal")
	if p := ts.Hub().Lookup("live"); p == nil {
		t.Fatal("the live publication ended while draining")
	}

	ts.Drain(DrainOff)
	again := ts.dial(t, "other")
	st, err = again.Publish("k")
	expectStatus(t, st, err, "NetStream.Publish.Start")
}

// TestFFmpegDrainRefusal: ffmpeg publishing to a draining server is
// refused and shows why.
func TestFFmpegDrainRefusal(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil, func(s *Server) { s.Drain(DrainPublishes) })
	gen := []string{"-re", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=5", "-c:v", "libx264", "-t", "2", "-f", "flv"}
	ffmpegRefused(t, "Server draining", append(gen, ts.url("live", "k"))...)
	ts.events.wait(t, "the refused publish", 1, kind(PublishRefused, "server draining"))
}
