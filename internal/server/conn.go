package server

import (
	"bufio"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/handshake"
	"github.com/rtmp-server/rtmp-server/internal/hub"
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
// and the publisher/player roles, and the socket writes of its queue. A
// player that keeps up is written to directly by its stream's fan-out; a
// writer goroutine (writeLoop) runs only while the queue holds something,
// and the queue lets one of them write at a time.
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

	queue      *hub.Queue
	raw        syscall.RawConn // the socket, for direct non-blocking writes; nil for TLS
	reader     *chunk.Reader   // owned by the read loop
	lastRead   atomic.Int64    // unix nanoseconds of the last message read
	playID     atomic.Uint32   // message stream ID of the play stream, while playing
	playing    atomic.Bool     // playID is set
	kicked     atomic.Bool
	kickMu     sync.Mutex
	kickReason error           // guarded by kickMu
	live       atomic.Bool     // past the handshake: may be written to (pings)
	finishBy   atomic.Int64    // unix nanoseconds: once the read loop ended, the last writes' deadline
	wire       wireWriter      // used by the queue's one consumer at a time
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

// send queues a control or command message; a peer that lets them pile up is dropped.
func (c *conn) send(m message.Message) { c.sendEncoded(m.Chunk()) }

// sendEncoded queues an encoded message (the pinger shares one between
// connections).
func (c *conn) sendEncoded(m *chunk.Message) {
	if err := c.queue.PushControl(m); err != nil {
		c.Kick(errSlow)
	}
}

// logRequest logs one request event (connect, publish, play, close,
// rejection) when LOG_REQUESTS is on. The message doubles as the "event"
// attribute (EVENT= in the journal), with spaces as underscores.
func (c *conn) logRequest(msg string, args ...any) {
	if c.srv.options().LogRequests {
		c.log.Info(msg, append([]any{"event", strings.ReplaceAll(msg, " ", "_")}, args...)...)
	}
}

// serve runs the connection: the handshake, then its messages (see run).
func (c *conn) serve() {
	c.logRequest("connection accepted")
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
		c.logRequest("connection closed", "reason", "handshake failed")
		c.observeHandshakeFailure(err)
		_ = c.nc.Close()
		reason := "handshake failed"
		if r := c.reason(); r != nil {
			reason = closeReason(r) // kicked (evicted, shut down) during the handshake
		}
		c.observe(Event{Kind: ConnClosed, Reason: reason})
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
	c.finishWrites()
	_ = c.nc.Close()
	c.logRequest("connection closed", "reason", closeReason(err))
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

// startWriter is the queue's wake function: it starts a writer goroutine
// when there is something to write and none runs, so idle connections
// (and players that keep up, whose media the fan-out writes directly) have
// none.
func (c *conn) startWriter() {
	go c.writeLoop()
}

// writeLoop drains the queue to the socket until it is empty, then exits.
// At most one runs at a time (the queue ensures it).
func (c *conn) writeLoop() {
	defer func() {
		if r := recover(); r != nil {
			recoveredPanics.Add(1)
			// As in the read loop: a panic ends only this connection.
			c.log.Error("panic in connection writer", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.queue.Close()
			c.queue.Next(nil) // marks the consumer stopped
			c.Kick(fmt.Errorf("internal error: %v", r))
		}
	}()
	w := &c.wire
	for {
		if c.srv.Observer != nil {
			c.reportSkips() // while this is the queue's consumer: before Next
		}
		items := c.queue.Next(w.items[:0])
		if items == nil {
			return
		}
		if err := w.flush(items); err != nil {
			c.log.Debug("write failed", "err", err)
			c.queue.Close()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.Kick(errSlow)
			} else {
				c.Kick(err)
			}
		}
	}
}

// writeDirect is the queue's direct writer: called by the stream's fan-out
// while this player's queue is empty and no writer runs, it writes pkts
// with one non-blocking writev and reports how much the socket took.
// Anything it cannot write now (the socket is full, the chunk size must
// change first, the connection is finishing) is left to the writer
// goroutine, which also finds and reports socket errors.
func (c *conn) writeDirect(pkts []*hub.Packet) int {
	if c.finishBy.Load() != 0 {
		return 0
	}
	w := &c.wire
	playID := c.playStreamID()
	for _, p := range pkts {
		if p.ChunkSize != w.chunkSize || len(w.direct) == maxIovecs {
			break
		}
		w.direct = append(w.direct, p.Wire(playID))
	}
	w.written = 0
	if len(w.direct) > 0 {
		if w.writevNow == nil {
			w.writevNow = w.writev // bound once: no allocation per write
		}
		_ = c.raw.Write(w.writevNow)
	}
	clear(w.direct)
	w.direct = w.direct[:0]
	if w.written > 0 {
		c.srv.hub.AddBytesOut(w.written)
	}
	return w.written
}

// maxIovecs is the most buffers one writev takes (the kernel's IOV_MAX).
const maxIovecs = 1024

// writev writes w.direct to the socket fd without blocking and adds what
// the socket took to w.written. It uses a raw system call: the socket is
// non-blocking, so the call is short, and the scheduler need not hand the
// thread's processor to another thread meanwhile (with Syscall it does so
// for calls over 20 µs, which loopback writes to a busy peer often are).
// It always reports true: RawConn.Write must not wait for the socket.
func (w *wireWriter) writev(fd uintptr) bool {
	bufs := w.direct
	for len(bufs) > 0 {
		iov := w.iov[:0]
		for _, b := range bufs {
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
		w.iov = iov
		n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 || int(n) <= 0 {
			break // EAGAIN: the socket is full; an error is the writer's to find
		}
		w.written += int(n)
		if !skipWritten(&bufs, int(n)) {
			break
		}
	}
	clear(w.iov)
	return true
}

// skipWritten drops the first n bytes from bufs and reports whether
// anything is left.
func skipWritten(bufs *[][]byte, n int) bool {
	b := *bufs
	for len(b) > 0 && n >= len(b[0]) {
		n -= len(b[0])
		b = b[1:]
	}
	if len(b) > 0 {
		b[0] = b[0][n:]
	}
	*bufs = b
	return len(b) > 0
}

// finishWrites flushes what is queued within srv.FinishTimeout, once the read
// loop has ended, and stops the queue.
func (c *conn) finishWrites() {
	by := time.Now().Add(c.srv.FinishTimeout)
	c.finishBy.Store(by.UnixNano())
	_ = c.nc.SetWriteDeadline(by)
	c.queue.Finish()
	if c.srv.Observer != nil {
		c.reportSkips()
	}
	_ = c.wire.flush(c.queue.Drain(c.wire.items[:0]))
	c.queue.Close()
}

// reportSkips tells the observer how often the player skipped ahead since
// the last report. Only the queue's consumer may call it: the writer before
// it calls Next (once Next returns nil, the writer is no longer the
// consumer), or finishWrites after Finish.
func (c *conn) reportSkips() {
	if n := c.queue.Overflows(); n > c.wire.skips {
		c.observe(Event{Kind: PlayerSkipped, Skips: n - c.wire.skips})
		c.wire.skips = n
	}
}

// span is one buffer of a write: a range of wireWriter.scratch, or a
// shared packet.
type span struct {
	start, end int
	shared     []byte
}

// wireWriter encodes queue items for one connection, tracking the chunk
// size the peer was told. It is used by one writer at a time.
type wireWriter struct {
	conn        *conn
	chunkSize   uint32
	items       []hub.Item
	spans       []span
	scratch     []byte
	bufs        net.Buffers
	direct      [][]byte              // buffers of a direct write
	iov         []unix.Iovec          // their iovecs
	written     int                   // bytes the direct write got out
	writevNow   func(fd uintptr) bool // w.writev, for RawConn.Write
	deadlineSet time.Time             // when the write deadline was last pushed forward
	skips       uint64                // the queue's overflows reported to the observer
}

func (w *wireWriter) encode(m *chunk.Message) {
	start := len(w.scratch)
	w.scratch = chunk.AppendMessage(w.scratch, m, w.chunkSize)
	w.spans = append(w.spans, span{start: start, end: len(w.scratch)})
	if m.Type == message.TypeSetChunkSize && len(m.Payload) >= 4 {
		w.chunkSize = binary.BigEndian.Uint32(m.Payload)
	}
}

func (w *wireWriter) flush(items []hub.Item) error {
	w.items = items
	if len(items) == 0 {
		return nil
	}
	// Control messages are encoded into scratch; packets are shared buffers
	// referenced as they are. Offsets into scratch are recorded first since
	// appending may move it.
	w.scratch, w.spans, w.bufs = w.scratch[:0], w.spans[:0], w.bufs[:0]
	playID := w.conn.playStreamID()
	media := false
	for _, it := range items {
		if it.Control != nil {
			w.encode(it.Control)
			continue
		}
		media = true
		if it.Packet.ChunkSize != w.chunkSize {
			w.encode(message.SetChunkSize{Size: it.Packet.ChunkSize}.Chunk())
		}
		w.spans = append(w.spans, span{shared: it.Packet.Wire(playID)[it.Offset:]})
	}
	total := 0
	for _, s := range w.spans {
		b := s.shared
		if b == nil {
			b = w.scratch[s.start:s.end]
		}
		w.bufs = append(w.bufs, b)
		total += len(b)
	}
	clear(w.items)
	clear(w.spans)
	err := w.writeAll()
	clear(w.bufs)
	w.conn.srv.hub.AddBytesOut(total)
	if !media {
		// Only control messages: the connection is idle or its media goes
		// out directly. Its next write is far off; keep no buffers.
		w.items, w.spans, w.scratch, w.bufs = nil, nil, nil, nil
	}
	return err
}

// writeSegment is how much is written under one write deadline: a peer
// that reads slowly but steadily is not cut off, one that stops is.
const writeSegment = 256 << 10

// deadlineRefresh is how stale the write deadline may get before it is
// pushed forward (at most a quarter of WriteTimeout); refreshing it for
// every write costs a timer update.
const deadlineRefresh = time.Second

func (w *wireWriter) writeAll() error {
	rest := w.bufs
	for len(rest) > 0 {
		n, size := 0, 0
		for n < len(rest) && (n == 0 || size+len(rest[n]) <= writeSegment) {
			size += len(rest[n])
			n++
		}
		// Once the connection is finishing, every segment gets the finish
		// deadline, so a writer in the middle of a batch cannot push it on.
		if by := w.conn.finishBy.Load(); by != 0 {
			_ = w.conn.nc.SetWriteDeadline(time.Unix(0, by))
		} else if now := time.Now(); now.Sub(w.deadlineSet) > min(deadlineRefresh, w.conn.srv.WriteTimeout/4) {
			_ = w.conn.nc.SetWriteDeadline(now.Add(w.conn.srv.WriteTimeout))
			w.deadlineSet = now
		}
		seg := rest[:n:n]
		if _, err := seg.WriteTo(w.conn.nc); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// playStreamID is the message stream ID media is sent on.
func (c *conn) playStreamID() uint32 {
	if c.playing.Load() {
		return c.playID.Load()
	}
	return hub.WireStreamID
}
