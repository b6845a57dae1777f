package server

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The publisher's read path. Read as a plain net.Conn, a publisher's read
// loop is woken once per message: one poller wake-up, one scheduler
// hand-off and one or two read calls per audio or video message, which
// made ingest cost about twice nginx-rtmp's CPU per GB.
//
// ingestReader reads on a clock instead. Once a read comes back short (the
// socket is drained), the reader does not wait for the socket to become
// readable: it waits for the next tick of the server's ingest clock and
// then reads whatever arrived meanwhile. Every publisher of the server
// reads at the same tick, so their read loops run one after another on
// the same threads, without a thread being woken for each message, and
// each read takes what a tick brought (at 2 Mbit/s and 30 fps, a video
// frame and one or two audio frames) instead of one message.
//
// While a reader reads on the clock, its socket's receive low-water mark
// (SO_RCVLOWAT) is raised, so that arrivals do not wake the poller (only
// a reader waiting for readiness cares about them); a read on the clock is
// non-blocking and returns what is there whatever the mark. The mark is a
// sixteenth of the socket's receive buffer, which autotuning grows with
// the bitrate: above what a tick brings at usual bitrates, and small
// enough that Linux neither grows the receive buffer nor clamps the
// window for it (it does when twice the mark exceeds the buffer), so the
// mark lets no peer queue more in the kernel than before.
//
// After ingestIdleTicks ticks in a row that found nothing (a
// paused or a very sparse stream), the reader lowers the mark to 1 byte
// (which makes Linux report the socket readable at once if anything
// arrived meanwhile, or the peer closed it) and waits for readiness, as
// any connection does, with its read deadline; the first bytes to arrive
// are read at once, and the reader goes back to the clock.
//
// So a message waits in the kernel at most one tick (ingestTick), plus
// the time the read loops ahead of it at that tick take: within one frame
// interval (33 ms) at any bitrate. A kicked or closed connection notices
// at the next tick.
const (
	// ingestTick is the period of the ingest clock.
	ingestTick = 20 * time.Millisecond
	// ingestIdleTicks is how many ticks in a row may find nothing to read
	// before a reader waits for readiness instead.
	ingestIdleTicks = 3
	// ingestLowWaterShare is the low-water mark while reading on the
	// clock, as a share of the socket's receive buffer: 1/ingestLowWaterShare.
	ingestLowWaterShare = 16
)

// ingestReader reads a publisher's socket (plain TCP) as described above.
// Read is for the read loop alone.
type ingestReader struct {
	raw    syscall.RawConn
	clock  *ingestClock
	closed atomic.Bool

	// Owned by the read loop.
	p        []byte
	n        int
	err      error
	empty    bool // the read on the clock found nothing
	onClock  bool // reading on the clock (and the low-water mark is raised)
	waitTick bool // the last read was short: wait for the next tick
	idle     int  // ticks in a row that found nothing
	readFn   func(fd uintptr) bool
}

// newIngestReader returns a reader of raw on clock c, until Close. The
// socket's low-water mark is set to 1 byte first: a socket handed over by
// another process may come with it raised.
func newIngestReader(raw syscall.RawConn, c *ingestClock) *ingestReader {
	r := &ingestReader{raw: raw, clock: c}
	r.readFn = r.read
	_ = raw.Control(func(fd uintptr) { setLowWater(fd, 1) })
	c.add()
	return r
}

// Close takes the reader off the clock (the connection stays open); only
// the first call counts.
func (r *ingestReader) Close() {
	if r.closed.CompareAndSwap(false, true) {
		r.clock.remove()
	}
}

func (r *ingestReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if r.waitTick {
			r.clock.wait()
		}
		r.p, r.n, r.err, r.empty = p, 0, nil, false
		err := r.raw.Read(r.readFn)
		r.p = nil
		switch {
		case err != nil:
			return 0, err
		case r.err != nil:
			return 0, r.err
		case r.empty:
			r.waitTick = true
			continue
		case r.n == 0:
			return 0, io.EOF
		}
		r.waitTick = r.onClock && r.n < len(p)
		return r.n, nil
	}
}

// read is the RawConn.Read callback; false means: wait for readiness.
func (r *ingestReader) read(fd uintptr) bool {
	for {
		// A raw system call, as for the direct writes: the socket is
		// non-blocking, so the call is short, and the scheduler need not
		// prepare to hand the thread's processor to another thread.
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			if r.onClock && r.idle < ingestIdleTicks {
				r.idle++
				r.empty = true
				return true
			}
			if r.onClock {
				r.onClock = false
				setLowWater(fd, 1)
			}
			return false // the next arrival (or the deadline) wakes the reader
		case errno != 0:
			r.err = os.NewSyscallError("read", errno)
		default:
			r.n = int(n)
			r.idle = 0
			if !r.onClock && n > 0 {
				r.onClock = true
				raiseLowWater(fd)
			}
		}
		return true
	}
}

// raiseLowWater raises the socket's low-water mark for reading on the
// clock (see above).
func raiseLowWater(fd uintptr) {
	buf, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return // the mark stays 1: the poller is woken for nothing more often
	}
	setLowWater(fd, max(buf/ingestLowWaterShare, 1))
}

// setLowWater sets the socket's receive low-water mark. It cannot fail on
// an open TCP socket, and on a closed one the next read fails anyway.
func setLowWater(fd uintptr, n int) {
	_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, n)
}

// ingestClock is the server's ingest clock: one goroutine, running while
// there are readers, that ends a tick every ingestTick. Waiting for a tick
// is receiving from the tick's channel, which the clock closes: every
// waiting reader becomes runnable at once.
type ingestClock struct {
	mu      sync.Mutex
	readers int           // guarded by mu
	stop    chan struct{} // guarded by mu: closes to stop the goroutine; nil while none runs
	wg      sync.WaitGroup
	tick    atomic.Pointer[chan struct{}] // closed at the end of the current tick
}

func (k *ingestClock) add() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.readers++
	if k.stop == nil {
		ch := make(chan struct{})
		k.tick.Store(&ch)
		k.stop = make(chan struct{})
		k.wg.Add(1)
		go k.run(k.stop)
	}
}

func (k *ingestClock) remove() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.readers--
	if k.readers == 0 && k.stop != nil {
		close(k.stop)
		k.stop = nil
	}
}

// wait waits for the end of the current tick. Only a reader (between add
// and remove) may wait.
func (k *ingestClock) wait() { <-*k.tick.Load() }

// waitStopped waits for the goroutine to end (once every reader is removed).
func (k *ingestClock) waitStopped() { k.wg.Wait() }

func (k *ingestClock) run(stop chan struct{}) {
	defer k.wg.Done()
	t := time.NewTicker(ingestTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return // nobody waits: a reader is removed once its read loop has ended
		case <-t.C:
		}
		next := make(chan struct{})
		k.mu.Lock()
		if k.stop != stop {
			// Stopped, and maybe started again since: the channel is
			// the new goroutine's.
			k.mu.Unlock()
			return
		}
		close(*k.tick.Swap(&next))
		k.mu.Unlock()
	}
}
