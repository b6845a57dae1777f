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

// The publisher's read path. A publisher's read loop is woken about once
// per message, and with a plain net.Conn half of its reads return EAGAIN:
// after a message, Go reads again before it parks (its poller forgets a
// readiness reported while the goroutine was busy, so it must look).
// ingestReader reads the socket itself and, after a short read (the socket
// had less than asked for, so it was drained), does not read again but
// waits for the socket to be readable, as nginx does.
//
// What arrived between the short read and the wait is then only noticed
// with the next arrival. The backstop (ingestWatch) bounds that: a reader
// that has waited longer than ingestMaxWait after skipping a read is
// nudged once: its socket's receive low-water mark (SO_RCVLOWAT) is set to
// 1 byte, its value, which makes Linux recheck the socket and report it
// readable if it holds anything (or the peer has closed). So no message
// waits in the kernel longer than ingestMaxWait plus one ingestWatchTick:
// within one frame interval (33 ms), at any bitrate.
//
// A low-water mark sized to the bitrate (so that one wake-up finds a
// frame, or a frame and audio, instead of one message) was measured too:
// within the one-frame bound on the delay it raised the poller's and the
// scheduler's work more than it saved (BENCHMARKS.md).
const (
	// ingestMaxWait is how long a publisher's reader may wait after
	// skipping a read before the backstop makes it look.
	ingestMaxWait = 25 * time.Millisecond
	// ingestWatchTick is how often the backstop looks.
	ingestWatchTick = 8 * time.Millisecond
)

// ingestReader reads a publisher's socket (plain TCP) as described above.
// Read is for the read loop alone; the watch only nudges.
type ingestReader struct {
	raw   syscall.RawConn
	watch *ingestWatch

	// Owned by the read loop.
	p      []byte
	n      int
	err    error
	first  bool
	skip   bool // the last read was short: wait for readiness before reading
	readFn func(fd uintptr) bool

	// skippedAt is when the reader began to wait without reading (unix
	// nanoseconds), 0 while it does not; the watch clears it when it
	// nudges.
	skippedAt atomic.Int64
}

// newIngestReader returns a reader of raw, watched by w until Close.
func newIngestReader(raw syscall.RawConn, w *ingestWatch) *ingestReader {
	r := &ingestReader{raw: raw, watch: w}
	r.readFn = r.read
	w.add(r)
	return r
}

// Close stops watching the reader (the connection stays open).
func (r *ingestReader) Close() { r.watch.remove(r) }

func (r *ingestReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err, r.first = p, 0, nil, true
	err := r.raw.Read(r.readFn)
	r.p = nil
	r.skippedAt.Store(0)
	switch {
	case err != nil:
		return 0, err
	case r.err != nil:
		return 0, r.err
	case r.n == 0:
		return 0, io.EOF
	}
	r.skip = r.n < len(p)
	return r.n, nil
}

// read is the RawConn.Read callback; false means: wait for readiness.
func (r *ingestReader) read(fd uintptr) bool {
	if r.first {
		r.first = false
		if r.skip {
			r.skippedAt.Store(r.watch.now.Load())
			return false
		}
	}
	for {
		// A raw system call, as for the direct writes: the socket is
		// non-blocking, so the call is short, and the scheduler need not
		// prepare to hand the thread's processor to another thread.
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return false // nothing queued: the next arrival wakes the reader
		case errno != 0:
			r.err = os.NewSyscallError("read", errno)
		default:
			r.n = int(n)
		}
		return true
	}
}

// nudge makes the kernel report the socket readable if it holds anything
// (or the peer has closed), once per wait: skippedAt is the start of the
// wait the watch found too long, and a reader that has begun another wait
// meanwhile is left to the next tick. It runs on the watch's goroutine.
func (r *ingestReader) nudge(skippedAt int64) {
	if !r.skippedAt.CompareAndSwap(skippedAt, 0) {
		return
	}
	_ = r.raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1)
	})
}

// ingestWatch is the backstop of the server's ingest readers: one
// goroutine, running while there are readers, that nudges those that
// skipped a read and have waited longer than ingestMaxWait.
type ingestWatch struct {
	mu      sync.Mutex
	readers map[*ingestReader]struct{} // guarded by mu
	stop    chan struct{}              // guarded by mu: closes to stop the goroutine; nil while none runs
	wg      sync.WaitGroup
	// now is the time of the last tick (unix nanoseconds): a clock for the
	// readers coarse enough to cost nothing, which makes the watch nudge
	// at most one tick early.
	now atomic.Int64
}

func (w *ingestWatch) add(r *ingestReader) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.readers == nil {
		w.readers = make(map[*ingestReader]struct{})
	}
	w.readers[r] = struct{}{}
	if w.stop == nil {
		w.now.Store(time.Now().UnixNano())
		w.stop = make(chan struct{})
		w.wg.Add(1)
		go w.run(w.stop)
	}
}

func (w *ingestWatch) remove(r *ingestReader) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.readers, r)
	if len(w.readers) == 0 && w.stop != nil {
		close(w.stop)
		w.stop = nil
	}
}

// wait waits for the goroutine to end (once every reader is removed).
func (w *ingestWatch) wait() { w.wg.Wait() }

func (w *ingestWatch) run(stop chan struct{}) {
	defer w.wg.Done()
	t := time.NewTicker(ingestWatchTick)
	defer t.Stop()
	type lateReader struct {
		r         *ingestReader
		skippedAt int64
	}
	var late []lateReader
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			w.now.Store(now.UnixNano())
			limit := now.Add(-ingestMaxWait).UnixNano()
			w.mu.Lock()
			for r := range w.readers {
				if at := r.skippedAt.Load(); at != 0 && at < limit {
					late = append(late, lateReader{r, at})
				}
			}
			w.mu.Unlock()
			for _, l := range late {
				l.r.nudge(l.skippedAt)
			}
			clear(late)
			late = late[:0]
		}
	}
}
