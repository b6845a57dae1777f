package server

import (
	"bytes"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// smallSendBuffers hands out connections whose send buffer holds only a
// few KB, so that the fan-out's direct writes are cut short.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// TestFullSocketResumesIntact: frames larger than the player's socket
// buffers are written in part by the fan-out and finished by the player's
// writer once it reads again; every one of the frames arrives, whole and
// in order (none is dropped: they fit the player's queue).
func TestFullSocketResumesIntact(t *testing.T) {
	ts := startServerWrapped(t, func(ln net.Listener) net.Listener { return smallSendBuffers{ln} }, nil)

	pub := publish(t, ts, "live", "k")
	if err := pub.SetChunkSize(4096); err != nil {
		t.Fatal(err)
	}
	// (The player's receive buffer keeps its default size: a tiny one
	// makes loopback TCP stall on zero-window probes.)
	player := ts.dial(t, "live")
	if st, err := player.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	// Written while the player reads nothing: far more than its socket
	// holds, less than its queue's bounds.
	const n, size = 40, 48 << 10
	for i := range n {
		frame := bytes.Repeat([]byte{byte(i)}, size)
		frame[0], frame[1] = 0x17, 0x01 // every frame a keyframe
		if err := pub.WriteMedia(message.TypeVideo, uint32(i*40), frame); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		m, err := readVideo(player)
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", i, n, err)
		}
		if m.Timestamp != uint32(i*40) {
			t.Fatalf("frame %d of %d: timestamp %d, want %d (frames missing or out of order)", i, n, m.Timestamp, i*40)
		}
		if len(m.Payload) != size || !bytes.Equal(m.Payload[2:], bytes.Repeat([]byte{byte(i)}, size-2)) {
			t.Fatalf("frame %d of %d: %d bytes, want %d: not whole", i, n, len(m.Payload), size)
		}
	}
}

// readVideo returns the next video message.
func readVideo(c *client.Conn) (*chunk.Message, error) {
	for {
		m, err := c.ReadMessage()
		if err != nil || m.Type == message.TypeVideo {
			return m, err
		}
	}
}

// TestDirectWritePanicEndsOnlyThatConnection: a panic in a direct write,
// which runs on the stream's fan-out goroutine, ends the connection it
// was writing to; the process, the fan-out and the stream's other player
// go on.
func TestDirectWritePanicEndsOnlyThatConnection(t *testing.T) {
	ts := startServer(t, nil)
	pub := publish(t, ts, "live", "k")
	doomed, other := ts.dial(t, "live"), ts.dial(t, "live")
	for _, p := range []*client.Conn{doomed, other} {
		st, err := p.Play("k")
		expectStatus(t, st, err, "NetStream.Play.Start")
	}
	var doomedID atomic.Uint64
	ts.events.wait(t, "both players playing", 2, func(ev Event) bool { return ev.Kind == PlayAccepted })
	// The two PlayAccepted events may come in either order; sessions are
	// numbered as accepted, and doomed was dialled (and connected) first.
	played := ts.events.matching(func(ev Event) bool { return ev.Kind == PlayAccepted })
	doomedID.Store(min(played[0].Session, played[1].Session))
	hook := func(c *conn) {
		if c.id == doomedID.Load() {
			panic("test: direct write")
		}
	}
	testHookDirectWrite.Store(&hook)
	t.Cleanup(func() { testHookDirectWrite.Store(nil) })
	before := recoveredPanics.Load()

	for i, payload := range [][]byte{videoHeader, keyframe(1), interFrame(2), interFrame(3)} {
		if err := pub.WriteMedia(message.TypeVideo, uint32(i*40), payload); err != nil {
			t.Fatal(err)
		}
	}
	closed := ts.events.wait(t, "the doomed player's connection closed", 1, func(ev Event) bool {
		return ev.Kind == ConnClosed && ev.Session == doomedID.Load()
	})
	if !strings.Contains(closed[0].Reason, "internal error") {
		t.Errorf("doomed player closed with %q, want an internal error", closed[0].Reason)
	}
	if n := recoveredPanics.Load() - before; n != 1 {
		t.Errorf("%d panics recovered, want 1", n)
	}
	// The other player (accepted second: Play returns once accepted) still
	// gets every frame, and what follows.
	readMedia(t, other, 4)
	if err := pub.WriteMedia(message.TypeVideo, 200, interFrame(4)); err != nil {
		t.Fatal(err)
	}
	readMedia(t, other, 1)
}
