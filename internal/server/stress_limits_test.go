package server

import (
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
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
		hdr := []byte{byte(csid), 0, 0, 0, 0xFF, 0xFF, 0xFF, chunk.TypeVideo}
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
