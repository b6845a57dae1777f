package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/hub"
	"github.com/rtmp-server/rtmp-server/internal/message"
)

// The output path of a connection: everything written to the peer after
// the handshake goes through it, and it is the only writer of the socket.
//
// Contract:
//   - Producers never block on it: the connection's read loop (replies,
//     statuses: send), the server's pinger (sendEncoded) and, for a
//     player, its stream's fan-out (media and stream events, through the
//     hub.Queue the hub.Player holds). A producer that finds control
//     messages piling up (hub.MaxQueueControl) kicks the connection.
//   - One consumer at a time, ensured by the queue (hub.Queue: active):
//     - the direct write (writeDirect): on the fan-out goroutine, while
//       the queue is empty and no writer runs, media goes out in one
//       non-blocking writev; what the socket does not take is queued;
//     - the writer goroutine (writeLoop): started by the queue when items
//       arrive and no consumer runs; it drains the queue through the wire
//       writer with a write deadline and exits once the queue is empty;
//     - the final flush (finishWrites): once the read loop has ended, it
//       stops new writers, waits for the running one, and writes what is
//       left within FinishTimeout.
//   - The wire writer (wireWriter) encodes control messages with the chunk
//     size the peer was last told and announces a packet's chunk size
//     before media that uses another one; it is used by the consumer of the
//     moment only, and records what it announced in the session state.
//   - A failed write kicks the connection (a deadline passed: as a slow
//     player); a panic in the writer or in a direct write ends that
//     connection only. Socket errors are found and reported by the writer.

// output is the connection's outgoing path (see above). Its fields are set
// when the connection is accepted (queue, raw) or the handshake ends
// (wire) and are then used as the contract says.
type output struct {
	queue    *hub.Queue
	raw      syscall.RawConn // the socket, for direct non-blocking writes; nil for TLS
	finishBy atomic.Int64    // unix nanoseconds: once the read loop ended, the last writes' deadline
	wire     wireWriter      // used by the queue's one consumer at a time
}

// initOutput makes the connection's queue: with direct writes on plain TCP
// (a player that keeps up is written to by the fan-out), through the
// writer alone on TLS.
func (c *conn) initOutput() {
	c.queue = hub.NewQueue(c.startWriter)
	if sc, ok := c.nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.queue = hub.NewDirectQueue(c.startWriter, c.writeDirect)
		}
	}
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
//
// It runs on the fan-out goroutine, which serves every player of the
// stream: a panic here ends this connection only (its queue is closed, so
// nothing more is written to it, and it is kicked), as in the writer.
func (c *conn) writeDirect(pkts []*hub.Packet) (written int) {
	if c.finishBy.Load() != 0 {
		return 0
	}
	w := &c.wire
	defer func() {
		if r := recover(); r != nil {
			recoveredPanics.Add(1)
			c.log.Error("panic in direct write", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			clear(w.direct)
			w.direct = w.direct[:0]
			c.queue.Close()
			c.Kick(fmt.Errorf("internal error: %v", r))
			written = 0
		}
	}()
	if h := testHookDirectWrite.Load(); h != nil {
		(*h)(c)
	}
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

// testHookDirectWrite, if set, is called at the start of each direct
// write (tests make it panic).
var testHookDirectWrite atomic.Pointer[func(*conn)]

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
		w.conn.session.WroteChunkSize(w.chunkSize)
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
