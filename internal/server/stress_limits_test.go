package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/message"
)

// TestPartialMessagesBoundedPerConnection opens partial messages on a few
// chunk streams of one connection. Each stays below chunk.MaxMessageSize,
// but together they pass it: the server must not hold more than one
// largest message's worth of unfinished payload for a peer, or one
// connection could pin chunk.MaxChunkStreams × chunk.MaxMessageSize
// (1 GiB) of memory, sending a small complete message now and then to stay
// inside its read deadline.
func TestPartialMessagesBoundedPerConnection(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.dial(t, "live")
	const chunkSize = 1 << 16
	if err := c.SetChunkSize(chunkSize); err != nil {
		t.Fatal(err)
	}
	nc := c.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(20 * time.Second))
	const (
		streams   = 3
		perStream = 6 << 20 // 18 MiB in all, more than one largest message
	)
	body := make([]byte, chunkSize)
	sent := 0
	var werr error
	for csid := uint32(4); csid < 4+streams && werr == nil; csid++ {
		hdr := []byte{byte(csid), 0, 0, 0, 0xFF, 0xFF, 0xFF, message.TypeVideo}
		hdr = binary.LittleEndian.AppendUint32(hdr, c.StreamID())
		if _, werr = nc.Write(append(hdr, body...)); werr != nil {
			break
		}
		sent += len(body)
		for n := chunkSize; n < perStream; n += chunkSize {
			if _, werr = nc.Write(append([]byte{3<<6 | byte(csid)}, body...)); werr != nil {
				break
			}
			sent += len(body)
		}
	}
	// A server that enforces the bound has closed the connection by now.
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var rerr error
	for rerr == nil {
		_, rerr = c.ReadMessage()
	}
	if errors.Is(rerr, os.ErrDeadlineExceeded) {
		t.Fatalf("the server holds %d MiB of unfinished messages on %d chunk streams of one connection (more than chunk.MaxMessageSize) and keeps reading", sent>>20, streams)
	}
	t.Logf("connection closed after %d MiB (write: %v, read: %v)", sent>>20, werr, rerr)
}

// TestFinishTimeoutBoundsLastFlush ends a player's connection while the
// writer is in the middle of a large batch that the player reads slowly but
// steadily: FinishTimeout must bound the flush, however far the batch has
// to go.
func TestFinishTimeoutBoundsLastFlush(t *testing.T) {
	ts := startServer(t, nil, func(s *Server) {
		s.WriteTimeout = 2 * time.Second
		s.FinishTimeout = 500 * time.Millisecond
	})
	pub := publish(t, ts, "live", "k")
	if err := pub.SetChunkSize(1 << 16); err != nil {
		t.Fatal(err)
	}
	player := ts.dial(t, "live")
	if st, err := player.Play("k"); err != nil {
		t.Fatal(st, err)
	}
	nc := player.NetConn().(*net.TCPConn)
	// A fixed receive buffer, so the kernel does not absorb the stream.
	if err := nc.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}

	// The player reads about 1 MiB/s until the test ends.
	var read atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 50<<10)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = nc.SetReadDeadline(time.Now().Add(time.Second))
			n, err := io.ReadFull(nc, buf)
			read.Add(int64(n))
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()

	// 14 MiB arrive at once: the writer's first batch holds what had
	// arrived when it woke, its second batch the rest.
	frame := append(keyframe(0), bytes.Repeat([]byte{0x33}, 64<<10)...)
	for i := range 224 {
		if err := pub.WriteMedia(message.TypeVideo, uint32(i*40), frame); err != nil {
			t.Fatal(err)
		}
	}
	// Wait until the writer is well into the large batch.
	waitFor(t, "player streaming", 30*time.Second, func() bool { return read.Load() > 4<<20 })

	// The player's side ends: its read loop finishes, the last flush starts.
	if err := nc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	closedAt := time.Now()
	waitFor(t, "player's connection closed", 60*time.Second, func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return len(ts.conns) == 1 // the publisher's
	})
	took := time.Since(closedAt)
	t.Logf("closed %v after the peer's end; the player had read %d KiB", took.Round(10*time.Millisecond), read.Load()>>10)
	if took > ts.FinishTimeout+2*time.Second {
		t.Fatalf("the last flush went on for %v, FinishTimeout is %v: the writer kept pushing its write deadline forward", took.Round(10*time.Millisecond), ts.FinishTimeout)
	}
}
