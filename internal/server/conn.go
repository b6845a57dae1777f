package server

import (
	"bufio"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/handshake"
	"github.com/rtmp-server/rtmp-server/internal/logging"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/session"
)

// Deadlines and sizes of a connection.
const (
	// HandshakeTimeout bounds the TLS and RTMP handshakes and the connect
	// command together, from accept until connect succeeds.
	HandshakeTimeout = 10 * time.Second
	// IdleTimeout ends a connection that has sent nothing, not even a ping
	// response, for this long.
	IdleTimeout = 30 * time.Second
	// PublisherTimeout ends a publisher that has sent nothing for this long:
	// encoders send media continuously, so it is dead.
	PublisherTimeout = 10 * time.Second
	// PublisherStaleAfter lets a publish with the same key replace a
	// publisher that has been silent this long (an encoder reconnecting).
	PublisherStaleAfter = 2 * time.Second
	// PingInterval is how often the server sends a ping request.
	PingInterval = 5 * time.Second
	// WriteTimeout ends a connection whose peer stops reading.
	WriteTimeout = 10 * time.Second
	// FinishTimeout bounds flushing the last messages before closing.
	FinishTimeout = 2 * time.Second
	// readBufferSize is small: idle players are many, and large chunk
	// payloads bypass the buffer (they are read straight into the message).
	readBufferSize = 512
	// publishBufferSize is the read buffer of a publisher: fewer read calls
	// for the chunks of a high-bitrate stream.
	publishBufferSize = 64 << 10
)

var (
	errKilled   = errors.New("killed by control command")
	errShutdown = errors.New("server shutting down")
	errSlow     = errors.New("player stopped reading")
	errEvicted  = errors.New("dropped: too many connections still in handshake (MaxPending)")
)

// conn is one client connection: a read loop that owns the protocol state
// and the publisher/player roles, and its output (output.go), which owns
// every write to the socket after the handshake.
type conn struct {
	srv      *Server
	nc       net.Conn
	id       uint64
	clientIP netip.Addr
	ip       string
	log      *slog.Logger
	opts     *Options // the options when the connection arrived; immutable
	overIP   bool     // over the per-IP limit: refused at connect; immutable
	flashVer string   // the client's connect flashVer; written at connect, before any publish or play
	release  func()

	capsEx atomic.Uint32 // the client's connect capsEx (Enhanced RTMP): written at connect

	pendingElem *list.Element // guarded by srv.mu: place in srv.pending until connected

	output // the outgoing path: queue, direct writes, writer, final flush (output.go)

	reader     *chunk.Reader // owned by the read loop
	ingest     *ingestReader // owned by the read loop: reads the socket once the connection publishes (plain TCP)
	lastRead   atomic.Int64  // unix nanoseconds of the last message read
	playID     atomic.Uint32 // message stream ID of the play stream, while playing
	playing    atomic.Bool   // playID is set
	kicked     atomic.Bool
	kickMu     sync.Mutex
	kickReason error           // guarded by kickMu
	live       atomic.Bool     // past the handshake: may be written to (pings)
	ctx        context.Context // cancelled when the connection is kicked or ends
	cancel     context.CancelFunc

	// Owned by the read loop.
	connectBy time.Time        // the handshake and connect must be done by then
	session   *session.Session // the protocol state: connect, streams, acks, chunk sizes (Snapshot from any goroutine)
	// channel is the session's app once connected, kept as a plain string
	// because hub events and logs on other goroutines read it: written
	// once, at connect, before anything else can see the connection.
	channel string
	pub     *publisher
	play    *player
}

func (c *conn) SessionID() uint64 { return c.id }

// FlashVer is the flashVer the client sent in connect (for monitoring).
func (c *conn) FlashVer() string { return c.flashVer }

// ClientAddr is the peer's IP address.
func (c *conn) ClientAddr() netip.Addr { return c.clientIP }

// Idle reports how long ago the peer last sent a message.
func (c *conn) Idle() time.Duration {
	return time.Since(time.Unix(0, c.lastRead.Load()))
}

// Kick ends the connection with reason: the read loop stops, cleans up,
// flushes what is queued and closes. It never blocks.
func (c *conn) Kick(reason error) {
	c.kickMu.Lock()
	if c.kickReason == nil {
		c.kickReason = reason
	}
	c.kickMu.Unlock()
	c.kicked.Store(true)
	c.cancel()
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
}

func (c *conn) reason() error {
	c.kickMu.Lock()
	defer c.kickMu.Unlock()
	return c.kickReason
}

// serve runs the connection: the handshake, then its messages (see run).
func (c *conn) serve() {
	c.observe(Event{Kind: ConnAccepted})

	c.connectBy = time.Now().Add(c.srv.HandshakeTimeout)
	_ = c.nc.SetDeadline(c.connectBy)
	if c.kicked.Load() {
		_ = c.nc.Close()
		c.observe(Event{Kind: ConnClosed, Reason: closeReason(c.reason())})
		c.release()
		c.srv.forget(c)
		return
	}
	br := bufio.NewReaderSize(c.nc, readBufferSize)
	rw := struct {
		io.Reader
		io.Writer
	}{br, c.nc}
	if err := handshake.Server(rw, nil); err != nil {
		c.log.Debug("handshake failed", "err", err)
		c.observeHandshakeFailure(err)
		_ = c.nc.Close()
		reason := "handshake failed"
		if r := c.reason(); r != nil {
			reason = closeReason(r) // kicked (evicted, shut down) during the handshake
		}
		c.observe(Event{Kind: ConnClosed, Reason: reason, HandshakeFailed: true})
		c.release()
		c.srv.forget(c)
		return
	}
	_ = c.nc.SetWriteDeadline(time.Time{})
	c.reader = chunk.NewReader(br)
	c.session = session.New(c.reader, func(m *chunk.Message) error {
		c.sendEncoded(m) // a peer that lets messages pile up is kicked
		return nil
	})
	c.lastRead.Store(time.Now().UnixNano())

	c.wire = wireWriter{conn: c, chunkSize: chunk.DefaultChunkSize}
	c.live.Store(true)
	c.observe(Event{Kind: HandshakeDone})
	c.run()
}

// errFreshStack ends a read loop that should go on in a new goroutine.
var errFreshStack = errors.New("continue on a fresh stack")

// run reads messages until the connection ends, then cleans up and closes
// it. After a command the reading goes on in a new goroutine: the
// handshake and the commands grow a goroutine's stack to 8-16 KB, which
// Go does not give back while the goroutine sits blocked in a read, and
// most connections then wait for a long time (players, above all those
// waiting for a publisher) doing little else.
func (c *conn) run() {
	err := c.readLoopSafe()
	if err == errFreshStack {
		go c.run()
		return
	}
	if err == errParked { // see handover.go
		if c.park() {
			return
		}
		err = errShutdown
	}
	if r := c.reason(); r != nil {
		err = r
	}
	c.cleanup()
	if c.ingest != nil {
		c.ingest.Close()
	}
	c.finishWrites()
	_ = c.nc.Close()
	if errors.Is(err, errSlow) {
		c.observe(Event{Kind: PlayerDropped, Reason: errSlow.Error()})
	}
	c.observe(Event{Kind: ConnClosed, Reason: closeReason(err)})
	c.release()
	c.srv.forget(c)
}

func closeReason(err error) string {
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "closed by peer"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	}
	// Errors name what was wrong and quote a peer's text only clipped;
	// the bound here keeps it so whatever an error below may carry.
	return logging.ClipN(err.Error(), maxReasonText)
}

// maxReasonText bounds the close reason logged for a connection.
const maxReasonText = 256

// recoveredPanics counts the panics recovered at the connection boundary
// (read loop and writer) since the process started; tests check it.
var recoveredPanics atomic.Int64

// readLoopSafe runs the read loop; a panic ends only this connection.
func (c *conn) readLoopSafe() (err error) {
	defer func() {
		if r := recover(); r != nil {
			recoveredPanics.Add(1)
			c.log.Error("panic in connection", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error: %v", r)
		}
	}()
	return c.readLoop()
}

// readDeadlineRefresh is how stale the read deadline may get before it is
// pushed forward.
const readDeadlineRefresh = time.Second

// readDeadline is the read deadline from now on. Until connect succeeds it
// is the fixed connectBy: messages before connect (a ping, a window size)
// do not extend it, so a peer cannot hold a connection without connecting.
func (c *conn) readDeadline(now time.Time) time.Time {
	switch {
	case !c.session.Connected():
		return c.connectBy
	case c.pub != nil:
		return now.Add(c.srv.PublisherTimeout)
	}
	return now.Add(c.srv.IdleTimeout)
}

func (c *conn) readLoop() error {
	var deadlineSet time.Time
	now := time.Now()
	for {
		// The read deadline is pushed forward at most once a second: a
		// timer update per message is a measurable cost for publishers.
		// Kick sets a past deadline after raising kicked, so checking
		// kicked after every update (and every message) cannot miss it.
		if now.Sub(deadlineSet) > readDeadlineRefresh {
			if err := c.nc.SetReadDeadline(c.readDeadline(now)); err != nil {
				return err
			}
			deadlineSet = now
		}
		if c.kicked.Load() {
			return c.reason()
		}
		if c.parkable() {
			return errParked
		}
		msg, err := c.session.ReadMessage()
		if err != nil {
			return c.readFailed(err)
		}
		now = time.Now()
		c.lastRead.Store(now.UnixNano())
		if err := c.handleMessage(msg); err != nil {
			return err
		}
		if isCommand(msg.Chunk().Type) && c.pub == nil {
			return errFreshStack // see run
		}
	}
}

func isCommand(typ uint8) bool {
	return typ == message.TypeCommandAMF0 || typ == message.TypeCommandAMF3
}
