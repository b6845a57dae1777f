package server

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
	"golang.org/x/sys/unix"
)

// ingestPair returns a publisher's end of a loopback TCP connection and
// the server's end read through an ingestReader (a chunk reader over it)
// on a clock of its own. A read waits 30 s at most: a reader that misses
// what arrived fails instead of hanging.
func ingestPair(t *testing.T) (pub net.Conn, r *ingestReader, in *chunk.Reader) {
	t.Helper()
	ln := testpeer.Listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	pub, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	raw, err := srv.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	clock := &ingestClock{}
	r = newIngestReader(raw, clock)
	t.Cleanup(func() {
		r.Close()
		clock.waitStopped()
	})
	in = chunk.NewReader(r)
	in.Rebuffer(r, publishBufferSize)
	if err := in.SetChunkSize(4096); err != nil {
		t.Fatal(err)
	}
	return pub, r, in
}

// stampedMessage is a video message whose payload starts with its index
// and the time it was sent.
func stampedMessage(i int, size int, sent time.Time) []byte {
	payload := make([]byte, max(size, 16))
	payload[0], payload[1] = 0x27, 0x01
	binary.BigEndian.PutUint32(payload[2:], uint32(i))
	binary.BigEndian.PutUint64(payload[6:], uint64(sent.UnixNano()))
	for j := 14; j < len(payload); j++ {
		payload[j] = byte(i + j)
	}
	return chunk.AppendMessage(nil, &chunk.Message{ChunkStreamID: 6, Type: message.TypeVideo, StreamID: 1, Timestamp: uint32(i), Payload: payload}, 4096)
}

// checkStamped checks that m is stamped message i, whole, and returns how
// long after it was sent it was read.
func checkStamped(m *chunk.Message, i int, size int) (time.Duration, error) {
	if len(m.Payload) != max(size, 16) {
		return 0, fmt.Errorf("message %d: %d bytes, want %d", i, len(m.Payload), max(size, 16))
	}
	if got := int(binary.BigEndian.Uint32(m.Payload[2:])); got != i {
		return 0, fmt.Errorf("got message %d, want %d", got, i)
	}
	for j := 14; j < len(m.Payload); j++ {
		if m.Payload[j] != byte(i+j) {
			return 0, fmt.Errorf("message %d: byte %d changed", i, j)
		}
	}
	return time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(m.Payload[6:])))), nil
}

// TestIngestReaderOneByteAtATime: a publisher whose bytes arrive one at a
// time (each in its own write), then a message of 1 MiB: every message is
// read whole and in order.
func TestIngestReaderOneByteAtATime(t *testing.T) {
	t.Parallel()
	pub, _, in := ingestPair(t)
	sizes := []int{16, 300, 5000, 100, 1 << 20, 20}
	errc := make(chan error, 1)
	go func() {
		for i, size := range sizes {
			b := stampedMessage(i, size, time.Now())
			if size > 10000 {
				if _, err := pub.Write(b); err != nil {
					errc <- err
					return
				}
				continue
			}
			for j := range b {
				if _, err := pub.Write(b[j : j+1]); err != nil {
					errc <- err
					return
				}
			}
		}
		errc <- nil
	}()
	for i, size := range sizes {
		m, err := in.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if _, err := checkStamped(m, i, size); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// maxIngestDelay is the most a message may wait in the kernel for the
// ingest reader: one tick, plus room for a machine busy with other work
// (the bound itself is ingestTick).
const maxIngestDelay = ingestTick + 150*time.Millisecond

// TestIngestReaderPauseAndResume: a publisher sends steadily at 2 Mbit/s,
// pauses for seconds with a lone small message in the middle, and
// resumes: no message waits longer than the bound, the lone one included.
func TestIngestReaderPauseAndResume(t *testing.T) {
	t.Parallel()
	pub, _, in := ingestPair(t)
	const (
		frame    = 8000 // 2 Mbit/s at 30 frames/s
		interval = 33 * time.Millisecond
		steady   = 45 // frames before the pause: more than the rate window
		pause    = 2 * time.Second
		resumed  = 10
	)
	type sent struct {
		size int
	}
	plan := make([]sent, 0, steady+1+resumed)
	for range steady {
		plan = append(plan, sent{frame})
	}
	plan = append(plan, sent{200}) // alone, below the mark, mid-pause
	for range resumed {
		plan = append(plan, sent{frame})
	}
	errc := make(chan error, 1)
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i, s := range plan {
			if i == steady || i == steady+1 {
				wait := time.NewTimer(pause / 2)
				<-wait.C
			}
			if _, err := pub.Write(stampedMessage(i, s.size, time.Now())); err != nil {
				errc <- err
				return
			}
			if i < steady {
				<-tick.C
			}
		}
		errc <- nil
	}()
	var worst time.Duration
	for i, s := range plan {
		m, err := in.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		delay, err := checkStamped(m, i, s.size)
		if err != nil {
			t.Fatal(err)
		}
		if delay > maxIngestDelay {
			t.Errorf("message %d (%d bytes) read %v after it was sent, want at most %v", i, s.size, delay, maxIngestDelay)
		}
		worst = max(worst, delay)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Logf("worst delay %v", worst)
}

// TestIngestReaderAudioOnly: the messages of a 64 kbit/s audio-only
// stream are read as they come.
func TestIngestReaderAudioOnly(t *testing.T) {
	t.Parallel()
	pub, _, in := ingestPair(t)
	const n = 60 // 1.4 s of AAC frames, 23 ms apart
	errc := make(chan error, 1)
	go func() {
		tick := time.NewTicker(23 * time.Millisecond)
		defer tick.Stop()
		for i := range n {
			if _, err := pub.Write(stampedMessage(i, 180, time.Now())); err != nil {
				errc <- err
				return
			}
			<-tick.C
		}
		errc <- nil
	}()
	for i := range n {
		m, err := in.ReadMessage()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		delay, err := checkStamped(m, i, 180)
		if err != nil {
			t.Fatal(err)
		}
		if delay > maxIngestDelay {
			t.Errorf("message %d read %v after it was sent, want at most %v", i, delay, maxIngestDelay)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestIngestReaderEOF: the publisher closing its end is io.EOF, after
// every byte sent, within the bound. The end arrives with the last
// message, before the reader's short read of it: the reader waits for the
// next tick, with the socket's low-water mark raised, and finds the end
// then.
func TestIngestReaderEOF(t *testing.T) {
	t.Parallel()
	pub, _, in := ingestPair(t)
	if _, err := pub.Write(stampedMessage(0, 100, time.Now())); err != nil {
		t.Fatal(err)
	}
	pub.Close()
	closed := time.Now()
	defer func() {
		if took := time.Since(closed); took > maxIngestDelay {
			t.Errorf("the end of the stream was read %v after it came, want at most %v", took, maxIngestDelay)
		}
	}()
	m, err := in.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := checkStamped(m, 0, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := in.ReadMessage(); err == nil || !bytes.Contains([]byte(err.Error()), []byte("EOF")) {
		t.Fatalf("after the publisher closed: %v, want EOF", err)
	}
}

// queued reports how many bytes wait in r's socket, and whether the peer
// has closed it, without reading them.
func queued(t *testing.T, r *ingestReader) (n int, closed bool) {
	t.Helper()
	var err error
	if cerr := r.raw.Control(func(fd uintptr) {
		if n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ); err != nil {
			return
		}
		var b [1]byte
		m, _, perr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		closed = perr == nil && m == 0
	}); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n, closed
}

// lowWater is the receive low-water mark of r's socket.
func lowWater(t *testing.T, r *ingestReader) int { return sockopt(t, r, unix.SO_RCVLOWAT) }

// sockopt is a socket-level option of r's socket.
func sockopt(t *testing.T, r *ingestReader, opt int) int {
	t.Helper()
	var n int
	var err error
	if cerr := r.raw.Control(func(fd uintptr) {
		n, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt)
	}); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIngestReaderReadsOnTheClock: after a short read the reader reads
// on the clock, with the socket's low-water mark raised so that arrivals
// wake nobody; what arrives then is read at the next tick all the same,
// data and the end of the stream alike. The raised mark does not grow the
// receive buffer (a peer could then queue more in the kernel). Left idle,
// the reader lowers the mark and waits for readiness.
func TestIngestReaderReadsOnTheClock(t *testing.T) {
	t.Parallel()
	pub, r, _ := ingestPair(t)
	buf := make([]byte, 4096)
	rcvbuf := sockopt(t, r, unix.SO_RCVBUF)
	for i, what := range []string{"data", "end"} {
		// A short read: the socket held less than asked for.
		if _, err := pub.Write([]byte{byte(i), 1, 2}); err != nil {
			t.Fatal(err)
		}
		if n, err := r.Read(buf); n != 3 || err != nil {
			t.Fatalf("%s: read %d, %v; want 3 bytes", what, n, err)
		}
		if got := lowWater(t, r); got <= 1 {
			t.Fatalf("%s: low-water mark %d on the clock, want it raised", what, got)
		}
		if got := sockopt(t, r, unix.SO_RCVBUF); got > rcvbuf {
			t.Fatalf("%s: receive buffer %d on the clock, was %d: the mark grew it", what, got, rcvbuf)
		}
		// More arrives before the next Read: below the mark, so the
		// socket is not reported readable.
		if what == "data" {
			if _, err := pub.Write([]byte{9, 9}); err != nil {
				t.Fatal(err)
			}
			testpeer.WaitFor(t, "the next bytes queued", 5*time.Second, func() bool { n, _ := queued(t, r); return n == 2 })
		} else {
			pub.Close()
			testpeer.WaitFor(t, "the end queued", 5*time.Second, func() bool { _, closed := queued(t, r); return closed })
		}
		start := time.Now()
		n, err := r.Read(buf)
		took := time.Since(start)
		switch {
		case what == "data" && (n != 2 || err != nil):
			t.Fatalf("data: read %d, %v; want 2 bytes", n, err)
		case what == "end" && err != io.EOF:
			t.Fatalf("end: read %d, %v; want EOF", n, err)
		case took > maxIngestDelay:
			t.Errorf("%s: read %v after it was queued, want at most %v", what, took, maxIngestDelay)
		}
		if what == "data" {
			// Idle: after ingestIdleTicks empty ticks the reader waits
			// for readiness, with the mark lowered.
			readc := make(chan error, 1)
			go func() {
				n, err := r.Read(buf)
				if err == nil && (n != 1 || buf[0] != 7) {
					err = fmt.Errorf("read %d bytes (%v), want the byte 7", n, buf[:n])
				}
				readc <- err
			}()
			testpeer.WaitFor(t, "the mark lowered", 5*time.Second, func() bool { return lowWater(t, r) == 1 })
			sent := time.Now()
			if _, err := pub.Write([]byte{7}); err != nil {
				t.Fatal(err)
			}
			if err := <-readc; err != nil {
				t.Fatal(err)
			}
			if took := time.Since(sent); took > maxIngestDelay {
				t.Errorf("after idling: read %v after it was sent, want at most %v", took, maxIngestDelay)
			}
		}
	}
}

// TestIngestReaderHandedOverSocket: a socket that comes from another
// process with its low-water mark raised (handed over while reading on
// the clock) is read as soon as anything arrives.
func TestIngestReaderHandedOverSocket(t *testing.T) {
	t.Parallel()
	pub, r, in := ingestPair(t)
	r.Close()
	if err := r.raw.Control(func(fd uintptr) { setLowWater(fd, 1<<20) }); err != nil {
		t.Fatal(err)
	}
	if got := lowWater(t, r); got <= 64<<10 {
		t.Fatalf("low-water mark %d, want it raised", got)
	}
	clock := &ingestClock{}
	adopted := newIngestReader(r.raw, clock)
	t.Cleanup(func() {
		adopted.Close()
		clock.waitStopped()
	})
	if got := lowWater(t, adopted); got != 1 {
		t.Fatalf("low-water mark %d once adopted, want 1: a reader waiting for readiness would not be woken", got)
	}
	in.Rebuffer(adopted, publishBufferSize)
	sent := time.Now()
	if _, err := pub.Write(stampedMessage(0, 100, sent)); err != nil {
		t.Fatal(err)
	}
	m, err := in.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if delay, err := checkStamped(m, 0, 100); err != nil {
		t.Fatal(err)
	} else if delay > maxIngestDelay {
		t.Errorf("read %v after it was sent, want at most %v", delay, maxIngestDelay)
	}
}

// TestIngestReaderCloseTwice: a second Close of a reader does not take
// another reader off the clock (which would stop the clock under it).
func TestIngestReaderCloseTwice(t *testing.T) {
	t.Parallel()
	_, r, _ := ingestPair(t)
	other := newIngestReader(r.raw, r.clock)
	other.Close()
	other.Close()
	r.clock.mu.Lock()
	n, running := r.clock.readers, r.clock.stop != nil
	r.clock.mu.Unlock()
	if n != 1 || !running {
		t.Fatalf("after closing the other reader twice: %d readers, clock running %v; want 1, true", n, running)
	}
}
