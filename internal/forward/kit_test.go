package forward_test

// The test kit of this package: servers run in-process with a forwarder,
// a synthetic publisher with numbered frames, and players that record
// what they receive.

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmp-server/rtmp-server/internal/chunk"
	"github.com/rtmp-server/rtmp-server/internal/client"
	"github.com/rtmp-server/rtmp-server/internal/forward"
	"github.com/rtmp-server/rtmp-server/internal/message"
	"github.com/rtmp-server/rtmp-server/internal/server"
	"github.com/rtmp-server/rtmp-server/internal/servertest"
	"github.com/rtmp-server/rtmp-server/internal/testpeer"
)

const (
	// waitLimit bounds waiting for something the test caused.
	waitLimit = 30 * time.Second
	// ioLimit is the deadline of the test's own RTMP connections.
	ioLimit = 60 * time.Second
)

// node is one server of a test, with what its observer heard.
type node struct {
	srv  *server.Server
	addr string
	fwd  *forward.Manager // nil when it forwards nothing

	mu     sync.Mutex
	events []server.Event // guarded by mu
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// newNode makes a server that forwards as cfg says (nothing when nil).
func newNode(t testing.TB, cfg *forward.Config) *node {
	t.Helper()
	opts := server.DefaultOptions()
	opts.MaxIPConnections = 0
	srv, err := server.New(opts, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{srv: srv}
	srv.Observer = func(ev server.Event) {
		n.mu.Lock()
		n.events = append(n.events, ev)
		n.mu.Unlock()
	}
	if cfg != nil {
		n.fwd = forward.New(srv.Hub(), testLogger(t), *cfg)
		n.fwd.MinBackoff = 200 * time.Millisecond
		srv.Forwarder = n.fwd
		// Registered before the server's shutdown, so it runs after it.
		t.Cleanup(n.fwd.Close)
	}
	return n
}

// startNode serves a new node until the test ends.
func startNode(t testing.TB, cfg *forward.Config) *node {
	t.Helper()
	n := newNode(t, cfg)
	n.addr = servertest.Start(t, n.srv, server.ErrServerClosed)
	return n
}

// count reports how many events of kind the node's observer heard
// (with reason, when not empty).
func (n *node) count(kind server.EventKind, reason string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	c := 0
	for _, ev := range n.events {
		if ev.Kind == kind && (reason == "" || ev.Reason == reason) {
			c++
		}
	}
	return c
}

// forwardTo returns a configuration forwarding every publish to the same
// channel and key on addr.
func forwardTo(addr string) *forward.Config {
	tpl, err := forward.ParseTemplate("rtmp://" + addr + "/{channel}/{key}")
	if err != nil {
		panic(err)
	}
	return &forward.Config{Templates: []forward.Template{tpl}}
}

// forwardState returns the node's one forward's state.
func (n *node) forward(t testing.TB) forward.Status {
	t.Helper()
	st := n.fwd.Forwards()
	if len(st) != 1 {
		t.Fatalf("%d forwards, want 1: %+v", len(st), st)
	}
	return st[0]
}

func (n *node) waitLive(t testing.TB) {
	t.Helper()
	testpeer.WaitFor(t, "the forward live", waitLimit, func() bool {
		st := n.fwd.Forwards()
		return len(st) == 1 && st[0].State == forward.StateLive
	})
}

// Synthetic media: AVC with numbered frames. A frame's payload is the FLV
// video tag header, then the frame number, then filler.
const (
	avcKeyframe   = 0x17
	avcInterframe = 0x27
	avcSeqHeader  = 0
	avcNALU       = 1
	frameHeader   = 5 // FLV AVC video tag header
)

func avcConfig() []byte {
	return []byte{avcKeyframe, avcSeqHeader, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 0}
}

func frame(i, size int, key bool) []byte {
	p := make([]byte, max(size, frameHeader+4))
	p[0] = avcInterframe
	if key {
		p[0] = avcKeyframe
	}
	p[1] = avcNALU
	binary.BigEndian.PutUint32(p[frameHeader:], uint32(i))
	return p
}

// frameNumber returns the number of a synthetic frame, or -1 for the
// sequence header.
func frameNumber(m *chunk.Message) int {
	if len(m.Payload) < frameHeader+4 || m.Payload[1] != avcNALU {
		return -1
	}
	return int(binary.BigEndian.Uint32(m.Payload[frameHeader:]))
}

// publisher sends synthetic frames on a Go client connection.
type publisher struct {
	c        *client.Conn
	interval time.Duration
	size     int // bytes per frame
	gop      int // frames per keyframe
	sent     atomic.Int64
}

// count reports the frames sent so far.
func (p *publisher) count() int { return int(p.sent.Load()) }

func publish(t testing.TB, addr, channel, key string, interval time.Duration, size, gop int) (*publisher, error) {
	c, err := servertest.DialStream(t, addr, channel)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(ioLimit))
	if st, err := c.Publish(key); err != nil {
		return nil, errors.Join(err, errors.New(st.Code))
	}
	if err := c.WriteMedia(message.TypeVideo, 0, avcConfig()); err != nil {
		return nil, err
	}
	return &publisher{c: c, interval: interval, size: size, gop: gop}, nil
}

// send sends n frames at the publisher's pace.
func (p *publisher) send(n int) error {
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for range n {
		if err := p.next(); err != nil {
			return err
		}
		<-tick.C
	}
	return nil
}

func (p *publisher) next() error {
	i := int(p.sent.Add(1) - 1)
	return p.c.WriteMedia(message.TypeVideo, uint32(i*int(p.interval/time.Millisecond)), frame(i, p.size, i%p.gop == 0))
}

// stream sends frames at the publisher's pace until ctx ends.
func (p *publisher) stream(ctx context.Context) error {
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		if err := p.next(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// recorder plays a stream and records the frames it gets and when.
type recorder struct {
	c *client.Conn

	mu     sync.Mutex
	frames []int       // guarded by mu: frame numbers in arrival order
	at     []time.Time // guarded by mu
	video  [][]byte    // guarded by mu: every video payload
	done   chan error
}

// play starts a recorder on channel/key of addr; it reads until its
// connection ends.
func play(t testing.TB, addr, channel, key string) (*recorder, error) {
	c, err := servertest.DialStream(t, addr, channel)
	if err != nil {
		return nil, err
	}
	return record(c, key)
}

// playTLS is play over RTMPS, without verifying the certificate.
func playTLS(t testing.TB, addr, channel, key string) (*recorder, error) {
	c, err := client.Dial(addr, &tls.Config{InsecureSkipVerify: true}, waitLimit)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(ioLimit))
	if err := c.Connect(channel); err != nil {
		return nil, err
	}
	if _, err := c.CreateStream(); err != nil {
		return nil, err
	}
	return record(c, key)
}

func record(c *client.Conn, key string) (*recorder, error) {
	_ = c.SetDeadline(time.Now().Add(ioLimit))
	if st, err := c.Play(key); err != nil {
		return nil, errors.Join(err, errors.New(st.Code))
	}
	r := &recorder{c: c, done: make(chan error, 1)}
	go func() { r.done <- r.read() }()
	return r, nil
}

func (r *recorder) read() error {
	pending := r.c.Pending
	r.c.Pending = nil
	for {
		var m *chunk.Message
		if len(pending) > 0 {
			m, pending = pending[0], pending[1:]
		} else {
			var err error
			if m, err = r.c.ReadMessage(); err != nil {
				return err
			}
		}
		if m.Type != message.TypeVideo {
			continue
		}
		r.mu.Lock()
		r.video = append(r.video, append([]byte(nil), m.Payload...))
		if n := frameNumber(m); n >= 0 {
			r.frames = append(r.frames, n)
			r.at = append(r.at, time.Now())
		}
		r.mu.Unlock()
	}
}

// got returns the frame numbers so far.
func (r *recorder) got() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.frames...)
}

// has reports whether frame n arrived.
func (r *recorder) has(n int) bool {
	f := r.got()
	return len(f) > 0 && f[len(f)-1] >= n
}

// maxGap returns the longest time between two frames in a row.
func (r *recorder) maxGap() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(r.at); i++ {
		gap = max(gap, r.at[i].Sub(r.at[i-1]))
	}
	return gap
}

// listenOn binds addr again (a target restarting on its address), retrying
// while the old socket's port is not free yet.
func listenOn(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	testpeer.WaitFor(t, "binding "+addr+" again", waitLimit, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return ln
}

// servertestServe serves n on ln until the test ends.
func servertestServe(t testing.TB, n *node, ln net.Listener) {
	t.Helper()
	n.addr = ln.Addr().String()
	servertest.Serve(t, n.srv, ln, server.ErrServerClosed)
}

// servertestStart serves n on a new loopback listener until the test ends.
func servertestStart(t testing.TB, n *node) string {
	t.Helper()
	return servertest.Start(t, n.srv, server.ErrServerClosed)
}

// stallingProxy relays connections to addr, and stops reading from the
// client once the target has answered the publish (the client's socket
// then fills): a target that never reads. Its receive buffer is small, so
// that the client's writes block soon.
func stallingProxy(t testing.TB, addr string) string {
	t.Helper()
	ln := testpeer.Listen(t)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetReadBuffer(4096)
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); up.Close() })
			answered := make(chan struct{})
			wg.Add(2)
			go func() {
				// Up to the publish's answer: the handshake, connect,
				// createStream and publish exchanges are small.
				defer wg.Done()
				buf := make([]byte, 64<<10)
				var once sync.Once
				for {
					n, err := up.Read(buf)
					if n > 0 {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
						if bytesContain(buf[:n], "NetStream.Publish.Start") {
							once.Do(func() { close(answered) })
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, 4096)
				for {
					select {
					case <-answered:
						return // never reads again
					default:
					}
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := up.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func bytesContain(b []byte, s string) bool { return strings.Contains(string(b), s) }

// videos returns every video payload so far.
func (r *recorder) videos() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.video...)
}

func (r *recorder) videoCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.video)
}

// forwardToTemplate returns a configuration forwarding every publish to tpl.
func forwardToTemplate(t testing.TB, tpl string) *forward.Config {
	t.Helper()
	p, err := forward.ParseTemplate(tpl)
	if err != nil {
		t.Fatal(err)
	}
	return &forward.Config{Templates: []forward.Template{p}}
}
