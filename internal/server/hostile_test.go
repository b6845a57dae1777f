package server

// Hostile peers on raw sockets: what they send must cost the server's log
// and memory a bounded amount, must not put a stream key in the log, and
// must not hold a connection without connecting.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/amf"
	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

// Bounds the log must keep whatever a peer sends.
const (
	maxLogLine = 2 << 10
	maxLogSize = 64 << 10 // everything one test's connections log
)

// checkLogBounded fails the test when a line of the server's log or the
// whole of it passes its bound, and reports the longest line's start.
func checkLogBounded(t *testing.T, ts *testServer) {
	t.Helper()
	logs := ts.logs.String()
	if len(logs) > maxLogSize {
		t.Errorf("the server logged %d bytes, want at most %d", len(logs), maxLogSize)
	}
	for _, line := range strings.Split(logs, "\n") {
		if len(line) > maxLogLine {
			t.Errorf("a log line of %d bytes (at most %d): %.200s...", len(line), maxLogLine, line)
		}
	}
}

// commandBytes is a command message with the given name, chunked at
// chunkSize, as it goes on the wire.
func commandBytes(t testing.TB, name string, chunkSize uint32) []byte {
	t.Helper()
	p, err := amf.AppendAMF0All(nil, name, 1.0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return chunk.AppendMessage(nil, &chunk.Message{ChunkStreamID: 3, Type: message.TypeCommandAMF0, Payload: p}, chunkSize)
}

// rawConn is a client past the handshake that speaks with the chunk size
// it announced.
func rawConn(t testing.TB, ts *testServer, chunkSize uint32) *client.Conn {
	t.Helper()
	c, err := client.Dial(ts.addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(time.Minute)) // long: the log of an unbounded name takes long to write
	if err := c.SetChunkSize(chunkSize); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitClosed reads until the server closes the connection.
func waitClosed(t testing.TB, c *client.Conn) {
	t.Helper()
	for {
		_, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the server did not close the connection: %v", err)
		}
		return
	}
}

// TestHugeCommandNameLogBounded sends command names of megabytes of
// control bytes, before connect (the name comes back in an error that
// becomes the close reason) and after it with debug logging (every command
// name is logged): each log line and the whole log stay small.
func TestHugeCommandNameLogBounded(t *testing.T) {
	const chunkSize = 1 << 20
	huge := strings.Repeat("\x01", 1<<20)

	t.Run("before connect", func(t *testing.T) {
		ts := startServer(t, nil)
		c := rawConn(t, ts, chunkSize)
		if _, err := c.NetConn().Write(commandBytes(t, huge, chunkSize)); err != nil {
			t.Fatal(err)
		}
		waitClosed(t, c)
		ts.events.wait(t, "the close", 1, kind(ConnClosed, ""))
		checkLogBounded(t, ts)
	})

	t.Run("after connect", func(t *testing.T) {
		ts := startServer(t, nil) // the test logger logs at debug level
		c := rawConn(t, ts, chunkSize)
		if err := c.Connect("live"); err != nil {
			t.Fatal(err)
		}
		// Names just short enough to be taken are logged clipped, once each.
		longest := strings.Repeat("\x01", message.MaxCommandName)
		for i := 0; i < 20; i++ {
			if _, err := c.Call(0, longest, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.CreateStream(); err != nil { // a round trip: the calls above were handled
			t.Fatal(err)
		}
		// A longer one is refused, and ends the connection.
		if _, err := c.NetConn().Write(commandBytes(t, huge, chunkSize)); err != nil {
			t.Fatal(err)
		}
		if cmd, err := c.ReadCommand(); err == nil {
			t.Errorf("a command name of %d bytes was answered with %s, want the connection closed", len(huge), cmd.Name)
		}
		waitFor(t, "the refusal logged", time.Minute, func() bool {
			logs := ts.logs.String()
			return strings.Contains(logs, "name of 1048576 bytes") || len(logs) > maxLogSize
		})
		checkLogBounded(t, ts)
	})
}

// TestHugeCommandNameCostBounded checks that a huge command message costs
// the process a small multiple of its size in allocations: reading it
// (under 3×: its buffer doubles as chunks arrive, up to its length),
// decoding it (1×: the name), refusing it and logging that (a few bytes).
func TestHugeCommandNameCostBounded(t *testing.T) {
	const chunkSize = 1 << 20
	ts := startServer(t, nil)
	c := rawConn(t, ts, chunkSize)
	msg := commandBytes(t, strings.Repeat("\x01", 4<<20), chunkSize)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := c.NetConn().Write(msg); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, c)
	ts.events.wait(t, "the close", 1, kind(ConnClosed, ""))
	runtime.ReadMemStats(&after)

	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("a command message of %d bytes: %d bytes allocated (%.1f×)", len(msg), allocated, float64(allocated)/float64(len(msg)))
	if limit := 5 * uint64(len(msg)); allocated > limit {
		t.Errorf("a command message of %d bytes allocated %d bytes, want at most %d", len(msg), allocated, limit)
	}
}

// TestKeyInAppNotLogged connects as encoders do when the stream key is in
// the server URL: the app is "live/KEY". The refusal tells the encoder what
// to change and the key never reaches the log.
func TestKeyInAppNotLogged(t *testing.T) {
	const secret = "SECRETKEY"
	ts := startServer(t, nil)
	for _, app := range []string{"live/" + secret, "live/" + secret + "?token=x", "/" + secret} {
		c, err := client.Dial(ts.addr, nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		err = c.Connect(app)
		c.Close()
		var st client.Status
		if !errors.As(err, &st) || st.Code != "NetConnection.Connect.Rejected" || !strings.Contains(st.Description, "more than one path segment") {
			t.Errorf("connect %q: %v, want NetConnection.Connect.Rejected with a hint", app, err)
		}
	}
	ts.events.wait(t, "the refusals", 3, kind(ConnectRefused, "invalid channel"))
	if logs := ts.logs.String(); strings.Contains(logs, secret) || strings.Contains(logs, "token") {
		t.Errorf("the key or the query reached the log:\n%s", logs)
	}
}

// TestFFmpegKeyInURLNotLogged publishes with ffmpeg to
// rtmp://host/live/KEY/x (app "live/KEY", stream "x"): ffmpeg is refused
// with the hint, and the key is not in the log.
func TestFFmpegKeyInURLNotLogged(t *testing.T) {
	t.Parallel()
	const secret = "SECRETKEY"
	ts := startServer(t, nil)
	gen := append(testpeer.Source{Width: 64, Height: 64, Rate: 5, Duration: 2 * time.Second}.Args(), "-f", "flv")
	ffmpegRefused(t, "Invalid channel", append(gen, ts.url("live/"+secret, "x"))...)
	ts.events.wait(t, "the refusal", 1, kind(ConnectRefused, "invalid channel"))
	if logs := ts.logs.String(); strings.Contains(logs, secret) {
		t.Errorf("the key reached the log:\n%s", logs)
	}
	ffmpegRefused(t, "more than one path segment", append(gen, ts.url("live/"+secret, "x"))...)
}

// TestConnectDeadlineIsAbsolute keeps sending Window Ack Size messages
// after the handshake without ever connecting: the server must close the
// connection once HandshakeTimeout has passed since it arrived, and free
// its per-IP slot. A client that connects in time is not affected.
func TestConnectDeadlineIsAbsolute(t *testing.T) {
	// Longer than readDeadlineRefresh, which the read loop waits before it
	// moves a read deadline: a shorter one would expire before any move.
	const timeout = 1500 * time.Millisecond
	ts := startServer(t, func(c *Options) { c.MaxIPConnections = 4 }, func(s *Server) {
		s.HandshakeTimeout = timeout
		s.PingInterval = 50 * time.Millisecond
	})

	start := time.Now()
	c, err := client.Dial(ts.addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stop := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() {
		win := &chunk.Message{ChunkStreamID: 2, Type: message.TypeWindowAckSize, Payload: binary.BigEndian.AppendUint32(nil, 2500000)}
		tick := time.NewTicker(timeout / 10)
		defer tick.Stop()
		for {
			if err := c.WriteMessage(win); err != nil {
				writeErr <- err
				return
			}
			select {
			case <-stop:
				writeErr <- nil
				return
			case <-tick.C:
			}
		}
	}()
	const slack = 1500 * time.Millisecond
	_ = c.NetConn().SetReadDeadline(start.Add(timeout + slack))
	_, err = io.Copy(io.Discard, c.NetConn())
	close(stop)
	<-writeErr // the writer has ended; its error is the closed connection's
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a peer that never connects was still open %v after it arrived (HandshakeTimeout %v)", timeout+slack, timeout)
	}
	t.Logf("closed after %v (%v)", time.Since(start).Round(time.Millisecond), err)
	waitFor(t, "the per-IP slot freed", 5*time.Second, func() bool {
		return ts.limiter.Count(netip.MustParseAddr("127.0.0.1")) == 0
	})

	// A client that connects in time keeps its connection past the
	// deadline: it reads what the server sends (pings) for twice as long.
	good, err := client.Dial(ts.addr, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	until := time.Now().Add(2 * timeout)
	_ = good.SetDeadline(time.Now().Add(5 * time.Second))
	if err := good.Connect("live"); err != nil {
		t.Fatal(err)
	}
	_ = good.NetConn().SetReadDeadline(until)
	for {
		_, err := good.ReadMessage() // answers the pings
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break // still open
		}
		if err != nil {
			t.Fatalf("a connected client was closed %v after connecting: %v", time.Since(until.Add(-2*timeout)), err)
		}
	}
	_ = good.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := good.CreateStream(); err != nil {
		t.Fatalf("createStream after the deadline: %v", err)
	}
}

// longIDAuthorizer approves every publish with a stream id of 8000 bytes,
// as a callback server may.
type longIDAuthorizer struct{}

func (longIDAuthorizer) Start(context.Context, PublishEvent) (string, error) {
	return strings.Repeat("s", 8000), nil
}
func (longIDAuthorizer) Stop(PublishEvent) {}

// TestLongStreamIDLogBounded publishes and unpublishes with a stream id
// of 8000 bytes from the authorizer: the log lines carry it clipped.
func TestLongStreamIDLogBounded(t *testing.T) {
	ts := startServer(t, nil, func(s *Server) { s.SetAuthorizer(longIDAuthorizer{}) })
	pub := publish(t, ts, "live", "k")
	pub.Close()
	ended := ts.events.wait(t, "the unpublish", 1, kind(StreamEnded, ""))
	if n := len(ended[0].StreamID); n > 2*logging.MaxQuoted {
		t.Errorf("the stream-ended event carries a stream id of %d bytes", n)
	}
	checkLogBounded(t, ts)
}
