package server

import (
	"bytes"
	"net"
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
